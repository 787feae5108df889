"""The run record on disk: a full disk, a killed save, a corrupt checkpoint, a bad result.json."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

import bench.store as store
from bench import studies
from bench.store import RunDir
from bench.studies import Block, Study
from cli import main
from common import UserError, atomic_write, atomic_write_json, atomic_write_text

ROOT = Path(__file__).resolve().parents[2]


def run_dir(tmp_path) -> RunDir:
    """A RunDir needs only the config's run_id until the engine writes config.json."""
    return RunDir(tmp_path, SimpleNamespace(run_id="0123456789abcdef"))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ----- a full disk ------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_is_a_user_error_and_keeps_the_old_file(tmp_path, code):
    target = tmp_path / "result.json"
    atomic_write_text(target, '{"status": "running"}\n')

    def write(tmp):  # half of the new content reaches the disk, then the disk is full
        with open(tmp, "w") as f:
            f.write('{"status": "do')
        raise OSError(code, os.strerror(code))

    with pytest.raises(UserError, match="no space left on") as info:
        atomic_write(target, write)
    assert str(target) in info.value.message and info.value.exit_code == 2
    assert target.read_text() == '{"status": "running"}\n'
    assert leftovers(tmp_path) == []


def test_other_os_errors_are_not_reported_as_a_full_disk(tmp_path):
    def write(tmp):
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError, match="Input/output") as info:
        atomic_write(tmp_path / "x.json", write)
    assert not isinstance(info.value, UserError)
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_torch_save_reports_a_full_disk_only_through_a_file_object():
    """Why save_checkpoint hands torch.save a file object: the kernel's ENOSPC survives."""
    state = {"w": torch.zeros(50_000)}
    with pytest.raises(RuntimeError) as by_path:
        torch.save(state, "/dev/full")
    assert getattr(by_path.value, "errno", None) is None
    with pytest.raises(OSError) as by_file, open("/dev/full", "wb") as f:
        torch.save(state, f)
    assert by_file.value.errno == errno.ENOSPC


def test_a_checkpoint_save_on_a_full_disk(tmp_path, monkeypatch):
    rd = run_dir(tmp_path)
    rd.save_checkpoint({"epoch": 1, "w": torch.arange(4.0)})
    before = rd.checkpoint.read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *a, **k):  # torch writes part of the archive, then ENOSPC
        assert hasattr(f, "write"), "save_checkpoint must hand torch a file object"
        f.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(UserError, match="no space") as info:
        rd.save_checkpoint({"epoch": 2, "w": torch.ones(4)})
    assert str(rd.checkpoint) in info.value.message
    assert rd.checkpoint.read_bytes() == before
    assert leftovers(rd.path) == []
    monkeypatch.setattr(torch, "save", real_save)
    assert rd.load_checkpoint()["epoch"] == 1


