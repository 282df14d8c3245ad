"""Mode v's CPU pipeline (issue 24): worker processes within a core budget, predictions as before.

- predictions at batch 1, 16 and 32 equal those of the code as of commit 3734bd9 (before workers),
  which the test runs from ``git archive`` of that commit, on the same tiny LLaVA and data; with
  workers that generate (the CPU default), workers that only prepare, and ``--workers 0``;
- the budget: ``plan_workers`` per core count and device, the cores from ``sched_getaffinity``,
  the processes that run and the threads in them that use CPU;
- a run killed with SIGKILL mid-run leaves no worker behind and resumes to the same predictions;
- a worker that dies hands its batch back; an error in a worker is the batch's error.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BEFORE = "3734bd9"  # the last commit before worker processes
LIMIT = 64
ENV = {"HF_HUB_OFFLINE": "1"}

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mmstar.evaluators.backends import prep_workers  # noqa: E402
from mmstar.evaluators.backends.prep_workers import PrepWorkers, cpu_budget, plan_workers  # noqa: E402

# runs mmstar from an extracted source tree (argv[1]) rather than the installed one
_FROM_TREE = """
import sys
import threading
from importlib.util import spec_from_file_location
from pathlib import Path
root = Path(sys.argv.pop(1))
DIRS = {"mmstar": "mmstar", "mmstar.app": "app", "mmstar.evaluators": "evaluators", "mmstar.metrics": "metrics",
        "mmstar.curation": "curation", "mmstar.review_app": "review_app", "mmstar.data": "data",
        "mmstar.viewer": "viewer"}
class Tree:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in DIRS:
            d = root / DIRS[name]
            return spec_from_file_location(name, d / "__init__.py", submodule_search_locations=[str(d)])
        return None
sys.meta_path.insert(0, Tree)
import mmstar.app.cli as cli
assert cli.__file__.startswith(str(root)), cli.__file__
for args in sys.argv[1:]:
    assert cli.main(args.split("\\x1f")) == 0
"""


def resized(image, size: tuple[int, int]):
    """An ImageRef of ``image`` scaled to ``size``, as lossless PNG bytes."""
    import io

    from mmstar.sample import ImageRef

    buf = io.BytesIO()
    image.pil().resize(size).save(buf, "PNG")
    return ImageRef(data=buf.getvalue())


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from mmstar.evaluators.models.tiny import build_tiny_pair

    return build_tiny_pair("llava", tmp_path_factory.mktemp("cpu-pipeline"))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Demo samples with their images at 320x240 (PNG): every processor resizes them, as it would
    MMStar's, and decoding costs something."""
    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    samples = [s.with_(image=resized(s.image, (320, 240))) for s in generate(per_axis=4, seed=3)]
    return write_benchmark(samples, tmp_path_factory.mktemp("cpu-data") / "demo.parquet")


def _eval_args(pair, data: Path, out: Path, batch: int, *extra: str, overwrite: bool = True) -> list[str]:
    return ["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(data),
            "--modes", "v", "--out", str(out), "--batch-size", str(batch), "--limit", str(LIMIT),
            "--no-progress", *(["--overwrite"] if overwrite else []), *extra]


