"""REPORT.md: what a report holds (``Report``) and its page, section by section.

REPORT.md's claims section: the primary family first, the share of the staleness cost
recovered, the secondary (exploratory) family, the verdict rules and the command that would
resolve the open claims.

REPORT.md's section on the mechanism: the memory-error table per dataset, its two
figures, the mechanism claims' verdicts (judged with the claims table, in their families) and what
staleness costs in Recall@1; the runs without memory_error.csv are named, never an error.

REPORT.md: the page that says which published numbers and claims this grid reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from reports.claims import (
    DEFAULT_REFRESH,
    PRIMARY,
    PRIMARY_FAMILY,
    REFRESH,
    SECONDARY_FAMILY,
    Claim,
    design_text,
    family_rows,
    refresh_text,
)
from reports.figures import FIGURES, HEADLINE, MECHANISM_FIGURES, MEMORY_TABLE, MOCO_FIGURE, ordered
from reports.inference import (
    ALPHA,
    DEFAULT_MARGIN,
    HOLDS,
    MAX_SEEDS,
    NOT_RESOLVED,
    POWER,
    REFUTED,
    TOO_FEW,
)
from reports.load import DONE, NOT_COMPARED, Store, provenance_note, read_envs
from reports.mechanism import (
    EPOCH_STEM,
    PHASE_STEM,
    display_memory_table,
    display_phase_table,
    mechanism_claims,
    recovery_section,
    refresh_intervals,
    untested,
)
from reports.tables import (
    EARLY_EPOCH,
    MATCH_TOL,
    NOT_REPRODUCED,
    NOT_RUN,
    READINGS,
    REPRODUCED,
    SELECTED,
    SWEEP_KEY,
    SWEEP_STEM,
    display_claims,
    display_main_table,
    display_moco_table,
    display_sweep,
    display_table,
    fmt_num,
    has_runs,
    sweep_verdict,
    table_file_stem,
    to_markdown,
    verdict_text,
)


@dataclass
class Report:
    results: Path
    epoch: str
    store: Store
    tables: dict[str, pd.DataFrame]
    missing_tables: list[str]
    claims: pd.DataFrame
    untested: list[Claim]
    gain: pd.DataFrame
    figures: dict[str, Figure | None] = field(default_factory=dict)
    moco: pd.DataFrame = field(default_factory=pd.DataFrame)  # reports.tables.moco_table
    # done runs not counted: the same config and seed as a counted run (reports.load)
    duplicates: pd.DataFrame = field(default_factory=pd.DataFrame)
    with_cells: bool = False  # whether the study cells were given (reported numbers need them)
    # thesis table 5.14 under both readings (reports.tables.sweep_points)
    sweep: pd.DataFrame = field(default_factory=pd.DataFrame)
    memory: pd.DataFrame = field(default_factory=pd.DataFrame)  # reports.mechanism.memory_table
    # done metric runs without memory_error.csv (reports.mechanism.unprobed)
    unprobed: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the share of the staleness cost recovered per adapting variant (reports.mechanism)
    recovery: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the memory error and adaptation gain per LR phase and per epoch (reports.mechanism)
    memory_phases: pd.DataFrame = field(default_factory=pd.DataFrame)
    memory_epochs: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the primary claims' power at the designed effect (reports.claims)
    design: pd.DataFrame = field(default_factory=pd.DataFrame)
    # a user's own settings (reports.load.own_settings): setting text -> its figure names
    settings: dict[str, list[str]] = field(default_factory=dict)
    # the wide main table (reports.tables.main_table): one row per cell, best and last
    main: pd.DataFrame = field(default_factory=pd.DataFrame)
    select_by: str = "recall@1"  # the metric that picked each run's best epoch


DEMO_PROFILE, DEMO_STUDY = "cpu", "demo"  # the profile whose claims more demo seeds resolve


def _claims_notes(c: pd.DataFrame) -> str:
    tested = {f: int(g["p"].notna().sum()) for f, g in c.groupby("family")}
    counts = "; ".join(f"{f}: {n}" for f, n in sorted(tested.items()))
    return f"""
