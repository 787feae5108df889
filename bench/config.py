"""The frozen run configuration: every field declared once, by ``setting``, with its contract.

A ``RunConfig`` holds every choice that can change a run's numbers; its hash names the run's
folder (bench/run_schema.py). A field's default and contract (``variants.options.Option``) and
the schema version that added it live in its declaration; validation, the command line's options
(commands/options.py), the run id and the protocol table derive from it. ``make_config`` resolves
a profile (bench/profiles.py), adapted to the cell (bench/adaptation.py), into a checked config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass
from typing import Any

from bench import run_schema
from bench.adaptation import adapt, cell_values
from bench.choices import DRAW_MODES, HEADS, LOSSES, MEMORY_INITS, OPTIMIZERS
from bench.profiles import PROFILES
from bench.tasks import AUGMENTS, TASKS
from bench.variant_options import checked_options, field_aliases
from common import UserError
from variants.options import MINER_DISTANCES, Option, OptionError

_DISTANCE = "a distance between embeddings"
_PROB = dict(ge=0.0, le=1.0)


def setting(kind: type, default: Any = MISSING, help: str = "", added=None, **contract) -> Any:
    """A RunConfig field: its default and contract, declared once. ``added``: (the schema version
    that added the field, its absent value: the one that does what runs did before it existed);
    None for the fields of schema v1 (bench/run_schema.py)."""
    option = Option(kind, default, help=help, **contract)
    return dataclasses.field(default=default, metadata={"option": option, "added": added})


@dataclass(frozen=True)
class RunConfig:
    dataset: str = setting(str, help="dataset (checked against data_prep's registry)")
    variant: str = setting(str, help="memory variant (checked against the variants' registry)")
    seed: int = setting(int, 0, "seed", ge=0, why="seeds number the repetitions 0, 1, 2, ...")
    profile: str = setting(str, "cpu", "profile whose values are the defaults")
    # sorted (name, value) pairs, hashable; each option is checked by its variant's own Option
    variant_options: tuple[tuple[str, Any], ...] = setting(tuple, (), "the variant's options")
    task: str = setting(str, "metric", "what is trained", choices=tuple(TASKS))
    # model
    model: str = setting(str, "test_resnet", "timm model name (checked when it is built)")
    pretrained: bool = setting(bool, False, "ImageNet weights from timm's cache or the file")
    pretrained_file: str | None = setting(str, None, "the pretrained weights' file", nullable=True)
    head: str = setting(str, "l2", "embedding head (paper table 3)", choices=HEADS)
    embedding_size: int = setting(
        int,
        128,
        "embedding size",
        ge=2,
        why="the embedding is L2-normalised: at size 1 every image maps to +1 or -1, "
        "two points for all the classes (Recall@1 at chance)",
    )
    image_size: int = setting(int, 28, "input resolution (native for the array datasets)", ge=1)
    augment: str = setting(str, "flip", "training augmentation (bench/tasks.py)", choices=AUGMENTS)
    augment_draws: str = setting(
        str,
        "keyed",
        "augmentation draws (bench/choices.py)",
        choices=DRAW_MODES,
        added=(2, "global"),
    )
    # sampler and memory
    batch_size: int = setting(
        int,
        40,
        "batch size",
        ge=2,
        why="a batch of one has no pair to mine: its loss is 0 on every step",
    )
    m_per_class: int = setting(
        int,
        4,
        "images per class in a batch",
        ge=2,
        why="with one image per class a batch has no positive pair: the warm-up's and "
        "no_xbm's loss is 0 on every step",
    )
    memory_ratio: float = setting(
        float,
        0.5,
        "memory size, a share of the training set",
        **_PROB,
        why="a share of the training set: more would store copies of the same images "
        "(the paper sweeps up to 1, DeepFashion2 uses 1)",
    )
    memory_init: str = setting(str, "queue", "memory after the warm-up", choices=MEMORY_INITS)
    # loss and miner
    loss: str = setting(str, "supcon", "loss (PML SupConLoss: cosine similarity)", choices=LOSSES)
    temperature: float = setting(
        float,
        0.1,
        "SupCon's temperature",
        gt=0.0,
        why="SupCon divides the similarities by it: 0 gives a loss of 0 or NaN",
    )
    pos_margin: float = setting(float, 0.2, "miner's positive margin", ge=0.0, why=_DISTANCE)
    neg_margin: float = setting(float, 0.8, "miner's negative margin", ge=0.0, why=_DISTANCE)
    miner_distance: str = setting(str, "euclidean", "the miner's distance", choices=MINER_DISTANCES)
    # optimisation
    optimizer: str = setting(str, "adamw", "main-phase optimiser", choices=OPTIMIZERS)
    lr: float = setting(
        float, 1e-3, "main-phase LR", gt=0.0, why="0 never moves the weights, < 0 ascends the loss"
    )
    weight_decay: float = setting(
        float, 1e-4, "weight decay", ge=0.0, why="< 0 pushes the weights away from 0"
    )
    lr_step_epochs: int = setting(
        int, 2, "StepLR's step size", ge=1, why="StepLR's step: epochs between two decays"
    )
    lr_gamma: float = setting(
        float,
        0.33,
        "StepLR's decay factor",
        gt=0.0,
        le=1.0,
        why="a decay factor: 0 stops learning, > 1 grows the LR",
    )
    epochs: int = setting(int, 5, "main-phase epochs", ge=1)
    warmup_epochs: int = setting(int, 1, "warm-up epochs (head only, SGD, plain loss)", ge=0)
    warmup_lr: float = setting(
        float, 1e-3, "warm-up LR", gt=0.0, why="0 never moves the head, < 0 ascends the loss"
    )
    amp: bool = setting(bool, False, "mixed precision (only ever used on CUDA)")
    grad_clip: float = setting(
        float,
        10.0,
        "maximum gradient norm",
        gt=0.0,
        why="a maximum gradient norm: < 0 flips the gradient (ascent), 0 zeroes it",
    )
    # evaluation and data
    eval_ks: tuple[int, ...] = setting(
        tuple,
        (1, 10),
        "the K of Recall@K",
        item=int,
        ge=1,
        sort=True,
        contains=(1, 10),
        why="the run record and the report read Recall@1 and Recall@10",
    )
    train_per_class: int | None = setting(
        int, 400, "stratified training subset per class (None: all)", ge=1, nullable=True
    )
    drift_probe: int = setting(
        int, 64, "images in the fixed probe batch for feature drift", ge=1, why="0 gives no drift"
    )
    num_workers: int = setting(int, 0, "data loader processes", ge=0)
    # where this config departs from the profile, and why: written by make_config, not the user
    deviations: tuple[str, ...] = setting(tuple, (), "departures from the profile", item=str)
    # MoCo (task "moco", bench/engine/moco): key encoder = m * key + (1 - m) * query after each step
    moco_momentum: float = setting(
        float,
        0.99,
        "MoCo's key encoder momentum",
        **_PROB,
        why="key = m key + (1 - m) query: a convex mix (1 freezes the key encoder)",
    )
    moco_bn_splits: int = setting(int, 8, "MoCo's BatchNorm sub-batches (key shuffle)", ge=1)
    # the memory probe (bench/engine/memory_probe.py): stored entries re-embedded with the current
    # model at the end of every main epoch and at ``memory_probe_points`` evenly spaced steps
    # within it, about ``memory_probe_size`` entries each time; runs before schema 2 had none
    memory_probe: bool = setting(bool, True, "the memory probe", added=(2, False))
    memory_probe_points: int = setting(
        int,
        4,
        "probe points within an epoch besides its end",
        ge=0,
        added=(2, 4),
        why="probe points within an epoch besides its end: 0 probes at the end only",
    )
    memory_probe_size: int = setting(
        int,
        1000,
        "stored entries re-embedded per probe point",
        ge=1,
        added=(2, 1000),
        why="stored entries re-embedded per probe point",
    )

    def to_dict(self) -> dict[str, Any]:
        """The config's record (config.json without its run_id) and the run id's input."""
        return run_schema.record(self)

    @property
    def run_id(self) -> str:
        """The run's folder name (bench/run_schema.py)."""
        return run_schema.run_id(self)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.variant_options)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """A config from its record (``to_dict``, config.json) of this or any earlier schema."""
        return run_schema.from_record(cls, d)


