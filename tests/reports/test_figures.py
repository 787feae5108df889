"""Every figure over demo-like runs: drawn, no text overlapping, one colour per variant in every
figure, at most two curves per small-multiple panel (the variant over XBM in grey)."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.colors import to_hex

from reports import moco as M
from reports import style as S
from reports.build import make_figures
from reports.contents import REGIMES
from reports.load import load_store, select_epoch
from reports.reported import load_reported

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
    return M.fig_moco(pd.DataFrame(epochs), pd.DataFrame(runs))


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
    titled = [ax for ax in demo[name].axes if ax.get_title() in DEMO_VARIANTS]
    # one panel per variant but the reference, per block (two metrics for drift and distances)
    blocks = 2 if name in ("drift", "distances") else 1
    assert len(titled) == blocks * (len(DEMO_VARIANTS) - 1)
    for ax in titled:
        variant = ax.get_title()
        assert to_hex(ax.title.get_color()) == S.VARIANT_COLOURS[variant]
        colours = {to_hex(line.get_color()) for line in ax.lines}
        assert colours == {to_hex("0.55"), S.VARIANT_COLOURS[variant]}


def test_one_colour_per_variant_and_all_distinct():
    assert len(set(S.VARIANT_COLOURS.values())) == len(S.VARIANT_COLOURS)
    known = {*DEMO_VARIANTS, "oracle_xbm"}  # the re-embedding bound (issue 14) has its own
    assert set(S.VARIANT_COLOURS) == known == set(S.VARIANT_MARKERS)
    assert S.colour("pc_xbn_adjusted_margin") == S.colour("pc_xbn")
    assert S.colour("xbn+l2_bn") == S.colour("xbn") and S.colour("mystery") == S.OTHER_COLOUR


def test_sweep_lines_use_the_variant_colours(demo):
    fig = demo["recall_vs_batch_memory"]
    colours = {to_hex(line.get_color()) for ax in fig.axes for line in ax.lines}
    assert colours == {S.VARIANT_COLOURS[v] for v in ("no_xbm", "xbm", "xbn", "axbn")}
