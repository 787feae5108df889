"""bench.perf.eval: the command runs, its JSON has the contract's keys, recalls agree.

The command's runs each start three interpreters (torch and faiss in each): marked slow.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner

from bench.perf.eval import faiss_recall
from commands.perf import bench_eval

KEYS = {"config", "ours_s", "faiss_s", "ratio", "recall_agrees", "ours_peak_mb", "faiss_peak_mb"}


@pytest.mark.slow
def test_json_output_tiny():
    result = CliRunner().invoke(
        bench_eval, ["--n", "300", "--dim", "16", "--repeats", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == KEYS
    assert out["recall_agrees"] is True
    assert out["config"]["n"] == 300 and out["config"]["dim"] == 16


@pytest.mark.slow
def test_table_output_tiny():
    result = CliRunner().invoke(bench_eval, ["--n", "50", "--dim", "4", "--repeats", "1"])
    assert result.exit_code == 0, result.output
    assert "recall agrees: True" in result.output


def test_bad_option_is_a_usage_error():
    result = CliRunner().invoke(bench_eval, ["--n", "5"])
    assert result.exit_code == 2
    assert "--n" in result.output


def test_faiss_recall_with_duplicates_matches_loop():
    """Each vector has 15 exact copies (+-0.5 entries: exact dot products): the self row may
    fall outside faiss' k+1 results and tied rows come back in decreasing index order."""
    rng = np.random.default_rng(0)
    signs = np.array(list(itertools.product([-0.5, 0.5], repeat=4)), dtype=np.float32)
    emb = np.repeat(signs[:4], 15, axis=0)[rng.permutation(60)]
    labels = rng.integers(0, 8, 60)
    hits = {1: 0, 10: 0}
    for i in range(60):
        order = sorted((j for j in range(60) if j != i), key=lambda j: (-float(emb[i] @ emb[j]), j))
        for k in hits:
            hits[k] += any(labels[j] == labels[i] for j in order[:k])
    assert faiss_recall(emb, labels) == {k: 100.0 * h / 60 for k, h in hits.items()}
