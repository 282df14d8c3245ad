"""The layers of docs/architecture.md, checked on the source: every import (at module level or inside
a function, ``TYPE_CHECKING`` included) read with ``ast``, its module resolved through pyproject's
``[tool.setuptools.package-dir]`` mapping (``evaluators/`` is ``mmstar.evaluators``), and no layer may
import one it is not allowed to, and no modules may import each other in a circle.

A structure drawing that reads folder names misses both faults: it sees ``evaluators/models/backbone.py``
import ``mmstar.evaluators.backends.hf``, a name it cannot place. This test places it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import tomllib
from conftest import REPO

# layer -> (number in docs/architecture.md's table, the package it is, the layers it may import).
# The same table as the document; test_the_document_names_the_same_layers holds the two together.
LAYERS: dict[str, tuple[int, str, tuple[str, ...]]] = {
    "core": (1, "mmstar", ()),
    "models": (2, "mmstar.evaluators.models", ("core",)),
    "backends": (3, "mmstar.evaluators.backends", ("core", "models")),
    "run": (4, "mmstar.evaluators.run", ("core", "models", "backends")),
    "metrics": (5, "mmstar.metrics", ("core",)),
    "viewer": (5, "mmstar.viewer", ("core", "metrics")),
    "curation": (6, "mmstar.curation", ("core", "models", "backends", "run", "metrics")),
    "review_app": (6, "mmstar.review_app", ("core",)),
    "app": (7, "mmstar.app", ("core", "models", "backends", "run", "metrics", "viewer", "curation")),
}
# the package face (mmstar.evaluate / open_run / leaderboard import their layer when called) and
# `python -m mmstar`; docs/architecture.md names both
EXCEPTIONS = ("mmstar/__init__.py", "mmstar/__main__.py")
# packages that hold no code of their own layer (a docstring): imports of them are imports of nothing
NEUTRAL = ("mmstar.evaluators", "mmstar.data", "mmstar.data.demo")


def package_dirs() -> dict[str, Path]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return {pkg: REPO / folder for pkg, folder in config["tool"]["setuptools"]["package-dir"].items()}


def modules() -> dict[str, Path]:
    """Every module of the distribution by its import name, through the package-dir mapping (the
    longest mapped folder wins: ``evaluators/run/x.py`` is ``mmstar.evaluators.run.x``)."""
    dirs = package_dirs()
    out: dict[str, Path] = {}
    for pkg, folder in sorted(dirs.items(), key=lambda kv: -len(kv[0])):
        for path in sorted(folder.rglob("*.py")):
            if any(part.startswith(".") for part in path.relative_to(REPO).parts):
                continue
            rel = path.relative_to(folder).with_suffix("").parts
            name = ".".join((pkg, *rel[:-1])) if rel[-1] == "__init__" else ".".join((pkg, *rel))
            deeper = [p for p, f in dirs.items() if p != pkg and f != folder and folder in f.parents
                      and f in path.parents]
            if not deeper:  # a folder mapped on its own is read under its own name
                out.setdefault(name, path)
    return out


def imported(path: Path, name: str, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every import in a file, relative ones resolved, ``from pkg import sub``
    read as the submodule where one exists."""
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mmstar"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "mmstar":
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            found += [(node.lineno, s) for s in subs]
            if len(subs) < len(node.names):
                found.append((node.lineno, target))
    return found


def layer_of(module: str) -> str | None:
    if module in NEUTRAL:
        return None
    best = max((spec[1] for spec in LAYERS.values() if module == spec[1] or module.startswith(spec[1] + ".")),
               key=len, default=None)
    return next(k for k, spec in LAYERS.items() if spec[1] == best) if best else None


