"""What a report holds (``Report``), the figures it draws and its tables' file names.

The lowest layer of the report's page code: ``reports.build`` computes a ``Report`` and writes it,
``reports.markdown`` turns one into REPORT.md; both import this module, neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from reports.claims import Claim
from reports.load import Store
from reports.reported import table_slug

# figure name -> (title, study whose runs would draw it)
HEADLINE = "forest"
REGIMES = "staleness_regimes"  # reports.regimes
FIGURES: dict[str, tuple[str, str]] = {
    # the headline figure: drawn right after the claims table, first among the figures
    "forest": (
        "Every variant's difference to XBM and to no-XBM (Recall@1, 95% CI)",
        "demo",
    ),
    "recall_vs_batch_memory": (
        "Recall@1 vs batch size and memory size (paper fig. 1)",
        "paper-fig1",
    ),
    "drift": ("Mean and max feature drift per epoch (paper fig. 3)", "paper-table1"),
    "distances": ("Inter-embedding distance and distance to class mean per epoch", "thesis"),
    "recall_curves": ("Recall@1 per epoch, mean ± std over seeds", "paper-table1"),
    "pc_lambda_sweep": ("PC-XBN lambda sweep (thesis table 5.14)", "thesis-pc-sweep"),
    "superclass_topk": ("Superclass top-k, k = 1..5 (thesis table 5.16)", "thesis"),
    REGIMES: (
        "Staleness cost (oracle − XBM) and the share XBN recovers vs memory ratio, per LR",
        "demo-regimes",
    ),
}

# the mechanism section's figures (reports.mechanism_page), drawn there, not under "Figures"
MEMORY_AGE, ADAPTATION_GAIN = "memory_error_age", "adaptation_gain"
MECHANISM_FIGURES: dict[str, str] = {
    MEMORY_AGE: "Memory error vs entry age per variant (solid: as the loss sees it; dashed: "
    "un-adapted, what XBM holds)",
    ADAPTATION_GAIN: "Adaptation gain per epoch (un-adapted / adapted L2 error), mean ± std "
    "over seeds",
}
MEMORY_TABLE = "memory_error"  # tables/memory_error.{md,csv,tex}


@dataclass
class Report:
    results: Path
    epoch: str
    store: Store
    tables: dict[str, pd.DataFrame]
    missing_tables: list[str]
    claims: pd.DataFrame
    untested: list[Claim]
    gain: pd.DataFrame
    figures: dict[str, Figure | None] = field(default_factory=dict)
    moco: pd.DataFrame = field(default_factory=pd.DataFrame)  # reports.moco.moco_table
    # done runs not counted: the same config and seed as a counted run (reports.configs)
    duplicates: pd.DataFrame = field(default_factory=pd.DataFrame)
    with_cells: bool = False  # whether the study cells were given (reported numbers need them)
    # thesis table 5.14 under both readings (reports.sweep.sweep_points)
    sweep: pd.DataFrame = field(default_factory=pd.DataFrame)
    memory: pd.DataFrame = field(default_factory=pd.DataFrame)  # reports.mechanism.memory_table
    # done metric runs without memory_error.csv (reports.mechanism.unprobed)
    unprobed: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the share of the staleness cost recovered per adapting variant (reports.recovery)
    recovery: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the memory error and adaptation gain per LR phase and per epoch (reports.phases)
    memory_phases: pd.DataFrame = field(default_factory=pd.DataFrame)
    memory_epochs: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the primary claims' power at the designed effect (reports.design)
    design: pd.DataFrame = field(default_factory=pd.DataFrame)


def table_file_stem(name: str) -> str:
    """'paper table 1' -> 'paper_table1';
    'cpu runs on fashion-mnist' -> 'cpu_runs_fashion-mnist'."""
    source, sep, number = name.partition(" table ")
    if sep:
        return table_slug(source, number)
    return name.replace(" runs on ", "_runs_").replace(" ", "_")
