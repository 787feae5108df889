"""bench.perf.memory: every row present, pairs really mined, JSON contract; no timing asserts."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from bench.perf.memory import (
    REFERENCE,
    TARGETS,
    MemoryBenchConfig,
    bench_memory,
    class_centres,
    memory_rows,
    sample,
    sampler_labels,
)
from variants import VARIANTS

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
    return memory_rows(MemoryBenchConfig(**TINY))


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


def test_targets_and_ratios(rows):
    by_name = {r["name"]: r for r in rows}
    assert by_name[REFERENCE]["ratio_to_pml"] == 1.0 and by_name["xbm"]["ratio_to_xbm"] == 1.0
    for name, row in by_name.items():
        if name in TARGETS:
            key, bound = TARGETS[name]
            assert row["target"] == f"{key} <= {bound:g}"
            assert row["meets_target"] == (row[key] <= bound)
        else:
            assert row["target"] is None and row["meets_target"] is None
    assert {"no_xbm", "xbm_star", REFERENCE}.isdisjoint(TARGETS)


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
