"""REPORT.md's section on the mechanism (issue 14): the memory-error table per dataset, its two
figures, the mechanism claims' verdicts (judged with the claims table, in their families) and what
staleness costs in Recall@1; the runs without memory_error.csv are named, never an error."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from reports import mechanism as MECH
from reports import phases as PH
from reports import style as S
from reports.contents import MECHANISM_FIGURES, MEMORY_TABLE
from reports.render import display_claims, fmt_ci, to_markdown

if TYPE_CHECKING:
    from reports.contents import Report

TITLE = "## The mechanism: how far the memory is from the current embeddings"
INTRO = (
    "Every variant exists to fix one thing: the stored embeddings were computed by an older "
    "model than the one being trained. At evenly spaced steps of every epoch (and its last), the "
    "probe re-embeds whole stored batches with the current model, with the same images, batch "
    "composition and augmentation draws the training forward used, and measures the L2 distance "
    "between each stored entry and its fresh embedding: the **memory error**, as the loss sees "
    "the entry (after this step's adaptation), and the same for the un-adapted copy, what plain "
    "XBM would hold. **Adaptation gain** = un-adapted error / adapted error (1: the adaptation "
    "changed nothing; above 1: it brought the memory closer), per run the geometric mean over "
    "the points where the memory was adapted. **Pair agreement**: Jaccard overlap of the pairs "
    "the miner selects against the stored and against the re-embedded memory (1: the loss sees "
    "the pairs a fresh memory would give). `oracle_xbm` (beyond the sources) re-embeds its "
    "memory {refresh}: its Recall@1 is the bound any adaptation can reach, and its gap to "
    "`xbm` is what staleness costs at this scale.{stale}\n"
)
CLAIM_COLUMNS = ["claim", "where", "verdict", "A − B [CI]", "CI level", "p (Holm)", "n"]


def oracle_refresh(intervals: list[int]) -> str:
    """How often the oracle runs re-embed their memory, for the intro: each interval the runs
    used (``MECH.refresh_text``), joined when several are present (their claims are kept
    apart, one row each); without oracle runs, the option and its default."""
    if not intervals:
        return (f"every `{MECH.REFRESH}` steps (default {MECH.DEFAULT_REFRESH}: every step; "
                "no run of it here)")  # fmt: skip
    return " in some runs and ".join(MECH.refresh_text(k) for k in intervals)


def intro(intervals: list[int]) -> str:
    """``INTRO`` with the oracle's refresh interval(s) of the runs (``oracle_refresh``); where
    one is above 1, a note that between refreshes its entries go stale as XBM's do."""
    stale = (
        " Between two refreshes its entries go stale as XBM's do, so an interval above 1 makes "
        "it a looser bound than a memory re-embedded every step."
        if any(k > 1 for k in intervals)
        else ""
    )
    return INTRO.format(refresh=oracle_refresh(intervals), stale=stale)


def _figure(name: str, report: Report) -> str:
    title = MECHANISM_FIGURES[name]
    if report.figures.get(name) is None:
        return f"{title}: not drawn (no probed runs in a reference configuration).\n"
    return f"![{title}](figures/{name}.png) ([PDF](figures/{name}.pdf))\n\n{title}.\n"


def _tables(report: Report) -> str:
    t = report.memory
    links = " · ".join(f"[{x}](tables/{MEMORY_TABLE}.{x})" for x in ("md", "csv", "tex"))
    parts = [f"Mean ± sample std over seeds of each run's mean over its probe points. {links}\n"]
    for (profile, dataset), grp in t.groupby(["profile", "dataset"], sort=True):
        shown = MECH.display_memory_table(grp).drop(columns="dataset")
        parts.append(f"### {dataset} ({profile} profile)\n\n" + to_markdown(shown))
    return "\n".join(parts)


