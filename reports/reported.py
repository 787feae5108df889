"""The published numbers (shipped as ``reports/reported_numbers.csv``) and how a row finds its runs.

A reported row names its configuration with a variant *label*; the grammar is
``variant[_512|_adjusted_margin][+head][[option=value,...]]``:

- ``no_xbm_512``             -> variant no_xbm at batch size 512;
- ``X+l2_bn`` / ``X+l2_ln``  -> variant X with that embedding head (a plain label means head
  ``l2``);
- ``pc_xbn[lambda_mu=0.2]``  -> pc_xbn with exactly that option (all others at their defaults);
- ``pc_xbn_adjusted_margin`` -> pc_xbn with the thesis' miner margins pos 0.1, neg 2.0;
- anything else needs the default options ({}), the default margins (pos 0.2, neg 0.8).

A reported row matches the ``done`` runs of profile ``paper`` (task ``metric``) with the same
dataset, the label's variant/head/options/margins, the same batch size and the same memory ratio
(ignored for no_xbm, which has no memory). The report applies it to the study runs only (runs
equal to a study cell, reports.configs.study_runs): every other field is then the cell's.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from io import StringIO
from typing import Any

import pandas as pd

DEFAULT_MARGINS = (0.2, 0.8)  # PairMarginMiner pos/neg, paper and thesis
ADJUSTED_MARGINS = (0.1, 2.0)  # thesis table 5.15, appendix 9.1
PAPER_PROFILE = "paper"
# Option defaults of the variants (thesis 4.3.1-4.3.3), written here because reports never imports
# variants: an option at its default is dropped on both sides before comparing, so the label
# ``pc_xbn[lambda_sigma=1.0]`` matches a run whose variant_options are {} (the store drops
# defaults).
OPTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "pc_xbn": {"lambda_mu": 0.5, "lambda_sigma": 1.0},
    "sc_xbn": {"lambda_mu": 0.5, "lambda_sigma": 1.0},
}
# Options the protocol sets per dataset or per profile, not per table row: AXBN's gain interval
# (100 on SOP/In-Shop, 10 on DeepFashion2, paper sec. 5.1) and delayed XBN's delay (the first LR
# decay of the profile's schedule: 15 in the paper profile). They never separate runs.
PROTOCOL_OPTIONS: dict[str, set[str]] = {"axbn": {"gain_interval"}, "delayed_xbn": {"delay_epochs"}}
_LABEL = re.compile(
    r"^(?P<variant>[a-z0-9_]+?)(?P<suffix>_512|_adjusted_margin)?"
    r"(?:\+(?P<head>l2(?:_bn|_ln)?))?(?:\[(?P<opts>[^\]]*)\])?$"
)


@dataclass(frozen=True)
class Selector:
    """What a label asks of a run's configuration."""

    variant: str
    head: str = "l2"
    options: tuple[tuple[str, Any], ...] = ()
    margins: tuple[float, float] = DEFAULT_MARGINS
    batch_size: int | None = None  # None: taken from the reported row (or the claim's reference)


def _value(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


@cache
def parse_label(label: str) -> Selector:
    """Reported variant label -> Selector (see the module docstring for the grammar)."""
    m = _LABEL.match(label.strip())
    if not m:
        raise ValueError(f"cannot parse reported variant label {label!r}")
    opts: list[tuple[str, Any]] = []
    if m["opts"]:
        for part in m["opts"].split(","):
            key, sep, val = part.partition("=")
            if not sep:
                raise ValueError(f"option {part!r} in label {label!r} is not key=value")
            opts.append((key.strip(), _value(val.strip())))
    suffix = m["suffix"] or ""
    return Selector(
        variant=m["variant"],
        head=m["head"] or "l2",
        options=tuple(sorted(opts)),
        margins=ADJUSTED_MARGINS if suffix == "_adjusted_margin" else DEFAULT_MARGINS,
        batch_size=512 if suffix == "_512" else None,
    )


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-9)
    return x == y


