"""Benchmarks by name: where the data lives, which taxonomy it uses, how its options are laid out.

The paper measured MG/ML on seven benchmarks; their VLMEvalKit TSVs (URL + md5) or Hugging Face
ids are listed here. Files are fetched into a cache folder (``MMSTAR_CACHE``, default
``~/.cache/mmstar``), verified by md5, and reused offline. With no network and no cached copy, one
line says which file to put where.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

_VLMEVAL = "https://opencompass.openxlab.space/utils/VLMEval/"


@dataclass(frozen=True)
class BenchmarkEntry:
    name: str
    title: str
    kind: str  # "hf" | "tsv"
    location: str  # hub id (with :split) or URL
    md5: str | None = None
    taxonomy: str = "own"  # "mmstar" | "own"
    options: str = "columns"  # "embedded" | "columns"
    multiple_choice_only: bool = False  # rows without options are skipped (counted, not silent)
    split_filter: str | None = None  # keep rows whose ``split`` column equals this
    notes: str = ""

    @property
    def filename(self) -> str:
        return self.location.rsplit("/", 1)[-1]


REGISTRY: dict[str, BenchmarkEntry] = {e.name: e for e in [
    BenchmarkEntry("mmstar", "MMStar (val, 1,500)", "hf", "Lin-Chen/MMStar:val", taxonomy="mmstar",
                   options="embedded"),
    BenchmarkEntry("mmstar-tsv", "MMStar, VLMEvalKit TSV", "tsv", _VLMEVAL + "MMStar.tsv",
                   "e1ecd2140806c1b1bbf54b43372efb9e", taxonomy="mmstar", options="embedded"),
    BenchmarkEntry("mmbench", "MMBench-EN dev", "tsv", _VLMEVAL + "MMBench_DEV_EN.tsv",
                   "b6caf1133a01c6bb705cf753bb527ed8", notes="A-D columns + hint"),
    BenchmarkEntry("seed", "SEED-Bench image", "tsv", _VLMEVAL + "SEEDBench_IMG.tsv",
                   "68017231464752261a2526d6ca3a10c0"),
    BenchmarkEntry("ai2d", "AI2D test", "tsv", _VLMEVAL + "AI2D_TEST.tsv", "0f593e0d1c7df9a3d69bf1f947e71975"),
    BenchmarkEntry("scienceqa", "ScienceQA test (image)", "tsv", _VLMEVAL + "ScienceQA_TEST.tsv",
                   "e42e9e00f9c59a80d8a5db35bc32b71f", notes="A-E columns + hint"),
    BenchmarkEntry("mmmu", "MMMU val", "tsv", _VLMEVAL + "MMMU_DEV_VAL.tsv", "521afc0f3bf341e6654327792781644d",
                   multiple_choice_only=True, split_filter="validation",
                   notes="dev+val file; the validation split is kept, open questions skipped"),
    BenchmarkEntry("mathvista", "MathVista testmini", "tsv", _VLMEVAL + "MathVista_MINI.tsv",
                   "f199b98e178e5a2a20e7048f5dcb0464", options="embedded", multiple_choice_only=True,
                   notes="multiple-choice questions only; free-form ones are skipped"),
]}


def cache_dir() -> Path:
    return Path(os.environ.get("MMSTAR_CACHE", Path.home() / ".cache" / "mmstar"))


def md5sum(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)  # the registry's checksums are md5 (VLMEvalKit's); integrity, not trust
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(entry: BenchmarkEntry, timeout: float = 30.0) -> Path:
    """The verified local copy of a TSV benchmark, downloading it once if needed."""
    target = cache_dir() / entry.filename
    if target.exists():
        got = md5sum(target)
        if entry.md5 and got != entry.md5:
            raise DataError(target, f"md5 {got} does not match the registry's {entry.md5} for '{entry.name}'; "
                                    "delete the file to download it again")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{entry.filename}.")
    os.close(fd)
    try:
        with urllib.request.urlopen(entry.location, timeout=timeout) as resp, open(tmp, "wb") as out:  # noqa: S310  our registry's URLs, not user input
            shutil.copyfileobj(resp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise DataError(entry.name, f"not cached and cannot be downloaded ({type(exc).__name__}); put "
                                    f"{entry.filename} (md5 {entry.md5}) from {entry.location} into {target.parent}"
                        ) from None
    if entry.md5 and md5sum(Path(tmp)) != entry.md5:
        Path(tmp).unlink(missing_ok=True)
        raise DataError(entry.location, "downloaded file does not match the registry's md5")
    os.replace(tmp, target)
    return target


def status_line(entry: BenchmarkEntry) -> str:
    if entry.kind == "hf":
        where = f"hub {entry.location} (datasets cache)"
    else:
        where = "cached" if (cache_dir() / entry.filename).exists() else "not cached"
        where += f" {cache_dir() / entry.filename}"
    return f"{entry.name:<11} {entry.title:<26} taxonomy {entry.taxonomy:<6} options {entry.options:<8} {where}"
