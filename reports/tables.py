"""The tables: the published numbers and our runs beside them, the tables of runs no published
number claims, thesis table 5.14 under its two readings, MoCo's table, and every table's human
form in Markdown and LaTeX.

Numbers -> text: the display form of a table, Markdown and LaTeX writers (no I/O here). The
LaTeX is pure ASCII, so it compiles under pdflatex with booktabs and nothing else: the minus
sign, ±, ≥, ≤, ×, ~, →, ∞ and their kin become math, dashes and quotes their ligatures, an
accented letter its base letter, any other character its code point ('[U+2603]'); numeric
columns (numbers, 'mean ± std', a signed difference with its CI, a time) are right-aligned.

The main table: every cell (profile, dataset, variant label, batch size, memory ratio) in one
row, with Recall@1/10 at the best and the last epoch, MAP@R at the best, mean ± std over seeds,
and the mean wall time of a run. The comparison tables carry each config's MAP@R and
R-Precision beside its Recall@K (records written before these metrics: '-').

Runs -> comparison tables (pure: DataFrames in, DataFrames out).

Every table is long: one row per (configuration, metric) with our mean +- std over seeds (sample
std, ddof = 1) and n, the reported mean +- std and runs count, the difference ours - reported with
its 95% CI and two-sided p: Welch's t where the source gives a std and a runs count >= 2 (and we
have n >= 2), else the one-sample t of our runs against the reported mean taken as exact.

Runs are pooled only within one config (``config_key``, reports.load) and each seed counts
once: a reported number is compared with the study runs of the cell that targets it, and every
other run gets a row of its own config, labelled with what differs (``label``).

``n_init`` / ``n_warmup``: of a row's n runs, how many had their selected epoch before the main
phase: the network as loaded (epoch -1, phase "init") or after the warm-up (epoch 0), which the
best epoch may be (XBN paper, footnote 6: the best L2+BN numbers of its table 3 are the
pre-trained network's).

Thesis table 5.14 (the PC-XBN lambda sweep on CIFAR-100) under its two readings, side by side.

Tables 5.14 and 5.15 cannot both describe the default margins: at lambda_mu 0.5, lambda_sigma 1
table 5.14 gives 85.0, table 5.15 39.69 with the default margins and 80.07 with the adjusted ones.
So the ``thesis-pc-sweep`` study runs the sweep twice (bench.studies): reading A with the
protocol's default miner margins (0.2/0.8), reading B with the adjusted margins of thesis
appendix 9 (0.1/2.0). Each point of table 5.14 (Recall@1 at one swept lambda, the other at its
default) is compared with the study runs of its cell under either reading: the same cell, but for
the margins (reports.tables.match_runs).

Which reading the reported numbers fit (``sweep_verdict``), a rule fixed before any run:

1. Points: the table's rows with at least one run under both readings. Fewer than
   ``MIN_POINTS`` (2): "not enough runs".
2. A reading's error at a point is |mean over seeds - reported|; its fit is the mean absolute
   difference (MAD) over the points.
3. Closer reading: D = MAD_A - MAD_B, with the 95% t interval of the mean of the per-point
   differences e_A - e_B (paired over the points, n - 1 df: the sweep's points are the
   replicates). The interval above 0: B is closer, by D points; below 0: A is closer, by -D;
   containing 0: neither is. With zero spread the interval is the point D.
4. A reading fits when at least half of the points are reproduced under it, by the tables'
   per-number rule (|diff| <= max(1 point, 2 x spread); the thesis ran once and gives no std).

Verdicts: "fits reading R better by X points" (R is closer and fits); "neither fits; reading R
is closer by X points" (R is closer, but does not fit); "neither fits" (neither is closer, none
fits); "cannot tell the readings apart" (neither is closer, at least one fits).

MoCo runs (task "moco", paper appendix B and figure 2): k-NN accuracy per epoch with and
without XBN, a table of early, last and best accuracies, and the claim "XBN speeds up MoCo early
in training". Pure: frames in, frames or a Figure out. MoCo runs never enter the metric tables.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from io import StringIO
from typing import Any

import pandas as pd

from bench.store import PRE_MAIN_PHASES, RETRIEVAL_COLUMNS, SUMMARY_PHASE
from reports.inference import (
    MAX_SEEDS,
    TOO_FEW,
    Difference,
    one_sample_difference,
    summarize,
    welch_from_stats,
)
from reports.load import (
    ADJUSTED_MARGINS,
    DEFAULT_MARGINS,
    PAPER_PROFILE,
    config_matches,
    label_runs,
    parse_label,
    variant_rank,
)

MATCH_TOL = 1.0  # Recall@1 points: a number is reproduced within max(MATCH_TOL, 2 x spread)
# a table row's count of runs whose selected epoch is that pre-main phase (bench.store): the
# network as loaded (epoch -1, "init") or after the warm-up (epoch 0, "warmup")
PRE_MAIN_COUNTS = {phase: f"n_{phase}" for phase in PRE_MAIN_PHASES}
# a table row's MAP@R and R-Precision over its config's runs (one value per config, shown beside
# its Recall@K rows): mean, sample std and the number of runs that carry it
RETRIEVAL_SUMMARY = tuple(f"{m}_{s}" for m in RETRIEVAL_COLUMNS for s in ("mean", "std", "n"))
RETRIEVAL_SHOWN = {"map@r": "MAP@R", "r_precision": "R-Precision"}


def matches(
    reported: Mapping[str, Any], run: Mapping[str, Any], margins: tuple[float, float] | None = None
) -> bool:
    """Pure: does ``run`` (a runs-frame row) count towards the ``reported`` row? ``margins``:
    the miner margins asked of the run in place of the label's (another reading of the row)."""
    sel = parse_label(str(reported["variant"]))
    return (
        run["status"] == "done"
        and run["profile"] == PAPER_PROFILE
        and run.get("task", "metric") == "metric"
        and run["dataset"] == reported["dataset"]
        and config_matches(
            sel if margins is None else replace(sel, margins=margins),
            run,
            int(reported["batch_size"]),
            float(reported["memory_ratio"]),
        )
    )


