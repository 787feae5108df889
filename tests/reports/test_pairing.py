"""The pairing rule on configs made by the real make_config, and the arms' checks."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats as sps

from bench.config import make_config
from reports.inference import arms_paired, compare
from reports.load import config_key, pairable
from variants import VARIANTS


def key(variant: str, dataset: str = "fashion-mnist", profile: str = "cpu", **kw) -> str:
    cfg = make_config(dataset, variant, 0, profile, None, **kw)
    return config_key({"run_id": cfg.run_id, **cfg.to_dict()})


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_pairs_with_xbm_in_one_study_cell(variant):
    """The demo's cells differ only by the variant, its options and what the variant sets."""
    assert pairable(key(variant), key("xbm"))
    assert pairable(key(variant, "sop", "paper"), key("xbm", "sop", "paper"))


@pytest.mark.parametrize(
    "other",
    [
        {"batch_size": 20},  # another sampler stream
        {"epochs": 4},
        {"pos_margin": 0.1, "neg_margin": 2.0},
        {"memory_ratio": 0.25},
        {"num_workers": 2},
    ],
)
def test_any_other_difference_unpairs(other):
    assert not pairable(key("xbn", **other), key("xbm"))
    assert pairable(key("xbn", **other), key("xbm", **other))


def test_profile_or_dataset_unpairs():
    assert not pairable(key("xbn", "sop", "paper"), key("xbm", "sop", "cpu"))
    assert not pairable(key("xbn", "sop", "paper"), key("xbm", "inshop", "paper"))


def test_no_xbm_memory_is_set_by_the_variant_so_only_it_is_free():
    assert pairable(key("no_xbm"), key("xbn"))
    assert pairable(key("no_xbm"), key("xbn", memory_ratio=0.25))  # no_xbm has no memory


def arm(variant: str, values: dict[int, float], **kw) -> pd.DataFrame:
    k = key(variant, **kw)
    return pd.DataFrame({
        "run_id": [f"{variant}{s}" for s in values], "seed": list(values),
        "config_key": k, "recall@1": list(values.values()),
    })  # fmt: skip


def test_compare_pairs_over_shared_seeds_only():
    a = arm("xbn", {0: 81.0, 1: 83.0, 2: 80.5, 3: 82.0})
    b = arm("xbm", {0: 80.0, 1: 82.5, 2: 80.0})
    d = compare(a, b, "recall@1")
    ref = sps.ttest_rel([81.0, 83.0, 80.5], [80.0, 82.5, 80.0])
    assert d.method == "paired" and d.n == 3
    assert d.p_two_sided() == pytest.approx(ref.pvalue)


def test_compare_falls_back_to_welch():
    a = arm("xbn", {0: 81.0, 1: 83.0, 2: 80.5})
    assert compare(a, arm("xbm", {3: 80.0, 4: 82.5}), "recall@1").method == "welch"  # 0 shared
    assert compare(a, arm("xbm", {0: 80.0, 5: 82.5}), "recall@1").method == "welch"  # 1 shared
    other = arm("xbm", {0: 80.0, 1: 82.5, 2: 80.0}, epochs=4)
    d = compare(a, other, "recall@1")
    ref = sps.ttest_ind([81.0, 83.0, 80.5], [80.0, 82.5, 80.0], equal_var=False)
    assert d.method == "welch" and d.p_two_sided() == pytest.approx(ref.pvalue)
    assert not arms_paired(a, a.iloc[0:0])


def test_an_arm_with_a_seed_twice_or_two_configs_is_an_error():
    a = arm("xbn", {0: 81.0, 1: 83.0})
    twice = pd.concat([a, a.iloc[:1]])
    with pytest.raises(ValueError, match=r"seed\(s\) \[0\] twice"):
        compare(twice, arm("xbm", {0: 80.0, 1: 82.0}), "recall@1")
    mixed = pd.concat([a, arm("xbn", {2: 80.0}, epochs=4)])
    with pytest.raises(ValueError, match="an arm holds 2 configs"):
        compare(mixed, arm("xbm", {0: 80.0, 1: 82.0}), "recall@1")
