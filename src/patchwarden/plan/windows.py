"""Maintenance windows (RFC 5545 recurrence + duration + IANA time zone) and freeze periods.

A window's recurrence rule is expanded in the window's *local wall-clock time* with
python-dateutil's ``rrulestr`` and each occurrence is then placed in its time zone with
:mod:`zoneinfo`, so "every Saturday 02:00 Europe/Berlin" stays at 02:00 local across DST
changes (its UTC instant moves by an hour). Local times that do not exist (the spring-forward
gap) resolve PEP 495-style with ``fold=0``: 02:30 on a 02:00->03:00 night becomes 03:30
local; ambiguous times (the fall-back hour) take the first (summer-time) instant. The
duration is elapsed time: a 4 h window always lasts 4 real hours.

Without a ``DTSTART`` in the rule the recurrence is anchored at 2000-01-01 00:00 local time,
so the time of day comes from ``BYHOUR``/``BYMINUTE`` (default 00:00) and expansion is
deterministic (``rrulestr`` would otherwise anchor at the current time).

>>> w = Window(name="sat", rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration=dt.timedelta(hours=4),
...            timezone="Europe/Berlin")
>>> [s.isoformat() for s, _ in w.occurrences(dt.datetime(2025, 3, 20, tzinfo=dt.UTC),
...                                          dt.datetime(2025, 4, 6, tzinfo=dt.UTC))]
['2025-03-22T01:00:00+00:00', '2025-03-29T01:00:00+00:00', '2025-04-05T00:00:00+00:00']
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule as _rr
from dateutil.rrule import rrulestr

from patchwarden.model import Asset, Environment

ANCHOR = dt.datetime(2000, 1, 1)
"""Local-time anchor (DTSTART) of rules that give none."""

_DURATION = re.compile(r"(\d+)\s*([wdhm])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> dt.timedelta:
    """Parse ``"4h"``, ``"1h30m"``, ``"7d"``, ``"2w"`` (units w, d, h, m) into a timedelta.

    >>> parse_duration("1d 6h30m")
    datetime.timedelta(days=1, seconds=23400)
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    ValueError: invalid duration 'soon': use numbers with units w, d, h, m (e.g. '4h', '1h30m')
    """
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or _DURATION.sub("", compact).strip():
        raise ValueError(
            f"invalid duration {text!r}: use numbers with units w, d, h, m (e.g. '4h', '1h30m')"
        )
    out = dt.timedelta()
    for number, unit in parts:
        out += dt.timedelta(**{_UNITS[unit]: int(number)})
    return out


def parse_rrule(text: str) -> _rr.rrule | _rr.rruleset:
    """Parse an RFC 5545 ``RRULE`` (optionally with ``DTSTART:`` / ``RRULE:`` lines).

    Raises ``ValueError`` naming the rule when dateutil rejects it or it has a time zone
    (the window's ``timezone`` gives that).

    >>> parse_rrule("FREQ=DAILY;BYHOUR=3").after(dt.datetime(2024, 5, 1))
    datetime.datetime(2024, 5, 1, 3, 0)
    """
    if "TZID" in text.upper() or re.search(r"DTSTART:[0-9T]+Z", text.upper()):
        raise ValueError(f"invalid rrule {text!r}: give the time zone in 'timezone', not the rule")
    try:
        has_start = "DTSTART" in text.upper()
        rule = rrulestr(text, dtstart=None if has_start else ANCHOR, forceset=False)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"invalid rrule {text!r}: {exc}") from exc
    if not isinstance(rule, _rr.rrule | _rr.rruleset):  # pragma: no cover - rrulestr's contract
        raise ValueError(f"invalid rrule {text!r}")
    return rule


def parse_timezone(name: str) -> ZoneInfo:
    """An IANA time zone, or ``ValueError`` naming it.

    >>> parse_timezone("Mars/Olympus")
    Traceback (most recent call last):
    ...
    ValueError: unknown IANA time zone 'Mars/Olympus'
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class Selector:
    """Which assets something applies to; every given criterion must hold, none given = all.

    >>> Selector(environments=(Environment.DEV,)).matches(Asset(id="a"))
    False
    >>> Selector(names=("web-*",), tags=("linux",)).matches(Asset(id="web-1", tags=("linux",)))
    True
    """

    environments: tuple[Environment, ...] = ()
    """Asset environment is one of these."""
    services: tuple[str, ...] = ()
    """Asset service is one of these."""
    tags: tuple[str, ...] = ()
    """Asset has at least one of these tags."""
    names: tuple[str, ...] = ()
    """Asset id matches one of these shell-style patterns (``web-*``)."""

    def matches(self, asset: Asset) -> bool:
        """True when ``asset`` meets every criterion given."""
        if self.environments and asset.environment not in self.environments:
            return False
        if self.services and asset.service not in self.services:
            return False
        if self.tags and not set(self.tags) & set(asset.tags):
            return False
        return not self.names or any(fnmatch.fnmatchcase(asset.id, p) for p in self.names)


@dataclass(frozen=True, kw_only=True)
class Window:
    """A named, recurring maintenance window."""

    name: str
    """Name assets refer to (fleet file ``maintenance_window``)."""
    rrule: str
    """RFC 5545 recurrence rule in local time (``FREQ=WEEKLY;BYDAY=SA;BYHOUR=2``)."""
    duration: dt.timedelta
    """How long each occurrence lasts (elapsed time)."""
    timezone: str = "UTC"
    """IANA time zone the rule is expressed in."""
    selector: Selector | None = None
    """Assets without a named window get the first window whose selector matches them."""

    @cached_property
    def _rule(self) -> _rr.rrule | _rr.rruleset:
        return parse_rrule(self.rrule)

    @cached_property
    def _zone(self) -> ZoneInfo:
        return parse_timezone(self.timezone)

    def occurrences(
        self, start: dt.datetime, end: dt.datetime
    ) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Occurrences ``(begin, finish)`` in UTC that overlap ``[start, end)`` (aware datetimes).

        Occurrences already running at ``start`` are included (a window may be joined late
        by no one: the scheduler only uses occurrences that begin at or after its earliest
        time).
        """
        zone = self._zone
        # Local wall time range to expand; widen by a day on each side for offsets, and by
        # the duration before the start for occurrences already running.
        lo = start.astimezone(zone).replace(tzinfo=None) - self.duration - dt.timedelta(days=1)
        hi = end.astimezone(zone).replace(tzinfo=None) + dt.timedelta(days=1)
        for local in self._rule.between(lo, hi, inc=True):
            begin = local.replace(tzinfo=zone).astimezone(dt.UTC)
            finish = begin + self.duration
            if finish > start and begin < end:
                yield begin, finish


@dataclass(frozen=True, slots=True, kw_only=True)
class Freeze:
    """A period in which no change may be scheduled (for the assets its selector matches)."""

    name: str
    """Label shown in reasons."""
    start: dt.datetime
    """First instant of the freeze (aware)."""
    end: dt.datetime
    """First instant after the freeze (aware)."""
    selector: Selector | None = None
    """Assets it applies to; None = all."""
    allow_emergency: bool = False
    """Emergency changes (SLA breach) may still be proposed inside it."""

    def applies(self, asset: Asset) -> bool:
        """True when the freeze covers ``asset``."""
        return self.selector is None or self.selector.matches(asset)

    def overlaps(self, begin: dt.datetime, finish: dt.datetime) -> bool:
        """True when ``[begin, finish)`` intersects the freeze.

        >>> f = Freeze(name="x", start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        ...            end=dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
        >>> f.overlaps(dt.datetime(2024, 12, 31, 23, tzinfo=dt.UTC),
        ...            dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        False
        """
        return begin < self.end and self.start < finish
