"""Risk acceptance: a finding excepted by an owner, for a reason, until an expiry.

The CLI stores exceptions; this module only decides, at a time ``now``, which findings are
excepted and which are active. An exception whose ``expires`` is at or before ``now`` no
longer applies, so its finding re-opens (is active again) and the exception is reported as
expired.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from patchwarden.model import Finding


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskAcceptance:
    """One accepted risk (``patchwarden except FINDING --until --reason``)."""

    finding: int
    """The finding's store id."""
    owner: str
    """Who accepted the risk."""
    reason: str
    """Why."""
    expires: dt.datetime
    """When the acceptance ends (aware); the finding re-opens then."""
    created: dt.datetime | None = None
    """When it was recorded."""

    def active(self, now: dt.datetime) -> bool:
        """True while ``now`` is before the expiry.

        >>> e = RiskAcceptance(finding=1, owner="ops", reason="r",
        ...                    expires=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        >>> e.active(dt.datetime(2024, 12, 31, tzinfo=dt.UTC)), e.active(e.expires)
        (True, False)
        """
        return now < self.expires


@dataclass(frozen=True, slots=True, kw_only=True)
class ExceptionSplit:
    """Findings split by risk acceptance at one time."""

    active: tuple[Finding, ...]
    """Findings to remediate (no exception, or only expired ones)."""
    excepted: tuple[tuple[Finding, RiskAcceptance], ...]
    """Findings under a current exception (the one expiring last)."""
    expired: tuple[RiskAcceptance, ...]
    """Exceptions that have expired (their findings are active again)."""


def split_exceptions(
    findings: Iterable[Finding], exceptions: Iterable[RiskAcceptance], now: dt.datetime
) -> ExceptionSplit:
    """Split ``findings`` into excepted and active at ``now`` (input order kept)."""
    current: dict[int, RiskAcceptance] = {}
    expired = []
    for e in sorted(exceptions, key=lambda e: (e.finding, e.expires, e.owner, e.reason)):
        if e.active(now):
            current[e.finding] = e  # sorted by expiry: the latest one wins
        else:
            expired.append(e)
    active, excepted = [], []
    for f in findings:
        if f.id in current:
            excepted.append((f, current[f.id]))
        else:
            active.append(f)
    return ExceptionSplit(active=tuple(active), excepted=tuple(excepted), expired=tuple(expired))
