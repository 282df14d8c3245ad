"""The robust extractor's cost per reply, before and after (issue 31), and what each reads.

"Before" is the extractor as a git revision had it (default ``main``; name the branch point, e.g.
``--rev $(git merge-base main HEAD)``, once main has moved on), loaded at run time from git
history (``git show REV:mmstar/matching.py`` and its ``thinking.py``) into a private module; "after"
is the working tree's. Both run on the same replies in the same process: the hand-written table
(tests/data/extraction_cases.json), both generated sets (tests/test_extraction_generated.py, seed 0)
and, when present, the 1,500 letter replies of the official reference submission.

Each reply is extracted once to warm the caches, then timed one call at a time (perf_counter_ns);
the median, 90th percentile and mean per reply are printed with the after/before ratio. The extractor
must stay under 1 ms per reply at the median.

    python benchmarks/extract_cost.py [--rev main] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import types
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def old_extractor(rev: str) -> types.ModuleType:
    """``mmstar.matching`` as ``rev`` had it, with the ``thinking`` module of the same revision."""
    def source(path: str) -> str:
        return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO, check=True, capture_output=True,  # noqa: S607
                              text=True).stdout

    thinking = sys.modules["old_thinking"] = types.ModuleType("old_thinking")  # dataclasses look it up
    exec(compile(source("mmstar/thinking.py"), f"{rev}:mmstar/thinking.py", "exec"), thinking.__dict__)  # noqa: S102
    matching = sys.modules["old_matching"] = types.ModuleType("old_matching")
    code = source("mmstar/matching.py").replace("from .thinking import", "from old_thinking import")
    exec(compile(code, f"{rev}:mmstar/matching.py", "exec"), matching.__dict__)  # noqa: S102
    return matching


def generated() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("gen", REPO / "tests" / "test_extraction_generated.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replies() -> list[tuple[str, dict | None, str | None]]:
    table = json.loads((REPO / "tests" / "data" / "extraction_cases.json").read_text())
    out = [(c["response"], c["options"], c.get("finish_reason")) for c in table]
    gen = generated()
    out += [(r, o, f) for _k, r, o, f in gen.must_not_guess(0)]
    out += [(r, o, None) for _k, r, o, _l in gen.must_read(0)]
    ref = Path(os.environ.get("MMSTAR_REFERENCE_DIR", REPO.parent.parent / "shared" / "reference"))
    xlsx = ref / "llava_next_yi_34b_MMStar.xlsx"
    if xlsx.exists():
        from mmstar.predictions import read_predictions
        from mmstar.scoring import record_options

        out += [(r.prediction, record_options(r), None) for r in read_predictions(xlsx)]
    return out


def cost(extract, cases, repeat: int, with_finish: bool) -> list[float]:
    """Microseconds per reply (the fastest of ``repeat`` timed calls of each reply)."""
    def call(reply, options, finish):
        return extract(reply, options, finish_reason=finish) if with_finish else extract(reply, options)

    for reply, options, finish in cases:  # warm-up: caches filled, code paths compiled
        call(reply, options, finish)
    out = []
    for reply, options, finish in cases:
        best = None
        for _ in range(repeat):
            t0 = time.perf_counter_ns()
            call(reply, options, finish)
            dt = time.perf_counter_ns() - t0
            best = dt if best is None else min(best, dt)
        out.append(best / 1000)
    return out


def reads(extract, with_finish: bool) -> dict[str, str]:
    """What each extractor reads on the table and on the generated sets."""
    table = json.loads((REPO / "tests" / "data" / "extraction_cases.json").read_text())
    gen = generated()

    def ask(reply, options, finish):
        return (extract(reply, options, finish_reason=finish) if with_finish else extract(reply, options)).choice

    got = [(c, ask(c["response"], c["options"], c.get("finish_reason"))) for c in table]
    answerable = [c for c in table if c["expected"] is not None]
    wrong = sum(1 for c, g in got if g is not None and c["expected"] is not None and g != c["expected"])
    guesses = sum(1 for c, g in got if g is not None and c["expected"] is None)
    right = sum(1 for c, g in got if c["expected"] is not None and g == c["expected"])
    nots = list(gen.must_not_guess(0))
    given = sum(ask(r, o, f) is not None for _k, r, o, f in nots)
    read = list(gen.must_read(0))
    wrong_read = sum(ask(r, o, None) not in (None, lt) for _k, r, o, lt in read)
    return {"table": f"{len(table)} rows: wrong {wrong}, guesses {guesses}, recall {right / len(answerable):.4f}",
            "must-not-guess": f"letters given {given}/{len(nots)}",
            "must-read": f"wrong letters {wrong_read}/{len(read)}"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", default="main", help="git revision of the 'before' extractor")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    sys.path.insert(0, str(REPO))
    from mmstar.matching import extract_answer

    before = old_extractor(args.rev)
    cases = [(unicodedata.normalize("NFC", r), o, f) for r, o, f in replies()]
    print(f"{len(cases)} replies; before = {args.rev}, after = working tree")
    rows = {}
    for name, fn, finish in (("before", before.extract_answer, False), ("after", extract_answer, True)):
        us = cost(fn, cases, args.repeat, finish)
        q = statistics.quantiles(us, n=10)
        rows[name] = statistics.median(us)
        print(f"{name:>6}: median {statistics.median(us):7.1f} us  p90 {q[-1]:7.1f} us  "
              f"mean {statistics.mean(us):7.1f} us  max {max(us) / 1000:6.2f} ms")
    print(f" ratio: after/before median {rows['after'] / rows['before']:.2f}x; after median "
          f"{'under' if rows['after'] < 1000 else 'OVER'} 1 ms")
    for name, fn, finish in (("before", before.extract_answer, False), ("after", extract_answer, True)):
        print(f"{name:>6} reads: " + "; ".join(f"{k}: {v}" for k, v in reads(fn, finish).items()))


if __name__ == "__main__":
    main()
