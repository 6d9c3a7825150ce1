"""Target versions: the smallest fix (default) or the newest fix known in the same channel.

``plan_actions`` targets the smallest version that fixes every finding of a package. With
``target: newest_in_channel`` the target becomes the *newest fixed version that the advisory
data of the whole plan mentions* for the same ecosystem (release included, so a Debian 12
target never comes from Debian 11 data) and package, within the installed version's release
channel: the same ``major.minor`` for PyPI, npm, Go, crates, Maven and other dotted schemes;
for distributions (Debian, Ubuntu, Alpine, RPM) the ecosystem release *is* the channel.

Limitation: only versions named as a fix by some finding are known -- patchwarden has no
package index, so a newer bug-fix release that no advisory mentions is never chosen.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable
from enum import StrEnum

from patchwarden.errors import InvalidVersion, UnknownEcosystem
from patchwarden.prioritize import Action
from patchwarden.versions import scheme_for

_DISTROS = {"debian", "ubuntu", "alpine", "red hat", "rhel", "almalinux", "rocky linux", "suse"}
_NUM = re.compile(r"\d+")


class TargetMode(StrEnum):
    """How a target version is chosen (policy ``target:``)."""

    SMALLEST_FIX = "smallest_fix"
    NEWEST_IN_CHANNEL = "newest_in_channel"


def channel(ecosystem: str, version: str) -> tuple[int, ...] | None:
    """The release channel of ``version``: ``(major, minor)``; ``()`` for distro ecosystems.

    >>> channel("PyPI", "2.31.0"), channel("Debian:12", "3.0.11-1~deb12u2")
    ((2, 31), ())
    """
    if ecosystem.split(":", 1)[0].lower() in _DISTROS:
        return ()
    numbers = tuple(int(n) for n in _NUM.findall(version.lstrip("vV"))[:2])
    return numbers if numbers else None


def retarget(actions: Iterable[Action], mode: TargetMode) -> list[Action]:
    """Apply the target mode to ``actions`` (order kept; unchanged for ``smallest_fix``).

    A candidate replaces the target only when it sorts above it in the ecosystem's version
    scheme and lies in the installed version's channel; versions that do not parse are
    never candidates.
    """
    items = list(actions)
    if mode is TargetMode.SMALLEST_FIX:
        return items
    known: dict[tuple[str, str], set[str]] = defaultdict(set)
    for a in items:
        for s in a.closes:
            if s.finding.fixed_version:
                known[(a.ecosystem, a.package)].add(s.finding.fixed_version)
    out = []
    for a in items:
        try:
            scheme = scheme_for(a.ecosystem)
            best, best_key = a.target_version, scheme.parse(a.target_version)
        except (InvalidVersion, UnknownEcosystem):
            out.append(a)
            continue
        want = channel(a.ecosystem, a.installed_version)
        for candidate in sorted(known[(a.ecosystem, a.package)]):
            if want is None or channel(a.ecosystem, candidate) != want:
                continue
            try:
                key = scheme.parse(candidate)
            except InvalidVersion:
                continue
            if key > best_key:
                best, best_key = candidate, key
        out.append(a if best == a.target_version else dataclasses.replace(a, target_version=best))
    return out
