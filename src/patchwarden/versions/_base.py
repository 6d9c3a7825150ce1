"""Shared machinery of the version schemes: a parsed value that keeps its raw string.

Every scheme turns a raw string into a *key* (nested tuples of ints and strings) whose
plain tuple ordering is the ecosystem's ordering, so comparing two parsed versions is one
C-level tuple comparison. Two versions are equal when their keys are equal (``1.0`` and
``1.00`` are the same dpkg version); the raw string is kept for display only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from patchwarden.errors import InvalidVersion

Key = tuple[Any, ...]
"""A comparison key: tuples of ints/strings/tuples, ordered by Python's tuple ordering."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class KeyedVersion:
    """A parsed version: the raw string plus a key whose tuple order is the scheme's order.

    Versions of different schemes never compare (``NotImplemented``, so ``<`` raises
    ``TypeError`` and ``==`` is ``False``).
    """

    scheme: ClassVar[str] = ""
    """Registry name of the scheme the version belongs to."""

    raw: str
    """The version exactly as given."""
    key: Key
    """The comparison key; equal keys mean equal versions."""

    def __lt__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, KeyedVersion)
        return self.key < other.key

    def __le__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, KeyedVersion)
        return self.key <= other.key

    def __gt__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, KeyedVersion)
        return self.key > other.key

    def __ge__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, KeyedVersion)
        return self.key >= other.key

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, KeyedVersion)
        return self.key == other.key

    def __hash__(self) -> int:
        return hash((self.scheme, self.key))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.raw!r})"

    def __str__(self) -> str:
        return self.raw


def invalid(scheme: str, version: object, reason: str) -> InvalidVersion:
    """Build the :class:`InvalidVersion` every scheme raises: scheme, input (``!r``), reason.

    >>> str(invalid("dpkg", "1:", "nothing after the epoch colon"))
    "invalid dpkg version '1:': nothing after the epoch colon"
    """
    return InvalidVersion(f"invalid {scheme} version {version!r}: {reason}")


def require_str(scheme: str, version: object) -> str:
    """Return ``version`` if it is a non-blank ``str``, else raise :class:`InvalidVersion`.

    Feeds written in YAML can hand over floats (``1.10`` becomes ``1.1``); that must be an
    error naming the value, not a silent wrong comparison.

    >>> require_str("pep440", 1.1)
    Traceback (most recent call last):
    ...
    patchwarden.errors.InvalidVersion: invalid pep440 version 1.1: expected a string, got float
    """
    if not isinstance(version, str):
        raise invalid(scheme, version, f"expected a string, got {type(version).__name__}")
    if not version.strip():
        raise invalid(scheme, version, "empty version")
    return version
