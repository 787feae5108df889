"""What the tasks build from a config: the loss, optimiser and miner it names (registry.py)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
from pytorch_metric_learning.losses import SupConLoss

from bench.config import make_config
from bench.engine.metric import MetricTask, build_memory, run
from bench.engine.moco.task import MocoTask
from bench.store import RunDir
from common import UserError
from tests.bench.test_moco import tiny_cfg as tiny_moco
from tests.conftest import TINY

pytestmark = pytest.mark.usefixtures("two_threads")  # tests/bench/conftest.py


def tiny(variant="xbn", variant_options=None, **over):
    return make_config("fashion-mnist", variant, 0, "cpu", variant_options, **{**TINY, **over})


@pytest.mark.parametrize(
    "task, name, expected",
    [
        ("metric", "adamw", dict(cls=torch.optim.AdamW, betas=(0.9, 0.999))),
        ("metric", "sgd", dict(cls=torch.optim.SGD, momentum=0.9)),
        ("moco", "adamw", dict(cls=torch.optim.AdamW, betas=(0.9, 0.999))),
        ("moco", "sgd", dict(cls=torch.optim.SGD, momentum=0.9)),
    ],
)
def test_the_config_optimizer_is_the_one_trained_with(task, name, expected, tiny_data):
    over = dict(optimizer=name, lr=0.05, weight_decay=0.01)
    cfg = tiny(**over) if task == "metric" else tiny_moco("xbn", **over)
    built = (MetricTask if task == "metric" else MocoTask)(cfg)
    built.build(tiny_data, torch.device("cpu"))
    assert type(built.opt) is expected.pop("cls")
    group = built.opt.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (0.05, 0.01)
    for key, value in expected.items():
        assert group[key] == value


def test_the_config_loss_is_the_memory_loss():
    memory = build_memory(tiny(temperature=0.25), 240)
    assert type(memory.loss) is SupConLoss and memory.loss.temperature == 0.25


@pytest.mark.parametrize("field, value", [("optimizer", "rmsprop"), ("loss", "arcface")])
def test_an_unknown_name_is_a_user_error_naming_it(field, value, tiny_data, tmp_path):
    cfg = dataclasses.replace(tiny(), **{field: value})  # past make_config's own checks
    with pytest.raises(UserError, match=f"unknown {field} '{value}'; valid: "):
        run(cfg, tiny_data, tmp_path, progress=False)


@pytest.mark.parametrize(
    "field, option, distance, margins",
    [
        # cosine: the Euclidean margins d on unit vectors become similarities 1 - d^2 / 2
        (None, "cosine", CosineSimilarity, (0.98, 0.68)),  # the option is the field's alias
        ("cosine", None, CosineSimilarity, (0.98, 0.68)),
        ("euclidean", None, LpDistance, (0.2, 0.8)),
        ("cosine", "cosine", CosineSimilarity, (0.98, 0.68)),  # the same value twice is fine
    ],
)
def test_miner_distance_reaches_the_variant_once(field, option, distance, margins):
    opts = {"miner_distance": option} if option else None
    miner = build_memory(tiny(variant_options=opts, miner_distance=field), 240).miner
    assert type(miner.distance) is distance
    assert (miner.pos_margin, miner.neg_margin) == pytest.approx(margins)


def test_miner_distance_given_twice_differently_is_refused():
    """make_config refuses the option and the field disagreeing, rather than pick one silently."""
    with pytest.raises(UserError, match="miner_distance given twice"):
        tiny(variant_options={"miner_distance": "cosine"}, miner_distance="euclidean")


def test_a_run_with_the_miner_distance_option_trains(tiny_data, tmp_path):
    cfg = tiny(variant_options={"miner_distance": "cosine"}, epochs=1)
    assert run(cfg, tiny_data, tmp_path, progress=False)["status"] == "done"
    main = pd.read_csv(RunDir(tmp_path, cfg).metrics).iloc[-1]
    assert main["phase"] == "main" and main["mined_pos"] > 0 and main["mined_neg"] > 0


def test_a_bad_variant_option_is_a_user_error():
    cfg = dataclasses.replace(tiny(), variant_options=(("miner_distance", "manhattan"),))
    with pytest.raises(UserError, match="variant 'xbn': miner_distance must be one of"):
        build_memory(cfg, 240)
