"""The sample record and the benchmark container (lazy images, content fingerprint)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import DataError


def image_format(data: bytes) -> str:
    """The encoded image's format from its magic bytes: png, jpeg, webp, gif, or bin (unknown)."""
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:3] == b"GIF":
        return "gif"
    return "bin"


class ImageRef:
    """An image that is read and decoded only when asked for.

    Holds raw encoded bytes, a base64 string, a file path or a loader; ``data()`` returns the
    encoded bytes, ``pil()`` decodes. Nothing is decoded up front.
    """

    __slots__ = ("_b64", "_bytes", "_loader", "_path", "origin")

    def __init__(
        self,
        *,
        data: bytes | None = None,
        b64: str | None = None,
        path: Path | None = None,
        loader: Callable[[], bytes] | None = None,
        origin: str = "",
    ) -> None:
        if sum(x is not None for x in (data, b64, path, loader)) != 1:
            raise ValueError("ImageRef needs exactly one of data, b64, path, loader")
        self._bytes, self._b64, self._path, self._loader = data, b64, path, loader
        self.origin = origin  # where it came from, for error messages

    @property
    def path(self) -> Path | None:
        return self._path

    def data(self) -> bytes:
        if self._bytes is not None:
            return self._bytes
        if self._b64 is not None:
            try:
                return base64.b64decode(self._b64, validate=True)
            except ValueError as exc:
                raise DataError(self.origin or "image", f"image is not valid base64 ({exc})") from exc
        if self._path is not None:
            try:
                return self._path.read_bytes()
            except OSError as exc:
                raise DataError(self.origin or self._path, f"cannot read image {self._path}: {exc.strerror}") from None
        if self._loader is None:  # __init__ takes exactly one source; kept under python -O too
            raise RuntimeError("ImageRef holds no image source")
        return self._loader()

    def pil(self):
        """Decode, after the size check of :func:`mmstar.images.open_image` (a bomb is one DataError)."""
        from .images import open_image

        img = open_image(self.data(), self.origin or "image")
        return img.convert("RGB") if img.mode not in ("RGB", "L") else img

    def digest(self) -> str:
        return hashlib.sha256(self.data()).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImageRef) and self.data() == other.data()

    def __hash__(self) -> int:  # pragma: no cover - samples are not hashed in practice
        return hash(self.digest())

    def __repr__(self) -> str:
        kind = "bytes" if self._bytes is not None else "b64" if self._b64 else "path" if self._path else "lazy"
        return f"ImageRef({kind}{', ' + self.origin if self.origin else ''})"


@dataclass(eq=True)
class Sample:
    """One multiple-choice question.

    ``question`` is the text as in the source (for MMStar it embeds the options);
    ``options`` is letter -> text, parsed; ``options_embedded`` says which it was, so writers
    can round-trip and prompt builders do not repeat options.
    """

    index: int
    question: str
    options: dict[str, str]
    answer: str
    category: str = ""
    l2_category: str = ""
    source: str = ""
    image: ImageRef | None = field(default=None, compare=True, repr=False)
    hint: str | None = None
    options_embedded: bool = True
    meta: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Sample:
        return replace(self, **changes)

    def record(self) -> dict[str, Any]:
        """JSON-safe description without the image (image digest instead)."""
        return {
            "index": self.index,
            "question": self.question,
            "options": self.options,
            "answer": self.answer,
            "category": self.category,
            "l2_category": self.l2_category,
            "source": self.source,
            "hint": self.hint,
            "options_embedded": self.options_embedded,
            "meta": self.meta,
        }


class Benchmark(Sequence[Sample]):
    """A named sequence of samples with a content fingerprint (images hashed on demand)."""

    def __init__(self, name: str, samples: Iterable[Sample], origin: str = "") -> None:
        self.name = name
        self.origin = origin or name
        self._samples = list(samples)
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, i):
        return self._samples[i]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._samples)

    def fingerprint(self) -> str:
        """sha256 over every sample's fields and image bytes, in order; stable across formats."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for s in self._samples:
                rec = s.record()
                rec.pop("options_embedded")
                rec.pop("meta")
                h.update(json.dumps(rec, sort_keys=True, ensure_ascii=False).encode())
                h.update((s.image.digest() if s.image is not None else "-").encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def limit(self, n: int | None) -> Benchmark:
        return self if n is None else Benchmark(self.name, self._samples[:n], self.origin)
