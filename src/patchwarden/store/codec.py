"""Advisory <-> JSON: the advisories table keeps each normalised record as JSON.

The round trip is exact (a test checks ``decode(encode(a)) == a`` on real records).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from patchwarden.model import (
    Advisory,
    Affected,
    AffectedRange,
    EventKind,
    FixState,
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
