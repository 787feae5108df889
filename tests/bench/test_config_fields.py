"""The declarative contracts (variants.options.Option, declared with each RunConfig field in
bench/config.py and with each variant's options): every field and every variant option has one,
each rejects what it should and accepts its boundaries, and the choice fields build what they
name."""

import dataclasses
import math
import subprocess
import sys

import pytest

import variants
from bench.choices import HEADS
from bench.config import DEFAULTS, FIELDS, RunConfig, make_config
from bench.profiles import MOCO_PROFILES, PROFILES
from bench.tasks import TASKS
from common import UserError
from variants.options import Option, OptionError


def test_every_runconfig_field_has_a_contract_with_its_default():
    for f in dataclasses.fields(RunConfig):
        assert isinstance(f.metadata["option"], Option), f.name
        assert f.metadata["option"].default is f.default, f.name
        assert f.metadata["option"].help, f"{f.name} has no help"
    assert set(DEFAULTS) == set(FIELDS) - {"dataset", "variant"}


@pytest.mark.parametrize(
    "profile", [*(("base", p) for p in PROFILES), *(("moco", p) for p in MOCO_PROFILES)]
)
def test_every_profile_value_and_default_meets_its_spec(profile):
    table, name = profile
    values = (PROFILES if table == "base" else MOCO_PROFILES)[name]
    for field, value in values.items():
        FIELDS[field].coerce(field, value)  # raises if a profile broke its own contract
    for f in dataclasses.fields(RunConfig):
        if f.default is not dataclasses.MISSING and f.name != "variant_options":
            FIELDS[f.name].coerce(f.name, f.default)


# ----- the Field engine, on values whose verdict is written out by hand ---------------------------
@pytest.mark.parametrize(
    "spec,text,expected",
    [
        (Option(float, gt=0.0), "1e-12", 1e-12),
        (Option(float, ge=0.0, le=1.0), "0", 0.0),
        (Option(float, ge=0.0, le=1.0), "1", 1.0),
        (Option(float, ge=0.0, le=1.0), " 0.25 ", 0.25),
        (Option(int, ge=1), "7", 7),
        (Option(int, ge=0), "0", 0),
        (Option(bool), "true", True),
        (Option(bool), "TRUE", True),
        (Option(bool), "1", True),
        (Option(bool), "False", False),
        (Option(bool), "0", False),
        (Option(str, choices=("a", "b")), "b", "b"),
        (Option(tuple, item=int, ge=1, sort=True, contains=(1, 10)), "10,1,5", (1, 5, 10)),
        (Option(int, ge=1, nullable=True), None, None),
    ],
)
def test_field_parses_and_accepts(spec, text, expected):
    got = spec.coerce("x", text)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "spec,value,shown",
    [
        (Option(float, gt=0.0), "0", "0.0"),  # open bound
        (Option(float, gt=0.0), 0, "0.0"),
        (Option(float, ge=0.0), "-1e-9", "-1e-09"),
        (Option(float, ge=0.0, le=1.0), 1.0000001, "1.0000001"),
        (Option(float, ge=0.0, lt=1.0), "1", "1.0"),  # open upper bound
        (Option(float), "nan", "nan"),
        (Option(float), "NaN", "nan"),
        (Option(float), float("inf"), "inf"),
        (Option(float), "-inf", "-inf"),
        (Option(float), "abc", "'abc'"),
        (Option(float), True, "True"),  # a boolean is not a number here
        (Option(int), "1.5", "'1.5'"),
        (Option(int), 1.5, "1.5"),
        (Option(int), 2.0, "2.0"),
        (Option(int), "abc", "'abc'"),
        (Option(int), True, "True"),
        (Option(bool), "maybe", "'maybe'"),
        (Option(bool), "yes", "'yes'"),
        (Option(bool), "2", "'2'"),
        (Option(bool), 1, "1"),
        (Option(str, choices=("a", "b")), "c", "'c'"),
        (Option(int), None, "None"),  # not nullable
        (Option(tuple, item=int, sort=True, contains=(1, 10)), "1,10,10", "'1,10,10'"),
        (Option(tuple, item=int, sort=True, contains=(1, 10)), "1,5", "'1,5'"),
        (Option(tuple, item=int, ge=1, contains=(1, 10)), "0,1,10", "'0,1,10'"),
        (Option(tuple, item=int, contains=(1, 10)), "1,ten", "'1,ten'"),
    ],
)
def test_field_rejects_naming_field_and_value(spec, value, shown):
    with pytest.raises(OptionError) as e:
        spec.coerce("the_field", value)
    assert str(e.value).startswith("the_field must be ")
    assert str(e.value).endswith(f", got {shown}")


def test_field_describes_its_bounds():
    assert Option(float, gt=0.0, le=1.0).describe() == "a finite number in (0, 1]"
    assert Option(float, ge=0.0, lt=1.0).describe() == "a finite number in [0, 1)"
    assert Option(int, ge=1).describe() == "an integer >= 1"
    with pytest.raises(OptionError, match=r"^lr must be a finite number > 0, got 0.0: because$"):
        Option(float, gt=0.0, why="because").coerce("lr", 0)


