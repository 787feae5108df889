"""The frozen run configuration and the two profiles (DESIGN.md, "The protocol").

A ``RunConfig`` holds every choice that can change a run's numbers; its hash names the run's
folder. Profiles give the defaults; ``make_config`` resolves a profile, drops ``None``
overrides (so a CLI default never overrides the profile) and adapts the sampler to datasets
with few classes, writing each adaptation into ``deviations``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bench.fields import Field
from bench.spec import CHOICES, FIELDS, validate  # noqa: F401  (CHOICES: the choice fields' names)
from common import UserError


@dataclass(frozen=True)
class RunConfig:
    dataset: str
    variant: str
    seed: int = 0
    profile: str = "cpu"
    variant_options: tuple[tuple[str, Any], ...] = ()  # sorted (name, value) pairs: hashable
    task: str = "metric"
    # model
    model: str = "test_resnet"  # any timm model name
    pretrained: bool = False  # ImageNet weights from timm's cache or pretrained_file
    pretrained_file: str | None = None
    head: str = "l2"  # l2 | l2_bn | l2_ln (paper table 3)
    embedding_size: int = 128
    image_size: int = 28  # native resolution for array datasets on the cpu profile
    augment: str = "flip"  # randaugment (timm rand-m9-mstd0.5 + random erasing 0.2) | flip | none
    # keyed: each sample's augmentation drawn from (seed, epoch, position), re-creatable and the
    # same for any num_workers (bench/engine/draws.py); global: the global generators, as runs
    # made before this field drew
    augment_draws: str = "keyed"
    # sampler and memory
    batch_size: int = 40
    m_per_class: int = 4  # PML MPerClassSampler
    memory_ratio: float = 0.5  # memory size as a share of the training set
    memory_init: str = "queue"  # queue: empty after warm-up (PML); prefill: random subset
    # loss and miner
    loss: str = "supcon"  # PML SupConLoss, cosine similarity
    temperature: float = 0.1
    pos_margin: float = 0.2  # PairMarginMiner, Euclidean on unit vectors
    neg_margin: float = 0.8
    miner_distance: str = "euclidean"
    # optimisation
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_step_epochs: int = 2  # StepLR step size
    lr_gamma: float = 0.33
    epochs: int = 5  # main phase
    warmup_epochs: int = 1  # head only, SGD, plain minibatch loss
    warmup_lr: float = 1e-3
    amp: bool = False  # only ever used on CUDA
    grad_clip: float = 10.0
    # evaluation and data
    eval_ks: tuple[int, ...] = (1, 10)
    train_per_class: int | None = 400  # stratified training subset (None: all)
    drift_probe: int = 64  # images in the fixed probe batch for feature drift
    num_workers: int = 0
    deviations: tuple[str, ...] = ()  # where this config departs from the profile, and why
    # MoCo (task "moco", bench/engine/moco): key encoder = m * key + (1 - m) * query after each step
    moco_momentum: float = 0.99  # the XBN paper, appendix B
    moco_bn_splits: int = 8  # BatchNorm in sub-batches + key shuffle (PML's MoCo example: 8)
    # the memory probe (bench/engine/memory_probe.py, issue 14): stored entries re-embedded
    # with the current model at the end of every main epoch and at ``memory_probe_points``
    # evenly spaced steps within it, about ``memory_probe_size`` entries each time
    memory_probe: bool = True
    memory_probe_points: int = 4
    memory_probe_size: int = 1000

    def to_dict(self) -> dict[str, Any]:
        """The config's record (config.json without its run_id) and the run id's input.

        Every field of schema v1, every later field whose value differs from the value it was
        added with (``SCHEMA_ADDED``), and the schema version under ``"schema"``. A later field at
        its added value is left out: the record of a run is then the same whichever version
        wrote it, and so is its id.
        """
        d = dataclasses.asdict(self)
        d["variant_options"] = dict(self.variant_options)
        d["eval_ks"] = list(self.eval_ks)
        d["deviations"] = list(self.deviations)
        return {SCHEMA_KEY: schema_version(), **_identity(d)}

    @property
    def run_id(self) -> str:
        """The run's folder name: 16 hex characters of the sha256 of the record (``to_dict``)
        without its schema version.

        For the fields of schema v1 this is the hash of every field, as before versioning, so
        every run id of schema v1 is unchanged (tests/fixtures/legacy_v0/run_ids.json); a field
        added later enters the hash only when set to another value than the one it was added
        with.
        """
        ident = {k: v for k, v in self.to_dict().items() if k != SCHEMA_KEY}
        blob = json.dumps(ident, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.variant_options)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """A config from its record (``to_dict``, config.json) of this or any earlier schema.

        A field the record lacks takes the value it was added with (the record was written
        before the field existed, or left it out at that value); a record from a newer schema,
        an unknown field, or a ``run_id`` that is not this config's is a ``ValueError``.
        """
        version = int(d.get(SCHEMA_KEY, 1))
        if version > schema_version():
            raise ValueError(
                f"config of schema {version}, newer than this code's {schema_version()}: "
                "upgrade xbmbench to read it"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        retired = (set(SCHEMA_DEFAULTS_V1) | set(SCHEMA_ADDED)) - names
        unknown = sorted(set(d) - names - retired - {"run_id", SCHEMA_KEY})
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        kw = {name: absent for name, (_, absent) in SCHEMA_ADDED.items() if name in names}
        kw.update({k: v for k, v in d.items() if k in names})
        kw["variant_options"] = tuple(sorted(dict(kw.get("variant_options", {})).items()))
        kw["eval_ks"] = tuple(kw.get("eval_ks", (1, 10)))
        kw["deviations"] = tuple(kw.get("deviations", ()))
        cfg = cls(**kw)
        if "run_id" in d and d["run_id"] != cfg.run_id:
            raise ValueError(
                f"config record says run_id {d['run_id']}, its fields give {cfg.run_id}"
            )
        return cfg


# ----- the record's schema: run ids that survive upgrades (results/README.md, "run_id") -------
SCHEMA_KEY = "schema"  # config.json's schema version (absent: 1)
REQUIRED_FIELDS = ("dataset", "variant")  # no default: always in the record and the id
# Schema v1: RunConfig's fields and defaults at commit c18673d, frozen as data (never read from
# the dataclass, so that changing a default later cannot rewrite what v1 meant). Every v1 field
# is always in the record and the id, as it was before versioning.
SCHEMA_DEFAULTS_V1: dict[str, Any] = {
    "seed": 0, "profile": "cpu", "variant_options": {}, "task": "metric",
    "model": "test_resnet", "pretrained": False, "pretrained_file": None, "head": "l2",
    "embedding_size": 128, "image_size": 28, "augment": "flip", "batch_size": 40,
    "m_per_class": 4, "memory_ratio": 0.5, "memory_init": "queue", "loss": "supcon",
    "temperature": 0.1, "pos_margin": 0.2, "neg_margin": 0.8, "miner_distance": "euclidean",
    "optimizer": "adamw", "lr": 0.001, "weight_decay": 0.0001, "lr_step_epochs": 2,
    "lr_gamma": 0.33, "epochs": 5, "warmup_epochs": 1, "warmup_lr": 0.001, "amp": False,
    "grad_clip": 10.0, "eval_ks": [1, 10], "train_per_class": 400, "drift_probe": 64,
    "num_workers": 0, "deviations": [], "moco_momentum": 0.99, "moco_bn_splits": 8,
}  # fmt: skip
# Fields added after v1: name -> (the schema version that added it, its *absent* value: the one
# that does what runs did before the field existed). Adding a RunConfig field = adding it here
# with the next version; its dataclass default should be the absent value, and may change later
# without touching any stored id. A field missing from here makes run_id raise.
SCHEMA_ADDED: dict[str, tuple[int, Any]] = {
    "augment_draws": (2, "global"),  # issue 14: keyed draws; absent = the global generators
    "memory_probe": (2, False),  # runs before schema 2 had no probe
    "memory_probe_points": (2, 4),
    "memory_probe_size": (2, 1000),
}


def schema_version() -> int:
    """The current schema version: 1, or the latest version that added a field."""
    return max((version for version, _ in SCHEMA_ADDED.values()), default=1)


def _same_value(a: Any, b: Any) -> bool:
    """Equality as the record sees it (JSON): (1, 10) == [1, 10]."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _identity(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (every field) -> the record: the v1 fields (a v1 field no longer in the
    dataclass keeps its frozen value), and each later field that differs from its absent value."""
    out = dict(SCHEMA_DEFAULTS_V1)
    for name, value in values.items():
        if name in REQUIRED_FIELDS or name in SCHEMA_DEFAULTS_V1:
            out[name] = value
        elif name in SCHEMA_ADDED:
            if not _same_value(value, SCHEMA_ADDED[name][1]):
                out[name] = value
        else:
            raise TypeError(
                f"RunConfig field {name!r} is in no schema version: add it to "
                "bench.config.SCHEMA_ADDED with the value that reproduces runs made before it"
            )
    return out


PROFILES: dict[str, dict[str, Any]] = {
    # the XBN paper, section 5.1
    "paper": dict(
        model="resnet50",
        pretrained=True,
        head="l2",
        embedding_size=512,
        image_size=224,
        augment="randaugment",
        batch_size=64,
        m_per_class=4,
        memory_ratio=0.5,
        lr=1e-4,
        weight_decay=1e-4,
        lr_step_epochs=15,
        lr_gamma=0.33,
        epochs=50,
        warmup_epochs=2,
        warmup_lr=1e-3,
        amp=True,
        grad_clip=10.0,
        train_per_class=None,
        drift_probe=64,
        num_workers=8,
    ),
    # the same pipeline scaled to two CPU cores: a small timm ResNet trained from scratch at the
    # native resolution, 400 training images per class, 5 main epochs with the LR x0.33 every 2
    # (the shape of x0.33 every 15 of 50), AdamW at 1e-3 since nothing is pretrained
    "cpu": dict(
        model="test_resnet",
        pretrained=False,
        head="l2",
        embedding_size=128,
        image_size=28,
        augment="flip",
        batch_size=40,
        m_per_class=4,
        memory_ratio=0.5,
        lr=1e-3,
        weight_decay=1e-4,
        lr_step_epochs=2,
        lr_gamma=0.33,
        epochs=5,
        warmup_epochs=1,
        warmup_lr=1e-3,
        amp=False,
        grad_clip=10.0,
        train_per_class=400,
        drift_probe=64,
        num_workers=0,
        # the memory probe at 2 points within each epoch (and its end), not the default 4: the
        # demo's 12 minutes (README, "Where a demo cell's time goes"); it changes no Recall
        memory_probe_points=2,
    ),
}

# Where each value of a profile comes from: a section/table/footnote of a paper, or "choice: "
# and the reason (issue 16, item 5; README's protocol table is ``protocol_table()``). Keys are
# the profile's fields, then settings of the pipeline that are not RunConfig fields (they are
# fixed in code for every profile: bench/engine/data.py, warmup.py, registry.py).
PROFILE_SOURCES: dict[str, dict[str, str]] = {
    "paper": {
        "model": "XBN paper sec. 5.1 (ImageNet-pretrained ResNet-50; timm)",
        "pretrained": "XBN paper sec. 5.1 and footnote 4",
        "head": "XBN paper sec. 5.1 (linear layer to 512, L2-normalised; footnote 4)",
        "embedding_size": "XBN paper sec. 5.1",
        "image_size": "choice: the papers state none; 224 is timm's input size for resnet50",
        "augment": "XBN paper sec. 5.1 (timm default augmentations, rand-m9-mstd0.5, reprob 0.2)",
        "batch_size": "XBN paper sec. 5.1 and table 1",
        "m_per_class": "XBN paper sec. 5.1 (four images per class)",
        "memory_ratio": "XBN paper table 1 (50%; 100% for DeepFashion2)",
        "lr": "XBN paper sec. 5.1 (AdamW, 0.0001)",
        "weight_decay": "choice: neither paper states it; 1e-4 on every parameter is kept because "
        "changing it would change every paper run (timm's train.py default is 2e-5 with no "
        "decay on norm and bias parameters)",
        "lr_step_epochs": "XBN paper sec. 5.1 (x0.33 every 15 epochs)",
        "lr_gamma": "XBN paper sec. 5.1",
        "epochs": "XBN paper sec. 5.1 (50 epochs)",
        "warmup_epochs": "XBN paper sec. 5.1 (2-epoch pre-warm-up of the last layer)",
        "warmup_lr": "XBN paper sec. 5.1 (SGD, 0.001)",
        "amp": "XBN paper sec. 5.1 (mixed precision)",
        "grad_clip": "choice: neither paper states clipping; norm 10 keeps fp16 steps bounded",
        "train_per_class": "XBN paper sec. 5.2 (the standard training splits, whole)",
        "drift_probe": "XBN paper appendix C (drift on a minibatch of 64 training samples)",
        "num_workers": "choice: loader processes; no effect on the numbers",
        # fixed in code, not RunConfig fields
        "random_erasing_mode": "choice: 'const' (create_transform's default) is used; timm's "
        "train.py uses 'pixel' (a departure: the run's deviations say so)",
        "interpolation_and_crop": "choice: create_transform's defaults are used (bilinear; "
        "evaluation crop_pct 0.875; ImageNet mean/std); timm's train.py takes them from the "
        "model's pretrained config (resnet50: bicubic, crop_pct 0.95) (a departure: the run's "
        "deviations say so)",
        "warmup_backbone_batchnorm": "choice: train mode, so the frozen backbone's BatchNorm "
        "running statistics adapt to the dataset during the head warm-up (the paper freezes "
        "only the weights, footnote 4, and trains with BatchNorm enabled, sec. 5.1)",
        "warmup_momentum": "choice: SGD momentum 0.9 (the paper says only 'sgd', sec. 5.1)",
        "selection": "XBN paper sec. 5.1 and footnote 6 (best Recall@1 over every evaluated "
        "epoch, the pretrained network included)",
    },
}
# Where a ``paper`` run departs from a source it follows: appended to the run's record
# (result.json "deviations") at run time, not to RunConfig.deviations, which is in the run id
PROFILE_DEPARTURES: dict[str, tuple[str, ...]] = {
    "paper": (
        "random erasing mode 'const' (timm create_transform's default); timm's train.py, whose "
        "defaults the XBN paper follows (sec. 5.1), uses 'pixel'",
        "interpolation bilinear and crop_pct 0.875 (create_transform's defaults); timm's "
        "train.py takes them from resnet50's pretrained config (bicubic, crop_pct 0.95)",
    ),
}


def is_sourced(text: str) -> bool:
    """A source names a paper's section/table/footnote/appendix, or is "choice: <reason>"."""
    import re

    if text.startswith("choice: "):
        return len(text[len("choice: ") :].strip()) >= 10
    return bool(re.match(r"(XBN paper|thesis) (sec\.|table|footnote|appendix) ?[\dA-Z]", text))


