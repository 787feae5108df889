"""The command line: --help and --version everywhere, stubs fail loudly, bad input exits 2."""

import click
import pytest
from click.testing import CliRunner

from cli import main


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


ALL = [path for path, _ in _commands(main)]


@pytest.mark.parametrize("path", [()] + ALL, ids=lambda p: " ".join(p) or "xbmbench")
def test_help_and_version_on_every_command(path):
    runner = CliRunner()
    assert runner.invoke(main, [*path, "--help"]).exit_code == 0
    out = runner.invoke(main, [*path, "--version"])
    assert out.exit_code == 0 and "0.1.0" in out.output


def _run(*args: str):
    """``xbmbench run ARGS`` through click's runner."""
    return CliRunner().invoke(main, ["run", *args])


def test_run_rejects_unknown_variant_and_option(tmp_path):
    r = _run("--dataset", "fashion-mnist", "--variant", "xbnn", "--results", str(tmp_path))
    assert r.exit_code == 2 and "unknown variant 'xbnn'" in r.output and "Traceback" not in r.output
    r = _run("--dataset", "fashion-mnist", "--variant", "pc_xbn", "--opt", "lamda=1",
             "--results", str(tmp_path))  # fmt: skip
    assert r.exit_code == 2 and "lamda" in r.output and "lambda_mu" in r.output


def test_run_without_prepared_dataset_names_it(tmp_path):
    r = _run("--dataset", "sop", "--variant", "xbn", "--data", str(tmp_path / "nodata"),
             "--results", str(tmp_path))  # fmt: skip
    assert r.exit_code == 2 and "sop" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_paper_profile_offline_without_weights_is_a_clear_error(tiny_data, tmp_path):
    base = ("--dataset", "fashion-mnist", "--variant", "xbn", "--profile", "paper",
            "--data", tiny_data, "--results", str(tmp_path))  # fmt: skip
    r = _run(*base, "--model", "resnet18")
    assert r.exit_code == 2 and "not in timm's cache" in r.output
    assert "--pretrained-file" in r.output
    r = _run(*base, "--pretrained-file", str(tmp_path / "x.pth"))
    assert r.exit_code == 2 and "x.pth" in r.output


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--batch-size", "42", "--dataset", "sop"],
            "batch_size must be a multiple of m_per_class",
        ),
        (["--head", "foo", "--dataset", "sop"], "head must be one of l2, l2_bn, l2_ln, got 'foo'"),
        (["--epochs", "0", "--dataset", "sop"], "epochs must be an integer >= 1, got 0"),
        (["--miner-distance", "manhattan", "--dataset", "sop"], "miner_distance must be one of"),
        (["--profile", "gpu", "--dataset", "sop"], "Invalid value for '--profile'"),
    ],
)
def test_run_rejects_bad_config_values_before_anything_runs(args, message, tmp_path):
    r = _run("--variant", "xbn", "--results", str(tmp_path), *args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "runs").exists()
