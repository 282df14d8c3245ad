"""Where every encoded image is opened: one pixel cap against decompression bombs.

A PNG of a few hundred KB can declare 20,000 x 20,000 pixels and cost gigabytes once decoded. Pillow
reads only the header in ``Image.open``, so the declared size is checked before any pixel is decoded.
The cap is far above any real benchmark image (MMStar's largest are a few megapixels) and can be
raised with ``MMSTAR_MAX_IMAGE_PIXELS`` (read at each call, so a server or a Streamlit process picks
it up from its environment). Pillow keeps its own decompression-bomb limit as well (about 179
megapixels); an image beyond both is refused with the same one-line message.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

from .errors import DataError, MmstarError

__all__ = ["DEFAULT_MAX_PIXELS", "ENV", "check_pixels", "open_image", "pixel_cap"]

DEFAULT_MAX_PIXELS = 64_000_000  # 8000 x 8000; ~190 MB as RGB
ENV = "MMSTAR_MAX_IMAGE_PIXELS"


def pixel_cap() -> int:
    """The largest image (width x height) that is decoded; ``MMSTAR_MAX_IMAGE_PIXELS`` overrides it."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise MmstarError(f"{ENV}={raw!r} must be a positive whole number of pixels")
    return value


def check_pixels(width: int, height: int, origin: str) -> None:
    """Refuse an image whose declared size is over the cap, before it is decoded."""
    cap = pixel_cap()
    if width * height > cap:
        raise DataError(origin, f"image is {width} x {height} = {width * height:,} pixels, over the cap of "
                                f"{cap:,} (a decompression bomb?; raise {ENV} for a real image this large)")


def open_image(data: bytes, origin: str, *, decode: bool = True) -> Any:
    """The image in ``data`` as a PIL image, its size checked first; ``decode=False`` checks the
    header and the whole file (``verify``) without decoding pixels. Every failure is one DataError."""
    from PIL import Image, UnidentifiedImageError

    try:
        # (no warnings.catch_warnings here: it is not thread-safe, and images open on worker threads;
        # Pillow's warning fires only above 89 megapixels, which the default cap refuses anyway)
        img = Image.open(io.BytesIO(data))
        check_pixels(*img.size, origin)
        if decode:
            img.load()
        else:
            img.verify()  # reads the whole file: a truncated or corrupt image fails here
    except Image.DecompressionBombError as exc:  # beyond Pillow's own limit too: refused inside open()
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "beyond Pillow's decompression-bomb limit"
        raise DataError(origin, f"image is {size}, over the cap of {pixel_cap():,} (a decompression bomb?; "
                                f"Pillow refuses it too, whatever {ENV} says)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(origin, f"corrupt or unsupported image ({exc})") from None
    return img