# every field's contract, by name: a view of RunConfig's declarations
FIELDS: dict[str, Option] = {f.name: f.metadata["option"] for f in dataclasses.fields(RunConfig)}
DEFAULTS: dict[str, Any] = {n: o.default for n, o in FIELDS.items() if o.default is not MISSING}


def profile_values(profile: str) -> dict[str, Any]:
    """Every value of ``profile``: the defaults, with the profile's own."""
    return {**DEFAULTS, **PROFILES[profile]}


def validate(v: dict[str, Any]) -> dict[str, Any]:
    """Every field of ``v`` checked and normalised by its contract (an ``OptionError`` names a
    bad value), then the rules between fields (a UserError)."""
    out = {k: FIELDS[k].coerce(k, x) for k, x in v.items()}
    task, augments = out["task"], TASKS[out["task"]].augments
    if out["augment"] not in augments:
        raise UserError(
            f"augment must be one of {', '.join(augments)} for task {task!r}, "
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


def _overrides(overrides: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    """The given fields, checked, with the variant option that aliases one."""
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise UserError(f"unknown config field(s): {', '.join(unknown)}")
    out = {k: FIELDS[k].coerce(k, v) for k, v in overrides.items() if v is not None}
    return field_aliases(opts, out)


def make_config(
    dataset: str,
    variant: str,
    seed: int = 0,
    profile: str = "cpu",
    variant_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> RunConfig:
    """Resolve a profile into a RunConfig; ``None`` overrides mean "the profile's default".

    Every value is checked before anything runs (the fields' contracts, the variant's
    ``Option``s); text values, as the command line passes them, are parsed by the declared kind.
    A bad value is a UserError naming the field and the value.
    """
    try:
        return _resolve(dataset, variant, seed, profile, variant_options or {}, overrides)
    except OptionError as e:  # a value outside its contract: the user's (exit 2)
        raise UserError(str(e)) from None


def _resolve(dataset, variant, seed, profile, variant_options, overrides) -> RunConfig:
    from data_prep import DATASETS  # imports torch: only when a config is made

    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}")
    seed = FIELDS["seed"].coerce("seed", seed)
    opts, specs = checked_options(variant, variant_options)
    overrides = _overrides(overrides, opts)
    values = {**DEFAULTS, **cell_values(profile, dataset, variant, overrides.get("task"))}
    values.update(overrides)
    del values["seed"], values["profile"], values["variant_options"]  # the arguments'
    deviations = list(values.pop("deviations"))
    deviations += adapt(dataset, variant, values, opts, specs, "m_per_class" in overrides)
    values = validate(values)
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
