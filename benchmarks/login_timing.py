"""How long a refused review login takes, by why it was refused (issue 32 #6): an unknown name, a locked
account and a wrong password should cost the same (one scrypt each), so the time does not tell which
names exist. Interleaved rounds on one SQLite store; medians and ratios against the wrong-password case.

    python benchmarks/login_timing.py --rounds 30
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from mmstar.review_app.accounts import Accounts, LoginError
from mmstar.review_app.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "timing.db")
        accounts = Accounts(Store(db), max_failures=3)
        for name in ("locked", "open"):
            accounts.add(name, actor="cli:bench")
        for _ in range(3):
            try:
                accounts.login("locked", "wrong guess")
            except LoginError:
                pass
        # "open" never locks: reset it each round (outside the timed call)
        cases = {"unknown name": "nobody-here", "locked account": "locked", "wrong password": "open"}
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.rounds):
            for case, name in cases.items():
                if case == "wrong password":
                    accounts.reset("open", actor="cli:bench")
                t0 = time.perf_counter()
                try:
                    accounts.login(name, "some guess")
                except LoginError:
                    pass
                times[case].append(time.perf_counter() - t0)
    base = statistics.median(times["wrong password"])
    print(f"{'refused because':<16} {'median ms':>10} {'vs wrong password':>18}")
    for case, ts in times.items():
        med = statistics.median(ts)
        print(f"{case:<16} {med * 1000:>10.1f} {med / base:>18.2f}")


if __name__ == "__main__":
    main()
