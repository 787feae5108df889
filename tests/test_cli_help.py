"""The command line as a newcomer reads it: reproduce first, summaries whole, help on every
option, the exit codes stated; `run --config` reruns a saved config.json exactly and
`--print-config` shows the resolved config without running."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from cli import main
from tests.conftest import TINY


def _walk(cmd, path=()):
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _walk(sub, (*path, name))


def test_reproduce_comes_first_and_no_summary_is_cut():
    out = CliRunner().invoke(main, ["--help"]).output
    listed = out.split("Commands:")[1].split("\n\n")[0].strip().splitlines()
    assert listed[0].split()[0] == "reproduce"
    assert not [line for line in listed if line.rstrip().endswith("...")], listed


def test_the_exit_codes_are_in_the_help():
    out = " ".join(CliRunner().invoke(main, ["--help"]).output.split())
    assert "Exit codes: 0" in out and "1 a run failed" in out and "2 bad input" in out
    assert "skipped, and that is 0 too" in out


@pytest.mark.parametrize("path", [p for p, _ in _walk(main)], ids=lambda v: " ".join(v) or "cli")
def test_every_option_has_help(path):
    cmd = dict(_walk(main))[path]
    bare = [p.opts for p in getattr(cmd, "params", []) if isinstance(p, click.Option)
            and not p.help and p.name not in ("help", "version")]  # fmt: skip
    assert bare == []


def _tiny_run(tiny_data, results, *extra):
    args = ["run", "--dataset", "fashion-mnist", "--variant", "xbm", "--seed", "3",
            "--data", tiny_data, "--results", str(results), "--device", "cpu"]  # fmt: skip
    for key, value in TINY.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return CliRunner().invoke(main, [*args, *extra])


def test_print_config_runs_nothing(tiny_data, tmp_path):
    res = _tiny_run(tiny_data, tmp_path / "r", "--print-config")
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["variant"] == "xbm" and shown["seed"] == 3 and len(shown["run_id"]) == 16
    assert shown["epochs"] == TINY["epochs"]
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # trains one tiny cell
def test_config_reruns_the_saved_run_exactly(tiny_data, tmp_path):
    res = _tiny_run(tiny_data, tmp_path / "r")
    assert res.exit_code == 0, res.output
    (folder,) = (tmp_path / "r" / "runs").iterdir()
    saved = folder / "config.json"
    shown = CliRunner().invoke(main, ["run", "--config", str(saved), "--print-config"])
    assert shown.exit_code == 0, shown.output
    assert (
        json.loads(shown.output)["run_id"] == folder.name == json.loads(saved.read_text())["run_id"]
    )
    again = CliRunner().invoke(main, ["run", "--config", str(saved), "--data", tiny_data,
                                      "--results", str(tmp_path / "r")])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "done" in again.output.lower() and len(list((tmp_path / "r" / "runs").iterdir())) == 1


def test_config_errors_name_the_file_and_the_problem(tmp_path):
    bad = tmp_path / "config.json"
    res = CliRunner().invoke(main, ["run", "--config", str(tmp_path / "none.json")])
    assert res.exit_code == 2 and "none.json" in res.output
    bad.write_text("{")
    res = CliRunner().invoke(main, ["run", "--config", str(bad)])
    assert res.exit_code == 2 and "is not JSON" in res.output and str(bad) in res.output
    good = json.loads(CliRunner().invoke(main, ["run", "--dataset", "fashion-mnist", "--variant",
                                                "xbn", "--print-config"]).output)  # fmt: skip
    bad.write_text(json.dumps({**good, "lr": 0.5}))  # edited by hand: the id no longer fits
    res = CliRunner().invoke(main, ["run", "--config", str(bad)])
    assert res.exit_code == 2 and good["run_id"] in res.output and str(bad) in res.output
    bad.write_text(json.dumps(good))
    res = CliRunner().invoke(main, ["run", "--config", str(bad), "--seed", "4"])
    assert res.exit_code == 2 and "drop --seed" in res.output
    res = CliRunner().invoke(main, ["run", "--dataset", "fashion-mnist"])
    assert res.exit_code == 2 and "--variant" in res.output
