"""Fixtures live in tests/conftest.py (the tiny dataset is shared with the CLI tests); the
thread-count fixture of the trainer tests is here."""

import pytest
import torch

from tests.conftest import TINY  # noqa: F401


@pytest.fixture
def two_threads():
    """Two torch threads for the test (CPU numbers depend on the count), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
