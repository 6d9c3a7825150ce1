"""Fixtures for the match tests: the version schemes.

The schemes come from :func:`patchwarden.versions.scheme_for`. Until that module lands, a
stand-in built on ``univers``/``packaging`` (the reference libraries the real schemes are
tested against) is used so that the matching logic can be exercised.
"""

from __future__ import annotations

from typing import Any

import pytest

from patchwarden.ecosystems import Ecosystem
from patchwarden.errors import InvalidVersion, UnknownEcosystem
from patchwarden.match import SchemeLookup
from patchwarden.versions.interface import Comparable, VersionScheme


class _Hashable:
    """Wraps a univers version that is ordered but not hashable (constant hash: consistent)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    @classmethod
    def of(cls, version_class: Any) -> Any:
        return lambda text: cls(version_class(text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Hashable) and bool(self.value == other.value)

    def __hash__(self) -> int:
        return 0

    def __lt__(self, other: _Hashable) -> bool:
        return bool(self.value < other.value)

    def __le__(self, other: _Hashable) -> bool:
        return bool(self.value <= other.value)

    def __gt__(self, other: _Hashable) -> bool:
        return bool(self.value > other.value)

    def __ge__(self, other: _Hashable) -> bool:
        return bool(self.value >= other.value)


def _stand_in_schemes() -> SchemeLookup:
    from packaging.version import InvalidVersion as PackagingInvalid
    from packaging.version import Version
    from univers.versions import AlpineLinuxVersion, DebianVersion, SemverVersion

    def factory(name: str, cls: Any) -> VersionScheme:
        class _Scheme(VersionScheme):
            def parse(self, version: str) -> Comparable:
                try:
                    parsed: Comparable = cls(version)
                except (ValueError, PackagingInvalid) as exc:
                    raise InvalidVersion(f"invalid {name} version {version!r}") from exc
                return parsed

        _Scheme.name = name
        return _Scheme()

    by_scheme = {
        "pep440": factory("pep440", Version),
        "dpkg": factory("dpkg", DebianVersion),
        "apk": factory("apk", _Hashable.of(AlpineLinuxVersion)),
        "semver": factory("semver", SemverVersion),
    }

    def lookup(ecosystem: Ecosystem) -> VersionScheme:
        try:
            return by_scheme[ecosystem.scheme]
        except KeyError:
            raise UnknownEcosystem(f"no version scheme for {ecosystem}") from None

    return lookup


def real_or_stand_in_schemes() -> SchemeLookup:
    """The real scheme registry when it exists, else the stand-in."""
    try:
        from patchwarden.versions import scheme_for
    except ImportError:
        return _stand_in_schemes()

    def lookup(ecosystem: Ecosystem) -> VersionScheme:
        return scheme_for(ecosystem)

    return lookup


@pytest.fixture(scope="session")
def schemes() -> SchemeLookup:
    """How the tests' indexes find version schemes."""
    return real_or_stand_in_schemes()
