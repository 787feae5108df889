"""REPORT.md: the page that says which published numbers and claims this grid reproduced."""

from __future__ import annotations

import pandas as pd

from reports import moco as M
from reports import sweep as SW
from reports.claims_page import claims_section
from reports.configs import NOT_COMPARED
from reports.contents import FIGURES, HEADLINE, Report, table_file_stem
from reports.load import DONE
from reports.mechanism_page import mechanism_section
from reports.provenance import provenance_note
from reports.render import (
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
    SELECTED,
    display_table,
    fmt_num,
    to_markdown,
)  # fmt: skip
from reports.stats import MATCH_TOL

DEMO_COMMAND = "xbmbench reproduce"
GAIN_NAMES = {"gain_r1": "best − last R@1", "gain_r10": "best − last R@10"}
STATUS_COLUMNS = ["run_id", "status", "profile", "dataset", "variant", "seed", "error"]


def study_for_table(name: str) -> str:
    """The study whose runs fill a source table (study names from DESIGN.md)."""
    if name.startswith("paper table "):
        return "paper-table" + name.removeprefix("paper table ")
    if name in ("thesis table 5.14", "thesis table 5.15"):
        return "thesis-pc-sweep"
    return "thesis"


def _rules(epoch: str) -> str:
    which = ("the **best** epoch (selected on the test set, as the papers did, among every "
             "evaluated epoch: the network as loaded, epoch −1, and after the warm-up, epoch 0, "
             f"included; a table's \"{SELECTED}\" column says where it was one of those)"
             if epoch == "best"
             else "the **last** epoch (no selection on the test set)")  # fmt: skip
    not_compared = ", ".join(f"`{f}`" for f in NOT_COMPARED)
    return f"""## How to read this report

- Every number is from {which}; `xbmbench report --epoch best|last` switches.
- Ours: mean ± sample standard deviation (ddof = 1) over seeds, n = number of runs; one run has
  no std. Only runs with status `done` enter tables, claims and figures.
- Runs are pooled only when their whole config is equal except {not_compared}
  (epochs, lr, model, training subset, workers and every other field included), and each seed
  counts once per config. A run that is no study cell gets its own row, labelled with what differs
  from the nearest cell, e.g. `xbm (epochs=2)`.
- A reported row is compared only with `done` runs whose config equals the study cell that
  targets it: profile `paper`, the same dataset, variant, head, options, miner margins, batch size
  and memory ratio (memory ignored for no_xbm), every other field as the study sets it. Label
  grammar: `no_xbm_512` = no_xbm at batch 512, `X+l2_bn` = head l2_bn, `pc_xbn[lambda_mu=0.2]` =
  that option, `pc_xbn_adjusted_margin` = margins pos 0.1 / neg 2.0. Runs of other profiles (the
  CPU demo), off the published grid or off the study cells get their own tables with reported
  value "-".
- diff = ours − reported, with its 95% CI and two-sided p: Welch's t (unequal variances)
  against the reported mean ± std and runs count where the source gives a std; otherwise the
  one-sample t of our runs against the reported mean taken as exact. Both need n ≥ 2 of ours.
- A number is **reproduced** when |diff| ≤ max({MATCH_TOL:g} point, 2 × spread), spread =
  sqrt(s_ours²/n_ours + s_rep²/n_rep) (an unknown std counts as 0).
- Claims compare Recall@1 of variant A and B on one (profile, dataset), at its reference cell:
  the most common batch size (ties: the smaller) and the most common non-zero memory ratio, unless
  the label fixes the batch (`no_xbm_512`) or the claim is about small batches (the smallest batch
  below the reference with runs on both sides). The claims table's own notes give the verdict
  rules; "reported A − B" is the same difference in the source's own numbers.
- Verdicts on the `cpu` profile are **demo-scale**: a small backbone, small images, few epochs,
  a small dataset. They check the pipeline and the direction of effects, not the papers' numbers.
"""


def _glance_numbers(report: Report) -> str:
    rows = []
    for name, t in report.tables.items():
        if "reported_mean" in t and t["reported_mean"].notna().any():
            v = t["verdict"]
            rows.append({"table": name, "numbers": len(t), REPRODUCED: int((v == REPRODUCED).sum()),
                         NOT_REPRODUCED: int((v == NOT_REPRODUCED).sum()),
                         NOT_RUN: int((v == NOT_RUN).sum())})  # fmt: skip
    if not rows:
        return "No published number has matching runs yet.\n"
    return to_markdown(pd.DataFrame(rows))