- Verdicts: *{HOLDS}*: the CI of A − B excludes 0 in the claimed direction; *{REFUTED}*: it
  excludes 0 in the other direction (for "matches": it lies wholly beyond the margin);
  *{NOT_RESOLVED}*: it contains 0 (for "matches": it straddles the margin), so these runs cannot
  tell (the "seeds needed" column says how many would); *{TOO_FEW}*: fewer than 2 runs on a
  side. With zero spread a non-zero difference is not resolved ("zero spread" in checks).
  "A ~ B" (matches) holds when the 90% CI lies within ±{DEFAULT_MARGIN:g} point (TOST,
  Schuirmann 1987); "A >= B - tol" holds when the CI lies above −{DEFAULT_MARGIN:g} point.
  The margin was fixed before any run.
- **Family-wise error: Holm within each family, per (profile, dataset, setting)** (claims with a
  p-value: {counts}; alpha {ALPHA:g} per family and dataset). Each dataset under each profile
  (and each of your own settings) is its own experiment, so a claim on one dataset does not pay
  for the claims on another, and
  the secondary claims never widen a primary CI. Each CI is shown at the level Holm tested its
  claim at ("CI level"), so a CI that excludes 0 is exactly a Holm rejection; "p (Holm)" is
  the Holm-adjusted p.
- Test: *paired t* on per-seed differences where A's and B's runs pair (the same config apart
  from the variant, the same seeds: they share model initialisation, training subset, sampler
  order and augmentation draws); *Welch t* otherwise. r: correlation of A's and B's per-seed
  results (paired only): what pairing bought. Checks: Wilcoxon signed-rank p (n ≥ 6) and a
  bootstrap 95% CI over seeds (n ≥ 5).
