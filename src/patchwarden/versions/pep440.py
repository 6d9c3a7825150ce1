"""Python package versions (PyPI), ordered by PEP 440 through ``packaging.version``.

``packaging`` *is* the reference implementation (pip uses it), so it is used directly; this
module only adds the house conventions: the raw string is kept, errors are
:class:`~patchwarden.errors.InvalidVersion` naming the input, and parsing is cached because
the matcher parses the same advisory bounds again and again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from packaging.version import InvalidVersion as PackagingInvalidVersion
from packaging.version import Version

from patchwarden.versions._base import KeyedVersion, invalid, require_str
from patchwarden.versions.interface import VersionScheme


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Pep440Version(KeyedVersion):
    """A parsed PEP 440 version; ``key`` is ``(packaging.version.Version,)``.

    >>> parse_pep440("1.0rc1") < parse_pep440("1.0") < parse_pep440("1.0.post1")
    True
    >>> parse_pep440("1.0") == parse_pep440("1.0.0")
    True
    """

    scheme: ClassVar[str] = "pep440"

    @property
    def version(self) -> Version:
        """The underlying :class:`packaging.version.Version`."""
        value: Version = self.key[0]
        return value


@lru_cache(maxsize=1 << 16)
def _parse(version: str) -> Pep440Version:
    try:
        parsed = Version(version)
    except PackagingInvalidVersion as exc:
        raise invalid("pep440", version, "not a PEP 440 version") from exc
    return Pep440Version(raw=version, key=(parsed,))


def parse_pep440(version: str) -> Pep440Version:
    """Parse a PEP 440 version (cached); raise :class:`InvalidVersion` naming it.

    >>> parse_pep440("1.0-foo")
    Traceback (most recent call last):
    ...
    patchwarden.errors.InvalidVersion: invalid pep440 version '1.0-foo': not a PEP 440 version
    """
    return _parse(require_str("pep440", version))


class Pep440Scheme(VersionScheme):
    """PyPI: PEP 440 order (``packaging.version``)."""

    name: ClassVar[str] = "pep440"

    def parse(self, version: str) -> Pep440Version:
        """Parse ``version``; see :func:`parse_pep440`."""
        return parse_pep440(version)
