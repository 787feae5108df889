"""What the data_prep tests share: a silent log and the CLI call that must fail with exit 2."""

from __future__ import annotations

from click.testing import CliRunner

from commands.data import data


def quiet(*args, **kwargs) -> None:
    pass


def exit2(*args: object) -> str:
    """Run ``xbmbench data ARGS``; assert exit code 2 without a traceback; return the output."""
    result = CliRunner().invoke(data, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    return result.output