def _phases(report: Report) -> str:
    """The memory error and gain per LR phase, per dataset (reports.phases)."""
    t = report.memory_phases
    if t is None or t.empty:
        return ""
    links = " · ".join(f"[{x}](tables/{PH.PHASE_STEM}.{x})" for x in ("md", "csv", "tex"))
    parts = [
        "### Per LR phase\n\nThe same numbers over the probe points before the first LR decay "
        "(main epochs 1 to `lr_step_epochs`, at the full LR) and after it: an average over the "
        "whole run can hide a gain above 1 while the LR is high and below 1 after the decay. "
        f"The closer-memory claims are judged per phase too (secondary family). {links}; per "
        f"epoch: [csv](tables/{PH.EPOCH_STEM}.csv).\n"
    ]
    for (profile, dataset), grp in t.groupby(["profile", "dataset"], sort=True):
        parts.append(f"#### {dataset} ({profile} profile)\n\n"
                     + to_markdown(PH.display_phase_table(grp)))  # fmt: skip
    return "\n".join(parts)


def _staleness(claims: pd.DataFrame) -> str:
    rows = MECH.staleness_rows(claims)
    lines = [
        f"- {r['dataset']} ({r['profile']} profile): {r['a']} − xbm = "
        f"{fmt_ci(r['diff'], r['ci_low'], r['ci_high'])} Recall@1 points, n = {r['n']} "
        f'(CI at the level Holm tested it, {r["level"]:.1%}); "the oracle beats XBM": '
        f"{r['verdict']}."
        for r in rows.to_dict("records")
    ]
    if not lines:
        return "What staleness costs: no `oracle_xbm` and `xbm` runs side by side yet.\n"
    head = "What staleness costs (Recall@1 of the oracle minus that of XBM):\n\n"
    return head + "\n".join(lines) + "\n"


def _claims(report: Report) -> str:
    mech = MECH.mechanism_claims(report.claims)
    text = (
        "Verdicts from the claims table above (the staleness claim in the primary family, the "
        "others in the secondary one, reports.families). The "
        "closer-memory claims test each run's log adaptation gain against 0 over seeds (paired "
        "within the run: adapted and un-adapted copy probed at the same steps); the oracle's "
        "claims compare Recall@1, paired by seed, the bound as non-inferiority within the "
        "claims' margin.\n\n"
    )
    if len(mech):
        text += to_markdown(display_claims(mech)[CLAIM_COLUMNS]) + "\n"
    return text + _untested(report) + _staleness(report.claims)


def _untested(report: Report) -> str:
    missing = [c.text for c in MECH.untested(report.claims)]
    if not missing:
        return ""
    return ("Not tested (no probed runs of the variant, or no `oracle_xbm` runs): "
            + "; ".join(missing) + ".\n\n")  # fmt: skip


def _unprobed(report: Report) -> str:
    u = report.unprobed
    if u is None or u.empty:
        return ""
    parts = []
    for (profile, dataset), grp in u.groupby(["profile", "dataset"], sort=True):
        counts = grp["variant"].value_counts()
        shown = ", ".join(f"{v} ×{counts[v]}" for v in S.ordered(grp["variant"]))
        parts.append(f"{dataset} ({profile}): {shown}")
    listed = "; ".join(parts)
    return (
        f"Left out: {len(u)} done run(s) without memory_error.csv (recorded before the probe "
        f"existed; no_xbm keeps no memory to probe): {listed}. MoCo runs are not probed.\n"
    )


def mechanism_section(report: Report) -> str:
    """The section's Markdown; a short note where no run was probed."""
    done = report.store.done
    intervals = MECH.refresh_intervals(done[done["task"] == "metric"])
    head = f"{TITLE}\n\n{intro(intervals)}\n"
    if report.memory is None or report.memory.empty:
        return head + (
            "No done run has memory_error.csv yet: runs recorded before the probe existed have "
            "none. `xbmbench reproduce` records it for every new metric-learning run.\n\n"
            + _untested(report)
            + _unprobed(report)
        )
    figures = "\n".join(_figure(name, report) for name in MECHANISM_FIGURES)
    parts = [head + _tables(report), _phases(report), figures, _claims(report), _unprobed(report)]
    return "\n".join(p for p in parts if p)
