"""Fault-injection and load harness shared by the tests and ``scripts/reliability_report.py``.

* ``kill_resume_trial``: start a real ``mmstar`` subprocess, SIGKILL it at a random moment (and, half
  the time, cut its last prediction line mid-way, as a kill during a write leaves it), repeat until a
  run completes, then check every mode file against an uninterrupted reference run.
* ``review_load``: several processes append review decisions for a while; nothing may be lost or
  duplicated.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def lines_by_index(path: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        assert rec["index"] not in out, f"{path}: index {rec['index']} twice"
        out[rec["index"]] = rec["prediction"]
    return out


def _tear_last_line(files: list[Path], rng: random.Random) -> bool:
    candidates = [f for f in files if f.exists() and f.stat().st_size > 2]
    if not candidates:
        return False
    f = rng.choice(candidates)
    data = f.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    cut = rng.randint(start + 1, len(data) - 1)
    f.write_bytes(data[:cut])
    return True


def kill_resume_trial(cmd: list[str], run_glob: str, out: Path, reference: dict[str, dict[int, str]],
                      rng: random.Random, full_time: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Kill at a uniform moment within an uninterrupted run's wall time (``full_time``), resume, repeat.
    Returns {"kills": n, "torn": n, "ok": True}; raises AssertionError on any lost/duplicated line."""
    kills = torn = 0
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    for _attempt in range(12):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=full_env)
        delay = rng.uniform(0.2 * full_time, full_time) if _attempt < 10 else 1e9  # the last runs to the end
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            if rng.random() < 0.5:
                torn += _tear_last_line(list(out.glob(run_glob)), rng)
            continue
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert proc.returncode == 0, err[-2000:]
        break
    for name, ref in reference.items():
        files = list(out.glob(f"**/{name}"))
        assert len(files) == 1, (name, files)
        got = lines_by_index(files[0])
        assert got == ref, f"{name}: {len(got)} lines vs {len(ref)} expected, or different predictions"
    return {"kills": kills, "torn": torn, "ok": True}


def review_writer(db: str, name: str, seconds: float | None = None, count: int | None = None) -> int:
    """Append decisions as reviewer ``name`` for ``seconds`` (or ``count`` decisions); returns how many."""
    from mmstar.review_app.store import Store

    store = Store(db)
    n, deadline = 0, time.monotonic() + (seconds if seconds is not None else 1e9)
    while time.monotonic() < deadline and (count is None or n < count):
        store.add_decision(n, name, "keep" if n % 3 else "drop", reason=None if n % 3 else "other",
                           category="math", l2_category="geometry")
        n += 1
    return n


def start_writers(db: str, names: list[str], seconds: float | None = None, count: int | None = None
                  ) -> list[subprocess.Popen]:
    """Separate interpreters (not multiprocessing): nothing of the parent's ``__main__`` is re-run."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from reliability import review_writer; "
            "print(review_writer(sys.argv[2], sys.argv[3], *(None if a == '-' else float(a) for a in sys.argv[4:5]), "
            "*(None if a == '-' else int(a) for a in sys.argv[5:6])))")
    here = str(Path(__file__).resolve().parent)
    return [subprocess.Popen([sys.executable, "-c", code, here, db, name, "-" if seconds is None else str(seconds),
                              "-" if count is None else str(count)], stdout=subprocess.PIPE, text=True)
            for name in names]


def finish_writers(procs: list[subprocess.Popen], timeout: float) -> list[int]:
    counts = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        assert p.returncode == 0, f"writer failed with exit code {p.returncode}"
        counts.append(int(out.strip().splitlines()[-1]))
    return counts


def review_load(db: str, writers: int, seconds: float) -> dict[str, Any]:
    from mmstar.review_app.store import Store

    Store(db)
    names = [f"r{i}" for i in range(writers)]
    start = time.monotonic()
    counts = finish_writers(start_writers(db, names, seconds=seconds), timeout=seconds + 120)
    elapsed = time.monotonic() - start
    rows = Store(db).all_rows()
    keys = [(r["reviewer"], r["sample_index"]) for r in rows]
    expected = {(name, i) for name, n in zip(names, counts) for i in range(n)}
    return {"writers": writers, "seconds": round(elapsed, 1), "written": sum(counts),
            "stored": len(rows), "duplicates": len(keys) - len(set(keys)), "lost": len(expected - set(keys)),
            "decisions_per_s": round(len(rows) / elapsed, 1)}


def timed_run(cmd: list[str]) -> float:
    """Wall time of one uninterrupted subprocess run (the scale for kill moments)."""
    start = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.monotonic() - start


def mmstar_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmstar", *args]
