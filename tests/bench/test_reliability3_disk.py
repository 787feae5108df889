"""Issue 30, disks that refuse writes: a read-only results folder (a read-only bind mount where
this machine allows one, and a writer patched to fail as one does) and a full disk (a tiny tmpfs,
and the error chain torch makes of it) are exit 2 naming the file, with nothing half-written;
and the smaller items: the --seeds cap, the stale-lock variable, XBMBENCH_DATA at a file."""

from __future__ import annotations

import errno
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.config import make_config
from bench.engine.metric import run
from bench.store import RunDir
from bench.studies import MAX_SEEDS, seed_spec
from cli import main
from common import TMP_NAME, UserError, atomic_write
from tests.conftest import TINY


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextmanager
def read_only(folder: Path, how: str, monkeypatch):
    """``folder`` read-only: a read-only bind mount (skipped where mounting is not allowed),
    or os.open/mkdir/link patched to fail with EROFS under it, as the kernel does."""
    if how == "mount":
        if not (_mount("--bind", str(folder), str(folder))):
            pytest.skip("mount --bind is not allowed here")
        try:
            if not _mount("-o", "remount,bind,ro", str(folder)):
                pytest.skip("a read-only remount is not allowed here")
            yield
        finally:
            subprocess.run(["umount", str(folder)], check=True)
        return
    inside = str(folder.resolve())

    def refuse(real):
        def call(path, *a, **k):
            p = os.path.abspath(os.fspath(path))
            writes = real is not os.open or a[0] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            if p.startswith(inside) and writes:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), p)
            return real(path, *a, **k)

        return call

    with monkeypatch.context() as m:
        for name in ("open", "mkdir", "link"):
            m.setattr(os, name, refuse(getattr(os, name)))
        yield


def _run_args(tiny_data, results):
    opts = [a for k, v in TINY.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    return ["run", "--dataset", "fashion-mnist", "--variant", "xbm", "--data", tiny_data,
            "--results", str(results), *opts]  # fmt: skip


@pytest.mark.parametrize("how", ["mount", "patched"])
def test_a_read_only_results_folder_is_exit_2_naming_the_file(
    how, tiny_data, tmp_path, monkeypatch
):
    new, done = tmp_path / "new", tmp_path / "done"
    new.mkdir()
    cfg = make_config("fashion-mnist", "xbm", 0, "cpu", **TINY)
    assert run(cfg, tiny_data, done, progress=False)["status"] == "done"
    rd = RunDir(done, cfg)
    before = {p.name: p.read_bytes() for p in rd.path.iterdir()}
    for folder in (new, done):
        with read_only(folder, how, monkeypatch):
            out = CliRunner().invoke(main, _run_args(tiny_data, folder))
            assert out.exit_code == 2, out.output
            assert f"cannot write in {folder / 'runs' / cfg.run_id}" in out.output
            assert "Read-only file system" in out.output and "Traceback" not in out.output
            if folder == done:
                rep = CliRunner().invoke(main, ["report", "--results", str(folder)])
                assert rep.exit_code == 2, rep.output
                assert f"cannot write in {folder / 'report'}" in rep.output
    assert list(new.iterdir()) == []  # nothing half-written
    assert not (done / "report").exists()
    assert {p.name: p.read_bytes() for p in rd.path.iterdir()} == before  # the record untouched


def test_a_full_disk_at_the_first_checkpoint_names_it(tiny_data, tmp_path):
    """A real full disk: a 96 KiB tmpfs holds the lock, config.json and env.json, not the first
    checkpoint; torch reports that as RuntimeError("... unexpected pos ...") raised while the
    OSError(ENOSPC) was handled, and the user sees "no space left"."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=96k", "tmpfs", str(disk)):
        pytest.skip("mounting a tmpfs is not allowed here")
    try:
        out = CliRunner().invoke(main, _run_args(tiny_data, disk))
        assert out.exit_code == 2, out.output
        (folder,) = (disk / "runs").iterdir()
        assert f"no space left on {folder} while writing {folder / 'checkpoint.pt'}" in out.output
        assert "Traceback" not in out.output
        left = sorted(p.name for p in folder.iterdir())
        assert left == ["config.json", "env.json"]  # consistent: a rerun starts the cell
        assert not [n for n in left if TMP_NAME.match(n)]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


TORCH_TEXT = "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"


def test_enospc_behind_another_error_is_recognised(tmp_path):
    """The chain torch makes (RuntimeError raised while handling OSError(ENOSPC)), built here
    without a mount: a UserError naming the file, the previous content kept, no temporary."""
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"previous")

    def torch_like(tmp: str) -> None:
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            raise RuntimeError(TORCH_TEXT)  # noqa: B904  (implicitly chained, as torch's is)

    with pytest.raises(UserError, match=f"no space left on {tmp_path} while writing {target}"):
        atomic_write(target, torch_like)
    assert target.read_bytes() == b"previous" and sorted(os.listdir(tmp_path)) == [target.name]
    with pytest.raises(RuntimeError, match="unrelated"):  # no OSError behind: unchanged
        atomic_write(target, lambda tmp: (_ for _ in ()).throw(RuntimeError("unrelated")))


def test_seeds_are_capped():
    assert len(seed_spec(f"0-{MAX_SEEDS - 1}")) == MAX_SEEDS
    with pytest.raises(UserError, match=f"names more than {MAX_SEEDS} seeds"):
        seed_spec("0-100000")
    with pytest.raises(UserError, match="more than"):
        seed_spec(f"0-{MAX_SEEDS - 1},{MAX_SEEDS + 5}")
    out = CliRunner().invoke(main, ["grid", "list", "--study", "demo", "--seeds", "0-100000"])
    assert out.exit_code == 2 and "0-100000" in out.output and "Traceback" not in out.output


def test_a_bad_stale_lock_variable_is_named(tmp_path, monkeypatch):
    cfg = make_config("fashion-mnist", "xbm", 0, "cpu", **TINY)
    rd = RunDir(tmp_path, cfg)
    for value in ("-1", "abc", "0"):
        monkeypatch.setenv("XBMBENCH_LOCK_STALE_S", value)
        with pytest.raises(UserError) as err, rd.claim():
            pass
        assert err.value.message == (
            f"XBMBENCH_LOCK_STALE_S must be a positive number of seconds, got {value!r}"
        )
    assert not rd.lock.exists()


def test_xbmbench_data_at_a_file_is_named_without_a_useless_fix(tmp_path, monkeypatch):
    afile = tmp_path / "data.txt"
    afile.write_text("not a folder")
    out = CliRunner().invoke(
        main,
        ["run", "--dataset", "fashion-mnist", "--variant", "xbm", "--results", str(tmp_path / "r")],
        env={"XBMBENCH_DATA": str(afile)},
    )
    assert out.exit_code == 2 and f"XBMBENCH_DATA={afile} is not a folder" in out.output
    assert f"--out {afile}" not in out.output and not (tmp_path / "r").exists()