def _predictions(out: Path) -> dict[int, str]:
    (path,) = out.glob("*/*/v.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert len({r["index"] for r in records}) == len(records), "an index was written twice"
    return {r["index"]: r["prediction"] for r in records}


@pytest.fixture(scope="module")
def before(pair, data, tmp_path_factory) -> dict[int, dict[int, str]]:
    """Predictions of the code as of BEFORE at batch 1, 16 and 32, run from that commit's files."""
    if shutil.which("git") is None or subprocess.run(["git", "cat-file", "-e", f"{BEFORE}^{{commit}}"], cwd=REPO,
                                                     capture_output=True).returncode != 0:
        pytest.skip(f"needs git and commit {BEFORE} (a clone with history)")
    root = tmp_path_factory.mktemp("before")
    tree = root / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", BEFORE], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    runs = {b: root / f"runs-{b}" for b in (1, 16, 32)}
    calls = ["\x1f".join(_eval_args(pair, data, out, b)) for b, out in runs.items()]
    proc = subprocess.run([sys.executable, "-c", _FROM_TREE, str(tree), *calls], capture_output=True, text=True,
                          env={**os.environ, **ENV}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {b: _predictions(out) for b, out in runs.items()}


def _run_here(pair, data: Path, out: Path, batch: int, *extra: str) -> dict:
    from mmstar.app.cli import main

    assert main(_eval_args(pair, data, out, batch, *extra)) == 0
    (manifest,) = out.glob("*/*/manifest.json")
    return json.loads(manifest.read_text())


@pytest.mark.slow  # the code before workers runs three evals (~30 s)
@pytest.mark.parametrize("batch", [1, 16, 32])
def test_predictions_equal_the_code_before_workers(batch, pair, data, before, tmp_path, capsys):
    """The CPU default (workers that prepare and generate) and --workers 0, against BEFORE."""
    manifest = _run_here(pair, data, tmp_path / "auto", batch)
    vlm = manifest["backends"]["vlm"]
    assert vlm["worker_role"] == ("prepare+generate" if cpu_budget() >= 2 else "none")
    assert _predictions(tmp_path / "auto") == before[batch]
    assert len(before[batch]) == LIMIT
    if batch == 16:
        _run_here(pair, data, tmp_path / "w0", batch, "--workers", "0")
        assert _predictions(tmp_path / "w0") == before[batch]


@pytest.mark.slow
def test_workers_that_only_prepare_predict_the_same(pair, data, before, tmp_path, monkeypatch, capsys):
    """A model too large to run in every worker: the workers prepare, the parent generates."""
    monkeypatch.setattr(prep_workers, "SMALL_MODEL_BYTES", 0)
    threads = torch.get_num_threads()
    manifest = _run_here(pair, data, tmp_path / "prep", 16, "--workers", "1")
    vlm = manifest["backends"]["vlm"]
    assert (vlm["worker_role"], vlm["workers"], vlm["worker_threads"]) == ("prepare", 1, 1)
    assert vlm["torch_threads"] == (None if "OMP_NUM_THREADS" in os.environ else max(1, cpu_budget() - 1))
    assert _predictions(tmp_path / "prep") == before[16]
    assert torch.get_num_threads() == threads  # put back when the backend closed
    assert manifest["modes"]["v"]["cpu_seconds"] > 0


def test_default_workers_predict_what_workers_0_predicts(pair, data, tmp_path, capsys):
    """The default tier's check of the same thing, without the old tree: the CPU default (workers
    that prepare and generate) against --workers 0 (the path main ran before this default)."""
    manifest = _run_here(pair, data, tmp_path / "auto", 16)
    assert manifest["backends"]["vlm"]["workers"] == (cpu_budget() if cpu_budget() >= 2 else 0)
    _run_here(pair, data, tmp_path / "w0", 16, "--workers", "0")
    assert _predictions(tmp_path / "auto") == _predictions(tmp_path / "w0")
    assert len(_predictions(tmp_path / "w0")) == LIMIT


# ---------------------------------------------------------------- the budget


@pytest.mark.parametrize("cores", [1, 2, 4, 16])
def test_plan_stays_within_the_cores(cores):
    small, large = 10**6, 10**10
    cpu_small = plan_workers("vlm", "cpu", requested=None, weight_bytes=small, cores=cores)
    assert cpu_small.workers == (0 if cores == 1 else cores) and cpu_small.worker_threads == 1
    assert cpu_small.generate == (cores > 1) and cpu_small.torch_threads is None
    cpu_large = plan_workers("vlm", "cpu", requested=None, weight_bytes=large, cores=cores)
    if cores > 1:
        assert not cpu_large.generate and cpu_large.workers == max(1, cores // 4)
        assert cpu_large.workers * cpu_large.worker_threads + cpu_large.torch_threads == cores
    cuda = plan_workers("vlm", "cuda:0", requested=None, weight_bytes=large, device_capable=True, cores=cores)
    assert (cuda.workers, cuda.image_device, cuda.generate) == (0, "cuda:0", False)
    cuda_pil = plan_workers("vlm", "cuda:0", requested=None, weight_bytes=small, device_capable=False, cores=cores)
    assert cuda_pil.image_device is None and not cuda_pil.generate
    assert cuda_pil.workers == (0 if cores == 1 else max(1, cores // 4))
    text = plan_workers("llm", "cpu", requested=8, weight_bytes=large, cores=cores)
    assert text.workers == 0 and text.torch_threads is None  # text gets no workers that only prepare
    small_text = plan_workers("llm", "cpu", requested=None, weight_bytes=small, cores=cores)
    assert (small_text.workers, small_text.generate) == ((0, False) if cores == 1 else (cores, True))
    for plan in (cpu_small, cpu_large, cuda, cuda_pil):
        assert plan.cores == cores


def test_requested_workers_and_the_users_omp_setting():
    two = plan_workers("vlm", "cpu", requested=2, weight_bytes=10**10, cores=16)
    assert (two.workers, two.torch_threads, two.worker_threads) == (2, 14, 1)
    none = plan_workers("vlm", "cpu", requested=0, weight_bytes=10**6, cores=16)
    assert (none.workers, none.generate, none.torch_threads) == (0, False, None)
    kept = plan_workers("vlm", "cpu", requested=2, weight_bytes=10**10, cores=16, omp_threads="4")
    assert kept.torch_threads is None  # OMP_NUM_THREADS is the user's: torch keeps it


def test_the_budget_is_the_cores_this_process_may_use():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no sched_setaffinity here")
    code = "from mmstar.evaluators.backends.prep_workers import cpu_budget; print(cpu_budget())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))
    assert proc.stdout.strip() == "1"
    assert cpu_budget() == len(os.sched_getaffinity(0))


def _task_cpu(pid: int) -> dict[int, int]:
    """CPU ticks (user + system) of each thread of a process."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        out[int(task.name)] = int(fields[11]) + int(fields[12])
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_running_workers_keep_to_the_plan(pair, data):
    """The processes the plan names run, and in each one thread does the work."""
    from mmstar.evaluators.backends.base import Request
    from mmstar.evaluators.backends.hf import HFBackend

    from mmstar.loaders import load_benchmark
    from mmstar.prompts import PromptConfig, build_messages

    backend = HFBackend(str(pair.vlm), "vlm", device="cpu", workers=2)
    try:
        assert backend.plan.workers == 2 and backend.plan.worker_threads == 1
        samples = list(load_benchmark(data))[:64]
        requests = [Request(build_messages(s, "v", PromptConfig()), key=s.index) for s in samples]
        futures = [backend.submit_prepare(requests[i:i + 8]) for i in range(0, 64, 8)]
        for f in futures:
            assert len(f.result(timeout=120).responses) == 8
        pids = backend._pool.pids
        children = _children_of(os.getpid())
        assert len(pids) == 2 and set(pids) <= children
        for pid in pids:
            ticks = _task_cpu(pid)
            busy = [t for t, n in ticks.items() if n > 0.2 * max(sum(ticks.values()), 1)]
            assert len(busy) == 1, ticks  # one compute thread: torch's own and the tokenizer's stay idle
        assert backend.worker_cpu_seconds() > 0
    finally:
        backend.close()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


# ---------------------------------------------------------------- failures


def _children_of(pid: int) -> set[int]:
    out = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:  # the process is gone
        return out
    for task in tasks:
        try:
            out |= {int(p) for p in (task / "children").read_text().split()}
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended meanwhile
            continue
    return out


@pytest.mark.slow  # ~40 s: two runs in fresh processes and a whole one
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL, /proc and PR_SET_PDEATHSIG")
def test_a_killed_run_leaves_no_worker_and_resumes_exactly(pair, data, tmp_path):
    cmd = [sys.executable, "-m", "mmstar", *_eval_args(pair, data, tmp_path / "runs", 2, "--workers", "2")]
    proc = subprocess.Popen(cmd, env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=REPO)
    lines, workers, deadline = 0, set(), time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        workers |= _children_of(proc.pid)
        found = list((tmp_path / "runs").glob("*/*/v.jsonl"))
        lines = len(found[0].read_text().splitlines()) if found else 0
        if lines >= 6 and workers:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    assert 6 <= lines < LIMIT
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    gone = time.monotonic() + 10
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < gone:
        time.sleep(0.05)
    assert workers and not any(Path(f"/proc/{w}").exists() for w in workers), "a worker outlived its run"
    again = [sys.executable, "-m", "mmstar",
             *_eval_args(pair, data, tmp_path / "runs", 2, "--workers", "2", overwrite=False)]
    resume = subprocess.run(again, env={**os.environ, **ENV}, capture_output=True, text=True, cwd=REPO,
                            timeout=600)  # the same command without --overwrite resumes
    assert resume.returncode == 0, resume.stderr[-2000:]
    resumed = _predictions(tmp_path / "runs")
    from mmstar.app.cli import main

    assert main(_eval_args(pair, data, tmp_path / "whole", 2, "--workers", "2")) == 0
    assert resumed == _predictions(tmp_path / "whole") and len(resumed) == LIMIT


def test_a_worker_that_dies_hands_its_batch_back(pair, data):
    from mmstar.evaluators.backends.base import Request
    from mmstar.evaluators.backends.hf import HFBackend

    from mmstar.loaders import load_benchmark
    from mmstar.prompts import PromptConfig, build_messages

    samples = list(load_benchmark(data))[:16]
    requests = [Request(build_messages(s, "v", PromptConfig()), key=s.index) for s in samples]
    backend = HFBackend(str(pair.vlm), "vlm", device="cpu", workers=2)
    try:
        expected = [r.text for r in backend.generate(requests)]
        first = backend.submit_prepare(requests[:4]).result(timeout=120)
        for pid in backend._pool.pids:
            os.kill(pid, signal.SIGKILL)
        rest = [backend.submit_prepare(requests[i:i + 4]) for i in range(4, 16, 4)]
        got = [r.text for p in [first, *(f.result(timeout=120) for f in rest)] for r in backend.generate_prepared(p)]
        assert got == expected
        assert backend._pool.alive == 0
    finally:
        backend.close()


def _fails(x: int) -> int:
    raise ValueError(f"bad batch {x}")


def test_an_error_in_a_worker_is_the_batchs_error_and_unpicklable_work_runs_here():
    pool = PrepWorkers(1, _fails, lambda *args: "here")
    try:
        with pytest.raises(ValueError, match="bad batch 3"):
            pool.submit(3).result(timeout=30)
        assert pool.submit(lambda: 0).result(timeout=30) == "here"  # cannot be pickled: the fallback ran
        with pytest.raises(ValueError, match="bad batch 4"):  # the worker is still there
            pool.submit(4).result(timeout=30)
        assert pool.alive == 1
    finally:
        pool.close()


def _double(x: int) -> int:
    return 2 * x


def test_closing_the_pool_ends_its_results_thread():
    """close() with a batch in flight: the thread that collects results must end, not spin on the
    closed pipes (it once did, holding the GIL, and slowed every later test of the process ~10x)."""
    pool = PrepWorkers(2, _double, lambda *args: "here")
    assert pool.submit(21).result(timeout=30) == 42
    pool.submit(1)  # maybe still in flight when the pipes close
    pool.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(t.name == "mmstar-prep-results" for t in threading.enumerate()):
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "mmstar-prep-results"]


_ENTRY = """
import atexit, sys, threading, time
from mmstar.app import cli
atexit.register(lambda: print("exit handler ran", flush=True))
threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished"))).start()
sys.argv = ["mmstar", *sys.argv[1:]]
print("before", end="")  # unflushed: the command's exit must still write it
cli.entry()
"""


def test_the_command_exits_fast_but_as_a_normal_exit_would():
    """``mmstar`` skips the interpreter's teardown (seconds with torch loaded) but keeps what a
    normal exit does: main's exit code, buffered output written, threads joined, exit handlers run."""
    proc = subprocess.run([sys.executable, "-c", _ENTRY, "eval", "--data", "x.parquet"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "give --model" in proc.stderr
    assert proc.stdout.splitlines() == ["beforethread finished", "exit handler ran"]
    ok = subprocess.run([sys.executable, "-m", "mmstar", "models"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "llava" in ok.stdout
