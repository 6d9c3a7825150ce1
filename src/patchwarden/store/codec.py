"""Advisory <-> JSON: the advisories table keeps each normalised record as JSON; and one
key's match result <-> JSON for the match cache.

The round trips are exact (tests check ``decode(encode(x)) == x`` on real records).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from patchwarden.match import Skip, SkipReason
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
    SeverityScore,
    VulnId,
)


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def _parse_time(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def encode_advisory(advisory: Advisory) -> dict[str, Any]:
    """The JSON-ready form of ``advisory``."""
    return {
        "id": advisory.id,
        "source": advisory.source,
        "modified": _time(advisory.modified),
        "published": _time(advisory.published),
        "withdrawn": _time(advisory.withdrawn),
        "aliases": list(advisory.aliases),
        "related": list(advisory.related),
        "upstream": list(advisory.upstream),
        "summary": advisory.summary,
        "details": advisory.details,
        "severity": [{"type": s.type, "score": s.score} for s in advisory.severity],
        "affected": [
            {
                "ecosystem": a.ecosystem,
                "name": a.name,
                "purl": a.purl,
                "ranges": [
                    {
                        "type": r.type.value,
                        "repo": r.repo,
                        "events": [{e.kind.value: e.version} for e in r.events],
                    }
                    for r in a.ranges
                ],
                "versions": list(a.versions),
                "state": None if a.state is None else a.state.value,
                "ecosystem_specific": dict(a.ecosystem_specific),
                "database_specific": dict(a.database_specific),
            }
            for a in advisory.affected
        ],
        "references": list(advisory.references),
        "database_specific": dict(advisory.database_specific),
    }


def decode_advisory(data: dict[str, Any]) -> Advisory:
    """Rebuild an :class:`Advisory` from :func:`encode_advisory` output."""
    modified = _parse_time(data["modified"])
    assert modified is not None
    return Advisory(
        id=VulnId(data["id"]),
        source=data["source"],
        modified=modified,
        published=_parse_time(data.get("published")),
        withdrawn=_parse_time(data.get("withdrawn")),
        aliases=tuple(data.get("aliases", ())),
        related=tuple(data.get("related", ())),
        upstream=tuple(data.get("upstream", ())),
        summary=data.get("summary", ""),
        details=data.get("details", ""),
        severity=tuple(
            SeverityScore(type=s["type"], score=s["score"]) for s in data.get("severity", ())
        ),
        affected=tuple(
            Affected(
                ecosystem=a["ecosystem"],
                name=a["name"],
                purl=a.get("purl"),
                ranges=tuple(
                    AffectedRange(
                        type=RangeType(r["type"]),
                        repo=r.get("repo"),
                        events=tuple(
                            RangeEvent(kind=EventKind(k), version=v)
                            for e in r["events"]
                            for k, v in e.items()
                        ),
                    )
                    for r in a.get("ranges", ())
                ),
                versions=tuple(a.get("versions", ())),
                state=None if a.get("state") is None else FixState(a["state"]),
                ecosystem_specific=a.get("ecosystem_specific", {}),
                database_specific=a.get("database_specific", {}),
            )
            for a in data.get("affected", ())
        ),
        references=tuple(data.get("references", ())),
        database_specific=data.get("database_specific", {}),
    )


def encode_match_result(matches: tuple[Match, ...], skips: tuple[Skip, ...]) -> dict[str, Any]:
    """The JSON-ready form of what matching one key found (its matches and its skips).

    >>> key = PackageKey(ecosystem="PyPI", name="jinja2", version="2.10")
    >>> m = Match(key=key, advisory_id=VulnId("PYSEC-1"), vulnerability_ids=(VulnId("PYSEC-1"),),
    ...     fix_state=FixState.FIXED, fixed_version="2.11")
    >>> s = Skip(reason=SkipReason.INVALID_INSTALLED_VERSION, message="x", key=key)
    >>> decode_match_result(encode_match_result((m,), (s,)), key) == ((m,), (s,))
    True
    """
    return {
        "matches": [
            [m.advisory_id, list(m.vulnerability_ids), m.fix_state.value, m.fixed_version]
            for m in matches
        ],
        "skips": [[s.reason.value, s.message, s.key is not None, s.advisory_id] for s in skips],
    }


def decode_match_result(
    data: dict[str, Any], key: PackageKey
) -> tuple[tuple[Match, ...], tuple[Skip, ...]]:
    """Rebuild what :func:`encode_match_result` encoded for ``key``."""
    matches = tuple(
        Match(
            key=key,
            advisory_id=VulnId(advisory_id),
            vulnerability_ids=tuple(VulnId(v) for v in vids),
            fix_state=FixState(state),
            fixed_version=fixed,
        )
        for advisory_id, vids, state, fixed in data["matches"]
    )
    skips = tuple(
        Skip(
            reason=SkipReason(reason),
            message=message,
            key=key if has_key else None,
            advisory_id=None if advisory_id is None else VulnId(advisory_id),
        )
        for reason, message, has_key, advisory_id in data["skips"]
    )
    return matches, skips
