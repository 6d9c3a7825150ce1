"""Shared fixtures: paths to test data and to the real public data sets."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DATA = TESTS / "data"
SHARED_DATA = REPO.parent / "shared" / "data"
"""The workplace's real public data (../shared/data); tests copy small subsets into tests/data."""


@pytest.fixture
def data() -> Path:
    """The tests' own data folder (``tests/data``); each subset's README names its source."""
    return DATA
