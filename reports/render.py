"""Numbers -> text: the display form of a table, Markdown and LaTeX writers (no I/O here)."""

from __future__ import annotations

import math

import pandas as pd

from reports.inference import MAX_SEEDS, TOO_FEW
from reports.stats import MATCH_TOL, PRE_MAIN_COUNTS

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
    parts = [f"best = {PRE_MAIN_TEXT[phase]} in {int(row[col])} of {int(row['n'])} seeds"
             for phase, col in PRE_MAIN_COUNTS.items() if row.get(col, 0) > 0]  # fmt: skip
    return "; ".join(parts)


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The human form of a comparison table (see reports.tables.COLUMNS); a "selected epoch"
    column where a row's best epoch is the network as loaded or the warm-up."""
    rows = []
    for r in with_verdicts(table).to_dict("records"):
        rep_n = "" if pd.isna(r["reported_runs"]) else f" (n={int(r['reported_runs'])})"
        rep = fmt_pm(r["reported_mean"], r["reported_std"])
        rows.append({
            "dataset": r["dataset"], "variant": r["variant"], "batch": str(r["batch_size"]),
            "memory": f"{r['memory_ratio']:g}", "metric": r["metric"],
            "ours (mean ± std)": fmt_pm(r["ours_mean"], r["ours_std"]) if r["n"] else NOT_RUN,
            "n": str(r["n"]), "reported": rep + (rep_n if rep != NO_VALUE else ""),
            "diff [95% CI]": fmt_ci(r["diff"], r["ci_low"], r["ci_high"]),
            "p": fmt_num(r["p"], ".3g"), "test": METHODS.get(r["test"], NO_VALUE),
            "verdict": r["verdict"], SELECTED: selected_note(r),
        })  # fmt: skip
    shown = pd.DataFrame(rows)
    return (
        shown
        if len(shown) and shown[SELECTED].astype(bool).any()
        else shown.drop(columns=SELECTED, errors="ignore")
    )


METHODS = {"paired": "paired t", "welch": "Welch t", "one-sample": "one-sample t"}


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
        rows.append({
            "claim": r["claim"], "where": f"{r['dataset']}, {r['scale']}{batch}",
            "verdict": r["verdict"], "A − B [CI]": fmt_ci(r["diff"], r["ci_low"], r["ci_high"]),
            "CI level": f"{r['level']:.1%}" if judged else NO_VALUE,
            "p (Holm)": fmt_num(r["p_holm"], ".3g"), "n": str(r["n"]),
            "min. detectable": fmt_num(r["mdd"], ".2f"), "seeds needed": fmt_seeds(r),
            "r": fmt_num(r["correlation"], ".2f"),
            "test": METHODS.get(r["method"], r["method"]) if judged else NO_VALUE,
            "reported A − B": fmt_num(r["reported_diff"]), "checks": _checks(r) or NO_VALUE,
        })  # fmt: skip
    return pd.DataFrame(rows)


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table ('|' in cells escaped)."""

    def cell(x: object) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    sep = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(x) for x in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}  # fmt: skip


def tex_escape(text: str) -> str:
    out = "".join(_TEX.get(ch, ch) for ch in str(text))
    return out.replace("±", r"$\pm$")


def to_latex(frame: pd.DataFrame, caption: str) -> str:
    """A booktabs table (needs \\usepackage{booktabs})."""
    cols = "l" * len(frame.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{tex_escape(caption)}}}",
             rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(tex_escape(c) for c in frame.columns) + r" \\", r"\midrule"]  # fmt: skip
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(tex_escape(x) for x in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