def match_runs(
    reported: Mapping[str, Any], runs: pd.DataFrame, margins: tuple[float, float] | None = None
) -> pd.DataFrame:
    """The rows of ``runs`` that match one reported row (at ``margins``, see ``matches``)."""
    mask = [matches(reported, r, margins) for r in runs.to_dict("records")]
    return runs[pd.Series(mask, index=runs.index, dtype=bool)]


def load_reported() -> pd.DataFrame:
    """reported_numbers.csv as shipped with the package (columns as in the file, plus ``key``)."""
    text = resources.files("reports").joinpath("reported_numbers.csv").read_text("utf-8")
    frame = pd.read_csv(StringIO(text), dtype={"table": str})
    frame["key"] = frame["source"] + " table " + frame["table"]
    return frame


def table_slug(source: str, table: str) -> str:
    """File-name stem of a source table: ('thesis', '7.1') -> 'thesis_table7_1'."""
    return f"{source}_table{table}".replace(".", "_")


NOT_RUN, NO_VALUE = "not run", "-"
REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
SELECTED = "selected epoch"  # display column, shown where some row's best is before the main phase
PRE_MAIN_TEXT = {"init": "network as loaded (epoch −1)", "warmup": "after the warm-up (epoch 0)"}


def fmt_pm(mean: float, std: float, digits: int = 2) -> str:
    """'mean ± std', or just the mean when the std is unknown."""
    if mean is None or pd.isna(mean):
        return NO_VALUE
    if std is None or pd.isna(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_num(x: float, spec: str = "+.2f") -> str:
    return NO_VALUE if x is None or pd.isna(x) else format(x, spec)


def number_verdict(row: dict) -> str:
    """A reported number is reproduced when |ours - reported| <= max(MATCH_TOL, 2 x spread),
    spread = sqrt(s_ours^2 / n_ours + s_rep^2 / n_rep), an unknown std counted as 0."""
    if not row["n"]:
        return NOT_RUN
    if pd.isna(row.get("reported_mean", math.nan)):
        return NO_VALUE
    var = 0.0
    for s, n in ((row["ours_std"], row["n"]), (row["reported_std"], row["reported_runs"])):
        if not pd.isna(s) and not pd.isna(n) and n:
            var += s**2 / n
    return REPRODUCED if abs(row["diff"]) <= max(MATCH_TOL, 2 * math.sqrt(var)) else NOT_REPRODUCED


def with_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(verdict=[number_verdict(r) for r in table.to_dict("records")])


def selected_note(row: dict) -> str:
    """'best = network as loaded (epoch −1) in 3 of 3 seeds' for a row whose runs' selected
    epoch precedes the main phase (reports.tables: n_init, n_warmup), else ''."""
    parts = [
        f"best = {PRE_MAIN_TEXT[phase]} in {int(row[col])} of {int(row['n'])} seeds"
        for phase, col in PRE_MAIN_COUNTS.items()
        if row.get(col, 0) > 0
    ]
    return "; ".join(parts)


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The human form of a comparison table (see reports.tables.COLUMNS); a "selected epoch"
    column where a row's best epoch is the network as loaded or the warm-up.

    MAP@R and R-Precision (mean ± std over the config's runs, '-' where none carries them,
    '(n=k)' where only k do) stand beside the ours column on the first row of each config's
    rows; its other rows (its other Recall@K) leave them empty, as the numbers are the
    config's, not the metric's."""
    rows = []
    previous = None
    for r in with_verdicts(table).to_dict("records"):
        rep_n = "" if pd.isna(r["reported_runs"]) else f" (n={int(r['reported_runs'])})"
        rep = fmt_pm(r["reported_mean"], r["reported_std"])
        config = tuple(str(r.get(k)) for k in CONFIG_OF_ROW)
        retrieval = {
            name: retrieval_text(r, metric) if config != previous else ""
            for metric, name in RETRIEVAL_SHOWN.items()
        }
        previous = config
        rows.append(
            {
                "dataset": r["dataset"],
                "variant": r["variant"],
                "batch": str(r["batch_size"]),
                "memory": f"{r['memory_ratio']:g}",
                "metric": r["metric"],
                "ours (mean ± std)": fmt_pm(r["ours_mean"], r["ours_std"]) if r["n"] else NOT_RUN,
                "n": str(r["n"]),
                **retrieval,
                "reported": rep + (rep_n if rep != NO_VALUE else ""),
                "diff [95% CI]": fmt_ci(r["diff"], r["ci_low"], r["ci_high"]),
                "p": fmt_num(r["p"], ".3g"),
                "test": METHODS.get(r["test"], NO_VALUE),
                "verdict": r["verdict"],
                SELECTED: selected_note(r),
            }
        )
    shown = pd.DataFrame(rows)
    return (
        shown
        if len(shown) and shown[SELECTED].astype(bool).any()
        else shown.drop(columns=SELECTED, errors="ignore")
    )


METHODS = {"paired": "paired t", "welch": "Welch t", "one-sample": "one-sample t"}
# the fields that say which config a comparison-table row is of (its runs: ``run_ids``)
CONFIG_OF_ROW = ("table", "dataset", "variant", "batch_size", "memory_ratio", "run_ids")


def retrieval_text(row: Mapping[str, Any], metric: str) -> str:
    """A comparison-table row's MAP@R or R-Precision ('map@r', 'r_precision') for display:
    'mean ± std', with '(n=k)' where only k of the row's n runs carry it; '-' where none does
    (tables written before these columns included)."""
    k = row.get(f"{metric}_n", 0)
    k = 0 if k is None or pd.isna(k) else int(k)
    if not k:
        return NO_VALUE
    text = fmt_pm(row[f"{metric}_mean"], row[f"{metric}_std"])
    return with_count(text, k, int(row["n"]))


def fmt_ci(diff: float, low: float, high: float) -> str:
    """'+0.38 [-0.12, +0.88]'; the point alone where the CI is unknown."""
    if pd.isna(diff):
        return NO_VALUE
    if pd.isna(low) or pd.isna(high):
        return fmt_num(diff)
    return f"{fmt_num(diff)} [{fmt_num(low)}, {fmt_num(high)}]"


def fmt_seeds(row: dict) -> str:
    """Seeds that would resolve the observed difference: a number, 'more than 50', or '-'
    where no spread could be estimated (n < 2, zero spread)."""
    if row["more_than_max"]:
        return f"more than {MAX_SEEDS}"
    return NO_VALUE if pd.isna(row["seeds_needed"]) else str(int(row["seeds_needed"]))


def _checks(row: dict) -> str:
    parts = [row["note"]] if row.get("note") else []
    if not pd.isna(row.get("wilcoxon_p", math.nan)):
        parts.append(f"Wilcoxon p {row['wilcoxon_p']:.3g}")
    if not pd.isna(row.get("boot_low", math.nan)):
        parts.append(f"bootstrap 95% [{fmt_num(row['boot_low'])}, {fmt_num(row['boot_high'])}]")
    return "; ".join(parts)


def display_claims(judged: pd.DataFrame) -> pd.DataFrame:
    """The human form of the claims table (reports.claims.COLUMNS): verdict, A - B with its CI
    at the level Holm tested it, Holm-adjusted p, power, the pairing's correlation, the test."""
    rows = []
    for r in judged.to_dict("records"):
        batch = "" if pd.isna(r["batch_size"]) else f", batch {int(r['batch_size'])}"
        judged = r["verdict"] != TOO_FEW  # a side with fewer than 2 runs: no test, no CI
        rows.append(
            {
                "claim": r["claim"],
                "where": f"{r['dataset']}, {r['scale']}{batch}",
                "verdict": r["verdict"],
                "A − B [CI]": fmt_ci(r["diff"], r["ci_low"], r["ci_high"]),
                "CI level": f"{r['level']:.1%}" if judged else NO_VALUE,
                "p (Holm)": fmt_num(r["p_holm"], ".3g"),
                "n": str(r["n"]),
                "min. detectable": fmt_num(r["mdd"], ".2f"),
                "seeds needed": fmt_seeds(r),
                "r": fmt_num(r["correlation"], ".2f"),
                "test": METHODS.get(r["method"], r["method"]) if judged else NO_VALUE,
                "reported A − B": fmt_num(r["reported_diff"]),
                "checks": _checks(r) or NO_VALUE,
            }
        )
    return pd.DataFrame(rows)


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table ('|' in cells escaped)."""

    def cell(x: object) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    sep = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(x) for x in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"


# LaTeX: every table's text is escaped to plain ASCII, so a document compiles under pdflatex
# with or without inputenc. A character is written as text or as math (joined into one $...$
# with its math neighbours, so two never meet as "$$").
_TEX_TEXT = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "^": r"\^{}",
    "[": "{[}",  # braced: a row or rule followed by "[" would read it as an optional argument
    "]": "{]}",
    '"': "''",
    "\n": " ",
    "\t": " ",
    "\u00a0": "~",  # no-break space
    "\u2013": "--",  # en dash
    "\u2014": "---",  # em dash
    "\u2018": "`",
    "\u2019": "'",
    "\u201c": "``",
    "\u201d": "''",
    "\u2026": r"\ldots{}",
    "\u00b0": r"\ensuremath{^\circ}",
}
_TEX_MATH = {
    "~": r"\sim",  # "~4 points": approximately
    "<": "<",  # the OT1 text font has no < > |
    ">": ">",
    "|": "|",
    "\u2212": "-",  # minus sign
    "\u00b1": r"\pm",
    "\u2265": r"\geq",
    "\u2264": r"\leq",
    "\u2260": r"\neq",
    "\u00d7": r"\times",
    "\u00b7": r"\cdot",
    "\u223c": r"\sim",
    "\u2248": r"\approx",
    "\u2192": r"\rightarrow",
    "\u2190": r"\leftarrow",
    "\u21d2": r"\Rightarrow",
    "\u221e": r"\infty",
    "\u222a": r"\cup",
    "\u2229": r"\cap",
    "\u2208": r"\in",
    "\u221a": r"\surd",
    "\u00b9": "^{1}",
    "\u00b2": "^{2}",
    "\u00b3": "^{3}",
    "\u00b5": r"\mu",  # micro sign
    "\u03b1": r"\alpha",
    "\u03b2": r"\beta",
    "\u03b3": r"\gamma",
    "\u03b4": r"\delta",
    "\u0394": r"\Delta",
    "\u03b5": r"\epsilon",
    "\u03b7": r"\eta",
    "\u03bb": r"\lambda",
    "\u03bc": r"\mu",
    "\u03c1": r"\rho",
    "\u03c3": r"\sigma",
    "\u03a3": r"\Sigma",
    "\u03c4": r"\tau",
}


def _tex_unmapped(ch: str) -> str:
    """A character of neither map: printable ASCII as is; a letter with accents as its ASCII
    base letter (NFKD: 'é' -> 'e'); anything else as the visible '[U+2603]'. Never an error
    and never a raw non-ASCII byte in the output."""
    if " " <= ch <= "~":
        return ch
    base = "".join(
        c for c in unicodedata.normalize("NFKD", ch) if " " <= c <= "~" and c not in _TEX_TEXT
    )
    if base and unicodedata.category(ch).startswith("L"):
        return base
    return f"{{[}}U+{ord(ch):04X}{{]}}"


def tex_escape(text: object) -> str:
    """``text`` as LaTeX (pure ASCII): the special characters escaped, the minus sign, ±, ≥,
    ≤, ×, ~, →, ∞ and the other characters of ``_TEX_MATH`` as math, typographic dashes and
    quotes as their LaTeX ligatures, any other non-ASCII character as ``_tex_unmapped`` says."""
    out: list[str] = []
    math: list[str] = []
    for ch in str(text):
        if ch in _TEX_MATH:
            math.append(_TEX_MATH[ch])
            continue
        if math:
            out.append("$" + " ".join(math) + "$")
            math = []
        out.append(_TEX_TEXT[ch] if ch in _TEX_TEXT else _tex_unmapped(ch))
    if math:
        out.append("$" + " ".join(math) + "$")
    return "".join(out)


_NUM = r"[+\-\u2212]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+\-\u2212]?\d+)?%?"
NUMERIC_CELL = re.compile(
    rf"{_NUM}(?: ?\u00b1 ?{_NUM})?(?: ?(?:s|min|h))?"  # a number, mean ± std, a time
    rf"(?: \[{_NUM}, {_NUM}\])?(?: \((?:n=)?\d+\))?"  # then a CI, a count
)
# cells that say there is no number: they decide no column's alignment
PLACEHOLDERS = frozenset({"", NO_VALUE, NOT_RUN})


def numeric_column(cells: Iterable[object]) -> bool:
    """A column is numeric (right-aligned) when it has a number and every cell that is not a
    placeholder ('', '-', 'not run') is a number: '85.0', '-1.2e-05', '12.5%', '80.70 ± 0.76',
    a signed number with a CI ('+0.38 [-0.12, +0.88]'), a time ('42 s', '3.5 min') or any of
    these followed by a count ('(n=3)')."""
    texts = [str(c).strip() for c in cells]
    shown = [t for t in texts if t not in PLACEHOLDERS]
    return bool(shown) and all(NUMERIC_CELL.fullmatch(t) for t in shown)


def column_spec(frame: pd.DataFrame) -> str:
    """tabular column spec: 'r' for each numeric column (``numeric_column``), else 'l'."""
    return "".join("r" if numeric_column(frame.iloc[:, i]) else "l" for i in range(frame.shape[1]))


def tex_label(stem: str) -> str:
    """'cpu_runs_fashion-mnist' -> 'tab:cpu_runs_fashion-mnist' (characters a label may not
    hold as '-')."""
    return "tab:" + re.sub(r"[^A-Za-z0-9_.:-]", "-", stem)


def to_latex(frame: pd.DataFrame, caption: str, label: str | None = None) -> str:
    """A booktabs table (needs \\usepackage{booktabs}), pure ASCII (``tex_escape``): numeric
    columns right-aligned, text columns left-aligned (``column_spec``), the caption above and,
    given the file stem ``label``, ``\\label{tab:<label>}``."""
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{tex_escape(caption)}}}",
    ]
    if label is not None:
        lines.append(rf"\label{{{tex_label(label)}}}")
    lines += [
        rf"\begin{{tabular}}{{{column_spec(frame)}}}",
        r"\toprule",
        " & ".join(tex_escape(c) for c in frame.columns) + r" \\",
        r"\midrule",
    ]
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(tex_escape(x) for x in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


COLUMNS = [
    "table",
    "dataset",
    "variant",
    "batch_size",
    "memory_ratio",
    "metric",
    "n",
    "ours_mean",
    "ours_std",
    "reported_mean",
    "reported_std",
    "reported_runs",
    "diff",
    "ci_low",
    "ci_high",
    "p",
    "test",
    "run_ids",
    *PRE_MAIN_COUNTS.values(),
    *RETRIEVAL_SUMMARY,
]
GROUP_KEYS = ["profile", "dataset", "label", "batch_size", "memory_ratio", "config_key"]
GROUP_METRICS = ("recall@1", "recall@10")


def retrieval_summary(runs: pd.DataFrame) -> dict[str, float]:
    """MAP@R and R-Precision of one config's runs at their selected epoch (reports.load.
    select_epoch): mean, sample std and how many runs carry the number (``RETRIEVAL_SUMMARY``;
    records written before these metrics read as NaN and are not counted)."""
    out: dict[str, float] = {}
    for metric in RETRIEVAL_COLUMNS:
        s = summarize(_column(runs, metric))
        out.update({f"{metric}_mean": s.mean, f"{metric}_std": s.std, f"{metric}_n": s.n})
    return out


def one_run_per_seed(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` of one config, checked: a seed counted twice would shrink the std and inflate n."""
    twice = runs["seed"][runs["seed"].duplicated()]
    if len(twice):
        raise ValueError(
            f"seed(s) {sorted(set(twice))} counted twice in one group: "
            f"{' '.join(sorted(runs['run_id']))}"
        )
    return runs


