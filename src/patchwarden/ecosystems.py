"""Ecosystem names: parsing ``Base:release``, picking the version scheme, normalising names.

OSV ecosystems (OSV schema 1.6, "affected[].package.ecosystem") may carry a release suffix
after a colon: ``Debian:12``, ``Alpine:v3.19``, ``Ubuntu:22.04:LTS``. Packages and advisories
are compared only within the same base ecosystem, and for distros within the same release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from patchwarden.errors import UnknownEcosystem


class Base(StrEnum):
    """Base ecosystems patchwarden knows, spelled as OSV spells them."""

    DEBIAN = "Debian"
    UBUNTU = "Ubuntu"
    ALPINE = "Alpine"
    REDHAT = "Red Hat"
    ROCKY = "Rocky Linux"
    ALMA = "AlmaLinux"
    SUSE = "SUSE"
    OPENSUSE = "openSUSE"
    PYPI = "PyPI"
    NPM = "npm"
    CRATES = "crates.io"
    GO = "Go"
    MAVEN = "Maven"


SCHEME_BY_BASE: dict[Base, str] = {
    Base.DEBIAN: "dpkg",
    Base.UBUNTU: "dpkg",
    Base.ALPINE: "apk",
    Base.REDHAT: "rpm",
    Base.ROCKY: "rpm",
    Base.ALMA: "rpm",
    Base.SUSE: "rpm",
    Base.OPENSUSE: "rpm",
    Base.PYPI: "pep440",
    Base.NPM: "semver",
    Base.CRATES: "semver",
    Base.GO: "go",
    Base.MAVEN: "maven",
}
"""Which version scheme (``patchwarden.versions`` registry name) orders each base ecosystem."""

_BY_LOWER = {b.value.lower(): b for b in Base}

DEBIAN_CODENAMES = {
    "buzz": "1.1",
    "rex": "1.2",
    "bo": "1.3",
    "hamm": "2.0",
    "slink": "2.1",
    "potato": "2.2",
    "woody": "3.0",
    "sarge": "3.1",
    "etch": "4",
    "lenny": "5",
    "squeeze": "6",
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
}
"""Debian release codenames to the version numbers OSV uses in ``Debian:<n>``."""


@dataclass(frozen=True, slots=True)
class Ecosystem:
    """A parsed ecosystem string: base plus optional release.

    >>> Ecosystem.parse("Debian:12")
    Ecosystem(base=<Base.DEBIAN: 'Debian'>, release='12')
    >>> str(Ecosystem.parse("pypi"))
    'PyPI'
    """

    base: Base
    release: str | None = None

    @classmethod
    def parse(cls, text: str) -> Ecosystem:
        """Parse ``Base[:release]``; the base is matched case-insensitively."""
        base_text, _, release = text.partition(":")
        base = _BY_LOWER.get(base_text.strip().lower())
        if base is None:
            raise UnknownEcosystem(f"unknown ecosystem {text!r}")
        return cls(base, release.strip() or None)

    @property
    def scheme(self) -> str:
        """Name of the version scheme for this ecosystem."""
        return SCHEME_BY_BASE[self.base]

    @property
    def is_distro(self) -> bool:
        """True for OS package ecosystems (releases matter, source packages are used)."""
        return self.scheme in {"dpkg", "rpm", "apk"}

    def __str__(self) -> str:
        return self.base.value if self.release is None else f"{self.base.value}:{self.release}"


def release_matches(advisory_ecosystem: Ecosystem, package_ecosystem: Ecosystem) -> bool:
    """Whether an advisory's ecosystem applies to a package's ecosystem.

    Same base is required. An advisory without a release applies to every release; a
    package without a release (unknown distro version) matches only release-less
    advisories. ``Ubuntu:22.04:LTS`` and ``Ubuntu:22.04`` are the same release.

    >>> release_matches(Ecosystem.parse("Debian:12"), Ecosystem.parse("Debian:12"))
    True
    >>> release_matches(Ecosystem.parse("Debian:11"), Ecosystem.parse("Debian:12"))
    False
    >>> release_matches(Ecosystem.parse("PyPI"), Ecosystem.parse("PyPI"))
    True
    >>> release_matches(Ecosystem.parse("Ubuntu:22.04:LTS"), Ecosystem.parse("Ubuntu:22.04"))
    True
    """
    if advisory_ecosystem.base is not package_ecosystem.base:
        return False
    if advisory_ecosystem.release is None:
        return True
    if package_ecosystem.release is None:
        return False
    return _release_key(advisory_ecosystem.release) == _release_key(package_ecosystem.release)


def _release_key(release: str) -> str:
    head = release.split(":", 1)[0].strip().lower()
    return DEBIAN_CODENAMES.get(head, head)


_PEP503 = re.compile(r"[-_.]+")


def normalize_name(ecosystem: Ecosystem, name: str) -> str:
    """The name as advisories and packages are compared.

    PyPI names follow PEP 503 (lower case, runs of ``-_.`` become ``-``); npm names are
    compared as written but case-insensitively (npm forbids upper case in new names), scopes
    kept (``@types/node``); Go module paths and Maven ``group:artifact`` are kept; distro
    package names are lower case by policy of each distro.

    >>> normalize_name(Ecosystem.parse("PyPI"), "Jinja2")
    'jinja2'
    >>> normalize_name(Ecosystem.parse("PyPI"), "zope.interface")
    'zope-interface'
    >>> normalize_name(Ecosystem.parse("npm"), "@Babel/Core")
    '@babel/core'
    """
    name = name.strip()
    if ecosystem.base is Base.PYPI:
        return _PEP503.sub("-", name).lower()
    if ecosystem.base in {Base.GO, Base.MAVEN}:
        return name
    return name.lower()
