"""Every figure over demo-like runs: drawn, no text overlapping, one colour per variant in every
figure, at most two curves per small-multiple panel (the variant over XBM in grey)."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from matplotlib.colors import to_hex

from reports.build import make_figures
from reports.figures import (
    OTHER_COLOUR,
    REGIMES,
    colour,
    fig_moco,
)
from reports.load import base_variant, load_store, select_epoch
from reports.tables import load_reported
from variants import VARIANTS, get_variant

from .conftest import DEMO_VARIANTS, make_demo, make_run
from .overlap import text_overlaps


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "results"
    root.mkdir()
    make_demo(root)
    for variant in ("no_xbm", "xbm", "xbn", "axbn"):  # a batch sweep (paper fig. 1, cpu)
        for seed in range(2):
            make_run(root, dataset="fashion-mnist", variant=variant, seed=seed, profile="cpu",
                     batch=20, best_r1=79.0 + seed)  # fmt: skip
    for lam in (0.0, 0.4):  # a lambda sweep (thesis table 5.14)
        make_run(root, dataset="cifar100", variant="pc_xbn", seed=0,
                 options={"lambda_mu": lam}, best_r1=60.0 + 10 * lam)  # fmt: skip
    store = load_store(root)
    return make_figures(select_epoch(store.done), store.epochs, load_reported())


def moco_figure():
    runs, epochs = [], []
    for variant in ("xbm", "xbn"):
        for seed in range(2):
            rid = f"{variant}{seed}"
            runs.append({"run_id": rid, "variant": variant, "profile": "cpu", "seed": seed,
                         "dataset": "fashion-mnist", "task": "moco", "status": "done"})  # fmt: skip
            epochs += [{"run_id": rid, "epoch": e, "phase": "init" if e == 0 else "main",
                        "knn_acc": 20.0 + e + seed} for e in range(6)]  # fmt: skip
    return fig_moco(pd.DataFrame(epochs), pd.DataFrame(runs))


def test_every_figure_is_drawn(demo):
    # but the regimes figure: it needs oracle runs over a memory x lr sweep, which these
    # demo-like runs have not (tests/reports/test_regimes.py draws it, and checks its absence)
    assert {k for k, fig in demo.items() if fig is None} == {REGIMES}


@pytest.mark.parametrize(
    "name",
    ["forest", "recall_vs_batch_memory", "drift", "distances", "recall_curves",
     "pc_lambda_sweep", "superclass_topk", "moco"],
)  # fmt: skip
def test_no_text_overlaps_or_leaves_the_canvas(demo, name):
    fig = moco_figure() if name == "moco" else demo[name]
    assert text_overlaps(fig) == []


@pytest.mark.parametrize("name", ["drift", "distances", "recall_curves", "superclass_topk"])
def test_small_multiples_show_each_variant_over_grey_xbm_in_its_own_colour(demo, name):
    # panels are titled with the tables' label (a long one wrapped): delayed_xbn's protocol
    # option shows, as in the tables
    labels = {v: v for v in DEMO_VARIANTS} | {"delayed_xbn": "delayed_xbn[delay_epochs=2]"}
    titled = [ax for ax in demo[name].axes if ax.get_title().replace("\n", "") in labels.values()]
    # one panel per variant but the reference, per block (two metrics for drift and distances)
    blocks = 2 if name in ("drift", "distances") else 1
    assert len(titled) == blocks * (len(DEMO_VARIANTS) - 1)
    for ax in titled:
        variant = base_variant(ax.get_title().replace("\n", ""))
        assert to_hex(ax.title.get_color()) == get_variant(variant).COLOUR
        colours = {to_hex(line.get_color()) for line in ax.lines}
        assert colours == {to_hex("0.55"), get_variant(variant).COLOUR}


def test_one_colour_per_variant_and_all_distinct():
    # every registered variant names its own colour, marker and title (its class attributes)
    classes = [get_variant(v) for v in VARIANTS]
    assert {*DEMO_VARIANTS, "oracle_xbm"} <= set(VARIANTS)
    assert len({c.COLOUR for c in classes}) == len({c.MARKER for c in classes}) == len(VARIANTS)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c.COLOUR) and c.MARKER and c.TITLE for c in classes)
    assert colour("pc_xbn_adjusted_margin") == colour("pc_xbn")
    assert colour("xbn+l2_bn") == colour("xbn") and colour("mystery") == OTHER_COLOUR


def test_sweep_lines_use_the_variant_colours(demo):
    fig = demo["recall_vs_batch_memory"]
    colours = {to_hex(line.get_color()) for ax in fig.axes for line in ax.lines}
    assert colours == {get_variant(v).COLOUR for v in ("no_xbm", "xbm", "xbn", "axbn")}
