from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from data_prep import prepare
from tests.data_prep.helpers import quiet
from tests.data_prep.layouts import BUILDERS


@pytest.fixture
def prepared(tmp_path: Path) -> Callable[[str], Path]:
    """Build the fixture tree of a dataset, prepare it, return the data folder."""

    def build(name: str, **options) -> Path:
        make, _ = BUILDERS[name]
        data = tmp_path / "data"
        prepare(name, make(tmp_path / "raw" / name), data, log=quiet, **options)
        return data

    return build