def protocol_table(profile: str = "paper") -> str:
    """README's protocol table: every value of ``profile`` with its source (Markdown)."""
    values, sources = PROFILES[profile], PROFILE_SOURCES[profile]
    lines = ["| setting | value | source |", "| --- | --- | --- |"]
    # the profile's own order first, then the settings fixed in code (a stable order)
    keys = [k for k in values if k in sources] + [k for k in sources if k not in values]
    for key in keys:
        value = f"`{values[key]!r}`" if key in values else "(in code)"
        lines.append(f"| `{key}` | {value} | {sources[key]} |")
    return "\n".join(lines) + "\n"


MOCO_QUEUE_RATIO = 4096 / 50000  # PML's queue of 4096 on CIFAR's 50,000 training images

# Config overrides of a MoCo run per profile (make_config and bench.studies use them; the task
# itself is bench/engine/moco). ``paper``: PML's MoCo
# example with every value kept except the batch size, 128, as the XBN paper says (so lr 0.03,
# not the 0.06 of the official MoCo CIFAR demo at batch 512); trained from scratch. ``cpu``:
# the same path on Fashion-MNIST in minutes on two cores. m_per_class is unused by MoCo; it is
# set to the batch size so that the metric sampler's check has nothing to adapt.
MOCO_PROFILES: dict[str, dict[str, Any]] = {
    "paper": dict(
        task="moco",
        model="resnet18",
        pretrained=False,
        embedding_size=128,
        image_size=32,
        augment="moco",
        batch_size=128,
        m_per_class=128,
        memory_ratio=MOCO_QUEUE_RATIO,
        optimizer="sgd",
        lr=0.03,
        weight_decay=5e-4,
        temperature=0.1,
        epochs=200,
        warmup_epochs=0,
        amp=False,
        train_per_class=None,
        moco_momentum=0.99,
        moco_bn_splits=8,
        num_workers=8,
    ),
    "cpu": dict(
        task="moco",
        model="test_resnet",
        pretrained=False,
        embedding_size=128,
        image_size=28,
        augment="moco_tensor",
        batch_size=64,
        m_per_class=64,
        memory_ratio=MOCO_QUEUE_RATIO,
        optimizer="sgd",
        lr=0.06,
        weight_decay=5e-4,
        temperature=0.1,
        epochs=4,  # demo scale: epoch 2 is the early point of the claim; 12-minute demo
        warmup_epochs=0,
        amp=False,
        train_per_class=400,
        moco_momentum=0.99,
        moco_bn_splits=4,
        num_workers=0,
    ),
}