def pre_main_counts(runs: pd.DataFrame) -> dict[str, int]:
    """{n_init: k, n_warmup: k}: runs whose selected epoch is that pre-main phase."""
    return {
        col: int((runs[SUMMARY_PHASE] == phase).sum()) for phase, col in PRE_MAIN_COUNTS.items()
    }


def ours_minus_reported(ours: pd.Series, reported: dict) -> Difference:
    """ours - reported: Welch from the reported summary (mean, std, runs) where it gives a std and
    at least two runs; else the one-sample t against the reported mean (reports.inference)."""
    rep_std = float(reported["std"])
    rep_n = int(reported["runs"]) if not pd.isna(reported["runs"]) else 0
    if not math.isnan(rep_std) and rep_n >= 2:
        s = summarize(ours)
        return welch_from_stats(s.mean, s.std, s.n, float(reported["mean"]), rep_std, rep_n)
    return one_sample_difference(list(ours), float(reported["mean"]))


def compare_row(reported: dict, ours: pd.Series) -> dict:
    """One reported row beside our runs' values ``ours``: diff = ours - reported with its 95% CI
    and two-sided p (``ours_minus_reported``; NaN where a side has n < 2 or no spread)."""
    s = summarize(ours)
    rep_std = float(reported["std"])
    rep_n = int(reported["runs"]) if not pd.isna(reported["runs"]) else 0
    d = ours_minus_reported(ours, reported)
    low, high = d.ci(0.95)
    return {
        "n": s.n,
        "ours_mean": s.mean,
        "ours_std": s.std,
        "reported_mean": float(reported["mean"]),
        "reported_std": rep_std,
        "reported_runs": rep_n if rep_n else math.nan,
        "diff": s.mean - float(reported["mean"]) if s.n else math.nan,
        "ci_low": low,
        "ci_high": high,
        "p": d.p_two_sided(),
        "test": d.method,
    }


