"""After a report over runs like the default demo (10 variants x 3 seeds, Fashion-MNIST, cpu
profile): REPORT.md opens with the claims table (four verdicts, CI, seeds needed for every
claim, Holm said under it), then the forest plot with one CI bar per (variant, reference)."""

from __future__ import annotations

import re

import pytest

from bench.studies import study_cells
from reports.build import compute, write
from reports.claims import REFERENCES
from reports.figures import ci_bar_count
from reports.inference import HOLDS, NOT_RESOLVED, REFUTED, TOO_FEW

from .conftest import DEMO_VARIANTS, make_demo

VERDICTS = {HOLDS, REFUTED, NOT_RESOLVED, TOO_FEW}


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "results"
    root.mkdir()
    make_demo(root)
    report = compute(root, cells=study_cells(("demo-fashion",)))
    return report, write(report).read_text()


def _first_table(text: str, after: str = "") -> list[dict[str, str]]:
    """The first Markdown table of ``text`` after the first occurrence of ``after``."""
    text = text[text.index(after) :]
    lines = text[text.index("\n| ") + 1 :].split("\n")
    rows = [line for line in lines[: next(i for i, x in enumerate(lines) if not x.startswith("|"))]]
    head = [c.strip() for c in rows[0].strip("|").split(" | ")]
    return [dict(zip(head, (c.strip() for c in r.strip("|").split(" | ")))) for r in rows[2:]]


def test_report_opens_with_the_claims_table(demo_report):
    _, text = demo_report
    sections = re.findall(r"^## (.+)$", text, flags=re.M)
    assert sections[0] == "Claims" and sections[1].startswith("Headline figure")
    # two families since the first table is the primary family (here 2 of its 3
    # claims: the fixture has no oracle runs), the secondary one (exploratory) follows
    primary = _first_table(text)
    assert [r["claim"] for r in primary] == ["XBM beats no-XBM", "XBN beats XBM on every dataset"]
    secondary = _first_table(text, "## Secondary claims (exploratory)")
    assert len(secondary) >= 5 and not {r["claim"] for r in primary} & {
        r["claim"] for r in secondary
    }
    rows = primary + secondary
    for row in rows:
        assert row["verdict"] in VERDICTS
        assert re.fullmatch(r"\d+\.\d%|-", row["CI level"])
        if row["verdict"] == TOO_FEW:
            assert row["seeds needed"] == "-"
            continue
        assert re.fullmatch(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]", row["A − B [CI]"])
        if "zero spread" not in row["checks"]:  # no spread: no power (reports.inference)
            assert re.fullmatch(r"\d+|more than 50", row["seeds needed"]), row
        assert row["test"] == "paired t" and row["r"] != "-"  # the demo's cells pair
        assert row["min. detectable"] != "-" and row["p (Holm)"] != "-"
    assert {"holds", "not resolved"} & {r["verdict"] for r in rows}
    claims = text[text.index("## Claims") : text.index("## Headline figure")]
    assert "fixed in code (`reports/claims.py`, `PRIMARY`) before the demo's verdicts" in claims
    assert "### Primary claims" in claims and "Secondary claims" not in claims
    assert text.index("## Headline figure") < text.index("## Secondary claims")
    rules = text[text.index("## How to read this report") :]  # linked from the header
    assert "(#how-to-read-this-report)" in text[: text.index("## Claims")]
    assert "Holm within each family, per (profile, dataset, setting)" in rules


def test_forest_plot_comes_first_with_one_bar_per_pair(demo_report):
    report, text = demo_report
    fig = report.figures["forest"]
    pairs = {(v, r) for r in REFERENCES for v in DEMO_VARIANTS if v != r}
    assert ci_bar_count(fig) == len(pairs) == 18
    links = re.findall(r"\(figures/(\w+)\.png\)", text)
    assert links[0] == "forest" and len(links) > 1
    out = report.results / "report" / "figures"
    assert (out / "forest.png").stat().st_size > 0 and (out / "forest.pdf").stat().st_size > 0


def test_more_seeds_command_for_the_unresolved_claims(demo_report):
    report, text = demo_report
    open_ = report.claims[report.claims["verdict"] == NOT_RESOLVED]
    finite = open_["seeds_needed"].dropna()
    if finite.empty:
        pytest.skip("every claim resolved")
    k = int(finite.max())
    assert f"`xbmbench reproduce --study demo --seeds 0-{k - 1}`" in text