- min. detectable: the smallest |A − B| a two-sided test at alpha {ALPHA:g} detects with power
  {POWER:g} given the observed spread and n. seeds needed: the seeds (pairs, or runs per arm)
  at which the observed difference would be resolved with power {POWER:g} at alpha {ALPHA:g}
  for one claim alone (Holm's correction within its family asks for somewhat more).
"""


PRIMARY_INTRO = (
    "### Primary claims\n\n"
    "These {n} claims were fixed in code (`reports/claims.py`, `PRIMARY`) before the demo's "
    "verdicts were seen, from a pilot's spread and cost: {names}. They are one family, "
    "Holm-corrected within it per (profile, dataset), so each "
    "faces a correction over at most the {n} primary claims of its dataset (one staleness row "
    "per oracle refresh interval), never over the secondary ones.\n\n"
)
SECONDARY_INTRO = (
    "### Secondary claims (exploratory)\n\n"
    "Every other claim: the other claims of the paper and the thesis, the oracle against each "
    "variant, the memory-closer claims per variant and per LR phase, MoCo's. Exploratory, with "
    "their own Holm per (profile, dataset): a verdict here is a lead for a future primary claim, "
    "not a finding of this design.\n\n"
)


def _more_seeds(c: pd.DataFrame) -> str:
    """The command that would resolve the not-resolved claims of the demo-scale profile(s)."""
    open_ = c[(c["verdict"] == NOT_RESOLVED) & c["seeds_needed"].notna()]
    lines = []
    for profile, grp in open_.groupby("profile", sort=True):
        k = int(grp["seeds_needed"].max())
        study = DEMO_STUDY if profile == DEMO_PROFILE else "STUDY"
        lines.append(
            f"- {len(grp)} not-resolved claim(s) on the `{profile}` profile would be "
            f"resolved (power {POWER:g}) with {k} seeds: "
            f"`xbmbench reproduce --study {study} --seeds 0-{k - 1}` "
            "(done seeds are skipped)."
        )
    beyond = c[(c["verdict"] == NOT_RESOLVED) & c["more_than_max"].astype(bool)]
    if len(beyond):
        lines.append(
            f"- {len(beyond)} claim(s) would need more than {MAX_SEEDS} seeds: the "
            "observed difference is too small for its spread."
        )
    return "\n".join(lines) + ("\n" if lines else "")


def _family_table(c: pd.DataFrame, family: str, intro: str) -> str:
    rows = family_rows(c, family)
    if rows.empty:
        return intro + "No claim of this family could be tested here.\n\n"
    return intro + to_markdown(display_claims(rows)) + "\n"


def study_claims(claims: pd.DataFrame) -> pd.DataFrame:
    """The rows judged on the studies' runs (not on a user's own setting)."""
    return claims[claims["setting"] == ""] if "setting" in claims else claims


def claims_section(report: Report) -> str:
    """The primary claims, their design and the share of the staleness cost recovered; the
    secondary claims have a section of their own (``secondary_section``)."""
    c = study_claims(report.claims)
    text = "## Claims\n\n"
    if c.empty:
        text += (
            "No claim could be tested on a study's runs: no runs of the compared variants"
            + (" (your own settings' claims: below)" if report.settings else "")
            + ".\n"
        )
    else:
        counts = ", ".join(f"{k}: {v}" for k, v in c["verdict"].value_counts().items())
        names = "; ".join(f"`{i}`" for i in PRIMARY)
        text += (
            f"Verdicts over all {len(c)} claims: {counts}. A − B in Recall@1 points (MoCo: k-NN "
            "accuracy), [md](tables/claims.md) · [csv](tables/claims.csv) · "
            "[tex](tables/claims.tex) (column `family`); verdict rules and Holm: "
            "[how to read](#how-to-read-this-report).\n\n"
            + _family_table(c, PRIMARY_FAMILY, PRIMARY_INTRO.format(n=len(PRIMARY), names=names))
            + design_text(report.design)
            + recovery_section(report.recovery)
            + _more_seeds(c)
        )
    if report.untested and not c.empty:  # with no study runs, every claim would be listed
        text += (
            "\nClaims with no runs of either side: "
            + "; ".join(c.text for c in report.untested)
            + ".\n"
        )
    return text


def secondary_section(report: Report) -> str:
    c = study_claims(report.claims)
    if c.empty:
        return ""
    return "## " + _family_table(c, SECONDARY_FAMILY, SECONDARY_INTRO).removeprefix("### ")


def _title(name: str) -> str:
    """A setting figure's title: its figure's (``<figure>--<setting slug>``)."""
    base = name.split("--")[0]
    title = FIGURES[base][0] if base in FIGURES else MECHANISM_FIGURES.get(base, base)
    return title.replace("[", "(").replace("]", ")")


def settings_section(report: Report) -> str:
    """Claims and figures of each user setting: runs that are no study cell but share every
    setting apart from the variant and the seed (reports.load.own_settings)."""
    if not report.settings:
        return ""
    parts = [
        "## Your own settings\n\n"
        "Runs that are no study cell, grouped by what they share: every setting apart from the "
        "variant (its options, head and margins), the batch size, the memory and the seed. Each "
        "setting is labelled with how it differs from the nearest study setting and judged as "
        "its own experiment (Holm within it); only claims whose two sides both have runs there "
        "are shown. Published numbers are compared with study cells only.\n"
    ]
    c = report.claims
    for setting, names in report.settings.items():
        rows = c[c["setting"] == setting] if "setting" in c else c.iloc[0:0]
        parts.append(f"### {setting}\n")
        if rows.empty:
            parts.append("No claim has runs on both sides in this setting.\n")
        else:
            parts.append(to_markdown(display_claims(rows)))
        parts += [f"![{_title(n)}](figures/{n}.png) ([PDF](figures/{n}.pdf))\n" for n in names]
    return "\n".join(parts) + "\n"


MECHANISM_TITLE = "## The mechanism: how far the memory is from the current embeddings"
MECHANISM_INTRO = (
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


def oracle_refresh(intervals: list[int]) -> str:
    """How often the oracle runs re-embed their memory, for the section's intro: each interval
    the runs used (``refresh_text``), joined when several are present (their claims are kept
    apart, one row each); without oracle runs, the option and its default."""
    if not intervals:
        return f"every `{REFRESH}` steps (default {DEFAULT_REFRESH}: every step; no run of it here)"
    return " in some runs and ".join(refresh_text(k) for k in intervals)


def mechanism_intro(intervals: list[int]) -> str:
    """``MECHANISM_INTRO`` with the oracle's refresh interval(s) of the runs
    (``oracle_refresh``); where one is above 1, a note that between refreshes its entries go stale
    as XBM's do."""
    stale = (
        " Between two refreshes its entries go stale as XBM's do, so an interval above 1 makes "
        "it a looser bound than a memory re-embedded every step."
        if any(k > 1 for k in intervals)
        else ""
    )
    return MECHANISM_INTRO.format(refresh=oracle_refresh(intervals), stale=stale)


