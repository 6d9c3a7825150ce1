"""npm and crates.io versions: Semantic Versioning 2.0.0 order, as node's ``semver`` does it.

Accepted syntax (deliberately strict, like node ``semver``'s default non-loose parse and
like crates.io): ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`` with no leading zeros in
numeric parts, identifiers of ``[0-9A-Za-z-]``, surrounding whitespace ignored, and one
optional leading lower-case ``v`` (node ``semver`` accepts ``v1.2.3`` in strict mode;
crates never write one). node's *loose* forms (``=1.2.3``, ``V1.2.3``, ``1.2``,
``01.2.3``, ``1.2.3beta``) are rejected: the npm registry only stores versions that pass
the strict parse, and OSV feeds copy registry versions.

Order (SemVer §11): major, minor, patch numerically; a pre-release sorts before its
release; pre-release identifiers compare left to right, numeric ones numerically and below
alphanumeric ones, alphanumeric ones by ASCII; more identifiers win when all before are
equal. Build metadata is ignored (``1.0.0+a == 1.0.0+b``).

Why our own code: node ``semver`` is JavaScript; univers' ``SemverVersion`` (via the
``semantic_version`` library) agrees on all golden pairs but parses about 4 times and
compares about 15 times slower (``benchmarks/versions_bench.py``). node's
``semver`` package is the test oracle (``tests/reference/node``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from patchwarden.versions._base import Key, KeyedVersion, invalid, require_str
from patchwarden.versions.interface import VersionScheme

_NUM = r"(?:0|[1-9][0-9]*)"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
SEMVER_RE = re.compile(
    rf"(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?"
    rf"(?:\+(?P<build>{_BUILD_ID}(?:\.{_BUILD_ID})*))?"
)
"""SemVer 2.0.0 (the regular expression of semver.org, without the ``^``/``$`` anchors)."""

_RELEASE: Key = (1,)


def prerelease_key(pre: str | None) -> Key:
    """Key of a pre-release string; a release (``None``) sorts after every pre-release.

    >>> prerelease_key("alpha") < prerelease_key("alpha.1") < prerelease_key("beta")
    True
    >>> prerelease_key("beta") < prerelease_key(None)
    True
    >>> prerelease_key("2") < prerelease_key("11") < prerelease_key("a")
    True
    """
    if pre is None:
        return _RELEASE
    ids: list[tuple[int, int | str]] = []
    for ident in pre.split("."):
        if ident.isdigit():
            ids.append((0, int(ident)))
        else:
            ids.append((1, ident))
    return (0, *ids)


def semver_key(match: re.Match[str]) -> Key:
    """The ordering key of a :data:`SEMVER_RE` match: (major, minor, patch, pre-release)."""
    return (
        int(match["major"]),
        int(match["minor"]),
        int(match["patch"]),
        prerelease_key(match["pre"]),
    )


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SemverVersion(KeyedVersion):
    """A parsed SemVer 2.0.0 version.

    >>> parse_semver("1.0.0-alpha") < parse_semver("1.0.0-alpha.1") < parse_semver("1.0.0")
    True
    >>> parse_semver("1.0.0+build.1") == parse_semver("v1.0.0")
    True
    """

    scheme: ClassVar[str] = "semver"


@lru_cache(maxsize=1 << 16)
def _parse(version: str) -> SemverVersion:
    text = version.strip()
    if text[:1] == "v":
        text = text[1:]
    m = SEMVER_RE.fullmatch(text)
    if m is None:
        raise invalid("semver", version, "not a SemVer 2.0.0 version")
    return SemverVersion(raw=version, key=semver_key(m))


def parse_semver(version: str) -> SemverVersion:
    """Parse a SemVer version (cached); raise :class:`InvalidVersion` naming it.

    >>> parse_semver("1.2")
    Traceback (most recent call last):
    ...
    patchwarden.errors.InvalidVersion: invalid semver version '1.2': not a SemVer 2.0.0 version
    """
    return _parse(require_str("semver", version))


class SemverScheme(VersionScheme):
    """npm and crates.io: SemVer 2.0.0 order (node ``semver``)."""

    name: ClassVar[str] = "semver"

    def parse(self, version: str) -> SemverVersion:
        """Parse ``version``; see :func:`parse_semver`."""
        return parse_semver(version)
