"""The studies: named lists of RunConfigs, built from one table of facts (docs/running.md).

Each study is a list of blocks; a block is the cartesian product of its datasets, variants,
seeds and settings (config overrides / variant options). A cell shared by two studies (the L2
head of paper table 3 is the run of table 1) has one config, hence one run. A block may carry a
``label`` (what it is: a reading of the source, a sensitivity check) and the reported ``targets``
(table numbers in reported_numbers.csv) its cells are compared with; ``cell_info`` gives both per
cell (the first block that makes a cell names it), and ``grid list --json`` prints them.

A block may be ``optional``: its cells are listed (``grid list``) but planned and run only when
the user names one of its variants (``--variant oracle_xbm``). The variants beyond the sources
(``BEYOND_SOURCES``: ``oracle_xbm``, the re-embedding bound) join the paper and thesis studies that
way, so those studies' cells and run ids stay the sources' own; the CPU demo runs them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from bench.config import RunConfig, make_config, profile_values
from bench.profiles import MOCO_PROFILES
from common import UserError
from data_prep import DATASETS
from variants import SOURCED_VARIANTS, VARIANTS

SEEDS = (0, 1, 2)  # the papers repeat three times (paper tables 1-2); the thesis ran once
PAPER_DATASETS = ("sop", "inshop", "deepfashion2")
THESIS_DATASETS = ("inshop", "sop", "deepfashion2", "cifar10", "cifar100")
ALL_VARIANTS = VARIANTS  # the registry's order (variants/__init__.py)
SOURCED = SOURCED_VARIANTS  # those the paper or the thesis describe, in the same order
BEYOND = tuple(v for v in ALL_VARIANTS if v not in SOURCED)  # oracle_xbm
BEYOND_LABEL = "beyond the sources: re-embedding bound"
DEMO_REFRESH = 10  # the demo's oracle_xbm refresh_interval (the sources' studies: 1)
# the CPU demo: Omniglot's minimal split, test alphabets unseen in training
# (data_prep/omniglot.py); seeds chosen for power (README, "The CPU demo")
DEMO_DATASET = "omniglot-small"
# The primary claims' variants run 10 seeds, the others the papers' 3: from the pilot's paired
# spread (sd of per-seed differences about 1.1 Recall@1 points, 3 main epochs), 10 seeds detect a
# 1.5-point difference with power 0.8 at alpha 0.05/3 (the Holm threshold of the first of the three
# primary claims), and the 61 cells fit the demo's 10 minutes (README, "The CPU demo: design")
DEMO_PRIMARY_VARIANTS = ("no_xbm", "xbm", "xbn", "oracle_xbm")
DEMO_SEEDS = tuple(range(10))
# the demo's departures from the cpu profile, for time (README, "The CPU demo"): 3 main epochs
# (the LR decays once, after epoch 2, so the mechanism has a phase before and after it) and the
# memory probe at 2 points an epoch on 500 entries
DEMO_SETTINGS = {"epochs": 3, "memory_probe_points": 1, "memory_probe_size": 500}
REGIME_MEMORY = (0.25, 0.5, 1.0)
REGIME_LR = (0.5, 1.0, 2.0)  # x the cpu profile's lr (the 1x cells are the demo's own)
REGIME_SETTINGS = tuple(
    {**DEMO_SETTINGS, "memory_ratio": m, "lr": profile_values("cpu")["lr"] * f}
    for f in REGIME_LR
    for m in REGIME_MEMORY
)
LAMBDAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # thesis table 5.14
# paper fig. 1: the axis values were lost in the text; these cover the plotted range around the
# table setting (batch 64, memory 50% / 100% for DeepFashion2)
FIG1_BATCHES = (16, 32, 64, 128, 256)
FIG1_MEMORY = (0.0625, 0.125, 0.25, 0.5, 1.0)
# the CPU version of fig. 1 (Fashion-MNIST allows batches of at most 40 with 4 per class)
DEMO_FIG1_BATCHES = (20, 40)
DEMO_FIG1_MEMORY = (0.125, 0.25, 0.5, 1.0)
# paper section 5.1: the Kalman gain interval is 100 for SOP and In-Shop, 10 for DeepFashion2
AXBN_GAIN = {"sop": 100, "inshop": 100, "deepfashion2": 10}
# thesis table 5.15 and appendix 9 (9.1 PC-XBN margin adjusted; 9.2 SC-XBN: positive margin 0.1,
# negative margin 2.0, lambda 0.5, under a caption that reads "PC-XBN Parameters")
ADJUSTED_MARGINS = {"pos_margin": 0.1, "neg_margin": 2.0}
# thesis table 5.17 (CIFAR-100, In-Shop, SOP; its caption names DeepFashion too, no number survived)
# and table 7.1 (In-Shop, SOP): the SC-XBN runs the thesis reports
SC_XBN_TARGETED = ("cifar100", "inshop", "sop", "deepfashion2")
# thesis table 5.14: each lambda swept with the other at its default (lambda_mu 0.5, lambda_sigma
# 1); lambda_sigma 1.0 is the default cell
LAMBDA_SWEEP = tuple({"options": {"lambda_mu": v}} for v in LAMBDAS) + tuple(
    {"options": {"lambda_sigma": v}} for v in LAMBDAS
)
# the standard benchmarks of deep metric learning, on their usual splits (the first half of
# the classes trains, the second half is searched against itself; data_prep/): every variant at
# the paper profile, 3 seeds, so that the variants are compared where the field compares losses
STANDARD_DATASETS = ("cub200", "cars196", "sop")
READING_DEFAULT = "table 5.14, reading A: the protocol's default margins (0.2/0.8)"
READING_ADJUSTED = "table 5.14, reading B: the adjusted margins of appendix 9 (0.1/2.0)"


@dataclass(frozen=True)
class Block:
    datasets: tuple[str, ...]
    variants: tuple[str, ...]
    settings: tuple[dict[str, Any], ...] = (
        {},
    )  # config overrides; key "options" = variant options
    profile: str = "paper"
    seeds: tuple[int, ...] = SEEDS
    label: str = ""  # what the block is: a reading of the source, a sensitivity check, ...
    targets: tuple[str, ...] = ()  # the reported tables (reported_numbers.csv) it is compared with
    # (variant, option) pairs the block needs: a block whose option no variant declares yet is
    # left out (an option being added on another branch), not an error
    requires: tuple[tuple[str, str], ...] = ()
    # listed, but planned only when the user names one of its variants (--variant oracle_xbm)
    optional: bool = False


@dataclass(frozen=True)
class Study:
    name: str
    reproduces: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)


STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "paper-table1",
            "paper table 1",
            (
                Block(PAPER_DATASETS, ("no_xbm", "xbm", "xbn", "axbn")),
                Block(PAPER_DATASETS, BEYOND, label=BEYOND_LABEL, optional=True),
            ),
        ),
        Study(
            "paper-table2",
            "paper table 2",
            (
                Block(("sop", "inshop"), ("no_xbm",), ({"batch_size": 512},)),
                Block(("sop", "inshop"), ("xbm_star",)),
            ),
        ),
        Study(
            "paper-table3",
            "paper table 3",
            (
                Block(
                    ("sop",),
                    ("no_xbm", "xbm", "xbn"),
                    tuple({"head": h} for h in ("l2", "l2_bn", "l2_ln")),
                ),
            ),
        ),
        Study(
            "paper-fig1",
            "paper figure 1",
            (
                Block(
                    PAPER_DATASETS,
                    ("no_xbm", "xbm", "xbn", "axbn"),
                    tuple({"batch_size": b} for b in FIG1_BATCHES),
                ),
                Block(
                    PAPER_DATASETS,
                    ("xbm", "xbn", "axbn"),
                    tuple({"memory_ratio": m} for m in FIG1_MEMORY),
                ),
            ),
        ),
        Study(
            "thesis",
            "thesis tables 5.1-5.17, 7.1",
            (
                Block(
                    THESIS_DATASETS,
                    tuple(v for v in SOURCED if v not in ("sc_xbn", "xbm_star")),
                ),
                # SC-XBN as the thesis ran it (appendix 9.2: margins 0.1/2.0, lambda 0.5, the
                # default lambda_mu), on the datasets of its tables 5.17 and 7.1
                Block(
                    SC_XBN_TARGETED,
                    ("sc_xbn",),
                    ({**ADJUSTED_MARGINS},),
                    label="SC-XBN at the thesis' margins (appendix 9.2)",
                    targets=("5.17", "7.1"),
                ),
                # SC-XBN at the protocol's default margins: a sensitivity block, compared with no
                # reported number. Dataset superclasses; CIFAR-10 has none, so k-means
                # superclasses over class means (thesis 6.1.1, engine/superclasses.py)
                Block(
                    THESIS_DATASETS,
                    ("sc_xbn",),
                    label="sensitivity: SC-XBN at the default margins (0.2/0.8), not the thesis'",
                ),
                Block(
                    ("cifar10", "cifar100"),
                    ("pc_xbn",),
                    ({**ADJUSTED_MARGINS},),
                    label="PC-XBN, adjusted margins (appendix 9.1)",
                    targets=("5.15",),
                ),
                Block(THESIS_DATASETS, BEYOND, label=BEYOND_LABEL, optional=True),
            ),
        ),
        # thesis table 5.14: each lambda swept with the other at its default (lambda_mu 0.5,
        # lambda_sigma 1); the thesis says neither what it held fixed nor the margins. Its
        # (0.5, 1) point, 85.0, cannot be table 5.15's default-margin 39.69: the sweep runs under
        # both readings, each block labelled (the report compares each with table 5.14)
        Study(
            "thesis-pc-sweep",
            "thesis tables 5.14, 5.15",
            (
                Block(
                    ("cifar100",),
                    ("pc_xbn",),
                    LAMBDA_SWEEP,
                    label=READING_DEFAULT,
                    targets=("5.14",),
                ),
                # the (0.5, 1) point first: it is table 5.15's adjusted-margin row too
                Block(
                    ("cifar100",),
                    ("pc_xbn",),
                    ({**ADJUSTED_MARGINS},)
                    + tuple({**ADJUSTED_MARGINS, **s} for s in LAMBDA_SWEEP),
                    label=READING_ADJUSTED,
                    targets=("5.14", "5.15"),
                ),
                # the unbiased per-class std at the (0.5, 1) point, adjusted
                # margins (the reading table 5.15's 80.07 belongs to)
                Block(
                    ("cifar100",),
                    ("pc_xbn",),
                    ({**ADJUSTED_MARGINS, "options": {"std_correction": 1}},),
                    label="sensitivity: unbiased per-class std (std_correction=1)",
                    requires=(("pc_xbn", "std_correction"),),
                ),
            ),
        ),
        Study(
            "demo",
            "the CPU demo: every variant on Omniglot, unseen test alphabets (and the "
            "re-embedding bound)",
            (
                Block(
                    (DEMO_DATASET,),
                    tuple(v for v in SOURCED if v in DEMO_PRIMARY_VARIANTS),
                    (DEMO_SETTINGS,),
                    profile="cpu",
                    seeds=DEMO_SEEDS,
                ),
                Block(
                    (DEMO_DATASET,),
                    tuple(v for v in SOURCED if v not in DEMO_PRIMARY_VARIANTS),
                    (DEMO_SETTINGS,),
                    profile="cpu",
                ),
                Block(
                    (DEMO_DATASET,),
                    BEYOND,
                    ({**DEMO_SETTINGS, "options": {"refresh_interval": DEMO_REFRESH}},),
                    profile="cpu",
                    seeds=DEMO_SEEDS,
                    label=f"{BEYOND_LABEL} (refresh every {DEMO_REFRESH} steps)",
                ),
            ),
        ),
        # the papers' argument where anyone can rerun it: drift grows with the memory and the
        # learning rate, so adaptation should help most there (not in the default run)
        Study(
            "demo-regimes",
            "staleness cost and the share XBN recovers, by memory ratio and learning rate",
            (
                Block(
                    (DEMO_DATASET,),
                    ("xbm", "xbn"),
                    REGIME_SETTINGS,
                    profile="cpu",
                ),
                Block(
                    (DEMO_DATASET,),
                    BEYOND,
                    tuple(
                        {**s, "options": {"refresh_interval": DEMO_REFRESH}}
                        for s in REGIME_SETTINGS
                    ),
                    profile="cpu",
                    label=f"{BEYOND_LABEL} (refresh every {DEMO_REFRESH} steps)",
                ),
            ),
        ),
        Study(
            "demo-fashion",
            "the CPU demo before Omniglot: every variant on Fashion-MNIST (10 classes, all seen "
            "in training; and the re-embedding bound)",
            # the registry's order puts the bound last: the sources' cells come first. The bound
            # re-embeds its memory every DEMO_REFRESH steps, not every step: a full refresh of
            # the demo's 2,000 entries costs about ten training steps, and every step would not
            # fit the demo's 12 minutes (README, "The memory error"); staleness <= 10 steps
            # against plain XBM's 50
            (
                Block(("fashion-mnist",), SOURCED, profile="cpu"),
                Block(
                    ("fashion-mnist",),
                    BEYOND,
                    ({"options": {"refresh_interval": DEMO_REFRESH}},),
                    profile="cpu",
                    label=f"{BEYOND_LABEL} (refresh every {DEMO_REFRESH} steps)",
                ),
            ),
        ),
        Study(
            "demo-fig1",
            "the CPU version of paper figure 1: batch and memory sweeps on Fashion-MNIST",
            (
                Block(
                    ("fashion-mnist",),
                    ("no_xbm", "xbm", "xbn", "axbn"),
                    tuple({"batch_size": b} for b in DEMO_FIG1_BATCHES),
                    profile="cpu",
                    seeds=(0,),
                ),
                Block(
                    ("fashion-mnist",),
                    ("xbm", "xbn", "axbn"),
                    tuple({"memory_ratio": m} for m in DEMO_FIG1_MEMORY),
                    profile="cpu",
                    seeds=(0,),
                ),
            ),
        ),
        # paper appendix B / fig. 2: MoCo (xbm) and MoCo+XBN (xbn) as in PML's MoCo example,
        # batch 128, key momentum 0.99, 200 epochs, from scratch (bench.profiles.MOCO_PROFILES)
        Study(
            "paper-moco",
            "paper figure 2 (MoCo with and without XBN)",
            (Block(("cifar10", "cifar100"), ("xbm", "xbn"), (dict(MOCO_PROFILES["paper"]),)),),
        ),
        Study(
            "demo-moco",
            "the CPU demo of paper figure 2: MoCo on Fashion-MNIST",
            (
                Block(
                    ("fashion-mnist",), ("xbm", "xbn"), (dict(MOCO_PROFILES["cpu"]),), profile="cpu"
                ),
            ),
        ),
        # no source reports these cells: a benchmark, not a reproduction. The SOP cells are
        # those of paper table 1, paper table 2 (xbm_star) and the thesis (one config, one run);
        # the re-embedding bound is optional, as in the sources' studies (a full refresh every
        # step at the paper's scale)
        Study(
            "standard",
            "no source: every variant on CUB-200-2011, Cars196 and SOP (paper profile)",
            (
                Block(STANDARD_DATASETS, SOURCED),
                Block(STANDARD_DATASETS, BEYOND, label=BEYOND_LABEL, optional=True),
            ),
        ),
    )
}


def _cell(block: Block, dataset: str, variant: str, seed: int, setting: dict) -> RunConfig:
    overrides = dict(setting)
    options = dict(overrides.pop("options", {}))
    if variant == "axbn" and dataset in AXBN_GAIN and block.profile == "paper":
        options.setdefault("gain_interval", AXBN_GAIN[dataset])
    if variant == "no_xbm" and "memory_ratio" in overrides:
        return None  # no memory: a memory sweep has nothing to vary
    return make_config(dataset, variant, seed, block.profile, options, **overrides)


def _available(block: Block) -> bool:
    """Whether every (variant, option) the block requires is declared by its variant."""
    from variants import get_variant  # imports torch: only when cells are made

    return all(opt in get_variant(v).option_specs() for v, opt in block.requires)


# the most seeds one --seeds may name (choice: a cap, not a confirmation prompt, which
# a batch job could not answer; 1,000 seeds list in about half a second, 100,001 took 52 s)
MAX_SEEDS = 1000


def seed_spec(text: str | None) -> tuple[int, ...] | None:
    """``--seeds`` text -> seeds: numbers and inclusive ranges, comma-separated ("0-9",
    "0,2,5-7"), each seed once, in increasing order; None (no text): the studies' own seeds."""
    if text is None:
        return None
    out: set[int] = set()
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.strip().isdigit() or (dash and not hi.strip().isdigit()):
            raise UserError(
                f"--seeds takes seeds and ranges like 0-9 or 0,2,5-7 (seeds >= 0), got {text!r}"
            )
        a, b = int(lo), int(hi) if dash else int(lo)
        if b < a:
            raise UserError(f"--seeds range {part.strip()!r} runs backwards; write {b}-{a}")
        if len(out) + b - a + 1 > MAX_SEEDS:  # checked before the range is built
            raise UserError(
                f"--seeds {text!r} names more than {MAX_SEEDS} seeds: every one is a cell per "
                f"variant and dataset (the papers use 3 to 10); give at most {MAX_SEEDS}"
            )
        out.update(range(a, b + 1))
    return tuple(sorted(out))


