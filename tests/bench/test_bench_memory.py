"""bench.perf.memory: every row present, pairs really mined, the rows' medians and paired ratios
against hand numbers, JSON contract; no timing asserts."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from bench.perf.memory import (
    REFERENCE,
    class_centres,
    run,
    sample,
    sampler_labels,
    summarise,
)
from bench.perf.memory_config import MemoryBenchConfig
from commands.perf import bench_memory
from variants import DROP_IN_VARIANTS as VARIANTS

# threads=1: the tiny sizes are dominated by thread synchronisation on a busy machine
TINY = dict(memory_size=256, batch=16, dim=16, classes=32, reps=2, warmup=1, threads=1)
TINY_ARGS = [
    "--memory-size",
    "256",
    "--batch",
    "16",
    "--dim",
    "16",
    "--classes",
    "32",
    "--reps",
    "2",
    "--warmup",
    "1",
    "--threads",
    "1",
]
ROW_KEYS = {
    "name",
    "ms_per_step",
    "ratio_to_pml",
    "ratio_to_xbm",
    "mined_pos",
    "mined_neg",
    "target",
    "meets_target",
}


@pytest.fixture(scope="module")
def rows():
    return run(MemoryBenchConfig(**TINY))["rows"]


def test_every_variant_and_the_reference_present(rows):
    assert [r["name"] for r in rows] == [REFERENCE, *VARIANTS]
    assert all(set(r) == ROW_KEYS for r in rows)
    assert all(r["ms_per_step"] > 0 for r in rows)


@pytest.mark.parametrize("name", [REFERENCE, *(v for v in VARIANTS if v != "no_xbm")])
def test_pairs_are_mined(rows, name):
    """Class-structured embeddings: against the memory the miner finds both kinds of pair, so the
    loss is not empty (no_xbm mines within a batch of few classes: it may find no negative)."""
    row = next(r for r in rows if r["name"] == name)
    assert row["mined_pos"] > 0 and row["mined_neg"] > 0


def test_plain_xbm_mines_what_pml_mines(rows):
    by_name = {r["name"]: r for r in rows}
    assert (by_name["xbm"]["mined_pos"], by_name["xbm"]["mined_neg"]) == (
        by_name[REFERENCE]["mined_pos"],
        by_name[REFERENCE]["mined_neg"],
    )


def test_rows_from_hand_times():
    """Medians and paired ratios (median over rounds of row / reference in the same round) from
    made-up seconds, worked out by hand; pc_xbn and xbn are chosen so that the ratio of the
    medians would give another verdict than the paired ratio."""
    times = {
        REFERENCE: [1.0, 2.0, 4.0],
        "xbm": [1.0, 2.4, 5.0],  # / pml: 1, 1.2, 1.25 -> 1.2
        "xbn": [1.1, 2.4, 6.0],  # / xbm: 1.1, 1, 1.2 -> 1.1 (medians: 2.4 / 2.4 = 1)
        "pc_xbn": [3.0, 4.8, 12.0],  # / xbm: 3, 2, 2.4 -> 2.4 (medians: 4.8 / 2.4 = 2)
        "no_xbm": [0.5, 0.6, 0.7],
    }
    mined = {name: (i, 10 * i) for i, name in enumerate(times)}
    rows = summarise(times, mined)
    assert [r["name"] for r in rows] == list(times)
    by_name = {r["name"]: r for r in rows}
    expected = {  # ms_per_step, ratio_to_pml, ratio_to_xbm, target, meets_target
        REFERENCE: (2000.0, 1.0, 1 / 1.2, None, None),
        "xbm": (2400.0, 1.2, 1.0, "ratio_to_pml <= 1.05", False),
        "xbn": (2400.0, 1.2, 1.1, "ratio_to_xbm <= 1.15", True),
        "pc_xbn": (4800.0, 3.0, 2.4, "ratio_to_xbm <= 2", False),
        "no_xbm": (600.0, 0.3, 0.25, None, None),
    }
    for name, (ms, to_pml, to_xbm, target, meets) in expected.items():
        row = by_name[name]
        assert row["ms_per_step"] == pytest.approx(ms)
        assert row["ratio_to_pml"] == pytest.approx(to_pml)
        assert row["ratio_to_xbm"] == pytest.approx(to_xbm)
        assert (row["target"], row["meets_target"]) == (target, meets)
        assert (row["mined_pos"], row["mined_neg"]) == mined[name]


def test_json_output_tiny():
    result = CliRunner().invoke(bench_memory, [*TINY_ARGS, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"config", "rows"}
    assert out["config"]["memory_size"] == 256 and out["config"]["threads"] == 1
    assert out["config"]["epoch"] >= 15  # delayed_xbn measured while adapting
    assert "delayed_xbn" in out["config"]["adapting"]
    assert [r["name"] for r in out["rows"]] == [REFERENCE, *VARIANTS]
    assert all(set(r) == ROW_KEYS for r in out["rows"])


def test_table_output_tiny():
    result = CliRunner().invoke(bench_memory, TINY_ARGS)
    assert result.exit_code == 0, result.output
    for name in (REFERENCE, *VARIANTS):
        assert f"\n{name} " in result.output


@pytest.mark.parametrize(
    "args, option",
    [
        (["--batch", "18"], "batch"),  # not a multiple of 4
        (["--memory-size", "8"], "memory_size"),  # smaller than the batch
        (["--classes", "2"], "classes"),  # 2 classes x 4 < 16
        (["--reps", "0"], "--reps"),
    ],
)
def test_bad_sizes_are_usage_errors(args, option):
    base = ["--memory-size", "256", "--batch", "16", "--classes", "32"]
    result = CliRunner().invoke(bench_memory, [*base, *args])
    assert result.exit_code == 2
    assert option in result.output


def test_data_is_class_structured():
    """Same-class pairs are closer than same-superclass ones, which are closer than the rest,
    and the margins 0.2 / 0.8 cut through the first two groups (at 512-d, as benchmarked)."""
    gen = torch.Generator().manual_seed(0)
    labels = sampler_labels(640, 100, 64, gen)
    assert all(torch.bincount(b).max() == 4 for b in labels.split(64))
    emb = sample(class_centres(100, 512, gen), labels, gen)
    assert torch.allclose(emb.norm(dim=1), torch.ones(len(emb)))
    dist = torch.cdist(emb, emb)
    same = labels[:, None] == labels[None]
    same_super = (labels[:, None] // 10) == (labels[None] // 10)
    pos = dist[same & ~torch.eye(len(emb), dtype=torch.bool)]
    near, far = dist[same_super & ~same], dist[~same_super]
    assert 0.05 < (pos > 0.2).float().mean() < 0.95
    assert 0.05 < (near < 0.8).float().mean() < 0.95
    assert (far < 0.8).float().mean() < 0.01
    assert pos.median() < near.median() < far.median()
