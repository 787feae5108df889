"""What every RunConfig field may hold (bench.fields.Field per field) and the rules that tie
fields together; ``validate`` applies both before anything runs.

The names of each choice field are defined here once and are the registry the engine implements:
tests assert that bench.engine.model's heads, bench.launch's launchers and the engine's augment
paths equal these (they import torch, which this module must not).
"""

from __future__ import annotations

from typing import Any

from bench.fields import Field
from common import UserError

# augment names per task: the metric task's transforms (bench/engine/data.py) and MoCo's two
# views (bench/engine/moco/data.py); a name of the other task would silently fall back to timm's
# default transform, so the pair is checked below
AUGMENTS = {"metric": ("randaugment", "flip", "none"), "moco": ("moco", "moco_tensor")}

CHOICES: dict[str, tuple[str, ...]] = {
    "head": ("l2", "l2_bn", "l2_ln"),  # bench/engine/model.py (paper table 3)
    "augment": AUGMENTS["metric"] + AUGMENTS["moco"],
    "augment_draws": ("keyed", "global"),  # bench/engine/draws.py DRAW_MODES
    "miner_distance": ("euclidean", "euclidean_raw", "cosine"),  # variants/miners.py
    "memory_init": ("queue", "prefill"),
    "loss": ("supcon", "xbm_contrastive"),  # bench/engine/registry.py
    "optimizer": ("adamw", "sgd"),
    "task": ("metric", "moco"),
    "launcher": ("local", "submitit-local", "slurm"),  # bench/launch/ (reproduce --launcher)
}

_INT1 = Field(int, ge=1)
_PROB = dict(ge=0.0, le=1.0)

# One entry per RunConfig field (a test asserts the two sets are equal). ``dataset``, ``variant``
# and ``profile`` are also checked against their registries by make_config.
FIELDS: dict[str, Field] = {
    "dataset": Field(str),
    "variant": Field(str),
    "seed": Field(int, ge=0, why="seeds number the repetitions 0, 1, 2, ..."),
    "profile": Field(str),
    "variant_options": Field(tuple),  # each option is checked by its variant's own spec
    "task": Field(str, choices=CHOICES["task"]),
    "model": Field(str),  # any timm model name: checked by timm when the model is built
    "pretrained": Field(bool),
    "pretrained_file": Field(str, nullable=True),
    "head": Field(str, choices=CHOICES["head"]),
    "embedding_size": Field(
        int,
        ge=2,
        why="the embedding is L2-normalised: at size 1 every image maps to +1 or -1, two "
        "points for all the classes (Recall@1 at chance)",
    ),
    "image_size": _INT1,
    "augment": Field(str, choices=CHOICES["augment"]),
    "augment_draws": Field(str, choices=CHOICES["augment_draws"]),
    "batch_size": Field(
        int, ge=2, why="a batch of one has no pair to mine: its loss is 0 on every step"
    ),
    "m_per_class": Field(
        int,
        ge=2,
        why="with one image per class a batch has no positive pair: the warm-up's and "
        "no_xbm's loss is 0 on every step",
    ),
    "memory_ratio": Field(
        float,
        **_PROB,
        why="a share of the training set: more would store copies of the same images "
        "(the paper sweeps up to 1, DeepFashion2 uses 1)",
    ),
    "memory_init": Field(str, choices=CHOICES["memory_init"]),
    "loss": Field(str, choices=CHOICES["loss"]),
    "temperature": Field(
        float, gt=0.0, why="SupCon divides the similarities by it: 0 gives a loss of 0 or NaN"
    ),
    "pos_margin": Field(float, ge=0.0, why="a distance between embeddings"),
    "neg_margin": Field(float, ge=0.0, why="a distance between embeddings"),
    "miner_distance": Field(str, choices=CHOICES["miner_distance"]),
    "optimizer": Field(str, choices=CHOICES["optimizer"]),
    "lr": Field(float, gt=0.0, why="0 never moves the weights, < 0 ascends the loss"),
    "weight_decay": Field(float, ge=0.0, why="< 0 pushes the weights away from 0"),
    "lr_step_epochs": Field(int, ge=1, why="StepLR's step: epochs between two decays"),
    "lr_gamma": Field(
        float, gt=0.0, le=1.0, why="a decay factor: 0 stops learning, > 1 grows the LR"
    ),
    "epochs": _INT1,
    "warmup_epochs": Field(int, ge=0),
    "warmup_lr": Field(float, gt=0.0, why="0 never moves the head, < 0 ascends the loss"),
    "amp": Field(bool),
    "grad_clip": Field(
        float, gt=0.0, why="a maximum gradient norm: < 0 flips the gradient (ascent), 0 zeroes it"
    ),
    "eval_ks": Field(
        tuple,
        item=int,
        ge=1,
        sort=True,
        contains=(1, 10),
        why="the run record and the report read Recall@1 and Recall@10",
    ),
    "train_per_class": Field(int, ge=1, nullable=True),  # None: every training image
    "drift_probe": Field(int, ge=1, why="images in the drift probe batch: 0 gives no drift"),
    "num_workers": Field(int, ge=0),
    "memory_probe": Field(bool),
    "memory_probe_points": Field(
        int, ge=0, why="probe points within an epoch besides its end: 0 probes at the end only"
    ),
    "memory_probe_size": Field(int, ge=1, why="stored entries re-embedded per probe point"),
    "deviations": Field(tuple, item=str),  # written by make_config, not by the user
    "moco_momentum": Field(
        float, **_PROB, why="key = m key + (1 - m) query: a convex mix (1 freezes the key encoder)"
    ),
    "moco_bn_splits": _INT1,
}


def validate(v: dict[str, Any]) -> dict[str, Any]:
    """Every field of ``v`` checked and normalised by FIELDS, then the rules between fields."""
    out = {k: FIELDS[k].coerce(k, x) for k, x in v.items()}
    task = out["task"]
    if out["augment"] not in AUGMENTS[task]:
        raise UserError(
            f"augment must be one of {', '.join(AUGMENTS[task])} for task {task!r}, "
            f"got {out['augment']!r}"
        )
    b, m = out["batch_size"], out["m_per_class"]
    if task == "metric" and b % m:
        raise UserError(
            f"batch_size must be a multiple of m_per_class (PML's MPerClassSampler), "
            f"got {b} and {m}"
        )
    if task == "moco" and b % out["moco_bn_splits"]:
        raise UserError(
            f"batch_size must be a multiple of moco_bn_splits, got {b} and {out['moco_bn_splits']}"
        )
    if out["pretrained_file"] is not None and not out["pretrained"]:
        raise UserError(
            f"pretrained_file {out['pretrained_file']!r} is read only with pretrained true "
            f"(this profile trains from scratch): add --pretrained true"
        )
    return out
