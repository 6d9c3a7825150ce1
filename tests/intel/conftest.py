"""Fixtures of the intel tests: the real openssl/libssl3 ``.deb`` files of bookworm-security.

The versions and the download cache are the Debian test hosts' (tests/debian_hosts.py): one
``apt-get download`` per machine serves both.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.debian_hosts import OPENSSL_FIXED, OPENSSL_OLD, downloaded_debs

__all__ = ["OPENSSL_FIXED", "OPENSSL_OLD", "_missing", "openssl_fixed_debs"]


def _missing(reason: str) -> None:
    """Fail under CI (the prerequisite must be there), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def openssl_fixed_debs() -> dict[str, Path]:
    """Binary name -> the real ``openssl`` / ``libssl3`` :data:`OPENSSL_FIXED` package (cached)."""
    debs = downloaded_debs([("openssl", OPENSSL_FIXED), ("libssl3", OPENSSL_FIXED)])
    return {package: path for (package, _), path in debs.items()}