def _headline_section(report: Report) -> str:
    title, study = FIGURES[HEADLINE]
    text = f"## Headline figure: {title}\n\n"
    if report.figures.get(HEADLINE) is None:
        return text + f"Not drawn: no runs. `xbmbench reproduce --study {study}`\n"
    return text + (
        f"![{title}](figures/{HEADLINE}.png) ([PDF](figures/{HEADLINE}.pdf))\n\n"
        "Per (profile, dataset), at its reference cell: each variant's mean Recall@1 minus that "
        "of XBM (filled circle, solid line) and of no-XBM (open square, dashed), with its 95% "
        "CI (paired t where the runs pair, else Welch; not Holm-adjusted), and the difference "
        "in the source's own numbers (open diamond) where a paper reports both. A bar is drawn "
        "where both sides have at least 2 runs.\n"
    )


def _runs_section(report: Report) -> str:
    runs = report.store.runs
    counts = runs["status"].value_counts()
    text = "## Runs\n\n" + ", ".join(f"{v} {k}" for k, v in counts.items()) + ".\n"
    if not report.with_cells:
        text += ("\nNo study cells were given: no run is compared with a published number "
                 "(`xbmbench report` gives them).\n")  # fmt: skip
    if len(report.duplicates):
        text += "\nNot counted (the same config and seed as a counted run):\n\n" + to_markdown(
            report.duplicates[STATUS_COLUMNS].fillna("").astype(str)
        )
    others = runs[runs["status"] != DONE]
    if len(others):
        text += "\nNot in the tables (not `done`):\n\n" + to_markdown(
            others[STATUS_COLUMNS].fillna("").astype(str)
        )
    return text


def _tables_section(report: Report) -> str:
    parts = ["## Tables\n"]
    for name, table in report.tables.items():
        stem = table_file_stem(name)
        links = " · ".join(f"[{x}](tables/{stem}.{x})" for x in ("md", "csv", "tex"))
        links += provenance_note(report.results, table)  # runs of other code, versions, CPUs
        shown = display_table(table)
        parts.append(f"### {name}\n\n{links}\n\n" + to_markdown(shown))
        if SELECTED in shown:
            parts.append(SELECTED_NOTE)
    if report.missing_tables:
        parts.append("Source tables with no runs yet (they show only the reported numbers):\n")
        parts += [f"- {n}: `xbmbench reproduce --study {study_for_table(n)}`"
                  for n in report.missing_tables]  # fmt: skip
    return "\n".join(parts) + "\n"


SELECTED_NOTE = (
    f"*{SELECTED}*: in how many of a row's seeds the best epoch is the network as loaded "
    "(epoch −1: pretrained backbone, untrained head) or after the warm-up (epoch 0), not an "
    "epoch of training with the memory. The XBN paper says the same of its table 3's L2+BN "
    'rows (footnote 6: "the best validation performance is obtained by the pre-trained '
    'network").\n'
)


def _sweep_section(report: Report) -> str:
    """Thesis table 5.14 under both readings of its margins, and which one it fits."""
    if not SW.has_runs(report.sweep):
        return ""
    names = "; ".join(f"reading {r}: {name}" for r, (name, _) in SW.READINGS.items())
    links = " · ".join(f"[{x}](tables/{SW.SWEEP_STEM}.{x})" for x in ("md", "csv", "tex"))
    return (
        f"## {SW.SWEEP_KEY} under both readings\n\n"
        "The thesis' tables 5.14 and 5.15 cannot both describe the default margins (85.0 vs "
        f"39.69 at lambda_mu 0.5, lambda_sigma 1), so the sweep runs under both ({names}). "
        f"The table \"{SW.SWEEP_KEY}\" above compares reading A only (its labels' margins); "
        "here each point is set beside both.\n\n"
        f"{links}\n\n" + to_markdown(SW.display_sweep(report.sweep)) + "\n"
        + SW.verdict_text(SW.sweep_verdict(report.sweep)) + "\n"
        "Rule: the points with runs under both readings (at least 2); per reading the mean "
        "|ours − reported| over them; a reading is closer when the 95% t interval of the "
        "per-point differences of |ours − reported| (A − B) excludes 0; a reading fits when at "
        "least half of the points are reproduced under it (the tables' rule). \"fits reading "
        "R better\": R is closer and fits; \"neither fits\": the closer reading (if any) does "
        "not fit; \"cannot tell the readings apart\": neither is closer, one fits.\n"
    )  # fmt: skip