def cells(
    study: str,
    datasets: Iterable[str] | None = None,
    variants: Iterable[str] | None = None,
    seeds: Iterable[int] | None = None,
    optional: bool = False,
) -> list[RunConfig]:
    """The RunConfigs of ``study``, filtered, without duplicates, in a stable order.

    ``seeds``: every block of the study at exactly these seeds, in place of its own (the same
    configs, other seeds: ``--seeds 0-9`` adds seeds 3-9 to a study of seeds 0-2, ``--seeds 1``
    keeps seed 1 alone); None: each block's own seeds. ``optional``: also an optional block's
    cells whose variant ``variants`` does not name (what ``grid list`` shows; a grid to run
    takes an optional block's cells only when its variant is named)."""
    return [cfg for cfg, _ in _cells(study, datasets, variants, seeds, optional)]


def cell_info(
    study: str,
    datasets: Iterable[str] | None = None,
    variants: Iterable[str] | None = None,
    seeds: Iterable[int] | None = None,
    optional: bool = False,
) -> dict[str, dict[str, Any]]:
    """run_id -> {"block": label, "targets": [reported tables], "optional": bool} of each cell
    of ``study``, from the first block that makes it (``grid list --json``; the report's reading
    of a cell)."""
    return {
        cfg.run_id: {"block": b.label, "targets": list(b.targets), "optional": b.optional}
        for cfg, b in _cells(study, datasets, variants, seeds, optional)
    }


