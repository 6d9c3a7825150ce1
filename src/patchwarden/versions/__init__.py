"""Version ordering per ecosystem: one :class:`VersionScheme` per scheme name.

The registry :data:`SCHEMES` is keyed by the names ``patchwarden.ecosystems`` uses
(``Ecosystem.scheme``); :func:`scheme_for` goes from an ecosystem to its scheme.

>>> scheme_for("Debian:12").compare("1.0-1", "1.0~rc1-1")
1
>>> scheme_for("PyPI").parse("2.0") > scheme_for("PyPI").parse("2.0rc1")
True
"""

from __future__ import annotations

from patchwarden.ecosystems import Ecosystem
from patchwarden.versions.apk import ApkScheme
from patchwarden.versions.dpkg import DpkgScheme
from patchwarden.versions.golang import GoScheme
from patchwarden.versions.interface import Comparable, VersionScheme
from patchwarden.versions.maven import MavenScheme
from patchwarden.versions.pep440 import Pep440Scheme
from patchwarden.versions.rpm import RpmScheme
from patchwarden.versions.semver import SemverScheme

__all__ = ["SCHEMES", "Comparable", "VersionScheme", "clear_caches", "scheme_for"]

SCHEMES: dict[str, VersionScheme] = {
    scheme.name: scheme
    for scheme in (
        DpkgScheme(),
        RpmScheme(),
        ApkScheme(),
        Pep440Scheme(),
        SemverScheme(),
        GoScheme(),
        MavenScheme(),
    )
}
"""Every version scheme by registry name: dpkg, rpm, apk, pep440, semver, go, maven."""


def scheme_for(ecosystem: str | Ecosystem) -> VersionScheme:
    """The version scheme of an ecosystem (``"Debian:12"``, ``"npm"``, an :class:`Ecosystem`).

    Raises :class:`~patchwarden.errors.UnknownEcosystem` for an ecosystem patchwarden does
    not know.

    >>> scheme_for("crates.io").name
    'semver'
    """
    eco = ecosystem if isinstance(ecosystem, Ecosystem) else Ecosystem.parse(ecosystem)
    return SCHEMES[eco.scheme]


def clear_caches() -> None:
    """Empty every scheme's parse cache (for benchmarks and long-running processes)."""
    from patchwarden.versions import apk, dpkg, golang, maven, pep440, rpm, semver

    for module in (apk, dpkg, golang, maven, pep440, rpm, semver):
        module._parse.cache_clear()
    maven._compare_cached.cache_clear()
