"""Fixtures live in tests/conftest.py (the tiny dataset is shared with the CLI tests)."""

from tests.conftest import TINY  # noqa: F401
