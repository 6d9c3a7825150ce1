"""The version-scheme interface: one ordering per ecosystem.

A scheme parses a raw version string into a value with a total order that agrees with the
ecosystem's reference tool (``dpkg --compare-versions``, rpm's ``rpmvercmp``, apk-tools,
``packaging``, node ``semver``, Maven ``ComparableVersion``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Protocol, Self


class Comparable(Protocol):
    """A parsed version: totally ordered within its scheme."""

    def __lt__(self, other: Self, /) -> bool: ...
    def __le__(self, other: Self, /) -> bool: ...
    def __gt__(self, other: Self, /) -> bool: ...
    def __ge__(self, other: Self, /) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...


class VersionScheme(ABC):
    """One ecosystem's version ordering."""

    name: ClassVar[str]
    """Registry name (``dpkg``, ``rpm``, ``apk``, ``pep440``, ``semver``, ``go``, ``maven``)."""

    @abstractmethod
    def parse(self, version: str) -> Comparable:
        """Parse ``version``; raise :class:`patchwarden.errors.InvalidVersion` naming it."""

    def compare(self, a: str, b: str) -> int:
        """Return -1, 0 or 1 as ``a`` sorts before, equal to or after ``b``."""
        pa, pb = self.parse(a), self.parse(b)
        return -1 if pa < pb else (1 if pa > pb else 0)

    def is_valid(self, version: str) -> bool:
        """True when ``version`` parses in this scheme."""
        try:
            self.parse(version)
        except ValueError:
            return False
        return True
