"""The CPU demo on Omniglot: what its studies hold, checked against the facts they are
built from (the registries, the cpu profile), not against their own listing."""

from __future__ import annotations

import itertools

from bench.config import profile_values
from bench.studies import cells
from commands.reproduce import DEFAULT_STUDIES
from variants import VARIANTS


def test_the_default_run_is_the_omniglot_demo_with_every_variant():
    assert DEFAULT_STUDIES == ("demo",)
    demo = cells("demo")
    assert {c.dataset for c in demo} == {"omniglot-small"}
    assert {c.variant for c in demo} == set(VARIANTS)  # every metric variant and the bound
    assert {c.profile for c in demo} == {"cpu"} and {c.task for c in demo} == {"metric"}
    for variant in VARIANTS:  # every variant with seeds (the papers repeat three times)
        assert len({c.seed for c in demo if c.variant == variant}) >= 3, variant
    oracle = [c for c in demo if c.variant == "oracle_xbm"]
    assert {dict(c.variant_options).get("refresh_interval") for c in oracle} == {10}


def test_the_fashion_demo_is_kept_under_its_own_name():
    fashion = cells("demo-fashion")
    assert {c.dataset for c in fashion} == {"fashion-mnist"}
    assert len(fashion) == len(VARIANTS) * 3


def test_regimes_cross_memory_lr_variant_seed_and_share_the_demos_cells():
    regimes = cells("demo-regimes")
    lr = profile_values("cpu")["lr"]
    grid = {(c.memory_ratio, round(c.lr / lr, 6), c.variant, c.seed) for c in regimes}
    want = set(
        itertools.product(
            (0.25, 0.5, 1.0), (0.5, 1.0, 2.0), ("xbm", "xbn", "oracle_xbm"), (0, 1, 2)
        )
    )
    assert grid == want and len(regimes) == 81
    # the 1x-lr, 50%-memory cells are the demo's own runs (the same ids): run once, used twice
    demo = {c.run_id for c in cells("demo")}
    at_profile = [c for c in regimes if c.memory_ratio == 0.5 and c.lr == lr]
    assert len(at_profile) == 9 and all(c.run_id in demo for c in at_profile)
