"""Match package keys against advisories with the OSV schema 1.6 evaluation semantics.

The pipeline deduplicates what a whole fleet has installed into :class:`PackageKey` values
and hands them here together with an :class:`AdvisoryIndex` built once from every known
:class:`Advisory`. :func:`match` returns the :class:`Match` values per key plus every
:class:`Skip` it had to record on the way. The module is pure: no I/O, no printing.

Rules (OSV schema 1.6, section "Evaluation", pseudocode ``IsVulnerable``):

* an ``affected[]`` entry applies to a key when the base ecosystem is the same, the normalised
  names are equal (PEP 503 for PyPI, lower case for npm with the scope kept, see
  :func:`patchwarden.ecosystems.normalize_name`) and the release suffix applies
  (:func:`patchwarden.ecosystems.release_matches`: ``Debian:11`` never hits ``Debian:12``);
* a version is affected when it is one of ``affected[].versions`` (compared parsed-equal when
  both sides parse, else string-equal) or when any ``ECOSYSTEM``/``SEMVER`` range includes it;
  ``GIT`` ranges are never evaluated (commit graphs are out of scope);
* a range includes ``v`` when ``v`` is below some ``limit`` (or there is no limit, or a limit
  contains ``*``), and walking the events sorted by version -- ``introduced`` sets
  "vulnerable" when ``v >= introduced`` (``"0"`` sorts before everything), ``fixed`` clears it
  when ``v >= fixed``, ``last_affected`` clears it when ``v > last_affected`` -- ends
  vulnerable. The schema leaves the order of events with equal versions open; they are walked
  fixed, then introduced (the order that reports the version: a false negative is a breach),
  then last_affected. Real records need it: PYSEC-2023-72 (pyspark) has the pairs ``0..3.1.1`` and
  ``3.1.1..3.2.0``, and its enumerated ``versions`` list 3.1.1, 3.1.2 and 3.1.3 as affected.
  So a version equal to a ``fixed`` event is unaffected by that range unless an
  ``introduced`` event has the same version. ``last_affected`` walks after an ``introduced``
  of the same version (``introduced: X, last_affected: X`` affects exactly ``X``).
* ``SEMVER`` ranges are ordered with the ecosystem's own scheme (the installed version is in
  that scheme, and for the ecosystems that use SEMVER ranges -- npm, crates.io, Go -- it is
  SemVer precedence).

:attr:`Affected.state` (see :mod:`patchwarden.model`) overrides ranges:

* ``not_affected`` never matches and suppresses every other match of the same advisory for
  the same key (a vendor statement beats a broad range);
* ``no_fix`` / ``will_not_fix`` / ``under_investigation`` on an entry without evaluable ranges
  or versions matches every version with that state;
* otherwise ranges/versions decide; the state is ``fixed`` when a ``fixed`` event above the
  installed version exists in a matching range, else the entry's own non-fixed state, else
  ``no_fix``. ``fixed`` (or no state) without evaluable ranges/versions matches nothing.

Unparseable versions (a false negative is a breach, so every choice below errs towards
reporting). Each unparseable event is recorded as a :class:`Skip` with
:attr:`SkipReason.INVALID_ADVISORY_VERSION` and then read as the value that makes the installed
version affected, i.e. the range is evaluated for the worst case over every value the event
could have had:

* ``fixed`` / ``last_affected``: ignored (as if it were above the installed version), so the
  range stays open upwards -- an unparseable fix never makes a package look unaffected;
* ``introduced``: taken to equal the installed version, so the range includes every version
  below its limits;
* ``limit``: taken as ``*`` (no upper limit).

An unparseable installed version is a :class:`Skip` for that key
(:attr:`SkipReason.INVALID_INSTALLED_VERSION`); string-equal ``versions`` entries, state-only
entries and ranges that need no comparison (``introduced: "0"`` with no fix or limit) still
match it.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from patchwarden.ecosystems import Base, Ecosystem, normalize_name, release_matches
from patchwarden.errors import UnknownEcosystem
from patchwarden.model import (
    Advisory,
    Affected,
    EventKind,
    FixState,
    Match,
    PackageKey,
    RangeEvent,
    RangeType,
    VulnId,
)
from patchwarden.versions.interface import Comparable, VersionScheme

__all__ = [
    "AdvisoryIndex",
    "CompiledRange",
    "MatchResult",
    "Skip",
    "SkipReason",
    "compile_range",
    "match",
    "range_affects",
]

SchemeLookup = Callable[[Ecosystem], VersionScheme]
"""How the index finds the version scheme of an ecosystem (default:
:func:`patchwarden.versions.scheme_for`)."""

Parse = Callable[[str], Comparable]
"""A version parser: returns an ordered value or raises :class:`ValueError`."""

_NON_FIXED_STATES = frozenset(
    {FixState.NO_FIX, FixState.WILL_NOT_FIX, FixState.UNDER_INVESTIGATION}
)
_EVALUATED_RANGE_TYPES = frozenset({RangeType.ECOSYSTEM, RangeType.SEMVER})

# Walk order of events with equal versions (OSV 1.6 "Evaluation" leaves ties open): fixed,
# then introduced, so that an introduced event re-opens the range at its version
# (PYSEC-2023-72, see the module doc), then last_affected, which fires only above its version
# and so closes a range introduced at the same version for every later version.
_TIE_ORDER = {EventKind.FIXED: 0, EventKind.INTRODUCED: 1, EventKind.LAST_AFFECTED: 2}


class SkipReason(StrEnum):
    """Why part of the matching could not be done as the data asked."""

    INVALID_INSTALLED_VERSION = "invalid_installed_version"
    """The key's version does not parse in its ecosystem's scheme."""
    INVALID_ADVISORY_VERSION = "invalid_advisory_version"
    """A range event's version does not parse; it was read in the worst case (module doc)."""
    UNKNOWN_ECOSYSTEM = "unknown_ecosystem"
    """The ecosystem is unknown, or has no version scheme."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Skip:
    """Something matching skipped or read in the worst case, with its reason."""

    reason: SkipReason
    """The closed reason code."""
    message: str
    """What exactly was skipped and why (lower case, names the record and field)."""
    key: PackageKey | None = None
    """The package key concerned, when the skip is about a key."""
    advisory_id: VulnId | None = None
    """The advisory concerned, when the skip is about an advisory."""

    def sort_key(self) -> tuple[str, str, str, str, str, str]:
        """A total order used to report skips deterministically."""
        key = self.key
        return (
            self.reason.value,
            self.advisory_id or "",
            key.ecosystem if key else "",
            key.name if key else "",
            key.version if key else "",
            self.message,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchResult:
    """What :func:`match` found."""

    matches: dict[PackageKey, tuple[Match, ...]]
    """Matches per key (only keys with at least one match), each sorted by advisory id."""
    skipped: tuple[Skip, ...] = ()
    """Every skip recorded while matching, deduplicated and sorted."""


# --------------------------------------------------------------------------- ranges


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledRange:
    """One ``ECOSYSTEM``/``SEMVER`` range with its event versions parsed and sorted.

    Built by :func:`compile_range`; evaluating it parses nothing and costs a binary search.
    The OSV walk is precomputed: with events sorted by version and, among equal versions,
    fixed < introduced < last_affected, the events that fire for a version ``v`` are exactly
    a prefix of the sorted events (everything below ``v``, plus the fixed and introduced
    events at ``v``), so the walk's result is :attr:`states` at the prefix length.
    """

    introduced_zero: bool
    """An ``introduced: "0"`` event exists: the walk starts vulnerable."""
    versions: tuple[Comparable, ...]
    """Parsed event versions (not ``introduced: "0"``, not limits), sorted as described."""
    kinds: tuple[EventKind, ...]
    """The kind of each event in :attr:`versions`."""
    states: tuple[bool, ...]
    """``states[i]``: vulnerable after the first ``i`` events fired (``states[0]`` is the
    start)."""
    fixed: tuple[tuple[Comparable, str], ...]
    """Parsed ``fixed`` versions with their raw strings, ascending."""
    limits: tuple[Comparable, ...]
    """Parsed ``limit`` versions."""
    unlimited: bool
    """No limit applies: no limit event, a ``*`` limit, or an unparseable one."""
    unparsed_introduced: bool
    """An ``introduced`` event did not parse: read as equal to the installed version, which
    makes every version below the limits affected."""

    @property
    def needs_no_version(self) -> bool:
        """True when the range includes every version, so even an unparseable one."""
        has_upper = any(kind is not EventKind.INTRODUCED for kind in self.kinds)
        return (
            self.unlimited and not has_upper and (self.introduced_zero or self.unparsed_introduced)
        )

    def affects(self, version: Comparable | None) -> bool:
        """Whether the range includes ``version`` (``None``: the version did not parse).

        >>> from packaging.version import Version
        >>> rng, bad = compile_range(
        ...     [RangeEvent(kind=EventKind.INTRODUCED, version="1.0"),
        ...      RangeEvent(kind=EventKind.FIXED, version="1.2")], Version)
        >>> [rng.affects(Version(v)) for v in ("0.9", "1.0", "1.1", "1.2", "2.0")]
        [False, True, True, False, False]
        >>> rng.affects(None)
        False
        """
        if version is None:
            return self.needs_no_version
        if not self.unlimited and not any(version < limit for limit in self.limits):
            return False
        if self.unparsed_introduced:
            # Worst case: the unknown introduced equals the installed version; walked last
            # among equal versions (bar last_affected, which does not fire there), nothing
            # clears it again.
            return True
        versions = self.versions
        fired = bisect.bisect_right(versions, version)
        kinds = self.kinds
        # last_affected fires only strictly above its version; at equal versions those events
        # sort last, so dropping them keeps the fired events a prefix.
        while (
            fired and kinds[fired - 1] is EventKind.LAST_AFFECTED and versions[fired - 1] == version
        ):
            fired -= 1
        return self.states[fired]

    def fixed_above(self, version: Comparable) -> tuple[Comparable, str] | None:
        """The smallest ``fixed`` version strictly above ``version`` (parsed, raw), if any.

        >>> from packaging.version import Version
        >>> rng, _ = compile_range(
        ...     [RangeEvent(kind=EventKind.INTRODUCED, version="0"),
        ...      RangeEvent(kind=EventKind.FIXED, version="2.0"),
        ...      RangeEvent(kind=EventKind.INTRODUCED, version="3.0"),
        ...      RangeEvent(kind=EventKind.FIXED, version="3.1")], Version)
        >>> rng.fixed_above(Version("3.0"))[1]
        '3.1'
        >>> rng.fixed_above(Version("3.1")) is None
        True
        """
        fixed = self.fixed
        if not fixed or not fixed[-1][0] > version:
            return None
        low, high = 0, len(fixed) - 1
        while low < high:  # first fixed strictly above version
            mid = (low + high) // 2
            if fixed[mid][0] > version:
                high = mid
            else:
                low = mid + 1
        return fixed[low]


def compile_range(
    events: Iterable[RangeEvent], parse: Parse
) -> tuple[CompiledRange, tuple[tuple[int, RangeEvent, str], ...]]:
    """Parse and sort one range's events; return the range and the events that did not parse.

    Each unparseable event comes back with its position and the parser's message; the range
    reads it in the worst case (see the module docstring).

    >>> from packaging.version import Version
    >>> rng, bad = compile_range(
    ...     [RangeEvent(kind=EventKind.FIXED, version="not a version"),
    ...      RangeEvent(kind=EventKind.INTRODUCED, version="1.0")], Version)
    >>> [(position, event.kind.value, event.version) for position, event, _ in bad]
    [(0, 'fixed', 'not a version')]
    >>> rng.affects(Version("5.0"))
    True
    """
    introduced_zero = False
    unparsed_introduced = False
    unlimited = True
    any_limit = False
    limit_unbounded = False
    parsed_events: list[tuple[Comparable, int, EventKind]] = []
    fixed: list[tuple[Comparable, str]] = []
    limits: list[Comparable] = []
    bad: list[tuple[int, RangeEvent, str]] = []
    for position, event in enumerate(events):
        kind = event.kind
        raw = event.version
        if kind is EventKind.INTRODUCED and raw == "0":
            introduced_zero = True
            continue
        if kind is EventKind.LIMIT:
            any_limit = True
            if "*" in raw:  # OSV 1.6 "Special values": a limit containing "*" is infinity
                limit_unbounded = True
                continue
        try:
            parsed = parse(raw)
        except ValueError as exc:
            bad.append((position, event, str(exc) or f"cannot parse {raw!r}"))
            if kind is EventKind.INTRODUCED:
                unparsed_introduced = True
            elif kind is EventKind.LIMIT:
                limit_unbounded = True
            continue
        if kind is EventKind.LIMIT:
            limits.append(parsed)
            continue
        parsed_events.append((parsed, _TIE_ORDER[kind], kind))
        if kind is EventKind.FIXED:
            fixed.append((parsed, raw))
    parsed_events.sort(key=lambda item: (item[0], item[1]))
    fixed.sort(key=lambda item: item[0])
    unlimited = not any_limit or limit_unbounded
    states = [introduced_zero]
    for _, _, kind in parsed_events:
        states.append(kind is EventKind.INTRODUCED)
    return (
        CompiledRange(
            introduced_zero=introduced_zero,
            versions=tuple(version for version, _, _ in parsed_events),
            kinds=tuple(kind for _, _, kind in parsed_events),
            states=tuple(states),
            fixed=tuple(fixed),
            limits=tuple(limits),
            unlimited=unlimited,
            unparsed_introduced=unparsed_introduced,
        ),
        tuple(bad),
    )


def range_affects(version: str, events: Sequence[RangeEvent], parse: Parse) -> bool:
    """Whether one OSV range (its events) includes ``version``, parsing with ``parse``.

    A convenience over :func:`compile_range` for one-off checks.

    >>> from packaging.version import Version
    >>> E = EventKind
    >>> def ev(kind, version):
    ...     return RangeEvent(kind=kind, version=version)
    >>> range_affects("1.0.1", [ev(E.INTRODUCED, "0"), ev(E.FIXED, "1.0.2")], Version)
    True
    >>> range_affects("1.0.2", [ev(E.INTRODUCED, "0"), ev(E.FIXED, "1.0.2")], Version)
    False
    >>> range_affects("2.1.214", [ev(E.INTRODUCED, "0"), ev(E.LAST_AFFECTED, "2.1.214")], Version)
    True
    >>> range_affects("2.1.215", [ev(E.INTRODUCED, "0"), ev(E.LAST_AFFECTED, "2.1.214")], Version)
    False
    >>> range_affects("3.1", [ev(E.FIXED, "3.2"), ev(E.INTRODUCED, "3.0"),
    ...                       ev(E.FIXED, "1.2"), ev(E.INTRODUCED, "1.0")], Version)
    True
    >>> range_affects("2.0", [ev(E.INTRODUCED, "1.0"), ev(E.LIMIT, "2.0")], Version)
    False
    """
    compiled, _ = compile_range(events, parse)
    try:
        parsed: Comparable | None = parse(version)
    except ValueError:
        parsed = None
    return compiled.affects(parsed)


# --------------------------------------------------------------------------- index


@dataclass(frozen=True, slots=True)
class _CompiledAffected:
    """One affected entry made ready for evaluation in one scheme."""

    evaluable: bool
    raw_versions: frozenset[str]
    parsed_versions: frozenset[Comparable]
    parsed_hashes: frozenset[int]
    ranges: tuple[CompiledRange, ...]
    skips: tuple[Skip, ...]


class _Entry:
    """One indexed ``affected[]`` entry; compiled on first use and cached."""

    __slots__ = ("advisory", "affected", "compiled", "ecosystem", "position")

    def __init__(
        self, advisory: Advisory, affected: Affected, ecosystem: Ecosystem, position: int
    ) -> None:
        self.advisory = advisory
        self.affected = affected
        self.ecosystem = ecosystem
        self.position = position
        self.compiled: _CompiledAffected | None = None

    def compile(self, scheme: VersionScheme) -> _CompiledAffected:
        if self.compiled is None:
            self.compiled = _compile_affected(self.advisory, self.affected, self.position, scheme)
        return self.compiled


def _compile_affected(
    advisory: Advisory, affected: Affected, position: int, scheme: VersionScheme
) -> _CompiledAffected:
    parsed_versions: set[Comparable] = set()
    for raw in affected.versions:
        # An unparseable listed version is still compared string-equal: nothing is lost.
        with contextlib.suppress(ValueError):
            parsed_versions.add(scheme.parse(raw))
    ranges: list[CompiledRange] = []
    skips: list[Skip] = []
    for range_index, rng in enumerate(affected.ranges):
        if rng.type not in _EVALUATED_RANGE_TYPES:
            continue  # GIT: needs the commit graph (OSV 1.6 "affected[].ranges[].type")
        compiled, bad = compile_range(rng.events, scheme.parse)
        ranges.append(compiled)
        for event_index, event, reason in bad:
            skips.append(
                Skip(
                    reason=SkipReason.INVALID_ADVISORY_VERSION,
                    advisory_id=advisory.id,
                    message=(
                        f"advisory {advisory.id!r} field "
                        f"'affected[{position}].ranges[{range_index}].events[{event_index}]"
                        f".{event.kind.value}': {scheme.name} cannot parse "
                        f"{event.version!r} ({reason}); {_WORST_CASE[event.kind]}"
                    ),
                )
            )
    return _CompiledAffected(
        evaluable=bool(affected.versions or ranges),
        raw_versions=frozenset(affected.versions),
        parsed_versions=frozenset(parsed_versions),
        parsed_hashes=frozenset(hash(v) for v in parsed_versions),
        ranges=tuple(ranges),
        skips=tuple(skips),
    )


_WORST_CASE = {
    EventKind.INTRODUCED: "read as equal to the installed version",
    EventKind.FIXED: "ignored, the range stays open upwards",
    EventKind.LAST_AFFECTED: "ignored, the range stays open upwards",
    EventKind.LIMIT: "read as no limit",
}


def _default_schemes(ecosystem: Ecosystem) -> VersionScheme:
    from patchwarden.versions import scheme_for

    return scheme_for(ecosystem)


class AdvisoryIndex:
    """Advisories indexed by (base ecosystem, normalised package name).

    Build it once with :meth:`build`; building only parses ecosystem strings and normalises
    names, range versions are parsed lazily the first time an entry is evaluated (and cached).
    """

    __slots__ = (
        "_by_package",
        "_schemes",
        "_schemes_by_base",
        "advisory_count",
        "entry_count",
        "skipped",
        "superseded_count",
        "unknown_ecosystem_count",
        "withdrawn_count",
    )

    def __init__(
        self,
        by_package: Mapping[tuple[Base, str], Sequence[_Entry]],
        *,
        schemes: SchemeLookup,
        advisory_count: int,
        withdrawn_count: int,
        superseded_count: int,
        unknown_ecosystem_count: int,
        skipped: tuple[Skip, ...],
    ) -> None:
        """Use :meth:`build`."""
        self._by_package = {k: tuple(v) for k, v in by_package.items()}
        self._schemes = schemes
        self._schemes_by_base: dict[Base, VersionScheme | UnknownEcosystem] = {}
        self.advisory_count = advisory_count
        """Advisories indexed (after dropping withdrawn and superseded ones)."""
        self.entry_count = sum(len(v) for v in self._by_package.values())
        """``affected[]`` entries indexed."""
        self.withdrawn_count = withdrawn_count
        """Advisories skipped because they are withdrawn."""
        self.superseded_count = superseded_count
        """Advisories dropped because a record with the same id and a newer ``modified``
        was given."""
        self.unknown_ecosystem_count = unknown_ecosystem_count
        """``affected[]`` entries skipped because their ecosystem is unknown."""
        self.skipped = skipped
        """One :class:`Skip` per skipped ``affected[]`` entry (unknown ecosystem)."""

    @classmethod
    def build(
        cls, advisories: Iterable[Advisory], *, schemes: SchemeLookup | None = None
    ) -> AdvisoryIndex:
        """Index ``advisories``; ``schemes`` maps an ecosystem to its version scheme.

        When several advisories share an id the one with the newest ``modified`` wins (a newer
        record replaces an older one; on a tie the later one). Withdrawn advisories are
        dropped, and so are ``affected[]`` entries whose ecosystem is unknown (counted and
        recorded in :attr:`skipped`).
        """
        latest: dict[str, Advisory] = {}
        superseded = 0
        for advisory in advisories:
            previous = latest.get(advisory.id)
            if previous is not None:
                superseded += 1
                if previous.modified > advisory.modified:
                    continue
            latest[advisory.id] = advisory
        by_package: dict[tuple[Base, str], list[_Entry]] = {}
        withdrawn = unknown = kept = 0
        skipped: list[Skip] = []
        parse_ecosystem = _parse_ecosystem
        for advisory in latest.values():
            if advisory.withdrawn is not None:
                withdrawn += 1
                continue
            kept += 1
            for position, affected in enumerate(advisory.affected):
                if not affected.ecosystem and all(
                    rng.type is RangeType.GIT for rng in affected.ranges
                ):
                    continue  # OSV 1.6 package-less entry with GIT ranges only: never matched
                try:
                    ecosystem = parse_ecosystem(affected.ecosystem)
                except UnknownEcosystem as exc:
                    unknown += 1
                    skipped.append(
                        Skip(
                            reason=SkipReason.UNKNOWN_ECOSYSTEM,
                            advisory_id=advisory.id,
                            message=(
                                f"advisory {advisory.id!r} field "
                                f"'affected[{position}].package.ecosystem': {exc}; entry skipped"
                            ),
                        )
                    )
                    continue
                name = normalize_name(ecosystem, affected.name)
                entry = _Entry(advisory, affected, ecosystem, position)
                by_package.setdefault((ecosystem.base, name), []).append(entry)
        skipped.sort(key=Skip.sort_key)
        return cls(
            by_package,
            schemes=schemes or _default_schemes,
            advisory_count=kept,
            withdrawn_count=withdrawn,
            superseded_count=superseded,
            unknown_ecosystem_count=unknown,
            skipped=tuple(skipped),
        )

    def entries(self, base: Base, name: str) -> tuple[_Entry, ...]:
        """The indexed entries for one package (``name`` already normalised)."""
        return self._by_package.get((base, name), ())

    def scheme(self, ecosystem: Ecosystem) -> VersionScheme:
        """The version scheme of ``ecosystem``; raises :class:`UnknownEcosystem`."""
        found = self._schemes_by_base.get(ecosystem.base)
        if found is None:
            try:
                found = self._schemes(ecosystem)
            except UnknownEcosystem as exc:
                found = exc
            self._schemes_by_base[ecosystem.base] = found
        if isinstance(found, UnknownEcosystem):
            raise found
        return found


@functools.lru_cache(maxsize=4096)
def _parse_ecosystem(text: str) -> Ecosystem:
    return Ecosystem.parse(text)


@functools.lru_cache(maxsize=65536)
def _release_applies(advisory_ecosystem: Ecosystem, package_ecosystem: Ecosystem) -> bool:
    return release_matches(advisory_ecosystem, package_ecosystem)


# --------------------------------------------------------------------------- matching


@dataclass(slots=True)
class _Verdict:
    """What one affected entry says about one key."""

    state: FixState
    fixed: tuple[Comparable, str] | None = None


@dataclass(slots=True)
class _AdvisoryVerdicts:
    advisory: Advisory
    verdicts: list[_Verdict] = field(default_factory=list)
    not_affected: bool = False


_SUPPRESS = _Verdict(FixState.NOT_AFFECTED)


def _evaluate(
    entry: _Entry,
    scheme: VersionScheme,
    raw_version: str,
    version: Comparable | None,
    version_hash: int | None,
    skips: set[Skip],
) -> _Verdict | None:
    affected = entry.affected
    state = affected.state
    if state is FixState.NOT_AFFECTED:
        return _SUPPRESS
    compiled = entry.compiled or entry.compile(scheme)
    if not compiled.evaluable:
        # A vendor statement without versions ("<unfixed>", "<no-dsa>") covers every version.
        return _Verdict(state) if state in _NON_FIXED_STATES else None
    if compiled.skips:
        skips.update(compiled.skips)
    in_versions = raw_version in compiled.raw_versions or (
        version_hash in compiled.parsed_hashes and version in compiled.parsed_versions
    )
    matching = [rng for rng in compiled.ranges if rng.affects(version)]
    if not in_versions and not matching:
        return None
    fixed: tuple[Comparable, str] | None = None
    if version is not None:
        # Matched through `versions` only: any range's fix above it is still the best advice.
        for rng in matching or compiled.ranges:
            candidate = rng.fixed_above(version)
            if candidate is not None and (fixed is None or candidate[0] < fixed[0]):
                fixed = candidate
    if fixed is not None:
        return _Verdict(FixState.FIXED, fixed)
    return _Verdict(state if state in _NON_FIXED_STATES else FixState.NO_FIX)


def _combine(key: PackageKey, found: _AdvisoryVerdicts) -> Match:
    """One match from every matching entry of one advisory for one key.

    When every entry names a fix, the largest of them is reported (the version that leaves
    every entry's range); otherwise the first non-fixed state in the order no_fix,
    will_not_fix, under_investigation, and no fixed version.
    """
    advisory = found.advisory
    verdicts = found.verdicts
    upstream = advisory.upstream
    vulnerability_ids = tuple(VulnId(u) for u in upstream) if upstream else (advisory.id,)
    fixes = [v.fixed for v in verdicts if v.fixed is not None]
    if len(fixes) == len(verdicts):
        best = max(fixes, key=lambda item: item[0])
        state, fixed_version = FixState.FIXED, best[1]
    else:
        states = {v.state for v in verdicts}
        state = next(
            s
            for s in (FixState.NO_FIX, FixState.WILL_NOT_FIX, FixState.UNDER_INVESTIGATION)
            if s in states
        )
        fixed_version = None
    return Match(
        key=key,
        advisory_id=advisory.id,
        vulnerability_ids=vulnerability_ids,
        fix_state=state,
        fixed_version=fixed_version,
    )


def _match_key(key: PackageKey, index: AdvisoryIndex, skips: set[Skip]) -> tuple[Match, ...]:
    try:
        ecosystem = _parse_ecosystem(key.ecosystem)
    except UnknownEcosystem as exc:
        skips.add(
            Skip(
                reason=SkipReason.UNKNOWN_ECOSYSTEM,
                key=key,
                message=f"package {key.name!r} {key.version!r}: {exc}; not matched",
            )
        )
        return ()
    entries = index.entries(ecosystem.base, normalize_name(ecosystem, key.name))
    if not entries:
        return ()
    # An advisory without a release applies to every release of the same base (the index
    # already grouped by base), so only release-scoped entries need the check.
    applicable = [
        e
        for e in entries
        if e.ecosystem.release is None or _release_applies(e.ecosystem, ecosystem)
    ]
    if not applicable:
        return ()
    try:
        scheme = index.scheme(ecosystem)
    except UnknownEcosystem as exc:
        skips.add(
            Skip(
                reason=SkipReason.UNKNOWN_ECOSYSTEM,
                key=key,
                message=f"package {key.name!r} {key.version!r}: {exc}; not matched",
            )
        )
        return ()
    version: Comparable | None
    try:
        version = scheme.parse(key.version)
    except ValueError as exc:
        version = None
        skips.add(
            Skip(
                reason=SkipReason.INVALID_INSTALLED_VERSION,
                key=key,
                message=(
                    f"package {key.name!r} ({key.ecosystem}): {scheme.name} cannot parse "
                    f"installed version {key.version!r} ({exc}); only exact version lists "
                    f"and version-independent entries were matched"
                ),
            )
        )
    # Hashing a parsed version is not free; hash once, test the cheap int set first.
    version_hash = None if version is None else hash(version)
    by_advisory: dict[str, _AdvisoryVerdicts] = {}
    for entry in applicable:
        verdict = _evaluate(entry, scheme, key.version, version, version_hash, skips)
        if verdict is None:
            continue
        found = by_advisory.get(entry.advisory.id)
        if found is None:
            found = by_advisory[entry.advisory.id] = _AdvisoryVerdicts(entry.advisory)
        if verdict is _SUPPRESS:
            found.not_affected = True
        else:
            found.verdicts.append(verdict)
    return tuple(
        _combine(key, found)
        for advisory_id, found in sorted(by_advisory.items())
        if not found.not_affected and found.verdicts
    )


def match(keys: Iterable[PackageKey], index: AdvisoryIndex) -> MatchResult:
    """Match every distinct key against ``index`` (OSV 1.6 evaluation, see module doc).

    >>> import datetime as dt
    >>> from packaging.version import Version
    >>> from patchwarden.model import AffectedRange
    >>> from patchwarden.versions.interface import VersionScheme
    >>> class Pep440(VersionScheme):
    ...     name = "pep440"
    ...     def parse(self, version):
    ...         return Version(version)
    >>> advisory = Advisory(
    ...     id=VulnId("PYSEC-2021-76"), source="osv", modified=dt.datetime(2021, 3, 26),
    ...     affected=(Affected(ecosystem="PyPI", name="aiohttp", ranges=(AffectedRange(
    ...         type=RangeType.ECOSYSTEM, events=(
    ...             RangeEvent(kind=EventKind.INTRODUCED, version="0"),
    ...             RangeEvent(kind=EventKind.FIXED, version="3.7.4"))),)),))
    >>> index = AdvisoryIndex.build([advisory], schemes=lambda ecosystem: Pep440())
    >>> key = PackageKey(ecosystem="PyPI", name="AIOHTTP", version="3.7.3")
    >>> [(m.advisory_id, m.fix_state.value, m.fixed_version)
    ...  for m in match([key], index).matches[key]]
    [('PYSEC-2021-76', 'fixed', '3.7.4')]
    >>> match([PackageKey(ecosystem="PyPI", name="aiohttp", version="3.7.4")], index).matches
    {}
    """
    matches: dict[PackageKey, tuple[Match, ...]] = {}
    skips: set[Skip] = set()
    seen: set[PackageKey] = set()
    for key in keys:
        if key in seen:
            continue
        seen.add(key)
        found = _match_key(key, index, skips)
        if found:
            matches[key] = found
    return MatchResult(matches=matches, skipped=tuple(sorted(skips, key=Skip.sort_key)))
