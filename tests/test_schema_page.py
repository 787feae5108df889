"""results/README.md, the run record's schema page, describes exactly the files, columns and
keys bench/store.py declares (and env.json exactly what bench/engine/env.py writes): a column
added to the store and not to the page, or left on the page after it went, fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import store

PAGE = Path(__file__).resolve().parent.parent / "results" / "README.md"


def table_names(section: str) -> list[str]:
    """The first column of the table under the heading ``## section`` (backticks removed)."""
    text = PAGE.read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("| `")]
    return [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]


@pytest.mark.parametrize(
    "section, declared",
    [
        ("metrics.csv columns", store.METRIC_COLUMNS),
        ("metrics.csv of a MoCo run", store.MOCO_COLUMNS),
        ("memory_error.csv columns", store.MEMORY_ERROR_COLUMNS),
    ],
)
def test_every_column_is_on_the_page_in_order(section, declared):
    assert table_names(section) == list(declared)


def test_every_result_key_is_on_the_page():
    assert sorted(table_names("result.json")) == sorted(store.RESULT_KEYS)


def test_env_json_holds_exactly_the_declared_keys():
    from bench.engine.env import environment

    assert sorted(table_names("env.json")) == sorted(store.ENV_KEYS)
    assert sorted(environment("cpu")) == sorted(store.ENV_KEYS)


def test_every_file_of_a_run_folder_is_on_the_page():
    text = PAGE.read_text(encoding="utf-8")
    tree = text.split("```", 2)[1]
    for name in (store.CONFIG_FILE, store.ENV_FILE, store.METRICS_FILE, store.RESULT_FILE,
                 store.CHECKPOINT_FILE, store.MEMORY_ERROR_FILE, "slurm.json"):  # fmt: skip
        assert name in tree, name
    for status in store.STATUSES:
        assert f'"{status}"' in text or f"`{status}`" in text


def test_a_result_key_the_page_lacks_is_refused(tmp_path):
    from bench.config import make_config

    rd = store.RunDir(tmp_path, make_config("omniglot-small", "xbm", 0, "cpu"))
    rd.path.mkdir(parents=True)
    with pytest.raises(ValueError, match="surprise"):
        rd.write_result({"status": "running", "surprise": 1})