# number of classes of the datasets whose few classes constrain the sampler
FEW_CLASSES = {"cifar10": 10, "fashion-mnist": 10}
FULL_MEMORY = {"deepfashion2"}  # paper: memory = 100% of the training set


def _sampler_fix(batch: int, m: int, n_classes: int) -> tuple[int, str | None]:
    """MPerClassSampler needs batch % m == 0 and m * n_classes >= batch: raise m if needed."""
    if m * n_classes >= batch:
        return m, None
    for new_m in range(m, batch + 1):
        if batch % new_m == 0 and new_m * n_classes >= batch:
            return new_m, (
                f"m_per_class raised from {m} to {new_m}: {n_classes} classes cannot "
                f"fill a batch of {batch} with {m} per class"
            )
    raise UserError(f"batch_size {batch} cannot be sampled from {n_classes} classes")


def _validate(v: dict[str, Any]) -> dict[str, Any]:
    """Every field checked and normalised by its spec (bench/spec.py), defaults included, then
    the rules between fields; a bad value is a UserError naming the field and the value."""
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(RunConfig)
        if f.default is not dataclasses.MISSING and f.name != "variant_options"
    }
    return validate({**defaults, **v})


def _variant_options(variant: str, given: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """The variant's checked options (text parsed by the declared type) and their specs."""
    from variants.registry import get_variant  # imports torch: only when a config is made

    try:
        specs = get_variant(variant).option_specs()
    except ValueError as e:
        raise UserError(str(e)) from None
    opts = {k: v for k, v in given.items() if v is not None}
    bad = sorted(set(opts) - set(specs))
    if bad:
        raise UserError(
            f"unknown option(s) {', '.join(bad)} for variant {variant!r}; "
            f"valid options: {', '.join(sorted(specs))}"
        )
    return {k: Field.of(specs[k]).coerce(k, v) for k, v in opts.items()}, specs


def _adapt(
    dataset: str,
    variant: str,
    values: dict[str, Any],
    opts: dict[str, Any],
    specs: dict,
    explicit_m: bool = False,
) -> list[str]:
    """The profile adapted to the cell, in place; returns each adaptation as a deviation. Only a
    profile default is adapted: ``explicit_m`` (m_per_class given by the caller) is refused
    where it would have to change."""
    notes = []
    if (
        variant == "delayed_xbn"
        and "delay_epochs" not in opts
        and values["lr_step_epochs"] != specs["delay_epochs"].default
    ):
        # the thesis' 15 is the paper schedule's first LR decay (thesis 4.3.3): follow the
        # profile's first decay instead, or a 5-epoch cpu run would never normalise
        opts["delay_epochs"] = values["lr_step_epochs"]
        notes.append(
            f"delayed_xbn: delay_epochs = {values['lr_step_epochs']}, the first "
            f"LR decay of this schedule (the thesis' 15 is the paper's)"
        )
    if dataset in FEW_CLASSES:
        m, why = _sampler_fix(values["batch_size"], values["m_per_class"], FEW_CLASSES[dataset])
        if why and explicit_m:  # the user's own value is never rewritten (issue 30)
            raise UserError(
                f"m_per_class {values['m_per_class']} with batch_size {values['batch_size']} "
                f"cannot be sampled from {dataset}'s {FEW_CLASSES[dataset]} classes (a batch "
                f"needs batch_size / m_per_class classes); give --m-per-class {m}, or a "
                f"batch_size of at most {values['m_per_class'] * FEW_CLASSES[dataset]} that "
                f"m_per_class divides"
            )
        if why:  # only a profile default is adapted; `run` prints the deviation
            values["m_per_class"] = m
            notes.append(why)
    return notes


def make_config(
    dataset: str,
    variant: str,
    seed: int = 0,
    profile: str = "cpu",
    variant_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> RunConfig:
    """Resolve a profile into a RunConfig; ``None`` overrides mean "the profile's default".

    Every value is checked before anything runs (bench/spec.py, the variant's ``Option``s); text
    values, as the command line passes them, are parsed by the field's declared type.
    """
    from data_prep import DATASETS  # imports torch: only when a config is made

    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}")
    seed = FIELDS["seed"].coerce("seed", seed)
    opts, specs = _variant_options(variant, variant_options or {})
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UserError(f"unknown config field(s): {', '.join(unknown)}")
    overrides = {k: FIELDS[k].coerce(k, v) for k, v in overrides.items() if v is not None}
    if "miner_distance" in opts:  # a run's miner is a config field; the option is its alias
        alias = opts.pop("miner_distance")
        if overrides.setdefault("miner_distance", alias) != alias:
            raise UserError(
                f"miner_distance given twice: {overrides['miner_distance']!r} as a field and "
                f"{alias!r} as a variant option"
            )
    values: dict[str, Any] = dict(PROFILES[profile])
    if dataset in FULL_MEMORY and profile == "paper":
        values["memory_ratio"] = 1.0
    if overrides.get("task") == "moco":  # MoCo's own protocol (bench/engine/moco, paper app. B)
        values.update(MOCO_PROFILES[profile])
    if variant == "no_xbm":
        values["memory_ratio"] = 0.0  # the memory is never used; the paper reports 0
    values.update({k: v for k, v in overrides.items() if v is not None})
    deviations = list(values.pop("deviations", ()))
    deviations += _adapt(dataset, variant, values, opts, specs, "m_per_class" in overrides)
    values = {k: v for k, v in _validate(values).items() if k in values}
    # an option at its default is dropped, so that the same run has the same hash
    opts = {k: v for k, v in opts.items() if specs[k].default != v}
    return RunConfig(
        dataset=dataset,
        variant=variant,
        seed=seed,
        profile=profile,
        variant_options=tuple(sorted(opts.items())),
        deviations=tuple(deviations),
        **values,
    )
