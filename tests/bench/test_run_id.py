"""Run ids that survive upgrades: the ids of commit c18673d are frozen in tests/fixtures/legacy_v0,
and adding a RunConfig field with a default keeps every one of them (results/README.md,
"run_id"). Issue 14's keyed augmentation draws changed the numbers of every cell on purpose:
today's cells (``augment_draws="keyed"``) have new ids, and the same cells with the draws of
before (``augment_draws="global"``) have exactly the frozen ones."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest

import bench.config as C
from bench.config import RunConfig, make_config, setting
from bench.run_schema import added_fields
from bench.store import RunDir
from bench.studies import STUDIES, cells
from commands import reproduce
from commands.reproduce import plan
from variants import SOURCED_VARIANTS

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v0"
LEGACY_ID = "662bc130c5aa3a45"  # fashion-mnist / xbm / seed 0 / cpu, written at commit c18673d
FROZEN = json.loads((LEGACY / "run_ids.json").read_text())["run_ids"]


def _with_field(name: str, default, absent=None, version: int = 3, declared: bool = True):
    """RunConfig plus one field, declared as a later change would add it: with the schema version
    that added it and its absent value (``declared=False``: a plain dataclass field)."""
    added = (version, default if absent is None else absent)
    spec = setting(type(default), default, "a new field", added=added)
    spec = spec if declared else dataclasses.field(default=default)
    return dataclasses.make_dataclass(
        "RunConfigPlus", [(name, type(default), spec)], bases=(RunConfig,), frozen=True
    )


def _global(cfgs):
    """The cells as every run before schema 2 made them: every field added since at its absent
    value (global augmentation draws, no memory probe, the probe settings' defaults: the `cpu`
    profile's 2 probe points are meaningless without the probe)."""
    names = {f.name for f in dataclasses.fields(RunConfig)}  # a test may register one more
    absent = {name: value for name, (_, value) in added_fields(RunConfig).items() if name in names}
    return [dataclasses.replace(c, **absent) for c in cfgs]


# MoCo's `cpu` profile trained 10 epochs until it was cut to 4 for the demo's 12 minutes:
# another experiment, new ids; with 10 epochs the cells are the ones before
MOCO_CPU_EPOCHS_BEFORE = 10


def _as_before(study: str, cfgs):
    if study == "demo-moco":
        cfgs = [dataclasses.replace(c, epochs=MOCO_CPU_EPOCHS_BEFORE) for c in cfgs]
    return _global(cfgs)


def _as(cls, cfg: RunConfig, **changes):
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(RunConfig)}
    return cls(**{**values, **changes})


# the Fashion-MNIST demo was the study "demo" before; the Omniglot studies and the standard
# benchmarks are new
RENAMED = {"demo-fashion": "demo"}
NEW_STUDIES = {"demo", "demo-regimes", "standard"}


@pytest.mark.parametrize("study", sorted(set(STUDIES) - NEW_STUDIES))
def test_every_run_id_of_every_study_is_the_one_before_versioning(study):
    """With the draws of before (and demo-moco with its 10 epochs of before), every cell of the
    sources' variants keeps its id and its place;
    only the demo adds the cells of a variant beyond the sources (oracle_xbm), after
    them. With keyed draws (today's default, other numbers) every cell has a new id, and no two
    cells share one."""
    today, frozen = cells(study), FROZEN[RENAMED.get(study, study)]
    olds = [c.run_id for c in _as_before(study, today)]
    assert olds[: len(frozen)] == frozen
    added = {c.variant for c in today[len(frozen) :]}
    assert added == ({"oracle_xbm"} if study == "demo-fashion" else set())
    assert {c.augment_draws for c in today} == {"keyed"}
    ids = [c.run_id for c in today]
    assert len(set(ids)) == len(ids) and not set(ids) & set(frozen)
    assert all(c.to_dict()["augment_draws"] == "keyed" for c in today)
    assert all("augment_draws" not in c.to_dict() for c in _global(today))


def test_the_id_of_schema_v1_is_the_hash_of_every_field():
    """The rule before versioning, written out: sha256 of every field, sorted JSON, 16 hex; a
    later field enters the hash only away from its absent value."""
    cfg = make_config(
        "fashion-mnist",
        "pc_xbn",
        2,
        "cpu",
        {"lambda_mu": 0.2},
        epochs=3,
        augment_draws="global",
        memory_probe=False,
        memory_probe_points=4,  # the absent value (the cpu profile's own is 2)
    )
    every = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(RunConfig)}
    every.update(variant_options={"lambda_mu": 0.2}, eval_ks=[1, 10], deviations=[])
    for name in ("augment_draws", "memory_probe", "memory_probe_points", "memory_probe_size"):
        del every[name]  # schema 2, at their absent values
    blob = json.dumps(every, sort_keys=True, default=str).encode()
    assert cfg.run_id == hashlib.sha256(blob).hexdigest()[:16]
    keyed = dataclasses.replace(cfg, augment_draws="keyed")
    blob = json.dumps({**every, "augment_draws": "keyed"}, sort_keys=True, default=str).encode()
    assert keyed.run_id == hashlib.sha256(blob).hexdigest()[:16] != cfg.run_id
    assert cfg.to_dict()["schema"] == keyed.to_dict()["schema"] == 2


