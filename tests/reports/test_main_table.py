"""The wide main table (reports.tables.main_table, display_main_table) against a plain loop over
the fixture runs: means and sample stds from statistics, the wall time from result.json."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from bench.store import RESULT_FILE, RUNS_DIR
from common import atomic_write_text
from reports.load import load_store
from reports.tables import display_main_table, fmt_wall, main_table

from .conftest import make_run


def retrieval(root: Path, run_id: str, best_map: float | None, wall_s: float) -> None:
    """Give a fixture record a MAP@R and R-Precision at its best and last epochs (None: the
    record as written before these metrics) and its wall time."""
    path = root / RUNS_DIR / run_id / RESULT_FILE
    record = json.loads(path.read_text())
    record["wall_s"] = wall_s
    if best_map is not None:
        record["best"].update({"map@r": best_map, "r_precision": best_map + 0.05})
        record["last"].update({"map@r": best_map - 0.01, "r_precision": best_map + 0.04})
    atomic_write_text(path, json.dumps(record))


# (profile, dataset, variant, batch, memory) -> per seed (best R@1, last R@1, best MAP@R, wall s);
# Recall@10 = Recall@1 + 10 (tests/reports/conftest.py)
CELLS = {
    ("paper", "sop", "xbn", 64, 0.5): [
        (80.0, 79.0, 0.40, 3600.0),
        (80.6, 79.9, 0.42, 3000.0),
        (81.5, 80.1, 0.45, 3300.0),
    ],
    ("paper", "sop", "xbm", 64, 0.5): [(78.0, 77.5, 0.38, 1200.0), (79.0, 78.1, None, 1300.0)],
    ("paper", "sop", "xbm", 128, 0.5): [(78.5, 78.0, None, 1500.0)],
    ("paper", "sop", "no_xbm", 64, 0.0): [(75.0, 74.0, None, 900.0), (76.0, 75.5, None, 950.0)],
    ("cpu", "fashion-mnist", "xbn", 32, 0.5): [(85.0, 84.0, 0.61, 12.0), (86.0, 85.5, 0.63, 14.0)],
    ("cpu", "fashion-mnist", "xbm", 32, 0.25): [(84.0, 83.0, 0.60, 30.0)],
    ("cpu", "fashion-mnist", "xbm", 32, 0.5): [(84.5, 84.0, 0.59, 40.0)],
}
# the order the table must have: profile, dataset, variant (the registry's order), batch, memory
ORDER = [
    ("cpu", "fashion-mnist", "xbm", 32, 0.25),
    ("cpu", "fashion-mnist", "xbm", 32, 0.5),
    ("cpu", "fashion-mnist", "xbn", 32, 0.5),
    ("paper", "sop", "no_xbm", 64, 0.0),
    ("paper", "sop", "xbm", 64, 0.5),
    ("paper", "sop", "xbm", 128, 0.5),
    ("paper", "sop", "xbn", 64, 0.5),
]


@pytest.fixture
def store(results):
    for (profile, dataset, variant, batch, memory), seeds in CELLS.items():
        for seed, (best, last, best_map, wall) in enumerate(seeds):
            run_id = make_run(
                results,
                dataset=dataset,
                variant=variant,
                seed=seed,
                profile=profile,
                batch=batch,
                memory=memory,
                best_r1=best,
                last_r1=last,
            )
            retrieval(results, run_id, best_map, wall)
    return results


def by_hand(values: list[float | None]) -> tuple[float, float, int]:
    """mean, sample std (NaN below two values) and count of the values that are not None."""
    xs = [x for x in values if x is not None]
    if not xs:
        return math.nan, math.nan, 0
    return statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else math.nan, len(xs)


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


def test_main_table_against_a_plain_loop(store):
    table = main_table(load_store(store).done)
    keys = list(
        zip(
            table["profile"],
            table["dataset"],
            table["label"],
            table["batch_size"],
            table["memory_ratio"],
        )
    )
    assert keys == ORDER
    for row in table.to_dict("records"):
        cell = ("profile", "dataset", "label", "batch_size", "memory_ratio")
        seeds = CELLS[tuple(row[k] for k in cell)]
        assert row["n"] == len(seeds) == len(row["run_ids"].split())
        best = [s[0] for s in seeds]
        last = [s[1] for s in seeds]
        expected = {
            "best_r1": by_hand(best),
            "best_r10": by_hand([x + 10 for x in best]),
            "last_r1": by_hand(last),
            "last_r10": by_hand([x + 10 for x in last]),
            "best_map_r": by_hand([s[2] for s in seeds]),
        }
        for stem, (mean, std, _) in expected.items():
            assert close(row[f"{stem}_mean"], mean), (stem, row)
            assert close(row[f"{stem}_std"], std), (stem, row)
        assert row["n_map_r"] == expected["best_map_r"][2]
        assert row["wall_s_mean"] == pytest.approx(statistics.mean(s[3] for s in seeds))


def test_display_main_table(store):
    shown = display_main_table(main_table(load_store(store).done))
    assert list(shown.columns) == [
        "profile",
        "dataset",
        "variant",
        "batch",
        "memory",
        "n",
        "best R@1",
        "best R@10",
        "last R@1",
        "last R@10",
        "best MAP@R",
        "wall time / run",
    ]
    rows = shown.set_index(["profile", "dataset", "variant", "batch", "memory"])
    xbn = rows.loc[("paper", "sop", "xbn", "64", "0.5")]
    best = [80.0, 80.6, 81.5]
    maps = [0.40, 0.42, 0.45]
    assert xbn["n"] == "3"
    assert xbn["best R@1"] == f"{statistics.mean(best):.2f} ± {statistics.stdev(best):.2f}"
    assert xbn["best MAP@R"] == f"{statistics.mean(maps):.2f} ± {statistics.stdev(maps):.2f}"
    assert xbn["wall time / run"] == f"{3300.0 / 60:.1f} min"
    xbm = rows.loc[("paper", "sop", "xbm", "64", "0.5")]
    assert xbm["best MAP@R"] == "0.38 (n=1)"  # one of its two records predates MAP@R
    assert rows.loc[("paper", "sop", "no_xbm", "64", "0"), "best MAP@R"] == "-"
    assert rows.loc[("paper", "sop", "xbm", "128", "0.5"), "best R@1"] == "78.50"  # n = 1
    assert rows.loc[("cpu", "fashion-mnist", "xbn", "32", "0.5"), "wall time / run"] == "13 s"


def test_wall_time_is_read_from_result_json(store):
    runs = load_store(store).runs
    assert sorted(runs["wall_s"]) == sorted(s[3] for seeds in CELLS.values() for s in seeds)


def test_fmt_wall():
    assert [fmt_wall(x) for x in (12.0, 59.4, 60.0, 3300.0, math.nan)] == [
        "12 s",
        "59 s",
        "1.0 min",
        "55.0 min",
        "-",
    ]


def test_an_empty_store_gives_an_empty_main_table(results):
    assert main_table(load_store(results).done).empty
    assert display_main_table(main_table(load_store(results).done)).empty
