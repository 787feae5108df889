"""Label grammar and the matching rules between reported rows and runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from reports.load import ADJUSTED_MARGINS, DEFAULT_MARGINS, parse_label, run_label
from reports.tables import load_reported, matches

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "reported_numbers.csv"


def run(**kw) -> dict:
    base = {"run_id": "r", "status": "done", "profile": "paper", "task": "metric", "dataset": "sop",
                "variant": "xbn", "variant_options": "{}", "head": "l2", "pos_margin": 0.2,
                "neg_margin": 0.8,
                "batch_size": 64, "memory_ratio": 0.5}  # fmt: skip
    base.update(kw)
    if isinstance(base["variant_options"], dict):
        base["variant_options"] = json.dumps(base["variant_options"])
    return base


def rep(variant: str, dataset: str = "sop", batch: int = 64, memory: float = 0.5) -> dict:
    return {"dataset": dataset, "variant": variant, "batch_size": batch, "memory_ratio": memory}


@pytest.mark.parametrize("label, variant, head, options, margins, batch", [
    ("xbn", "xbn", "l2", (), DEFAULT_MARGINS, None),
    ("xbm_star", "xbm_star", "l2", (), DEFAULT_MARGINS, None),
    ("no_xbm_512", "no_xbm", "l2", (), DEFAULT_MARGINS, 512),
    ("xbm+l2_bn", "xbm", "l2_bn", (), DEFAULT_MARGINS, None),
    ("no_xbm+l2_ln", "no_xbm", "l2_ln", (), DEFAULT_MARGINS, None),
    ("pc_xbn[lambda_mu=0.2]", "pc_xbn", "l2", (("lambda_mu", 0.2),), DEFAULT_MARGINS, None),
    ("pc_xbn_adjusted_margin", "pc_xbn", "l2", (), ADJUSTED_MARGINS, None),
])  # fmt: skip
def test_parse_label(label, variant, head, options, margins, batch):
    sel = parse_label(label)
    assert (sel.variant, sel.head, sel.options, sel.margins, sel.batch_size) == (
        variant,
        head,
        options,
        margins,
        batch,
    )


def test_every_shipped_label_names_a_registered_variant():
    from variants import VARIANTS

    for label in load_reported()["variant"]:
        sel = parse_label(label)
        assert sel.variant in VARIANTS and sel.head in ("l2", "l2_bn", "l2_ln"), label
    with pytest.raises(ValueError, match="cannot parse"):
        parse_label("XBN!")


def test_shipped_csv_is_the_shared_one():
    if not SHARED.exists():
        pytest.skip("no ../shared checkout")
    shipped = Path(__file__).resolve().parents[2] / "reports" / "reported_numbers.csv"
    assert shipped.read_text() == SHARED.read_text()


def test_no_xbm_512_needs_batch_512_and_ignores_memory():
    r = rep("no_xbm_512", batch=512, memory=0.0)
    assert matches(r, run(variant="no_xbm", batch_size=512, memory_ratio=0.0))
    assert matches(r, run(variant="no_xbm", batch_size=512, memory_ratio=0.3))
    assert not matches(r, run(variant="no_xbm", batch_size=64, memory_ratio=0.0))
    assert not matches(rep("no_xbm", memory=0.0), run(variant="no_xbm", batch_size=512))


def test_heads():
    assert matches(rep("xbn+l2_ln"), run(head="l2_ln"))
    assert not matches(rep("xbn+l2_ln"), run(head="l2_bn"))
    assert not matches(rep("xbn"), run(head="l2_ln"))
    assert matches(rep("xbn"), run(head="l2"))


def test_lambda_labels():
    assert matches(
        rep("pc_xbn[lambda_mu=0.2]"), run(variant="pc_xbn", variant_options={"lambda_mu": 0.2})
    )
    assert not matches(
        rep("pc_xbn[lambda_mu=0.2]"), run(variant="pc_xbn", variant_options={"lambda_mu": 0.4})
    )
    assert not matches(rep("pc_xbn[lambda_mu=0.2]"), run(variant="pc_xbn"))
    assert not matches(rep("pc_xbn"), run(variant="pc_xbn", variant_options={"lambda_mu": 0.2}))
    # the store drops options at their default, so lambda_sigma=1.0 is the plain pc_xbn run
    assert matches(rep("pc_xbn[lambda_sigma=1.0]"), run(variant="pc_xbn"))


def test_adjusted_margins():
    adjusted = run(variant="pc_xbn", pos_margin=0.1, neg_margin=2.0)
    assert matches(rep("pc_xbn_adjusted_margin"), adjusted)
    assert not matches(rep("pc_xbn"), adjusted)
    assert not matches(rep("pc_xbn_adjusted_margin"), run(variant="pc_xbn"))
    assert run_label(adjusted) == "pc_xbn_adjusted_margin"


def test_profile_status_dataset_memory_batch():
    r = rep("xbn")
    assert matches(r, run())
    assert not matches(r, run(profile="cpu"))
    assert not matches(r, run(status="failed"))
    assert not matches(r, run(dataset="inshop"))
    assert not matches(r, run(memory_ratio=1.0))
    assert not matches(r, run(batch_size=32))
    assert not matches(r, run(task="moco"))


def test_run_label_roundtrip():
    labels = ["xbn", "xbm+l2_bn", "pc_xbn[lambda_mu=0.2]", "pc_xbn_adjusted_margin"]
    for label in labels:
        sel = parse_label(label)
        r = run(variant=sel.variant, head=sel.head, variant_options=dict(sel.options),
                pos_margin=sel.margins[0], neg_margin=sel.margins[1])  # fmt: skip
        assert run_label(r) == label


def test_load_reported_reads_every_row_with_its_key():
    shipped = Path(__file__).resolve().parents[2] / "reports" / "reported_numbers.csv"
    with open(shipped, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    frame = load_reported()
    assert len(frame) == len(rows) == 134
    assert frame["key"].tolist() == [f"{r['source']} table {r['table']}" for r in rows]
    assert frame["table"].tolist() == [r["table"] for r in rows]  # "7.1" stays text, not 7.1
    sop = frame[(frame["key"] == "paper table 1") & (frame["dataset"] == "sop")
                & (frame["variant"] == "xbn") & (frame["metric"] == "recall@1")]  # fmt: skip
    assert sop[["mean", "std", "runs", "batch_size", "memory_ratio"]].values.tolist() == [
        [80.62, 0.17, 3, 64, 0.5]
    ]
    thesis = frame[(frame["key"] == "thesis table 7.1") & (frame["dataset"] == "sop")
                   & (frame["variant"] == "xbn") & (frame["metric"] == "recall@1")]  # fmt: skip
    assert len(thesis) == 1 and pd.isna(thesis["std"].iloc[0])  # the thesis gives no std


def test_protocol_options_do_not_separate_runs():
    from reports.load import options_equal

    # DeepFashion2's AXBN runs use gain interval 10 (paper sec. 5.1) and still are "axbn"
    assert options_equal("axbn", {"gain_interval": 10}, ())
    # the cpu profile's delayed XBN starts at its own first LR decay
    assert options_equal("delayed_xbn", '{"delay_epochs": 2}', ())
    assert not options_equal("pc_xbn", {"lambda_mu": 0.6}, ())
    assert options_equal("pc_xbn", {"lambda_sigma": 1.0}, ())
