"""Leaderboard publishing after a command's runs: the table on the console and the files beside the
runs. It lives in the application layer because it joins the run (``evaluators/run``, layer 4) to its
consumers (``metrics``, ``viewer``, layer 5): the run layer never imports them (tests/test_layers.py).
``mmstar eval`` over several benchmarks, a sweep and the demo publish through here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmstar.evaluators.run.sweep import PairResult


def print_table(run_dirs: Sequence[Path]) -> None:
    """The Table-4 layout of some runs, on the console (``mmstar eval`` over several benchmarks)."""
    from mmstar.metrics.leaderboard import publish

    publish(list(run_dirs), echo=True)


def report(results: Sequence[PairResult], out: Path, echo: Callable[[str], None] = print) -> int:
    """A sweep's end: print the Table-4 layout, write ``OUT/leaderboard.csv``, list failures; the exit status."""
    run_dirs = [r.run_dir for r in results if r.run_dir is not None]
    if run_dirs:
        from mmstar.metrics.leaderboard import publish

        csv_path = out / "leaderboard.csv"
        echo("")
        publish(run_dirs, csv=csv_path, echo=True)
        echo(f"\nleaderboard: {csv_path}")
    failed = [r for r in results if r.error is not None]
    if failed:
        echo(f"\n{len({r.model for r in failed})} model(s) failed ({len(failed)} of {len(results)} pairs); "
             "re-run the same command to retry them, finished pairs are kept:")
        for r in failed:
            echo(f"  {r.model} / {r.benchmark}: {'skipped after the failure above' if r.skipped else r.error}")
        return 1
    return 0


def publish_demo(run_dirs: list[Path], out: Path) -> None:
    """The demo's leaderboard CSV, charts, leaked samples and HTML report, when the metrics side is available."""
    try:
        from mmstar.metrics.leaderboard import publish
    except ImportError:
        return
    publish(run_dirs, csv=out / "leaderboard.csv", radar=out / "radar.png", mg_ml=out / "mg_ml.png",
            leakage=out / "leaked_samples.csv", echo=True)
    from mmstar.viewer.report import write_report

    write_report(run_dirs, out / "report.html")
    print(f"report: {out / 'report.html'} (browse the runs: mmstar view {out / 'runs'})")