def _mechanism_figure(name: str, report: Report) -> str:
    title = MECHANISM_FIGURES[name]
    if report.figures.get(name) is None:
        return f"{title}: not drawn (no probed runs in a reference configuration).\n"
    return f"![{title}](figures/{name}.png) ([PDF](figures/{name}.pdf))\n\n{title}.\n"


def _memory_tables(report: Report) -> str:
    t = report.memory
    links = " · ".join(f"[{x}](tables/{MEMORY_TABLE}.{x})" for x in ("md", "csv", "tex"))
    parts = [f"Mean ± sample std over seeds of each run's mean over its probe points. {links}\n"]
    for (profile, dataset), grp in t.groupby(["profile", "dataset"], sort=True):
        shown = display_memory_table(grp).drop(columns="dataset")
        parts.append(f"### {dataset} ({profile} profile)\n\n" + to_markdown(shown))
    return "\n".join(parts)


def _phase_tables(report: Report) -> str:
    """The memory error and gain per LR phase, per dataset (reports.mechanism)."""
    t = report.memory_phases
    if t is None or t.empty:
        return ""
    links = " · ".join(f"[{x}](tables/{PHASE_STEM}.{x})" for x in ("md", "csv", "tex"))
    parts = [
        "### Per LR phase\n\nThe same numbers over the probe points before the first LR decay "
        "(main epochs 1 to `lr_step_epochs`, at the full LR) and after it: an average over the "
        "whole run can hide a gain above 1 while the LR is high and below 1 after the decay. "
        f"The closer-memory claims are judged per phase too (secondary family). {links}; per "
        f"epoch: [csv](tables/{EPOCH_STEM}.csv).\n"
    ]
    for (profile, dataset), grp in t.groupby(["profile", "dataset"], sort=True):
        parts.append(
            f"#### {dataset} ({profile} profile)\n\n" + to_markdown(display_phase_table(grp))
        )
    return "\n".join(parts)


def _mechanism_claims(report: Report) -> str:
    """Where the mechanism's claims are judged (not printed again here: each claim row appears
    once in REPORT.md): the staleness claim among the primary claims, the others among the
    secondary ones."""
    n = len(mechanism_claims(study_claims(report.claims)))
    text = (
        f"The mechanism's {n} claim row(s) are judged with the others: the staleness claim (the "
        "oracle beats XBM) among the primary claims, the closer-memory and bound claims among "
        "the secondary ones. The closer-memory claims test each run's log adaptation gain "
        "against 0 over seeds (paired within the run: adapted and un-adapted copy probed at the "
        "same steps); the oracle's claims compare Recall@1, paired by seed, the bound as "
        "non-inferiority within the claims' margin.\n\n"
    )
    return text + _untested_mechanism(report)


def _untested_mechanism(report: Report) -> str:
    missing = [c.text for c in untested(report.claims)]
    if not missing:
        return ""
    return (
        "Not tested (no probed runs of the variant, or no `oracle_xbm` runs): "
        + "; ".join(missing)
        + ".\n\n"
    )


