"""Fixtures for the match tests: the real version schemes (:mod:`patchwarden.versions`)."""

from __future__ import annotations

import pytest

from patchwarden.ecosystems import Ecosystem
from patchwarden.match import SchemeLookup
from patchwarden.versions import scheme_for
from patchwarden.versions.interface import VersionScheme


def _lookup(ecosystem: Ecosystem) -> VersionScheme:
    return scheme_for(ecosystem)


@pytest.fixture(scope="session")
def schemes() -> SchemeLookup:
    """How the tests' indexes find version schemes: the real registry."""
    return _lookup
