"""Go module versions, ordered as ``golang.org/x/mod/semver`` orders them.

Go versions are SemVer 2.0.0 with a ``v`` prefix (``v1.2.3``); ``golang.org/x/mod/semver``
also accepts the shorthands ``v1`` and ``v1.2`` (meaning ``v1.2.0``) but not with a
pre-release or build suffix (``v1.2-pre`` is invalid), and rejects leading zeros.
``+incompatible`` (a v2+ module without a go.mod) is build metadata and so ignored:
``v2.0.0+incompatible == v2.0.0``. Pseudo-versions (``v0.0.0-20191109021931-daa7c04131f5``,
``v1.2.4-0.20191109021931-daa7c04131f5``) are ordinary pre-releases and order by the SemVer
rules, which puts them by commit time under the version they precede, as the go command
intends (go.dev/ref/mod#pseudo-versions).

The ``v`` may be missing: OSV's Go ecosystem writes versions without it (``1.2.3``, see the
OSV schema, "Go" ecosystem), so ``1.2.3`` parses as ``v1.2.3``.

Why our own code: no Python port of ``x/mod/semver`` exists in our dependencies (univers'
``GolangVersion`` wraps ``semantic_version`` and rejects the shorthands); the cases in
``tests/versions/test_versions_go.py`` are those of ``x/mod/semver``'s ``semver_test.go``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from patchwarden.versions._base import KeyedVersion, invalid, require_str
from patchwarden.versions.interface import VersionScheme
from patchwarden.versions.semver import SEMVER_RE, prerelease_key, semver_key

_SHORT = re.compile(r"(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?")


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class GoVersion(KeyedVersion):
    """A parsed Go module version.

    >>> parse_go("v0.0.0-20191109021931-daa7c04131f5") < parse_go("v0.0.1")
    True
    >>> parse_go("v2.0.0+incompatible") == parse_go("v2.0.0")
    True
    >>> parse_go("v1.19") > parse_go("v1.2")
    True
    """

    scheme: ClassVar[str] = "go"


@lru_cache(maxsize=1 << 16)
def _parse(version: str) -> GoVersion:
    text = version[1:] if version.startswith("v") else version
    m = SEMVER_RE.fullmatch(text)
    if m is not None:
        return GoVersion(raw=version, key=semver_key(m))
    short = _SHORT.fullmatch(text)
    if short is not None:
        minor = short.group(2)
        key = (int(short.group(1)), int(minor) if minor else 0, 0, prerelease_key(None))
        return GoVersion(raw=version, key=key)
    raise invalid("go", version, "not a Go module version")


def parse_go(version: str) -> GoVersion:
    """Parse a Go module version (cached); raise :class:`InvalidVersion` naming it.

    >>> parse_go("v1.2-pre")
    Traceback (most recent call last):
    ...
    patchwarden.errors.InvalidVersion: invalid go version 'v1.2-pre': not a Go module version
    """
    return _parse(require_str("go", version))


class GoScheme(VersionScheme):
    """Go modules: ``golang.org/x/mod/semver`` order."""

    name: ClassVar[str] = "go"

    def parse(self, version: str) -> GoVersion:
        """Parse ``version``; see :func:`parse_go`."""
        return parse_go(version)