def _gain_section(report: Report) -> str:
    g = report.gain
    if g.empty:
        return ""
    total = g.iloc[-1]
    shown = g.assign(gain_r1=[fmt_num(x) for x in g["gain_r1"]],
                     gain_r10=[fmt_num(x) for x in g["gain_r10"]]).astype(str)  # fmt: skip
    return (
        "## What selecting the best epoch on the test set adds\n\n"
        f"Mean over {int(total['n'])} done runs of best − last: Recall@1 "
        f"{fmt_num(total['gain_r1'])} points, Recall@10 {fmt_num(total['gain_r10'])} points.\n\n"
        + to_markdown(shown.rename(columns=GAIN_NAMES))
    )


def _figures_section(report: Report) -> str:
    parts, missing = ["## Figures\n"], []
    for name, (title, study) in FIGURES.items():
        if name == HEADLINE:  # shown right after the claims table
            continue
        if report.figures.get(name) is None:
            missing.append(f"- {title}: no runs; `xbmbench reproduce --study {study}`")
        else:
            parts.append(f"### {title}\n\n![{title}](figures/{name}.png) "
                         f"([PDF](figures/{name}.pdf))\n")  # fmt: skip
    if missing:
        parts += ["Not drawn (no runs behind them):\n", *missing]
    return "\n".join(parts) + "\n"


def _moco_section(report: Report) -> str:
    """MoCo with and without XBN (paper fig. 2): the table and the figure, or how to get them."""
    name, title = M.FIGURE
    text = (
        "## MoCo with and without XBN (paper fig. 2, appendix B)\n\n"
        "Self-supervised MoCo with the memory as its queue: `xbm` is plain MoCo, `xbn` adapts "
        "the queue to the keys being enqueued. k-NN accuracy (k = 200, t = 0.1) of the test "
        "set against the training set, query encoder. The claim row above is judged on it at "
        f"the early epoch: {M.EARLY_EPOCH['paper']} for the paper profile (the paper's "
        f"epoch 15 of 200), {M.EARLY_EPOCH['cpu']} for the cpu profile. "
        "MoCo runs never enter the metric-learning tables.\n\n"
    )
    if report.moco.empty:
        return text + (
            "No MoCo runs: `xbmbench reproduce --study paper-moco` (GPU, CIFAR) or "
            "`xbmbench reproduce --study demo-moco` (CPU, minutes).\n"
        )
    text += (
        "[md](tables/moco.md) · [csv](tables/moco.csv) · [tex](tables/moco.tex)\n\n"
        + to_markdown(M.display_moco_table(report.moco))
    )
    if report.figures.get(name) is not None:
        text += f"\n![{title}](figures/{name}.png) ([PDF](figures/{name}.pdf))\n"
    return text


def empty_report(report: Report) -> str:
    return (
        "# xbmbench report\n\n"
        f"No run records were found under `{report.results}/runs/`.\n\n"
        f"- `{DEMO_COMMAND}` runs the CPU demo study (minutes on a laptop) and writes this "
        "report.\n"
        "- `xbmbench reproduce --study paper-table1` (GPU, datasets prepared) reproduces the"
        " paper's table 1; `xbmbench grid list --study S` shows a study's cells.\n"
        "- Then run `xbmbench report` again.\n"
    )


def report_text(report: Report) -> str:
    """The whole of REPORT.md: the claims table first, then the headline figure."""
    if report.store.runs.empty:
        return empty_report(report)
    done = int((report.store.runs["status"] == DONE).sum())
    head = (
        "# xbmbench report\n\n"
        f"{len(report.store.runs)} run records under `{report.results}/runs/` ({done} done). "
        f"Tables use the **{report.epoch}** epoch of each run.\n"
    )
    glance = "## Published numbers at a glance\n\n" + _glance_numbers(report)
    sections = [head, claims_section(report), _headline_section(report), glance,
                _runs_section(report), _tables_section(report), _sweep_section(report),
                _moco_section(report),
                mechanism_section(report),  # issue 14: the memory error and the oracle bound
                _gain_section(report), _figures_section(report), _rules(report.epoch)]  # fmt: skip
    return "\n".join(s for s in sections if s)
