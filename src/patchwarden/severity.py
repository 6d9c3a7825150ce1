"""Qualitative severity from the CVSS vectors advisories carry (via the ``cvss`` library).

The best available vector wins: CVSS v4.0 over v3.x over v2 (newer versions describe the
issue with more precision), and within one version the highest base score (the worst case
any source reports). Non-CVSS ratings (e.g. Ubuntu priorities) count only when no vector is
known. Rating bands are the CVSS v3.1/v4.0 specification's ("Qualitative Severity Rating
Scale"); CVSS v2 uses NVD's v2 bands (low < 4.0 <= medium < 7.0 <= high).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from patchwarden.model import Severity, SeverityScore

_VERSION_RANK = {"CVSS_V4": 3, "CVSS_V3": 2, "CVSS_V2": 1}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rated:
    """The severity chosen for a vulnerability and where it came from."""

    severity: Severity
    """Qualitative rating."""
    score: float | None
    """CVSS base score, when a vector gave one."""
    vector: str | None
    """The vector (or the source's rating text)."""


UNRATED = Rated(severity=Severity.UNKNOWN, score=None, vector=None)


def rating(score: float) -> Severity:
    """CVSS v3.1/v4.0 qualitative rating of a base score.

    >>> rating(9.8), rating(7.0), rating(4.0), rating(0.1), rating(0.0)
    (<Severity.CRITICAL: 'critical'>, <Severity.HIGH: 'high'>, <Severity.MEDIUM: 'medium'>, \
<Severity.LOW: 'low'>, <Severity.NONE: 'none'>)
    """
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.NONE


def base_score(entry: SeverityScore) -> float | None:
    """Base score of one CVSS severity entry; None when the type is not CVSS or it is malformed.

    >>> base_score(
    ...     SeverityScore(type="CVSS_V3", score="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    ... )
    9.8
    >>> base_score(SeverityScore(type="CVSS_V3", score="not a vector")) is None
    True
    """
    try:
        if entry.type == "CVSS_V4":
            return float(CVSS4(entry.score).base_score)
        if entry.type == "CVSS_V3":
            return float(CVSS3(entry.score).scores()[0])
        if entry.type == "CVSS_V2":
            return float(CVSS2(entry.score).scores()[0])
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


def best(entries: Iterable[SeverityScore]) -> Rated:
    """Pick the best-sourced severity among ``entries`` (see module docstring).

    >>> rated = best([
    ...     SeverityScore(type="CVSS_V2", score="AV:N/AC:L/Au:N/C:P/I:P/A:P"),
    ...     SeverityScore(type="CVSS_V3", score="CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H"),
    ... ])
    >>> rated.severity, rated.score
    (<Severity.MEDIUM: 'medium'>, 5.5)
    >>> best([]) == UNRATED
    True
    """
    chosen: tuple[int, float, str] | None = None
    fallback: Rated | None = None
    for entry in entries:
        rank = _VERSION_RANK.get(entry.type)
        if rank is None:
            text = entry.score.strip().lower()
            if fallback is None and text in {s.value for s in Severity}:
                fallback = Rated(severity=Severity(text), score=None, vector=entry.score)
            continue
        score = base_score(entry)
        if score is None:
            continue
        candidate = (rank, score, entry.score)
        if chosen is None or candidate[:2] > chosen[:2]:
            chosen = candidate
    if chosen is None:
        return fallback or UNRATED
    rank, score, vector = chosen
    if rank == 1:
        severity = (
            Severity.HIGH if score >= 7.0 else Severity.MEDIUM if score >= 4.0 else Severity.LOW
        )
    else:
        severity = rating(score)
    return Rated(severity=severity, score=score, vector=vector)
