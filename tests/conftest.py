from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(os.environ.get("MMSTAR_REFERENCE_DIR", REPO.parent / "shared" / "reference"))
REFERENCE_XLSX = REFERENCE_DIR / "llava_next_yi_34b_MMStar.xlsx"


@pytest.fixture(scope="session")
def reference_xlsx() -> Path:
    if not REFERENCE_XLSX.exists():
        pytest.skip(f"reference submission file not found at {REFERENCE_XLSX} (set MMSTAR_REFERENCE_DIR)")
    return REFERENCE_XLSX


def png_bytes(color: tuple[int, int, int], size: int = 16) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def make_samples(n: int = 6, *, columns: bool = False, images: bool = True):
    """A small benchmark in the MMStar schema: embedded options (or A-D columns), PNG images."""
    from mmstar.sample import ImageRef, Sample
    from mmstar.taxonomy import CAPABILITIES

    samples = []
    for i in range(n):
        cap = CAPABILITIES[i % 6]
        axis = cap.axes[i % 3].name
        opts = {"A": f"red, {i}", "B": "green", "C": "blue", "D": "nan"} if i % 5 else {"A": "x", "B": "y", "C": "z"}
        if columns:
            question, embedded = f"What colour is shape {i}?", False
        else:
            body = ", ".join(f"{k}: {v}" for k, v in opts.items())
            question, embedded = f"What colour is shape {i}?\nOptions: {body}", True
        image = ImageRef(data=png_bytes(((i * 40) % 256, 80, 160))) if images else None
        samples.append(Sample(
            index=i, question=question, options=opts, answer="ABC"[i % 3], category=cap.name, l2_category=axis,
            source="demo", image=image, hint="Look closely." if columns and i % 2 else None,
            options_embedded=embedded, meta={"split": "val", "image_path": f"{i}.png"},
        ))
    return samples


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 600):
    """Run the real ``mmstar`` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mmstar", *args], capture_output=True, text=True, cwd=cwd, env=full_env,
        timeout=timeout,
    )


def free_port() -> int:
    """A loopback port nothing listens on now (a test server binds it next)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_healthy(port: int) -> bool:
    """Whether the Streamlit server on ``port`` answers its health check."""
    from http.client import HTTPConnection

    conn = HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/_stcore/health")
        return conn.getresponse().status == 200
    finally:
        conn.close()


def assert_clean_error(proc, *fragments: str) -> None:
    """Non-zero exit, one line on stderr, no traceback, naming what is wrong."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="session")
def demo_parquet(tmp_path_factory) -> Path:
    """36 generated demo samples (2 per axis) in the MMStar schema, as parquet."""
    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    path = tmp_path_factory.mktemp("demo") / "demo.parquet"
    write_benchmark(generate(per_axis=2, seed=1, split="test"), path)
    return path


@pytest.fixture(scope="session")
def tiny_pairs(tmp_path_factory):
    """Tiny random checkpoints (LVLM + LLM backbone) of four real families, built once."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from mmstar.evaluators.models.tiny import build_tiny_pair

    root = tmp_path_factory.mktemp("tiny")  # tests/test_families.py covers every other family
    return {fam: build_tiny_pair(fam, root) for fam in ("llava", "qwen2-vl", "gemma3", "idefics3")}


def _standin_module():
    """benchmarks/api_standin.py: an OpenAI-compatible stand-in server on loopback (its own process)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("api_standin", REPO / "benchmarks" / "api_standin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def standin():
    """``standin(*flags)`` starts a stand-in server and returns its base URL; all are killed after."""
    module, procs = _standin_module(), []

    def start(*flags):
        proc, url = module.start(*flags)
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)