def graph() -> tuple[dict[str, Path], dict[str, set[str]], list[str]]:
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    wrong: list[str] = []
    for name, path in mods.items():
        rel = str(path.relative_to(REPO))
        for line, target in imported(path, name, known):
            while target not in known and "." in target:  # `import mmstar.x.y` of a name: its module
                target = target.rpartition(".")[0]
            if target == name:
                continue
            edges[name].add(target)
            if rel in EXCEPTIONS:
                continue
            src, dst = layer_of(name), layer_of(target)
            if src is None or dst is None or dst == src:
                continue
            if dst not in LAYERS[src][2]:
                allowed = ", ".join(LAYERS[src][2]) or "nothing but itself"
                wrong.append(f"{rel}:{line}: {name} ({src}) imports {target} ({dst}); {src} may import {allowed}")
    return mods, edges, wrong


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_mapping_is_resolved():
    mods = modules()
    assert mods["mmstar.evaluators.models.backbone"] == REPO / "evaluators" / "models" / "backbone.py"
    assert mods["mmstar.app.cli"] == REPO / "app" / "cli.py" and mods["mmstar.runs"] == REPO / "mmstar" / "runs.py"
    assert "mmstar.evaluators" in mods and "mmstar.app" in mods
    path = REPO / "evaluators" / "run" / "sweep.py"
    found = dict((t, n) for n, t in imported(path, "mmstar.evaluators.run.sweep", set(mods)))
    assert "mmstar.evaluators.run.pipeline" in found and "mmstar.evaluators.backends.registry" in found


def test_no_layer_imports_one_above_it():
    _mods, _edges, wrong = graph()
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    _mods, edges, _wrong = graph()
    found = circles(edges)
    assert not found, "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_catch_what_they_are_for(tmp_path):
    """The checker itself: an upward import and a circle, planted, are both found."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    fake = tmp_path / "backbone.py"
    fake.write_text("def f():\n    from ..backends.hf import HFBackend\n", encoding="utf-8")
    known = {"mmstar.evaluators.backends.hf", "mmstar.evaluators.models.backbone"}
    (line, target), = imported(fake, "mmstar.evaluators.models.backbone", known)
    assert (line, target) == (2, "mmstar.evaluators.backends.hf")
    assert layer_of(target) == "backends" and "backends" not in LAYERS[layer_of("mmstar.evaluators.models.x")][2]
    assert layer_of("mmstar.metrics.leaderboard") not in LAYERS["run"][2]


@pytest.mark.parametrize("layer", list(LAYERS))
def test_the_document_names_the_same_layers(layer):
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    number, package, _allowed = LAYERS[layer]
    mapped = package_dirs().get(package)
    folder = mapped.relative_to(REPO).as_posix() if mapped else package.removeprefix("mmstar.").replace(".", "/")
    folder += "/"
    rows = [line for line in doc.splitlines() if re.match(rf"\|\s*{number}\b", line)]
    assert any(f"`{folder}`" in row for row in rows), f"docs/architecture.md: no layer {number} row names {folder}"
    for exception in EXCEPTIONS:
        assert exception in doc, f"docs/architecture.md does not name the allowed exception {exception}"


def test_building_the_command_line_imports_no_builder_and_no_run_machinery():
    """``mmstar eval --help`` and ``mmstar --version`` build the whole parser: it must not import the tiny
    builders (one help string needed their names), the run loop (four option choices needed it), nor the
    answer extractor (the judge's flags and ``import mmstar`` pulled its tables in: ~60 ms)."""
    import subprocess
    import sys

    code = ("import sys; from mmstar.app.cli import build_parser; p = build_parser();"
            "print(sorted(m for m in sys.modules if m.startswith(('mmstar.evaluators.models.tiny', "
            "'mmstar.evaluators.run.runner', 'mmstar.evaluators.run.pipeline', 'mmstar.matching', 'mmstar.extract', "
            "'torch', 'pandas'))));"
            "print(p._subparsers._group_actions[0].choices['tiny-models'].format_help())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO.parent)
    assert proc.returncode == 0, proc.stderr
    first, help_text = proc.stdout.split("\n", 1)
    assert first == "[]"
    assert "llava" in help_text and "qwen2-vl" in help_text  # the family list is still in tiny-models --help