def _non_default(variant: str, options: Mapping[str, Any]) -> dict[str, Any]:
    defaults = OPTION_DEFAULTS.get(variant, {})
    ignored = PROTOCOL_OPTIONS.get(variant, set())
    return {
        k: v
        for k, v in options.items()
        if k not in ignored and not (k in defaults and _same(v, defaults[k]))
    }


def options_equal(variant: str, run_options: str | Mapping[str, Any],
                  wanted: tuple[tuple[str, Any], ...]) -> bool:  # fmt: skip
    """True when a run's variant_options (dict or canonical JSON) are ``wanted``, defaults aside."""
    opts = json.loads(run_options) if isinstance(run_options, str) else dict(run_options)
    opts, want = _non_default(variant, opts), _non_default(variant, dict(wanted))
    return opts.keys() == want.keys() and all(_same(opts[k], want[k]) for k in want)


def config_matches(sel: Selector, run: Mapping[str, Any], batch_size: int,
                   memory_ratio: float) -> bool:  # fmt: skip
    """Pure: does one run's configuration satisfy the selector at this batch/memory cell?"""
    return (
        run["variant"] == sel.variant
        and run["head"] == sel.head
        and options_equal(sel.variant, run["variant_options"], sel.options)
        and _same(run["pos_margin"], sel.margins[0])
        and _same(run["neg_margin"], sel.margins[1])
        and int(run["batch_size"]) == int(sel.batch_size or batch_size)
        and (sel.variant == "no_xbm" or _same(run["memory_ratio"], memory_ratio))
    )


def matches(reported: Mapping[str, Any], run: Mapping[str, Any],
            margins: tuple[float, float] | None = None) -> bool:  # fmt: skip
    """Pure: does ``run`` (a runs-frame row) count towards the ``reported`` row? ``margins``:
    the miner margins asked of the run in place of the label's (another reading of the row)."""
    sel = parse_label(str(reported["variant"]))
    return (
        run["status"] == "done"
        and run["profile"] == PAPER_PROFILE
        and run.get("task", "metric") == "metric"
        and run["dataset"] == reported["dataset"]
        and config_matches(
            sel if margins is None else replace(sel, margins=margins), run,
            int(reported["batch_size"]), float(reported["memory_ratio"]),
        )
    )  # fmt: skip


def match_runs(reported: Mapping[str, Any], runs: pd.DataFrame,
               margins: tuple[float, float] | None = None) -> pd.DataFrame:  # fmt: skip
    """The rows of ``runs`` that match one reported row (at ``margins``, see ``matches``)."""
    mask = [matches(reported, r, margins) for r in runs.to_dict("records")]
    return runs[pd.Series(mask, index=runs.index, dtype=bool)]


def run_label(run: Mapping[str, Any]) -> str:
    """The label of a run's configuration in the same grammar (batch size and memory excluded)."""
    label = str(run["variant"])
    margins = (float(run["pos_margin"]), float(run["neg_margin"]))
    if all(_same(a, b) for a, b in zip(margins, ADJUSTED_MARGINS)):
        label += "_adjusted_margin"
    elif not all(_same(a, b) for a, b in zip(margins, DEFAULT_MARGINS)):
        label += f"(pos={margins[0]:g},neg={margins[1]:g})"
    if run["head"] != "l2":
        label += f"+{run['head']}"
    opts = json.loads(run["variant_options"]) if isinstance(run["variant_options"], str) else {}
    if opts:
        label += "[" + ",".join(f"{k}={v}" for k, v in sorted(opts.items())) + "]"
    return label


def load_reported() -> pd.DataFrame:
    """reported_numbers.csv as shipped with the package (columns as in the file, plus ``key``)."""
    text = resources.files("reports").joinpath("reported_numbers.csv").read_text("utf-8")
    frame = pd.read_csv(StringIO(text), dtype={"table": str})
    frame["key"] = frame["source"] + " table " + frame["table"]
    return frame


def table_slug(source: str, table: str) -> str:
    """File-name stem of a source table: ('thesis', '7.1') -> 'thesis_table7_1'."""
    return f"{source}_table{table}".replace(".", "_")