def _cells(
    study: str,
    datasets: Iterable[str] | None,
    variants: Iterable[str] | None,
    seeds: Iterable[int] | None,
    optional: bool = False,
) -> list[tuple[RunConfig, Block]]:
    if study not in STUDIES:
        raise UserError(f"unknown study {study!r}; valid studies: {', '.join(STUDIES)}")
    datasets, variants = _as_set(datasets), _as_set(variants)
    _check_names("dataset", datasets, DATASETS)
    _check_names("variant", variants, VARIANTS)
    seeds = set(seeds) if seeds is not None else None
    out: dict[str, tuple[RunConfig, Block]] = {}
    for block in STUDIES[study].blocks:
        if block.requires and not _available(block):
            continue
        block_seeds = sorted(seeds) if seeds is not None else block.seeds
        for d, v, setting, s in itertools.product(
            block.datasets, block.variants, block.settings, block_seeds
        ):
            if (datasets and d not in datasets) or (variants and v not in variants):
                continue
            if block.optional and not optional and not variants:  # named, or not planned
                continue
            cfg = _cell(block, d, v, s, setting)
            if cfg is not None:
                out.setdefault(cfg.run_id, (cfg, block))
    return list(out.values())


def _check_names(kind: str, given: set[str] | None, valid: Iterable[str]) -> None:
    bad = sorted((given or set()) - set(valid))
    if bad:
        raise UserError(f"unknown {kind}(s) {', '.join(bad)}; valid: {', '.join(valid)}")


def _as_set(values: Iterable[str] | None) -> set[str] | None:
    if values is None:
        return None
    values = {v for v in values if v}
    return values or None


def study_cells(studies: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The cells of every study (or of ``studies``) as the plain config dicts reports compare
    runs with: ``{"run_id": ..., **RunConfig.to_dict()}``, each cell once."""
    return [dict(c) for c in _study_cells(tuple(studies))]


@cache  # studies are data: enumerating them once per process is enough
def _study_cells(studies: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    out: dict[str, dict[str, Any]] = {}
    for name in studies or tuple(STUDIES):
        for cfg in cells(name):
            out.setdefault(cfg.run_id, {"run_id": cfg.run_id, **cfg.to_dict()})
    return tuple(out.values())
