"""Run ``mmstar`` as it was at an earlier commit, beside this tree, in one benchmark run.

A benchmark's "before" arm: ``git archive REV`` into a temporary folder, then ``python -c FROM_TREE
TREE ARGS...`` imports mmstar's packages from that folder (the same package-dir mapping as
``pyproject.toml``) with this environment's torch and transformers. So before and after run on the same
machine, under the same load, with the same libraries; only mmstar's code differs.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# runs mmstar's CLI from an extracted source tree (argv[1]) rather than the installed one
FROM_TREE = """
import sys
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
sys.argv = ["mmstar", *sys.argv[1:]]
cli.entry()
"""


def extract(rev: str, into: Path) -> Path:
    """The source tree of ``rev`` under ``into``; one line naming the revision when git cannot."""
    tree = into / f"tree-{rev}"
    if tree.exists():
        return tree
    git = shutil.which("git")
    if git is None:
        raise SystemExit(f"--before {rev}: needs git")
    proc = subprocess.run([git, "archive", rev], cwd=REPO, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"--before {rev}: git archive failed: {proc.stderr.decode()[-300:].strip()}")
    tree.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as archive:
        archive.extractall(tree, filter="data")
    return tree


def command(tree: Path | None, args: list[str]) -> list[str]:
    """``mmstar ARGS`` from ``tree`` (None: this tree, as a user runs it)."""
    if tree is None:
        return [sys.executable, "-m", "mmstar", *args]
    return [sys.executable, "-c", FROM_TREE, str(tree), *args]