def test_a_field_added_at_its_absent_value_keeps_every_demo_id():
    sub = _with_field("label_smoothing", 0.0)
    demo = _global(cells("demo-fashion", variants=SOURCED_VARIANTS))
    assert len(demo) == 30 and [c.run_id for c in demo] == FROZEN["demo"]
    for cfg in demo:
        plus = _as(sub, cfg)
        assert plus.run_id == cfg.run_id
        assert "label_smoothing" not in plus.to_dict() and plus.to_dict()["schema"] == 3
    changed = _as(sub, demo[0], label_smoothing=0.1)
    assert changed.run_id != demo[0].run_id and changed.to_dict()["label_smoothing"] == 0.1


def test_changing_an_added_fields_default_later_rewrites_no_stored_id():
    """The absent value is frozen: a new default is a new experiment, the old runs keep their id."""
    sub = _with_field("label_smoothing", 0.1, absent=0.0)
    cfg = cells("demo-fashion")[0]
    assert _as(sub, cfg).run_id != cfg.run_id  # the new default 0.1 is hashed
    assert _as(sub, cfg, label_smoothing=0.0).run_id == cfg.run_id


def test_an_undeclared_field_is_an_error_naming_it():
    sub = _with_field("label_smoothing", 0.0, declared=False)
    with pytest.raises(TypeError, match="label_smoothing.*no declaration.*added="):
        _ = _as(sub, cells("demo-fashion")[0]).run_id


def test_the_fields_of_schema_v1_are_the_legacy_records():
    """A field declared without ``added`` enters every id: only the fields of the record written
    before versioning may be so declared."""
    record = json.loads((LEGACY / "runs" / LEGACY_ID / "config.json").read_text())
    v1 = {f.name for f in dataclasses.fields(RunConfig)} - set(added_fields(RunConfig))
    assert v1 == set(record) - {"run_id"}


def test_the_legacy_record_reads_back_to_its_id():
    record = json.loads((LEGACY / "runs" / LEGACY_ID / "config.json").read_text())
    assert "schema" not in record  # written before versioning
    legacy = RunConfig.from_dict(record)
    assert legacy.run_id == LEGACY_ID and legacy.augment_draws == "global"  # its absent value
    sub = _with_field("label_smoothing", 0.0)
    plus = sub.from_dict(record)
    assert plus.label_smoothing == 0.0 and plus.run_id == LEGACY_ID


@pytest.mark.parametrize("change, message", [
    ({"schema": 9}, "schema 9, newer"),
    ({"colour": "red"}, "unknown config field.*colour"),
    ({"run_id": "0" * 16}, "says run_id 0000000000000000"),
])  # fmt: skip
def test_from_dict_refuses_what_it_cannot_read(change, message):
    record = {"run_id": LEGACY_ID, **make_config("fashion-mnist", "xbm", 0, "cpu").to_dict()}
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict({**record, **change})


def test_reproduce_finds_the_legacy_run_done_after_a_field_is_added(tmp_path, monkeypatch):
    shutil.copytree(LEGACY / "runs", tmp_path / "runs")
    # today's cell draws its augmentation otherwise: another experiment, planned afresh
    todo, counts = plan("demo-fashion", str(tmp_path), variants=["xbm"], seeds=[0, 1])
    assert counts == {"missing": 2} and [c.seed for c in todo] == [0, 1]
    assert RunDir(tmp_path, todo[0]).path != RunDir(tmp_path, _global(todo)[0]).path
    # the same cells with the draws of before are the legacy run: done, not run again
    monkeypatch.setattr(reproduce, "cells", lambda *a, **k: _global(cells(*a, **k)))
    todo, counts = plan("demo-fashion", str(tmp_path), variants=["xbm"], seeds=[0, 1])
    assert counts == {"done": 1, "missing": 1} and [c.seed for c in todo] == [1]
    sub = _with_field("label_smoothing", 0.0)
    monkeypatch.setattr(C, "RunConfig", sub)  # make_config now builds the extended config
    todo, counts = plan("demo-fashion", str(tmp_path), variants=["xbm"], seeds=[0, 1])
    assert counts == {"done": 1, "missing": 1} and [c.seed for c in todo] == [1]
    assert isinstance(todo[0], sub)  # the patch reached the planner: the test is not vacuous