def _unprobed(report: Report) -> str:
    u = report.unprobed
    if u is None or u.empty:
        return ""
    parts = []
    for (profile, dataset), grp in u.groupby(["profile", "dataset"], sort=True):
        counts = grp["variant"].value_counts()
        shown = ", ".join(f"{v} ×{counts[v]}" for v in ordered(grp["variant"]))
        parts.append(f"{dataset} ({profile}): {shown}")
    listed = "; ".join(parts)
    return (
        f"Left out: {len(u)} done run(s) without memory_error.csv (recorded before the probe "
        f"existed; no_xbm keeps no memory to probe): {listed}. MoCo runs are not probed.\n"
    )


def mechanism_section(report: Report) -> str:
    """The section's Markdown; a short note where no run was probed."""
    done = report.store.done
    intervals = refresh_intervals(done[done["task"] == "metric"])
    head = f"{MECHANISM_TITLE}\n\n{mechanism_intro(intervals)}\n"
    if report.memory is None or report.memory.empty:
        return head + (
            "No done run has memory_error.csv yet: runs recorded before the probe existed have "
            "none. `xbmbench reproduce` records it for every new metric-learning run.\n\n"
            + _untested_mechanism(report)
            + _unprobed(report)
        )
    figures = "\n".join(_mechanism_figure(name, report) for name in MECHANISM_FIGURES)
    parts = [
        head + _memory_tables(report),
        _phase_tables(report),
        figures,
        _mechanism_claims(report),
        _unprobed(report),
    ]
    return "\n".join(p for p in parts if p)


DEMO_COMMAND = "xbmbench reproduce"
GAIN_NAMES = {"gain_r1": "best − last R@1", "gain_r10": "best − last R@10"}
STATUS_COLUMNS = ["run_id", "status", "profile", "dataset", "variant", "seed", "error"]


def study_for_table(name: str) -> str:
    """The study whose runs fill a source table (study names of bench.studies)."""
    if name.startswith("paper table "):
        return "paper-table" + name.removeprefix("paper table ")
    if name in ("thesis table 5.14", "thesis table 5.15"):
        return "thesis-pc-sweep"
    return "thesis"


def _rules(epoch: str) -> str:
    which = (
        "the **best** epoch (selected on the test set, as the papers did, among every "
        "evaluated epoch: the network as loaded, epoch −1, and after the warm-up, epoch 0, "
        f'included; a table\'s "{SELECTED}" column says where it was one of those)'
        if epoch == "best"
        else "the **last** epoch (no selection on the test set)"
    )
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
  CPU demo), off the published grid or off the study cells are in the main table (and in files
  of their own under `tables/`, with reported value "-").
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
        if published(t):
            v = t["verdict"]
            rows.append(
                {
                    "table": name,
                    "numbers": len(t),
                    REPRODUCED: int((v == REPRODUCED).sum()),
                    NOT_REPRODUCED: int((v == NOT_REPRODUCED).sum()),
                    NOT_RUN: int((v == NOT_RUN).sum()),
                }
            )
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
        text += (
            "\nNo study cells were given: no run is compared with a published number "
            "(`xbmbench report` gives them).\n"
        )
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


def published(table: pd.DataFrame) -> bool:
    """Does a report table compare runs with published numbers (a source table)?"""
    return "reported_mean" in table and bool(table["reported_mean"].notna().any())


