"""The import contracts of setup.cfg hold, and are not vacuous: a bad import breaks them.

Every check runs import-linter (``lint-imports``) in a subprocess on a copy of the packages and
of setup.cfg in a temporary folder, with one deliberately bad import added, and looks for the
contract's verdict and the offending import in its report. ``common`` is a single-file module,
which grimp cannot take as a root package, so its contract is checked here from its syntax tree.
"""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("commands", "reports", "bench", "variants", "data_prep")
PROJECT = {*PACKAGES, "cli", "common"}
# `lint-imports` through this interpreter (its script may not be on PATH)
LINT = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def _lint(root: Path, *contracts: str) -> tuple[int, str]:
    """Exit code and report (whitespace collapsed, so wrapped lines still match)."""
    args = [arg for c in contracts for arg in ("--contract", c)]
    proc = subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache", "--no-logo", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=dict(os.environ, COLUMNS="200"),
        check=False,
    )
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


def _copy_tree(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=ignore)
    for name in ("cli.py", "common.py", "setup.cfg"):
        shutil.copy2(ROOT / name, dest / name)
    return dest


def _contract_names() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    prefix = "importlinter:contract:"
    return {s[len(prefix) :]: cfg[s]["name"] for s in cfg.sections() if s.startswith(prefix)}


CONTRACTS = _contract_names()


@pytest.fixture(scope="module")
def real_tree_report() -> tuple[int, str]:
    return _lint(ROOT)


def test_every_contract_is_kept_on_the_real_tree(real_tree_report):
    code, report = real_tree_report
    broken = [name for name in CONTRACTS.values() if f"{name} BROKEN" in report]
    assert broken == [], report
    assert code == 0 and f"Contracts: {len(CONTRACTS)} kept, 0 broken" in report, report


# (file, line added at its top, contract id, what the report must then say beyond "BROKEN")
BAD_IMPORTS = [
    ("variants/xbm.py", "import bench", "variants", "variants.xbm -> bench"),
    ("variants/stats.py", "import common", "variants", "variants.stats -> common"),
    ("variants/stats.py", "import numpy", "variants", "variants.stats -> numpy"),
    ("data_prep/registry.py", "import variants", "data_prep", "data_prep.registry -> variants"),
    (
        "data_prep/sop.py",
        "import reports.inference",
        "data_prep",
        "data_prep.sop -> reports.inference",
    ),
    (
        "reports/inference.py",
        "import bench.studies",
        "reports",
        "reports.inference -> bench.studies",
    ),
    ("reports/tables.py", "import bench.engine", "reports", "reports.tables -> bench.engine"),
    ("reports/load.py", "import commands.run", "top", "reports.load -> commands.run"),
    ("bench/store.py", "import reports.load", "top", "bench.store -> reports.load"),
    ("variants/xbm.py", "import bench.store", "top", "variants.xbm -> bench.store"),
    (
        "bench/measure/diagnostics.py",
        "import variants.stats",
        "measure",
        "bench.measure.diagnostics -> variants.stats",
    ),
    ("bench/config.py", "import bench.studies", "bench-layers", "bench.config -> bench.studies"),
    (
        "bench/measure/evaluate.py",
        "import bench.store",
        "bench-layers",
        "bench.measure.evaluate -> bench.store",
    ),
    ("bench/store.py", "import reports.load", "bench-no-up", "bench.store -> reports.load"),
    (
        "reports/load.py",
        "import reports.tables",
        "reports-layers",
        "reports.load is not allowed to import reports.tables",
    ),
    (
        "bench/measure/evaluate.py",
        "import bench.perf",
        "no-cycles",
        "No cycles are allowed in bench. It could be made acyclic by removing 1 dependency: "
        "- .measure -> .perf",
    ),
]


@pytest.mark.slow  # a copy of the tree and a fresh import graph per case (~1 s each)
@pytest.mark.parametrize("path, line, contract, evidence", BAD_IMPORTS)
def test_a_bad_import_breaks_its_contract(
    tmp_path, real_tree_report, path, line, contract, evidence
):
    assert evidence not in real_tree_report[1]  # the violation is the added line's, not today's
    root = _copy_tree(tmp_path)
    target = root / path
    target.write_text(f"{line}  # deliberately bad\n" + target.read_text())
    code, report = _lint(root, contract)
    assert code != 0, report
    assert f"{CONTRACTS[contract]} BROKEN" in report, report
    assert evidence in report, report


def test_no_contract_lists_an_exception():
    """No import is let through: setup.cfg has no ``ignore_imports`` in any contract."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    allowed = {s: cfg[s].get("ignore_imports") for s in cfg.sections() if "importlinter" in s}
    assert {s: v for s, v in allowed.items() if v} == {}


def _on_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Modules from which an import path leads back to themselves (a plain search per module;
    the graph has a few hundred modules)."""
    out = set()
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            node = todo.pop()
            if node == start:
                out.add(start)
                break
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
    return sorted(out)


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _on_cycles(graph) == ["a", "b", "c"]
    assert _on_cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_round_a_cycle():
    """grimp's graph of every module of the project (package __init__ files included, imports
    inside functions included) has no cycle, not only none between siblings."""
    import grimp

    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    # a package imports its own submodules through __init__ re-exports; that is not a cycle
    # between modules of different jobs, so a parent -> child edge is left out
    edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in edges.items()}
    assert _on_cycles(edges) == []


def _project_imports(path: Path) -> list[str]:
    """Top-level project names that ``path`` imports anywhere (functions included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module.split(".")[0])
    return sorted(set(names) & PROJECT)


def test_common_imports_nothing_of_the_project(tmp_path):
    assert _project_imports(ROOT / "common.py") == []
    bad = tmp_path / "common.py"
    bad.write_text((ROOT / "common.py").read_text() + "\n\ndef f():\n    from bench import store\n")
    assert _project_imports(bad) == ["bench"]  # the check sees imports inside functions too
