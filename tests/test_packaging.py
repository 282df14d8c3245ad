"""The distribution: lazy imports, every folder a subpackage, editable and wheel installs."""

import subprocess
import sys
import zipfile

import pytest
from conftest import REPO

SUBPACKAGES = ["mmstar", "mmstar.extract", "mmstar.app", "mmstar.evaluators", "mmstar.evaluators.backends",
               "mmstar.evaluators.models", "mmstar.evaluators.models.tiny", "mmstar.evaluators.run", "mmstar.metrics",
               "mmstar.curation", "mmstar.review_app", "mmstar.viewer"]
HEAVY = ["torch", "transformers", "vllm", "streamlit", "datasets", "matplotlib"]


def _python(code: str, cwd, env=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env)


def test_import_mmstar_is_light(tmp_path):
    code = (
        "import sys, mmstar, mmstar.evaluators, mmstar.metrics, mmstar.curation, mmstar.review_app, mmstar.viewer;"
        "import mmstar.loaders, mmstar.matching, mmstar.prompts, mmstar.app.cli, mmstar.evaluators.models.tiny;"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_editable_install_maps_every_subpackage(tmp_path):
    proc = _python("import importlib;" + ";".join(
        f"print(importlib.import_module({m!r}).__file__)" for m in SUBPACKAGES), tmp_path)
    assert proc.returncode == 0, proc.stderr
    files = dict(zip(SUBPACKAGES, proc.stdout.split()))
    folders = {"mmstar.app": "app", "mmstar.evaluators": "evaluators", "mmstar.evaluators.run": "evaluators/run",
               "mmstar.metrics": "metrics", "mmstar.viewer": "viewer"}
    for package, folder in folders.items():
        assert files[package].startswith(str(REPO / folder)), (package, files[package])


@pytest.mark.slow
def test_built_wheel_imports_every_subpackage_from_outside_the_repo(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
         str(REPO)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    # no packaging warning: data folders are packages with their data, the license an SPDX string
    for warning in ("is absent from the `packages` configuration", "deprecated"):
        assert warning not in build.stdout + build.stderr, warning
    (wheel,) = (tmp_path / "dist").glob("mmstar-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mmstar/evaluators/__init__.py" in names and "mmstar/metrics/accuracy.py" in names
    assert "mmstar/data/demo/test.parquet" in names and "mmstar/evaluators/run/pipeline.py" in names
    top_level = {"app", "metrics", "evaluators", "curation", "review_app", "viewer", "tests"}
    assert not [n for n in names if n.split("/")[0] in top_level]
    target = tmp_path / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-2000:]
    # PYTHONPATH comes before site-packages (where the editable install's finder lives), so the
    # wheel's copy must win; the check below proves it did
    code = "import importlib;" + ";".join(f"print(importlib.import_module({m!r}).__file__)" for m in SUBPACKAGES)
    proc = _python(code, tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert all(line.startswith(str(target)) for line in proc.stdout.split()), proc.stdout