# ----- orphans of a killed save -----------------------------------------------------------------
def kill_during_save(folder: Path, name: str) -> None:
    """A process that dies (no cleanup at all) in the middle of common.atomic_write."""
    code = f"""
        import os
        from common import atomic_write
        def write(tmp):
            open(tmp, "w").write("half")
            os._exit(9)
        atomic_write({str(folder / name)!r}, write)
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT)
    assert proc.returncode == 9


def test_clean_orphans_removes_what_a_killed_save_left(tmp_path):
    rd = run_dir(tmp_path)
    atomic_write_json(rd.result, {"status": "running"})
    rd.checkpoint.write_bytes(b"the last good checkpoint")
    kill_during_save(rd.path, "checkpoint.pt")
    kill_during_save(rd.path, "metrics.csv")
    orphans = leftovers(rd.path)
    assert len(orphans) == 2
    assert {o.split(".")[1] for o in orphans} == {"checkpoint", "metrics"}
    (rd.path / ".lock.abcd1234.tmp").write_text("{}")  # a contender's lock being written
    (rd.path / "notes.tmp").write_text("not ours")
    removed = rd.clean_orphans()
    assert sorted(p.name for p in removed) == orphans
    assert leftovers(rd.path) == [".lock.abcd1234.tmp", "notes.tmp"]
    assert rd.checkpoint.read_bytes() == b"the last good checkpoint"
    assert rd.status() == "running"


def test_claim_cleans_orphans(tmp_path):
    rd = run_dir(tmp_path)
    kill_during_save(rd.path, "checkpoint.pt")
    assert len(leftovers(rd.path)) == 1
    with rd.claim():
        assert leftovers(rd.path) == []


# ----- a corrupt checkpoint ---------------------------------------------------------------------
def corrupt_files(rd: RunDir) -> list[Path]:
    return sorted(rd.path.glob("checkpoint.pt.corrupt-*"))


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty"])
def test_a_corrupt_checkpoint_is_set_aside(tmp_path, kind):
    rd = run_dir(tmp_path)
    rd.save_checkpoint({"epoch": 3, "w": torch.randn(1000)})
    good = rd.checkpoint.read_bytes()
    bad = {"garbage": os.urandom(4096), "truncated": good[: len(good) // 2], "empty": b""}[kind]
    rd.checkpoint.write_bytes(bad)
    with pytest.warns(UserWarning, match="corrupt checkpoint .*checkpoint.pt") as seen:
        assert rd.load_checkpoint() is None
    assert len(seen) == 1 and "\n" not in str(seen[0].message)
    assert not rd.checkpoint.exists()
    (aside,) = corrupt_files(rd)
    assert aside.read_bytes() == bad  # moved, not rewritten
    assert aside.name[len("checkpoint.pt.corrupt-") :].endswith("Z")
    assert aside.name in str(seen[0].message)


def test_a_good_checkpoint_loads(tmp_path):
    rd = run_dir(tmp_path)
    w = torch.randn(10)
    rd.save_checkpoint({"epoch": 3, "w": w})
    ckpt = rd.load_checkpoint()
    assert ckpt["epoch"] == 3 and torch.equal(ckpt["w"], w)
    assert corrupt_files(rd) == []


def test_corrupt_checkpoints_of_one_second_are_all_kept(tmp_path, monkeypatch):
    from datetime import datetime, timezone

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)

    monkeypatch.setattr(store, "datetime", Frozen)
    rd = run_dir(tmp_path)
    for content in (b"first", b"second"):
        rd.path.mkdir(parents=True, exist_ok=True)
        rd.checkpoint.write_bytes(content)
        with pytest.warns(UserWarning):
            assert rd.load_checkpoint() is None
    names = [p.name for p in corrupt_files(rd)]
    assert names == [
        "checkpoint.pt.corrupt-20240506T070809Z",
        "checkpoint.pt.corrupt-20240506T070809Z-2",
    ]
    assert [p.read_bytes() for p in corrupt_files(rd)] == [b"first", b"second"]


def test_a_corrupt_checkpoint_that_cannot_be_moved_is_a_user_error(tmp_path, monkeypatch):
    rd = run_dir(tmp_path)
    rd.path.mkdir(parents=True)
    rd.checkpoint.write_bytes(b"garbage")

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(UserError, match="could not be moved aside") as info:
        rd.load_checkpoint()
    assert str(rd.checkpoint) in info.value.message
    assert rd.checkpoint.read_bytes() == b"garbage"


# ----- a bad result.json ------------------------------------------------------------------------
BAD_RECORDS = {
    "a list": (b"[1, 2]", "a JSON array, not an object"),
    "a string": (b'"done"', "a JSON string, not an object"),
    "null": (b"null", "a JSON null, not an object"),
    "not UTF-8": (b'{"status": "done", "note": "\xff\xfe"}', "not UTF-8"),
    "not JSON": (b'{"status": ', "not valid JSON"),
    "empty": (b"", "not valid JSON"),
    "no status": (b'{"best": {"epoch": 1}}', "no 'status'"),
    "odd status": (b'{"status": "finished"}', "unknown status 'finished'"),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_a_bad_result_json_names_the_file_and_the_fix(tmp_path, case):
    content, problem = BAD_RECORDS[case]
    rd = run_dir(tmp_path)
    rd.path.mkdir(parents=True)
    rd.result.write_bytes(content)
    for read in (rd.status, rd.read_result):
        with pytest.raises(UserError) as info:
            read()
        assert str(rd.result) in info.value.message and problem in info.value.message
        assert "Moving it aside" in info.value.message
    rd.result.rename(rd.result.with_name("result.json.bad"))  # what the message says to do
    assert rd.status() is None


def test_grid_list_with_a_bad_result_json_exits_2(tmp_path, monkeypatch):
    block = Block(("fashion-mnist",), ("xbm",), ({},), profile="cpu", seeds=(0,))
    monkeypatch.setitem(studies.STUDIES, "one", Study("one", "a test", (block,)))
    rd = RunDir(tmp_path, studies.cells("one")[0])
    rd.path.mkdir(parents=True)
    rd.result.write_text(json.dumps(["done"]))
    r = CliRunner().invoke(main, ["grid", "list", "--study", "one", "--results", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert "result.json" in r.output and "Traceback" not in r.output