def _tables_section(report: Report) -> str:
    parts = [
        "## Published numbers\n\n"
        "Each source table beside our runs of its study cells. Runs no reported row claims "
        "are in the main table above (and in their own files under `tables/`).\n",
        _glance_numbers(report),
    ]
    for name, table in report.tables.items():
        if not published(table):
            continue
        stem = table_file_stem(name)
        links = " · ".join(f"[{x}](tables/{stem}.{x})" for x in ("md", "csv", "tex"))
        links += provenance_note(report.results, table)  # runs of other code, versions, CPUs
        shown = display_table(table)
        parts.append(f"### {name}\n\n{links}\n\n" + to_markdown(shown))
        if SELECTED in shown:
            parts.append(SELECTED_NOTE)
    if report.missing_tables:
        parts.append("Source tables with no runs yet (they show only the reported numbers):\n")
        parts += [
            f"- {n}: `xbmbench reproduce --study {study_for_table(n)}`"
            for n in report.missing_tables
        ]
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
    if not has_runs(report.sweep):
        return ""
    names = "; ".join(f"reading {r}: {name}" for r, (name, _) in READINGS.items())
    links = " · ".join(f"[{x}](tables/{SWEEP_STEM}.{x})" for x in ("md", "csv", "tex"))
    return (
        f"## {SWEEP_KEY} under both readings\n\n"
        "The thesis' tables 5.14 and 5.15 cannot both describe the default margins (85.0 vs "
        f"39.69 at lambda_mu 0.5, lambda_sigma 1), so the sweep runs under both ({names}). "
        f'The table "{SWEEP_KEY}" above compares reading A only (its labels\' margins); '
        "here each point is set beside both.\n\n"
        f"{links}\n\n"
        + to_markdown(display_sweep(report.sweep))
        + "\n"
        + verdict_text(sweep_verdict(report.sweep))
        + "\n"
        "Rule: the points with runs under both readings (at least 2); per reading the mean "
        "|ours − reported| over them; a reading is closer when the 95% t interval of the "
        "per-point differences of |ours − reported| (A − B) excludes 0; a reading fits when at "
        "least half of the points are reproduced under it (the tables' rule). \"fits reading "
        'R better": R is closer and fits; "neither fits": the closer reading (if any) does '
        'not fit; "cannot tell the readings apart": neither is closer, one fits.\n'
    )


def _gain_section(report: Report) -> str:
    g = report.gain
    if g.empty:
        return ""
    total = g.iloc[-1]
    shown = g.assign(
        gain_r1=[fmt_num(x) for x in g["gain_r1"]], gain_r10=[fmt_num(x) for x in g["gain_r10"]]
    ).astype(str)
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
            parts.append(
                f"### {title}\n\n![{title}](figures/{name}.png) ([PDF](figures/{name}.pdf))\n"
            )
    if missing:
        parts += ["Not drawn (no runs behind them):\n", *missing]
    return "\n".join(parts) + "\n"


