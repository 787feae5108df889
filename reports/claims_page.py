"""REPORT.md's claims section: the primary family first, the share of the staleness cost
recovered, the secondary (exploratory) family, the verdict rules and the command that would
resolve the open claims."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from reports.design import design_text
from reports.families import PRIMARY, PRIMARY_FAMILY, SECONDARY_FAMILY, family_rows
from reports.inference import (
    ALPHA,
    DEFAULT_MARGIN,
    HOLDS,
    MAX_SEEDS,
    NOT_RESOLVED,
    POWER,
    REFUTED,
    TOO_FEW,
)  # fmt: skip
from reports.recovery import recovery_section
from reports.render import display_claims, to_markdown

if TYPE_CHECKING:
    from reports.contents import Report

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
- **Family-wise error: Holm within each family, per (profile, dataset)** (claims with a
  p-value: {counts}; alpha {ALPHA:g} per family and dataset). Each dataset under each profile
  is its own experiment, so a claim on one dataset does not pay for the claims on another, and
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
- Verdicts on the `cpu` profile are demo-scale (small backbone, small images, few epochs): they
  check the pipeline and the direction of effects, not the papers' numbers.
"""


PRIMARY_INTRO = (
    "### Primary claims\n\n"
    "These {n} claims were fixed in code (`reports/families.py`, `PRIMARY`) before the demo's "
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
        lines.append(f"- {len(grp)} not-resolved claim(s) on the `{profile}` profile would be "
                     f"resolved (power {POWER:g}) with {k} seeds: "
                     f"`xbmbench reproduce --study {study} --seeds 0-{k - 1}` "
                     "(done seeds are skipped).")  # fmt: skip
    beyond = c[(c["verdict"] == NOT_RESOLVED) & c["more_than_max"].astype(bool)]
    if len(beyond):
        lines.append(f"- {len(beyond)} claim(s) would need more than {MAX_SEEDS} seeds: the "
                     "observed difference is too small for its spread.")  # fmt: skip
    return "\n".join(lines) + ("\n" if lines else "")


def _family_table(c: pd.DataFrame, family: str, intro: str) -> str:
    rows = family_rows(c, family)
    if rows.empty:
        return intro + "No claim of this family could be tested here.\n\n"
    return intro + to_markdown(display_claims(rows)) + "\n"


def claims_section(report: Report) -> str:
    c = report.claims
    text = "## Claims\n\n"
    if c.empty:
        text += "No claim could be tested: no runs of the compared variants.\n"
    else:
        counts = ", ".join(f"{k}: {v}" for k, v in c["verdict"].value_counts().items())
        names = "; ".join(f"`{i}`" for i in PRIMARY)
        text += (
            f"Verdicts: {counts}. A − B in Recall@1 points (MoCo: k-NN accuracy), "
            "[md](tables/claims.md) · [csv](tables/claims.csv) · [tex](tables/claims.tex) "
            "(column `family`)\n\n"
            + _family_table(c, PRIMARY_FAMILY, PRIMARY_INTRO.format(n=len(PRIMARY), names=names))
            + design_text(report.design)
            + recovery_section(report.recovery)
            + _family_table(c, SECONDARY_FAMILY, SECONDARY_INTRO)
            + _claims_notes(c) + _more_seeds(c)
        )  # fmt: skip
    if report.untested:
        text += ("\nClaims with no runs of either side: "
                 + "; ".join(c.text for c in report.untested) + ".\n")  # fmt: skip
    return text