def reported_comparison(runs: pd.DataFrame, reported: pd.DataFrame) -> pd.DataFrame:
    """Every reported row with our matching runs (``runs``: select_epoch output of the study runs,
    reports.load.study_runs, one run per config and seed)."""
    rows = []
    for rep in reported.to_dict("records"):
        matched = match_runs(rep, runs)
        if matched["config_key"].nunique() > 1:  # one cell targets each reported row
            raise ValueError(
                f"reported row {rep['key']} / {rep['dataset']} / {rep['variant']} "
                f"matches {matched['config_key'].nunique()} configs"
            )
        one_run_per_seed(matched)
        ours = matched[rep["metric"]] if len(matched) else pd.Series(dtype=float)
        rows.append(
            {
                "table": rep["key"],
                "dataset": rep["dataset"],
                "variant": rep["variant"],
                "batch_size": int(rep["batch_size"]),
                "memory_ratio": float(rep["memory_ratio"]),
                "metric": rep["metric"],
                **compare_row(rep, ours),
                "run_ids": " ".join(sorted(matched["run_id"])),
                **pre_main_counts(matched),
                **retrieval_summary(matched),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def group_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs with no reported value, one row per config and metric; reported columns stay NaN
    ("-"). The variant column is ``label`` (reports.load.label_runs: made here when absent).

    Table name: "<profile> runs on <dataset>" (one table per (profile, dataset)).
    """
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    frame = runs if "label" in runs else label_runs(runs, None)
    rows = []
    for key, grp in frame.groupby(GROUP_KEYS, sort=True):
        profile, dataset, label, batch, memory, _ = key
        one_run_per_seed(grp)
        for metric in GROUP_METRICS:
            s = summarize(grp[metric])
            rows.append(
                {
                    "table": f"{profile} runs on {dataset}",
                    "dataset": dataset,
                    "variant": label,
                    "batch_size": int(batch),
                    "memory_ratio": float(memory),
                    "metric": metric,
                    "n": s.n,
                    "ours_mean": s.mean,
                    "ours_std": s.std,
                    "run_ids": " ".join(sorted(grp["run_id"])),
                    **pre_main_counts(grp),
                    **retrieval_summary(grp),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def all_tables(
    runs: pd.DataFrame, study: pd.DataFrame, reported: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """{table name: table}: the source tables that have at least one run, then one table per
    (profile, dataset) for the runs no reported row claims. ``runs``: every done run, labelled
    (reports.load.label_runs); ``study``: those that may be compared with reported numbers
    (reports.load.study_runs). Source tables without any run are left out here (REPORT.md
    lists them)."""
    out: dict[str, pd.DataFrame] = {}
    comparison = reported_comparison(study, reported)
    for key, tab in comparison.groupby("table", sort=False):
        if tab["n"].sum() > 0:
            out[str(key)] = tab.reset_index(drop=True)
    claimed = {r for ids in comparison["run_ids"] for r in ids.split()}
    rest = group_table(runs[~runs["run_id"].isin(claimed)])
    for key, tab in rest.groupby("table", sort=True):
        out[str(key)] = tab.reset_index(drop=True)
    return out


MAIN_KEYS = ["profile", "dataset", "label", "batch_size", "memory_ratio"]
# the main table's summaries: (runs-frame column, main-table column stem)
MAIN_METRICS = (
    ("best_recall@1", "best_r1"),
    ("best_recall@10", "best_r10"),
    ("last_recall@1", "last_r1"),
    ("last_recall@10", "last_r10"),
    ("best_map@r", "best_map_r"),
)
MAIN_COLUMNS = [
    *MAIN_KEYS,
    "n",
    *(f"{stem}_{s}" for _, stem in MAIN_METRICS for s in ("mean", "std")),
    "n_map_r",
    "wall_s_mean",
    "run_ids",
]


def main_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every cell in one wide table: one row per (profile, dataset, label, batch size, memory
    ratio) of the done metric-learning runs, with n (seeds) and, each as mean and sample std
    over seeds, Recall@1 and Recall@10 at the best and at the last epoch and MAP@R at the best
    epoch (``n_map_r``: the runs that carry it; records written before it read as NaN), and the
    mean wall time of a run in seconds. ``runs``: the runs frame before
    reports.load.select_epoch (its ``best_``/``last_`` columns), labelled
    (reports.load.label_runs; made here when absent), one run per config and seed.

    Two configs never share a row (grouped on ``config_key`` too). Rows in the order profile,
    dataset, variant (reports.load.variant_rank), label, batch size, memory ratio."""
    if runs.empty:
        return pd.DataFrame(columns=MAIN_COLUMNS)
    frame = runs if "label" in runs else label_runs(runs, None)
    if "task" in frame:
        frame = frame[frame["task"] == "metric"]
    if "status" in frame:
        frame = frame[frame["status"] == "done"]
    rows = []
    for key, grp in frame.groupby([*MAIN_KEYS, "config_key"], sort=False):
        one_run_per_seed(grp)
        row: dict[str, Any] = dict(zip(MAIN_KEYS, key[:-1]))
        row.update(batch_size=int(row["batch_size"]), memory_ratio=float(row["memory_ratio"]))
        row["n"] = len(grp)
        for column, stem in MAIN_METRICS:
            s = summarize(_column(grp, column))
            row.update({f"{stem}_mean": s.mean, f"{stem}_std": s.std})
            if column == "best_map@r":
                row["n_map_r"] = s.n
        row["wall_s_mean"] = summarize(_column(grp, "wall_s")).mean
        row["run_ids"] = " ".join(sorted(grp["run_id"]))
        rows.append(row)
    table = pd.DataFrame(rows, columns=MAIN_COLUMNS)
    order = sorted(
        range(len(table)),
        key=lambda i: (
            str(table.at[i, "profile"]),
            str(table.at[i, "dataset"]),
            variant_rank(str(table.at[i, "label"])),
            str(table.at[i, "label"]),
            table.at[i, "batch_size"],
            table.at[i, "memory_ratio"],
        ),
    )
    return table.iloc[order].reset_index(drop=True)


def _column(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column of ``frame`` as floats; all NaN where the frame lacks it (an older record)."""
    if column not in frame:
        return pd.Series(math.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def fmt_wall(seconds: float) -> str:
    """Wall time of a run: '42 s' under a minute, else '3.5 min'; '-' where unknown."""
    if seconds is None or pd.isna(seconds):
        return NO_VALUE
    return f"{seconds:.0f} s" if seconds < 59.5 else f"{seconds / 60:.1f} min"


def with_count(text: str, k: int, n: int) -> str:
    """'0.41 ± 0.02 (n=2)' where only k of a row's n runs carry the number; ``text`` as is
    where all do, or none ('-')."""
    return f"{text} (n={k})" if 0 < k < n else text


MAIN_SHOWN = {
    "best_r1": "best R@1",
    "best_r10": "best R@10",
    "last_r1": "last R@1",
    "last_r10": "last R@10",
    "best_map_r": "best MAP@R",
}


def display_main_table(table: pd.DataFrame) -> pd.DataFrame:
    """The human form of ``main_table``: strings, each summary as 'mean ± std' ('-' where no
    run carries the number), the wall time per run in seconds or minutes."""
    rows = []
    for r in table.to_dict("records"):
        row = {
            "profile": str(r["profile"]),
            "dataset": str(r["dataset"]),
            "variant": str(r["label"]),
            "batch": str(int(r["batch_size"])),
            "memory": f"{r['memory_ratio']:g}",
            "n": str(int(r["n"])),
        }
        for stem, name in MAIN_SHOWN.items():
            row[name] = fmt_pm(r[f"{stem}_mean"], r[f"{stem}_std"])
        row["best MAP@R"] = with_count(row["best MAP@R"], int(r["n_map_r"]), int(r["n"]))
        row["wall time / run"] = fmt_wall(r["wall_s_mean"])
        rows.append(row)
    columns = ["profile", "dataset", "variant", "batch", "memory", "n", *MAIN_SHOWN.values()]
    return pd.DataFrame(rows, columns=[*columns, "wall time / run"])


def tables_without_runs(runs: pd.DataFrame, reported: pd.DataFrame) -> list[str]:
    comparison = reported_comparison(runs, reported)
    sums = comparison.groupby("table", sort=False)["n"].sum()
    return [str(k) for k, v in sums.items() if v == 0]


def selection_gain(runs: pd.DataFrame) -> pd.DataFrame:
    """What selecting the best epoch on the test set adds: mean over runs of best - last,
    per (profile, dataset) and overall (profile "all")."""
    if runs.empty:
        return pd.DataFrame(columns=["profile", "dataset", "n", "gain_r1", "gain_r10"])
    g = runs.assign(
        gain_r1=runs["best_recall@1"] - runs["last_recall@1"],
        gain_r10=runs["best_recall@10"] - runs["last_recall@10"],
    )
    per = g.groupby(["profile", "dataset"], sort=True).agg(
        n=("run_id", "size"), gain_r1=("gain_r1", "mean"), gain_r10=("gain_r10", "mean")
    )
    per = per.reset_index()
    total = pd.DataFrame(
        [
            {
                "profile": "all",
                "dataset": "all",
                "n": len(g),
                "gain_r1": g["gain_r1"].mean(),
                "gain_r10": g["gain_r10"].mean(),
            }
        ]
    )
    return pd.concat([per, total], ignore_index=True)


SWEEP_KEY = "thesis table 5.14"
SWEEP_STEM = "thesis_table5_14_readings"  # its files under report/tables/
# reading -> (what it is, the miner margins pos/neg); bench.studies labels its blocks the same way
READINGS: dict[str, tuple[str, tuple[float, float]]] = {
    "A": ("default margins 0.2/0.8", DEFAULT_MARGINS),
    "B": ("adjusted margins 0.1/2.0 (thesis appendix 9)", ADJUSTED_MARGINS),
}
SWEEP_MIN_POINTS = 2  # a t interval over the points needs two
SWEEP_LEVEL = 0.95
PER_READING = ("n", "mean", "std", "diff", "verdict", "run_ids")
SWEEP_COLUMNS = ["lambda", "value", "metric", "reported"] + [
    f"{c}_{r}" for r in READINGS for c in PER_READING
]


@dataclass(frozen=True)
class SweepVerdict:
    points: int  # table rows with runs under both readings
    mad: dict[str, float]  # reading -> mean |ours - reported| over those points
    reproduced: dict[str, int]  # reading -> points reproduced
    diff: float  # MAD_A - MAD_B
    ci: tuple[float, float]  # its SWEEP_LEVEL t interval (paired over the points)
    closer: str | None  # the reading the interval says is closer, None when it contains 0
    text: str


def swept_option(label: str) -> tuple[str, float]:
    """'pc_xbn[lambda_mu=0.2]' -> ('lambda_mu', 0.2): the one option a sweep row sets."""
    options = parse_label(label).options
    if len(options) != 1:
        raise ValueError(f"table 5.14 row {label!r} must set exactly one option")
    name, value = options[0]
    return name, float(value)


def sweep_points(runs: pd.DataFrame, reported: pd.DataFrame) -> pd.DataFrame:
    """One row per point of table 5.14: the reported value and, per reading, our runs' n, mean,
    std, ours - reported, the per-number verdict and the run ids. ``runs``: select_epoch output
    of the study runs (reports.load.study_runs), one run per config and seed."""
    rows = []
    for rep in reported[reported["key"] == SWEEP_KEY].to_dict("records"):
        name, value = swept_option(str(rep["variant"]))
        row = {
            "lambda": name,
            "value": value,
            "metric": rep["metric"],
            "reported": float(rep["mean"]),
        }
        for reading, (_, margins) in READINGS.items():
            matched = one_run_per_seed(match_runs(rep, runs, margins))
            c = compare_row(rep, matched[rep["metric"]])
            row.update(
                {
                    f"n_{reading}": c["n"],
                    f"mean_{reading}": c["ours_mean"],
                    f"std_{reading}": c["ours_std"],
                    f"diff_{reading}": c["diff"],
                    f"verdict_{reading}": number_verdict(c),
                    f"run_ids_{reading}": " ".join(sorted(matched["run_id"])),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def has_runs(points: pd.DataFrame) -> bool:
    """Whether any point has a run under either reading (the report shows the section then)."""
    return bool(len(points)) and bool((points[[f"n_{r}" for r in READINGS]] > 0).any(axis=None))


def _wording(closer: str | None, fits: dict[str, bool], diff: float) -> str:
    if closer is None:
        return "cannot tell the readings apart" if any(fits.values()) else "neither fits"
    if fits[closer]:
        return f"fits reading {closer} better by {abs(diff):.2f} points"
    return f"neither fits; reading {closer} is closer by {abs(diff):.2f} points"


def sweep_verdict(points: pd.DataFrame) -> SweepVerdict:
    """Which reading table 5.14's numbers fit (the rule in the module docstring)."""
    both = points[(points["n_A"] > 0) & (points["n_B"] > 0)]
    k = len(both)
    err = {r: both[f"diff_{r}"].abs().to_numpy(dtype=float) for r in READINGS}
    mad = {r: float(e.mean()) if k else math.nan for r, e in err.items()}
    reproduced = {r: int((both[f"verdict_{r}"] == REPRODUCED).sum()) for r in READINGS}
    if k < SWEEP_MIN_POINTS:
        return SweepVerdict(k, mad, reproduced, math.nan, (math.nan, math.nan), None, TOO_FEW)
    d = one_sample_difference(list(err["A"] - err["B"]), 0.0)  # mean = MAD_A - MAD_B
    low, high = d.ci(SWEEP_LEVEL)
    closer = "B" if low > 0 else "A" if high < 0 else None
    fits = {r: 2 * n >= k for r, n in reproduced.items()}
    return SweepVerdict(
        k, mad, reproduced, d.diff, (low, high), closer, _wording(closer, fits, d.diff)
    )


def display_sweep(points: pd.DataFrame) -> pd.DataFrame:
    """The human form of ``sweep_points``: each reading's mean ± std (n), its difference to the
    reported number and the per-number verdict."""
    rows = []
    for p in points.to_dict("records"):
        row = {"lambda": f"{p['lambda']} = {p['value']:.1f}", "reported": f"{p['reported']:.2f}"}
        for r, (name, _) in READINGS.items():
            n = int(p[f"n_{r}"])
            ours = f"{fmt_pm(p[f'mean_{r}'], p[f'std_{r}'])} (n={n})" if n else "not run"
            row.update(
                {
                    f"{r}: {name}": ours,
                    f"{r} − reported": fmt_num(p[f"diff_{r}"]),
                    f"{r} verdict": p[f"verdict_{r}"],
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def verdict_text(v: SweepVerdict) -> str:
    """The verdict with the numbers behind it, one paragraph of Markdown."""
    if v.text == TOO_FEW:
        return (
            f"**Verdict: {TOO_FEW}**: {v.points} point(s) of table 5.14 have runs under both "
            f"readings; the comparison needs {SWEEP_MIN_POINTS}.\n"
        )
    mads = ", ".join(f"reading {r} {v.mad[r]:.2f}" for r in READINGS)
    kept = ", ".join(f"{r} {v.reproduced[r]} of {v.points}" for r in READINGS)
    return (
        f"Over the {v.points} points with runs under both readings, mean |ours − reported|: "
        f"{mads} (A − B = {fmt_ci(v.diff, *v.ci)}, {SWEEP_LEVEL:.0%} t interval over the points). "
        f"Points reproduced: {kept}. **Verdict: {v.text}.**\n"
    )


MOCO_METRIC = "knn_acc"
# The epoch the claim is judged at: the paper's epoch 15 (of 200, "~4 points at epoch 15 on
# CIFAR-10 and CIFAR-100"); the cpu profile trains 10 epochs, so its early epoch is 2: past the
# first epoch (queue still filling, noisiest k-NN), before the cosine LR has fallen by much.
EARLY_EPOCH = {"paper": 15, "cpu": 2}
MOCO_NAMES = {"xbm": "MoCo (xbm)", "xbn": "MoCo+XBN (xbn)"}
MOCO_TABLE_COLUMNS = [
    "profile",
    "dataset",
    "variant",
    "differs",
    "n",
    "early_epoch",
    "early_mean",
    "early_std",
    "last_epoch",
    "last_mean",
    "last_std",
    "best_mean",
    "best_std",
    "best_epoch_mean",
    "run_ids",
]


def early_epoch(profile: str, epochs: int) -> int:
    """The claim's epoch for a profile; other profiles: 15/200 of their epochs (at least 1)."""
    return min(EARLY_EPOCH.get(profile, max(1, round(epochs * 15 / 200))), max(epochs, 1))


def moco_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[(runs["task"] == "moco") & (runs["status"] == "done")]


def at_epoch(epochs: pd.DataFrame, run_ids, epoch: int) -> pd.Series:
    """k-NN accuracy of each run at one main-phase epoch (runs that lack it are left out)."""
    rows = epochs[
        epochs["run_id"].isin(set(run_ids))
        & (epochs["phase"] == "main")
        & (epochs["epoch"] == epoch)
    ]
    return rows.set_index("run_id")[MOCO_METRIC]


def moco_table(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """One row per (profile, dataset, variant, config): k-NN accuracy at the early epoch, at the
    last epoch (no test-set selection) and at the best epoch, mean and sample std over seeds.
    ``differs``: what sets a config apart (reports.load.label_runs; "" where absent)."""
    rows = []
    done = moco_runs(runs)
    keys = ["profile", "dataset", "variant", "config_key"]
    for (profile, dataset, variant, _), sub in done.groupby(keys, sort=True):
        last = int(sub["last_epoch"].max())
        early = early_epoch(profile, last)
        e = summarize(at_epoch(epochs, sub["run_id"], early))
        f, b = summarize(sub["last_knn_acc"]), summarize(sub["best_knn_acc"])
        rows.append(
            {
                "profile": profile,
                "dataset": dataset,
                "variant": variant,
                "differs": sub["differs"].iloc[0] if "differs" in sub else "",
                "n": len(sub),
                "early_epoch": early,
                "early_mean": e.mean,
                "early_std": e.std,
                "last_epoch": last,
                "last_mean": f.mean,
                "last_std": f.std,
                "best_mean": b.mean,
                "best_std": b.std,
                "best_epoch_mean": float(sub["best_epoch"].mean()),
                "run_ids": " ".join(sorted(sub["run_id"])),
            }
        )
    return pd.DataFrame(rows, columns=MOCO_TABLE_COLUMNS)


def display_moco_table(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "dataset": f"{r['dataset']} ({r['profile']})",
                "run": MOCO_NAMES.get(r["variant"], r["variant"])
                + (f" ({r['differs']})" if r["differs"] else ""),
                "n": str(r["n"]),
                "early (epoch)": f"{fmt_pm(r['early_mean'], r['early_std'])} ({r['early_epoch']})",
                "last (epoch)": f"{fmt_pm(r['last_mean'], r['last_std'])} ({r['last_epoch']})",
                "best": fmt_pm(r["best_mean"], r["best_std"]),
                "best epoch (mean)": f"{r['best_epoch_mean']:.1f}",
            }
            for r in table.to_dict("records")
        ]
    )


def table_file_stem(name: str) -> str:
    """'paper table 1' -> 'paper_table1';
    'cpu runs on fashion-mnist' -> 'cpu_runs_fashion-mnist'."""
    source, sep, number = name.partition(" table ")
    if sep:
        return table_slug(source, number)
    return name.replace(" runs on ", "_runs_").replace(" ", "_")