def _moco_section(report: Report) -> str:
    """MoCo with and without XBN (paper fig. 2): the table and the figure, or how to get them."""
    name, title = MOCO_FIGURE
    text = (
        "## MoCo with and without XBN (paper fig. 2, appendix B)\n\n"
        "Self-supervised MoCo with the memory as its queue: `xbm` is plain MoCo, `xbn` adapts "
        "the queue to the keys being enqueued. k-NN accuracy (k = 200, t = 0.1) of the test "
        "set against the training set, query encoder. The claim row above is judged on it at "
        f"the early epoch: {EARLY_EPOCH['paper']} for the paper profile (the paper's "
        f"epoch 15 of 200), {EARLY_EPOCH['cpu']} for the cpu profile. "
        "MoCo runs never enter the metric-learning tables.\n\n"
    )
    if report.moco.empty:
        return text + (
            "No MoCo runs: `xbmbench reproduce --study paper-moco` (GPU, CIFAR) or "
            "`xbmbench reproduce --study demo-moco` (CPU, minutes).\n"
        )
    text += (
        "[md](tables/moco.md) · [csv](tables/moco.csv) · [tex](tables/moco.tex)\n\n"
        + to_markdown(display_moco_table(report.moco))
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


def _values(runs: pd.DataFrame, column: str) -> str:
    values = sorted({str(v) for v in runs[column].dropna()})
    return ", ".join(values) if len(values) <= 4 else f"{len(values)} {column}s"


def _seeds(runs: pd.DataFrame) -> str:
    seeds = sorted({int(s) for s in runs["seed"].dropna()})
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


ENVIRONMENT = (  # (env.json field, its prefix); device_name only where the device is a GPU
    ("cpu_model", ""),
    ("gpu", ""),
    ("torch", "torch "),
    ("pytorch_metric_learning", "PML "),
    ("timm", "timm "),
)


def _env_value(env: dict, key: str) -> object:
    if key == "gpu":  # a CPU's device_name is only its architecture
        return env.get("device_name") if str(env.get("device", "")).startswith("cuda") else None
    return env.get(key)


def environment(report: Report) -> str:
    """The machine and libraries of the done runs in one phrase (each value once; "mixed"
    where the runs disagree: the tables say which)."""
    envs = read_envs(report.results, report.store.done["run_id"])
    parts = []
    for key, prefix in ENVIRONMENT:
        values = {str(_env_value(e, key)) for e in envs.values() if _env_value(e, key)}
        if len(values) == 1:
            parts.append(prefix + values.pop())
        elif values:
            parts.append(f"{prefix}mixed ({len(values)} values)")
    threads = {e.get("torch_threads") for e in envs.values() if e.get("torch_threads")}
    if len(threads) == 1:
        parts.append(f"{threads.pop()} torch thread(s) per run")
    return "; ".join(parts) or "not recorded"


def _selected_by(report: Report) -> str:
    """ ", chosen by MAP@R" where another metric than Recall@1 picked the best epoch, with the
    runs that had none and kept their Recall@1 choice (reports.load.select_epoch)."""
    if report.epoch != "best" or report.select_by == "recall@1":
        return ""
    done, epochs = report.store.done, report.store.epochs
    by = report.select_by
    has = epochs.loc[epochs[by].notna(), "run_id"] if by in epochs else []
    kept = int((~done["run_id"].isin(set(has))).sum())
    fallback = f"; {kept} run(s) without it kept their Recall@1 choice" if kept else ""
    return f", chosen by {report.select_by}{fallback}"


def header(report: Report) -> str:
    """The page's first paragraph: what ran, where, which epoch; the reference check, where the
    study has one, is added as one line under it (bench.verify)."""
    runs, done = report.store.runs, report.store.done
    what = (
        f"{len(runs)} runs ({len(done)} done) under `{report.results}/runs/`"
        + (
            f": profile {_values(done, 'profile')}; {_values(done, 'dataset')}; "
            f"{done['variant'].nunique()} variants; {_seeds(done)}"
            if len(done)
            else ""
        )
        + f". Tables use the **{report.epoch}** epoch of each run{_selected_by(report)}."
    )
    return (
        f"# xbmbench report\n\n**What ran:** {what} **Where:** {environment(report)}. "
        "[How to read this report](#how-to-read-this-report) · [every run](#runs)\n"
    )


MAIN_TITLE = "## Main table: every cell, best and last epoch"


def main_section(report: Report) -> str:
    """Every cell in one wide table (reports.tables.main_table); published comparisons follow
    in the per-source tables."""
    if report.main.empty:
        return ""
    return (
        f"{MAIN_TITLE}\n\n"
        "Mean ± sample std over seeds (n runs per cell); best: the epoch selected on the test "
        "set, last: the final epoch; wall time: mean per run. "
        "[csv](tables/main.csv) · [md](tables/main.md) · [tex](tables/main.tex)"
        + provenance_note(report.results, report.main)  # runs of other code, versions, CPUs
        + "\n\n"
        + to_markdown(display_main_table(report.main))
    )


def report_text(report: Report) -> str:
    """The whole of REPORT.md, in the order a reader needs: what ran, the primary claims, the
    headline figure, the main table, the mechanism, the secondary claims, the user's own
    settings, the published numbers, the other figures, the runs and how to read it all."""
    if report.store.runs.empty:
        return empty_report(report)
    sections = [
        header(report),
        claims_section(report),
        _headline_section(report),
        main_section(report),
        mechanism_section(report),  # the memory error and the oracle bound
        secondary_section(report),
        settings_section(report),
        _tables_section(report),
        _sweep_section(report),
        _moco_section(report),
        _gain_section(report),
        _figures_section(report),
        _runs_section(report),
        _rules(report.epoch) + _claims_notes(study_claims(report.claims)),
    ]
    return "\n".join(s for s in sections if s)
