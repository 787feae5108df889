"""`xbmbench report` flags a table whose runs come from different code, library versions or CPU
settings (reports.load.provenance_note), and says nothing when they agree."""

from __future__ import annotations

import json
from collections import Counter

from bench.store import ENV_FILE, RUNS_DIR
from reports.build import compute
from reports.load import flag_text, mixed
from reports.markdown import report_text

from .conftest import ENV, make_run

NEW = {**ENV, "git_commit": "a" * 40, "cpu_capability": "AVX2", "torch_threads": 2,
       "cpu_env": {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": None}}  # fmt: skip


def _env(results, run_id, env):
    (results / RUNS_DIR / run_id / ENV_FILE).write_text(json.dumps(env))


def test_runs_of_one_environment_get_no_flag(results):
    for seed in (0, 1):
        _env(results, make_run(results, best_r1=70 + seed, seed=seed, variant="xbm"), NEW)
    text = report_text(compute(results, with_figures=False))
    assert "Mixed environments" not in text


def test_a_table_mixing_commits_versions_and_cpu_settings_is_flagged(results):
    ids = [make_run(results, best_r1=70 + s, seed=s, variant="xbm") for s in range(3)]
    _env(results, ids[0], NEW)
    _env(results, ids[1], {**NEW, "git_commit": "b" * 40, "torch": "2.5.0"})
    _env(results, ids[2], {**NEW, "cpu_capability": "AVX512", "cpu_env": {"MKL_CBWR": None}})
    other = make_run(results, best_r1=60, dataset="inshop", variant="xbm")  # another table
    _env(results, other, NEW)
    report = compute(results, with_figures=False)
    text = report_text(report)
    # the main table holds every cell; its note counts the runs of each environment
    note = text[text.index("## Main table") :]
    note = note[: note.index("\n|")]
    assert "**Mixed environments:** the 4 runs of this table come from different code " \
           "commits, library versions, CPU settings" in note  # fmt: skip
    assert f"`git_commit` {'a' * 12} (3 runs), {'b' * 12} (1 runs)" in note
    assert "`torch` 2.4.0 (3 runs), 2.5.0 (1 runs)" in note
    assert "`cpu_capability` AVX2 (3 runs), AVX512 (1 runs)" in note
    assert "`cpu_env` ONEDNN_MAX_CPU_ISA=AVX2 (3 runs), none set (1 runs)" in note
    assert "**Where:**" in text and "torch mixed (2 values)" in text  # the header says so too


def test_a_record_without_the_field_counts_as_not_recorded():
    envs = {"r1": NEW, "r2": ENV, "r3": {}}
    flags = mixed(envs)
    assert flags["CPU settings"]["cpu_capability"] == Counter({"AVX2": 1, "not recorded": 2})
    assert "git_commit" in flags["code commits"] and flag_text({}, 3) == ""
    assert "torch" in flags["library versions"]  # {} has no torch: not recorded
