import pytest
from pytorch_metric_learning.losses import CrossBatchMemory, SupConLoss

import variants
from variants import option_specs
from variants.options import Option
from variants.registry import register

EXPECTED = {
    "no_xbm",
    "xbm",
    "xbm_star",
    "xbn",
    "axbn",
    "pc_xbn",
    "sc_xbn",
    "delayed_xbn",
    "centre_xbn",
    "scaled_xbn",
    "oracle_xbm",
}
BEYOND = {"oracle_xbm"}  # in neither source, and the trainer's only


def test_all_eleven_variants_registered():
    assert set(variants.VARIANTS) == EXPECTED
    assert len(variants.VARIANTS) == 11


def test_the_sources_variants_come_first_and_the_bound_is_marked():
    assert variants.VARIANTS[-1] == "oracle_xbm"  # last: the sources' cells keep their order
    assert set(variants.SOURCED_VARIANTS) == EXPECTED - BEYOND
    assert set(variants.DROP_IN_VARIANTS) == EXPECTED - BEYOND
    assert variants.VARIANTS[:10] == variants.SOURCED_VARIANTS
    for name in EXPECTED:
        cls = variants.get_variant(name)
        assert cls.TRAINER_ONLY is (name in BEYOND) and cls.BEYOND_SOURCES is (name in BEYOND)
    marked = "beyond the sources: the upper bound of drift correction; needs the trainer"
    assert marked in variants.oracle_xbm.__doc__


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_is_a_crossbatchmemory_with_its_attributes(name):
    mem = variants.build(name, loss=SupConLoss(), embedding_size=8, memory_size=32)
    assert isinstance(mem, CrossBatchMemory)
    assert tuple(mem.embedding_memory.shape) == (32, 8)
    assert tuple(mem.label_memory.shape) == (32,)
    assert mem.queue_idx == 0 and mem.has_been_filled is False
    mem.set_epoch(3)
    assert mem.epoch == 3


def test_unknown_variant_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown variant 'xbnn'.*valid variants: .*axbn"):
        variants.build("xbnn", loss=SupConLoss(), embedding_size=8, memory_size=32)


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown option.*lamda_mu.*valid options: .*lambda_mu"):
        variants.build("pc_xbn", loss=SupConLoss(), embedding_size=8, memory_size=32, lamda_mu=0.3)
    with pytest.raises(ValueError, match="valid options: .*miner_distance"):
        variants.build("xbm", loss=SupConLoss(), embedding_size=8, memory_size=32, delay_epochs=3)


def test_option_names_and_defaults():
    assert variants.variant_options("axbn") == {
        "miner_distance": None,
        "delay_epochs": 0,
        "std_correction": 0,
        "p0": 1.0,
        "q": 1.0,
        "r": 0.01,
        "gain_interval": 100,
    }
    assert variants.variant_options("oracle_xbm") == {
        "miner_distance": None,
        "refresh_interval": 1,
    }
    assert variants.variant_options("pc_xbn")["lambda_mu"] == 0.5
    assert variants.variant_options("pc_xbn")["lambda_sigma"] == 1.0
    assert variants.variant_options("sc_xbn")["normalize_absent"] is True
    assert variants.variant_options("delayed_xbn")["delay_epochs"] == 15
    for name in ("xbn", "axbn", "pc_xbn", "sc_xbn", "centre_xbn", "scaled_xbn"):
        assert variants.variant_options(name)["delay_epochs"] == 0
    # the std convention: every variant that divides by a std, population by default
    for name in ("xbn", "axbn", "pc_xbn", "sc_xbn", "delayed_xbn", "scaled_xbn"):
        spec = option_specs(name)["std_correction"]
        assert (spec.default, spec.kind, spec.choices, spec.ge, spec.le) == (0, int, (0, 1), 0, 1)
    for name in ("xbm", "no_xbm", "xbm_star", "centre_xbn", "oracle_xbm"):
        assert "std_correction" not in variants.variant_options(name)


def test_none_options_mean_default():
    mem = variants.build("axbn", loss=SupConLoss(), embedding_size=8, memory_size=32, r=None)
    assert mem.r == 0.01


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="registered twice"):
        register("xbn")(type("Dup", (), {}))


def test_bad_inputs():
    mem = variants.build("xbm", loss=SupConLoss(), embedding_size=8, memory_size=4)
    import torch

    with pytest.raises(ValueError, match=r"embeddings must have shape \(batch_size, 8\)"):
        mem(torch.zeros(3, 5), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be a 1D tensor"):
        mem(torch.zeros(3, 8), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="memory_size must be >= .* got 4 < 6"):
        mem(torch.randn(6, 8), torch.zeros(6, dtype=torch.long))
    sc = variants.build("sc_xbn", loss=SupConLoss(), embedding_size=8, memory_size=16)
    with pytest.raises(ValueError, match="needs superclasses"):
        sc(torch.randn(4, 8), torch.zeros(4, dtype=torch.long))


OPTION_CASES = [(v, o) for v in sorted(EXPECTED) for o in variants.variant_options(v)]


@pytest.mark.parametrize("name,option", OPTION_CASES, ids=[f"{v}.{o}" for v, o in OPTION_CASES])
def test_every_option_declares_its_type_and_range(name, option):
    spec = option_specs(name)[option]
    assert isinstance(spec, Option) and spec.kind in (int, float, bool, str)
    if spec.kind in (int, float):  # a number has at least a lower bound
        assert spec.ge is not None or spec.gt is not None
    if spec.kind is str:  # text is a choice among names
        assert spec.choices
    assert spec.default == variants.variant_options(name)[option]
    if spec.default is None:
        assert spec.nullable
    else:
        assert type(spec.default) is spec.kind


def test_declared_ranges():
    """The ranges written out here, independently of the declarations (thesis eq. 4.3: convex
    weights; paper eqs. 19-20: variances; counts of steps and epochs)."""
    axbn, pc = option_specs("axbn"), option_specs("pc_xbn")
    assert [(pc[k].ge, pc[k].le) for k in ("lambda_mu", "lambda_sigma")] == [(0, 1), (0, 1)]
    assert pc["normalize_absent"].kind is bool
    assert [(axbn[k].kind, axbn[k].ge) for k in ("p0", "q", "r")] == [(float, 0)] * 3
    assert (axbn["gain_interval"].kind, axbn["gain_interval"].ge) == (int, 1)
    assert (axbn["delay_epochs"].kind, axbn["delay_epochs"].ge) == (int, 0)
    assert option_specs("xbm_star")["memory_weight"].ge == 0
    refresh = option_specs("oracle_xbm")["refresh_interval"]
    assert (refresh.kind, refresh.ge, refresh.default) == (int, 1, 1)
    assert option_specs("xbm")["miner_distance"].choices == ("euclidean", "euclidean_raw", "cosine")
