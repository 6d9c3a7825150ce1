"""Invariants of matching (hypothesis): monotone in advisories, fixed versions are never
affected by their range, deterministic and independent of key order."""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from patchwarden.match import AdvisoryIndex, SchemeLookup, match
from patchwarden.model import (
    Advisory,
    Affected,
    AffectedRange,
    EventKind,
    FixState,
    Match,
    PackageKey,
    RangeEvent,
    RangeType,
    VulnId,
)
from patchwarden.versions import scheme_for

SCHEMES: SchemeLookup = scheme_for
PEP440 = scheme_for("PyPI")
NAMES = ("alpha", "Beta.Pkg", "gamma")
MODIFIED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

# PEP 440 versions including pre-, post- and dev-releases and one that does not parse.
versions = st.one_of(
    st.builds(
        lambda a, b, c, suffix: f"{a}.{b}.{c}{suffix}",
        st.integers(0, 3),
        st.integers(0, 3),
        st.integers(0, 2),
        st.sampled_from(["", "", "", "rc1", "a1", ".post1", ".dev0"]),
    ),
    st.just("not-a-version"),
)
event_kinds = st.sampled_from(
    [EventKind.INTRODUCED, EventKind.INTRODUCED, EventKind.FIXED, EventKind.FIXED,
     EventKind.LAST_AFFECTED, EventKind.LIMIT]
)  # fmt: skip
events = st.builds(
    lambda kind, version: RangeEvent(kind=kind, version=version), event_kinds, versions
)
zero = st.just(RangeEvent(kind=EventKind.INTRODUCED, version="0"))
ranges = st.builds(
    lambda evs, typ: AffectedRange(type=typ, events=tuple(evs)),
    st.lists(st.one_of(events, zero), min_size=1, max_size=6),
    st.sampled_from([RangeType.ECOSYSTEM, RangeType.SEMVER, RangeType.GIT]),
)
states = st.sampled_from(
    [None, None, None, FixState.NO_FIX, FixState.WILL_NOT_FIX, FixState.NOT_AFFECTED]
)
affecteds = st.builds(
    lambda name, rngs, vers, state: Affected(
        ecosystem="PyPI", name=name, ranges=tuple(rngs), versions=tuple(vers), state=state
    ),
    st.sampled_from(NAMES),
    st.lists(ranges, max_size=3),
    st.lists(versions, max_size=3),
    states,
)


def advisories(prefix: str) -> st.SearchStrategy[list[Advisory]]:
    return st.lists(st.lists(affecteds, min_size=1, max_size=3), max_size=4).map(
        lambda groups: [
            Advisory(
                id=VulnId(f"{prefix}-{i}"), source="test", modified=MODIFIED, affected=tuple(g)
            )
            for i, g in enumerate(groups)
        ]
    )


keys = st.lists(
    st.builds(
        lambda name, version: PackageKey(ecosystem="PyPI", name=name, version=version),
        st.sampled_from([*NAMES, "beta-pkg", "GAMMA"]),
        versions,
    ),
    max_size=12,
)


def _pairs(result_matches: dict[PackageKey, tuple[Match, ...]]) -> set[tuple[PackageKey, str]]:
    return {(key, m.advisory_id) for key, found in result_matches.items() for m in found}


@settings(max_examples=150, deadline=None)
@given(base=advisories("A"), extra=advisories("B"), keys=keys)
def test_adding_an_advisory_never_removes_a_match(
    base: list[Advisory], extra: list[Advisory], keys: list[PackageKey]
) -> None:
    before = match(keys, AdvisoryIndex.build(base, schemes=SCHEMES))
    after = match(keys, AdvisoryIndex.build([*base, *extra], schemes=SCHEMES))
    assert _pairs(before.matches) <= _pairs(after.matches)
    for key, found in before.matches.items():
        assert set(found) <= set(after.matches[key])


@settings(max_examples=400, deadline=None)
@given(rng=ranges.filter(lambda r: r.type is not RangeType.GIT))
def test_a_fixed_version_is_never_affected_by_its_range(rng: AffectedRange) -> None:
    """A version equal to a ``fixed`` event is unaffected by that range -- unless the range
    itself re-introduces at that very version (an introduced event with an equal version,
    PYSEC-2023-72) or one of its own events does not parse (read in the worst case)."""
    scheme = PEP440
    parsed_ok = all(scheme.is_valid(e.version) or e.version in {"0"} or "*" in e.version
                    for e in rng.events)  # fmt: skip
    advisory = Advisory(
        id=VulnId("F-1"),
        source="test",
        modified=MODIFIED,
        affected=(Affected(ecosystem="PyPI", name="pkg", ranges=(rng,)),),
    )
    index = AdvisoryIndex.build([advisory], schemes=SCHEMES)
    for event in rng.events:
        if event.kind is not EventKind.FIXED or not scheme.is_valid(event.version):
            continue
        fixed = scheme.parse(event.version)
        reintroduced = any(
            e.kind is EventKind.INTRODUCED
            and scheme.is_valid(e.version)
            and e.version != "0"
            and scheme.parse(e.version) == fixed
            for e in rng.events
        )
        if reintroduced or not parsed_ok:
            continue
        key = PackageKey(ecosystem="PyPI", name="pkg", version=event.version)
        assert key not in match([key], index).matches, (rng, event)


@settings(max_examples=200, deadline=None)
@given(adv=advisories("A"), keys=keys, seed=st.randoms(use_true_random=False))
def test_matching_is_deterministic_and_independent_of_key_order(
    adv: list[Advisory], keys: list[PackageKey], seed: random.Random
) -> None:
    first = match(keys, AdvisoryIndex.build(adv, schemes=SCHEMES))
    shuffled = list(keys)
    seed.shuffle(shuffled)
    again = match(shuffled, AdvisoryIndex.build(list(reversed(adv)), schemes=SCHEMES))
    same_index = AdvisoryIndex.build(adv, schemes=SCHEMES)
    assert match(keys, same_index) == match(keys, same_index) == first
    assert first.matches == again.matches
    assert first.skipped == again.skipped
    assert set(first.matches) <= set(keys)
