"""Images for the sample browser and the report's thumbnails.

Run directories store no images; the manifest records the data spec the run read (``dataset``).
When that spec (or one given with ``--data``) can be loaded here, the benchmark is loaded once,
lazily, on the first image asked for, and samples are looked up by index. A sample whose question
differs from the run's record is not shown: the data changed since the run, and a wrong picture
beside a question would mislead. Every miss comes with a reason, shown as "image not available".
"""

from __future__ import annotations

import io
import threading
from typing import Any

from mmstar.errors import MmstarError
from mmstar.images import open_image
from mmstar.records import Manifest


class Images:
    def __init__(self, data_spec: str | None = None) -> None:
        self.override = data_spec
        self._benches: dict[str, dict[int, Any] | str] = {}  # spec -> index -> Sample, or why not
        self._lock = threading.Lock()

    def spec(self, manifest: Manifest) -> str | None:
        return self.override or manifest.dataset or None

    def _samples(self, spec: str) -> dict[int, Any] | str:
        with self._lock:
            if spec not in self._benches:
                from mmstar.loaders import load_benchmark

                try:
                    self._benches[spec] = {s.index: s for s in load_benchmark(spec)}
                except (MmstarError, OSError, ValueError, ImportError) as exc:
                    self._benches[spec] = f"data {spec} not readable here ({str(exc).splitlines()[0][:200]})"
            return self._benches[spec]

    def image(self, manifest: Manifest, index: int, question: str | None = None) -> tuple[bytes | None, str]:
        """(encoded image bytes, "") or (None, why the image is not available)."""
        spec = self.spec(manifest)
        if not spec:
            return None, "the run records no data spec (imported log?); start the viewer with --data SPEC"
        samples = self._samples(spec)
        if isinstance(samples, str):
            return None, samples
        sample = samples.get(index)
        if sample is None:
            return None, f"index {index} is not in {spec}"
        if question and sample.question != question:
            return None, f"the sample at index {index} of {spec} has another question than the run's (data changed?)"
        if sample.image is None:
            return None, f"sample {index} of {spec} has no image"
        try:
            data = sample.image.data()
            # the browser decodes what it is sent: a decompression bomb is refused here, by its header
            open_image(data, sample.image.origin or f"index {index}", decode=False)
            return data, ""
        except MmstarError as exc:
            return None, str(exc)

    def thumbnail(self, manifest: Manifest, index: int, question: str | None = None,
                  size: int = 112) -> tuple[bytes | None, str]:
        """A small JPEG (longest side ``size``) for the report, or (None, why not)."""
        data, why = self.image(manifest, index, question)
        if data is None:
            return None, why
        try:
            img = open_image(data, f"index {index}")  # the pixel cap first: a bomb is one line, not a traceback
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.convert("RGB").save(buf, format="JPEG", quality=80)
        except (MmstarError, OSError, ValueError) as exc:
            return None, f"image at index {index} cannot be shown ({exc})"
        return buf.getvalue(), ""