def test_an_int_for_a_float_field_is_stored_as_the_same_float():
    assert FIELDS["memory_ratio"].coerce("memory_ratio", 1) == 1.0
    a = make_config("fashion-mnist", "xbn", 0, "cpu", memory_ratio=1)
    b = make_config("fashion-mnist", "xbn", 0, "cpu", memory_ratio=1.0)
    assert type(a.memory_ratio) is float and a.run_id == b.run_id


# ----- make_config: text parsed by the declared type, boundaries accepted -------------------------
def test_text_values_give_the_config_of_the_typed_values():
    text = make_config(
        "fashion-mnist", "pc_xbn", "1", "cpu", {"lambda_mu": "0.6", "normalize_absent": "false"},
        lr="0.002", epochs="3", amp="0", eval_ks="10,1", train_per_class="12",
    )  # fmt: skip
    typed = make_config(
        "fashion-mnist", "pc_xbn", 1, "cpu", {"lambda_mu": 0.6, "normalize_absent": False},
        lr=0.002, epochs=3, amp=False, eval_ks=(1, 10), train_per_class=12,
    )  # fmt: skip
    assert text == typed and text.run_id == typed.run_id
    assert text.options == {"lambda_mu": 0.6, "normalize_absent": False}


@pytest.mark.parametrize(
    "variant,options,overrides",
    [
        ("pc_xbn", {"lambda_mu": "0", "lambda_sigma": "1"}, {}),
        ("pc_xbn", {"lambda_mu": "1", "lambda_sigma": "0"}, {}),
        ("xbn", {"delay_epochs": "0"}, {"memory_ratio": "0"}),
        ("xbn", {}, {"memory_ratio": "1", "lr_gamma": "1", "weight_decay": "0"}),
        ("axbn", {"r": "0", "q": "0", "p0": "0", "gain_interval": "1"}, {}),
        ("xbm_star", {"memory_weight": "0"}, {"warmup_epochs": "0"}),
        ("xbm", {}, {"lr": "1e-12", "grad_clip": "1e-6", "drift_probe": "1"}),
        ("xbm", {}, {"batch_size": "20", "m_per_class": "2", "lr_step_epochs": "1"}),
    ],
)
def test_boundary_values_are_accepted(variant, options, overrides):
    cfg = make_config("fashion-mnist", variant, 0, "cpu", options, **overrides)
    for k, text in overrides.items():
        assert math.isclose(getattr(cfg, k), float(text))
    defaults = variants.variant_options(variant)
    for k, text in options.items():
        assert math.isclose(cfg.options.get(k, defaults[k]), float(text))


def test_opt_miner_distance_is_the_field():
    cfg = make_config("fashion-mnist", "xbn", 0, "cpu", {"miner_distance": "cosine"})
    assert cfg.miner_distance == "cosine" and cfg.options == {}
    same = make_config("fashion-mnist", "xbn", 0, "cpu", miner_distance="cosine")
    assert cfg.run_id == same.run_id
    with pytest.raises(UserError, match="miner_distance given twice: 'euclidean'.*'cosine'"):
        make_config(
            "fashion-mnist", "xbn", 0, "cpu", {"miner_distance": "cosine"},
            miner_distance="euclidean",
        )  # fmt: skip


def test_unknown_dataset_lists_the_registry():
    with pytest.raises(UserError, match="unknown dataset 'mnist'.*fashion-mnist"):
        make_config("mnist", "xbn")


def test_pretrained_file_without_pretrained_is_refused():
    with pytest.raises(UserError, match="pretrained_file 'w.pth' is read only with pretrained"):
        make_config("fashion-mnist", "xbn", 0, "cpu", pretrained_file="w.pth")


def test_augment_must_belong_to_the_task():
    with pytest.raises(UserError, match="augment must be one of .* for task 'metric'.*'moco'"):
        make_config("fashion-mnist", "xbn", 0, "cpu", augment="moco")
    with pytest.raises(UserError, match="for task 'moco', got 'flip'"):
        make_config("fashion-mnist", "xbn", 0, "cpu", task="moco", augment="flip")


# ----- the choice fields build what they name ---------------------------------------------------
def test_every_head_builds():
    import torch

    from bench.engine import model

    x = torch.randn(6, 3, 8, 8)
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 5))
    backbone.num_features = 5
    for head in HEADS:
        out = model.EmbeddingNet(backbone, 4, head).eval()(x)
        assert out.shape == (6, 4) and torch.isfinite(out).all()
    plain = model.EmbeddingNet(backbone, 4, "l2")(x)
    assert torch.allclose(plain.norm(dim=1), torch.ones(6), atol=1e-6)  # the l2 head: unit rows


def test_metric_augments_give_three_different_train_transforms():
    from bench.engine.data import _transforms

    names = {}
    for augment in TASKS["metric"].augments:
        cfg = make_config("sop", "xbn", 0, "cpu", augment=augment, image_size=32)
        names[augment] = [type(t).__name__ for t in _transforms(cfg, True).transforms[1].transforms]
    assert "RandAugment" in names["randaugment"] and "RandAugment" not in names["flip"]
    assert "RandomHorizontalFlip" in names["flip"]
    assert "RandomHorizontalFlip" not in names["none"]


def test_config_imports_no_torch_timm_or_pml():
    code = (
        "import sys, bench.config, bench.profiles, bench.run_schema, variants, variants.options\n"
        "import commands.options\n"
        "print(sorted(m for m in ('torch', 'timm', 'pytorch_metric_learning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
