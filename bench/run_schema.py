"""The record of a run config and its run id: ids that survive upgrades (results/README.md,
"run_id").

Each RunConfig field declares its schema with its contract (bench/config.py): a field of schema
v1 (the fields before versioning) is always in the record and the id; a field added later says
``added=(version, absent)``, the schema version that added it and its *absent* value, the one that
does what runs did before the field existed, and enters the record and the id only when set to
another value. Adding a field thus never renames a stored run, and its default may change later
without touching any stored id (tests/bench/test_run_id.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

SCHEMA_KEY = "schema"  # config.json's schema version (absent: 1)


def added_fields(cls: type) -> dict[str, tuple[int, Any]]:
    """The fields added after v1: name -> (the schema version that added it, its absent value).

    A field declared without a contract (``metadata["option"]``) is a TypeError naming it: it
    would enter every id as a v1 field and rename every stored run."""
    out = {}
    for f in dataclasses.fields(cls):
        if "option" not in f.metadata:
            raise TypeError(
                f"RunConfig field {f.name!r} has no declaration: declare it with bench.config's "
                "setting(...), with added=(next schema version, the value that reproduces runs "
                "made before it)"
            )
        if f.metadata.get("added") is not None:
            out[f.name] = f.metadata["added"]
    return out


def schema_version(cls: type) -> int:
    """The current schema version: 1, or the latest version that added a field."""
    return max((version for version, _ in added_fields(cls).values()), default=1)


def _same_value(a: Any, b: Any) -> bool:
    """Equality as the record sees it (JSON): (1, 10) == [1, 10]."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def record(cfg: Any) -> dict[str, Any]:
    """The config's record (config.json without its run_id): the schema version, every v1 field,
    and every later field away from its absent value (tuples as lists, options as a dict)."""
    added = added_fields(type(cfg))
    out: dict[str, Any] = {SCHEMA_KEY: schema_version(type(cfg))}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        value = dict(value) if f.name == "variant_options" else value
        value = list(value) if isinstance(value, tuple) else value
        if f.name not in added or not _same_value(value, added[f.name][1]):
            out[f.name] = value
    return out


def run_id(cfg: Any) -> str:
    """16 hex characters of the sha256 of the record without its schema version: for the fields
    of schema v1, the hash of every field, as before versioning."""
    ident = {k: v for k, v in record(cfg).items() if k != SCHEMA_KEY}
    blob = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def from_record(cls: type, d: dict[str, Any]) -> Any:
    """A config from its record of this or any earlier schema. A field the record lacks takes the
    value it was added with (written before the field existed, or left out at that value); a
    record of a newer schema, an unknown field or a ``run_id`` that is not the config's is a
    ``ValueError``."""
    version, current = int(d.get(SCHEMA_KEY, 1)), schema_version(cls)
    if version > current:
        raise ValueError(
            f"config of schema {version}, newer than this code's {current}: "
            "upgrade xbmbench to read it"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields) - {"run_id", SCHEMA_KEY})
    if unknown:
        raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
    kw = {name: absent for name, (_, absent) in added_fields(cls).items()}
    kw.update({k: v for k, v in d.items() if k in fields})
    for name, value in kw.items():
        if name == "variant_options":
            kw[name] = tuple(sorted(dict(value).items()))
        elif isinstance(value, list) and fields[name].metadata["option"].kind is tuple:
            kw[name] = tuple(value)
    cfg = cls(**kw)
    if "run_id" in d and d["run_id"] != run_id(cfg):
        raise ValueError(f"config record says run_id {d['run_id']}, its fields give {run_id(cfg)}")
    return cfg
