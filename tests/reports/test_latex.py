"""LaTeX tables (reports.tables.to_latex): pure ASCII, numeric columns right-aligned, a caption
and a label; every kind of table the report writes compiles under pdflatex."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from bench.studies import study_cells
from reports.build import compute, write
from reports.figures import MEMORY_TABLE
from reports.load import load_store
from reports.mechanism import PHASE_STEM, RECOVERY_STEM
from reports.tables import (
    SWEEP_STEM,
    column_spec,
    display_main_table,
    main_table,
    numeric_column,
    tex_escape,
    to_latex,
)

from .conftest import make_run
from .test_mechanism import ORACLE, config, moco_run, probed_run
from .test_sweep import FAR, NEAR
from .test_sweep import STUDY as SWEEP_STUDY
from .test_sweep import _write as write_sweep

PDFLATEX = shutil.which("pdflatex")
NO_PDFLATEX = "pdflatex is not on PATH (texlive-latex-base, texlive-latex-recommended)"
PREAMBLE = (
    "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage[utf8]{inputenc}\n"
    "\\begin{document}\n"
)
# one of each kind of table report/tables/ holds, by file stem
KINDS = (
    "main",
    "paper_table1",
    "paper_table3",  # with the "selected epoch" column (epoch −1)
    "cpu_runs_fashion-mnist",
    "claims",
    "moco",
    SWEEP_STEM,
    MEMORY_TABLE,
    PHASE_STEM,
    RECOVERY_STEM,
)


def _mechanism_store(root: Path) -> None:
    """cpu runs with memory probes (memory, phase and recovery tables, claims, a group table),
    no-XBM runs and MoCo runs."""
    for s in range(3):
        probed_run(root, "xbm", s, 80.0 + 0.1 * s, None, adapting=False)
        probed_run(root, "xbn", s, 80.2 + 0.1 * s, 0.3 + 0.05 * s)
        probed_run(root, ORACLE, s, 81.0 + 0.2 * s, None, False)
        make_run(root, config("no_xbm", s), best_r1=70.0 + 0.3 * s)
        moco_run(root, s)


def _study_store(root: Path) -> None:
    """Paper-profile study runs: tables 1 and 3 (a best epoch at the network as loaded) and the
    thesis table 5.14 sweep under both readings."""
    for seed, r1 in enumerate((80.0, 80.6, 81.5)):
        make_run(root, dataset="sop", variant="xbn", seed=seed, best_r1=r1)
    for seed, (epoch, r1) in enumerate(((-1, 48.9), (0, 49.1), (4, 47.0))):
        make_run(
            root,
            dataset="sop",
            variant="xbm",
            head="l2_bn",
            seed=seed,
            best_r1=r1,
            best_epoch=epoch,
            phases=True,
        )
    write_sweep(root, {"A": NEAR, "B": FAR})


@pytest.fixture(scope="module")
def tex_tables(tmp_path_factory) -> dict[str, str]:
    """stem -> the .tex file the report wrote, over two results folders."""
    out: dict[str, str] = {}
    for make, cells in (
        (_mechanism_store, None),
        (_study_store, study_cells(("paper-table1", "paper-table3", SWEEP_STUDY))),
    ):
        root = tmp_path_factory.mktemp("latex") / "results"
        root.mkdir()
        make(root)
        write(compute(root, with_figures=False, cells=cells))
        out.update({p.stem: p.read_text() for p in (root / "report" / "tables").glob("*.tex")})
    return out


def test_every_kind_of_table_is_written_in_pure_ascii(tex_tables):
    assert set(KINDS) <= set(tex_tables), sorted(tex_tables)
    for stem, text in tex_tables.items():
        bad = sorted({ch for ch in text if not (" " <= ch <= "~" or ch == "\n")})
        assert not bad, f"{stem}.tex holds {bad}"
    assert "$-$1" in tex_tables["paper_table3"]  # "epoch −1", the minus sign as math
    assert r"A $-$ B {[}CI{]}" in tex_tables["claims"]


def compile_tex(doc, table: str) -> subprocess.CompletedProcess:
    """pdflatex on ``table`` in the minimal document, written (ASCII only) to ``doc``."""
    doc.write_text(PREAMBLE + table + "\\end{document}\n", encoding="ascii")
    return subprocess.run(
        [PDFLATEX, "-halt-on-error", "-interaction=nonstopmode", doc.name],
        cwd=doc.parent,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
    )


@pytest.mark.skipif(PDFLATEX is None, reason=NO_PDFLATEX)
def test_every_table_compiles(tex_tables, tmp_path):
    failed = {}
    for stem, text in sorted(tex_tables.items()):
        done = compile_tex(tmp_path / f"{stem}.tex", text)
        if done.returncode != 0 or not (tmp_path / f"{stem}.pdf").exists():
            failed[stem] = done.stdout[-1500:]
    assert not failed, failed


@pytest.mark.skipif(PDFLATEX is None, reason=NO_PDFLATEX)
def test_a_table_of_every_special_character_compiles(tmp_path):
    text = '− ± ≥ ≤ × ~ → ∞ · ∪ – ² é ☃ \\ & % $ # _ { } ^ [ ] < > | " λ'
    frame = pd.DataFrame({"[a]": [text, "[b]"], "x": ["−1.5", "2"]})
    body = to_latex(frame, f"caption {text}", label="special_1")
    done = compile_tex(tmp_path / "special.tex", body)
    assert done.returncode == 0, done.stdout[-1500:]


def test_numeric_columns_are_right_aligned_and_text_left():
    frame = pd.DataFrame(
        {
            "variant": ["xbm", "xbn", "no_xbm"],
            "n": ["3", "3", "1"],
            "ours": ["80.70 ± 0.76", "not run", "−1.25"],
            "diff": ["+0.38 [-0.12, +0.88]", "-", "−0.50 [−1.00, +0.10]"],
            "p": ["0.041", "1e-05", "-"],
            "MAP@R": ["0.41 ± 0.02 (n=2)", "", "0.40"],
            "wall": ["42 s", "3.5 min", "-"],
            "level": ["97.5%", "95.0%", "-"],
            "verdict": ["reproduced", "-", "not run"],
            "empty": ["-", "-", ""],
        }
    )
    assert column_spec(frame) == "lrrrrrrrll"
    tex = to_latex(frame, "Recall@1 ± std, A − B ≥ 0", label="paper_table1")
    assert r"\begin{tabular}{lrrrrrrrll}" in tex
    assert "\\caption{Recall@1 $\\pm$ std, A $-$ B $\\geq$ 0}\n\\label{tab:paper_table1}" in tex
    assert tex.isascii()
    assert r"\label" not in to_latex(frame, "no label")
    assert not numeric_column(["lambda_mu = 0.2"]) and not numeric_column(["-", "not run"])


def test_the_escapes():
    assert tex_escape("a_b & 50% #1 $x$") == r"a\_b \& 50\% \#1 \$x\$"
    assert tex_escape("−0.5 ± 0.1") == r"$-$0.5 $\pm$ 0.1"
    assert tex_escape("−±") == r"$- \pm$"  # neighbours share one $...$, never "$$"
    assert tex_escape("≥ ≤ × → ∞ ~") == r"$\geq$ $\leq$ $\times$ $\rightarrow$ $\infty$ $\sim$"
    assert tex_escape("[x]") == "{[}x{]}"
    assert tex_escape("café") == "cafe"  # an accented letter: its ASCII base letter
    assert tex_escape("☃") == "{[}U+2603{]}"  # anything else unmapped: its code point


def test_the_main_table_writes_as_latex(results):
    for seed in range(2):
        make_run(results, dataset="sop", variant="xbn", seed=seed, best_r1=80.0 + seed)
    shown = display_main_table(main_table(load_store(results).done))
    tex = to_latex(shown, "Every cell", label="main")
    assert tex.isascii()
    # profile, dataset, variant left; batch, memory, n, Recall@K and the wall time right; MAP@R
    # holds no number here (these records predate it): '-' only, left
    assert r"\begin{tabular}{lllrrrrrrrlr}" in tex
