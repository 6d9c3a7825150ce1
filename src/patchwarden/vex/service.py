"""VEX use cases: import documents, withdraw them, suppress findings, export the fleet's status.

A finding covered by a stored ``not_affected`` statement is *suppressed*, not deleted: the
store keeps it, ``findings`` hides it unless ``--show-suppressed``, and
:func:`suppressions` says which statement (author, justification, document) hides it.
Withdrawing the statement (:func:`withdraw`, or re-importing the document without it) brings
the finding back. Imports and withdrawals are written to the audit trail with the findings
they suppress or release.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from patchwarden import audit
from patchwarden.errors import NotFound
from patchwarden.model import Finding, FixState
from patchwarden.store import FindingFilter, Store
from patchwarden.vex import (
    VexFormat,
    VexStatement,
    VexStatus,
    covers,
    parse_file,
    statement_ids,
)


@dataclass(slots=True, kw_only=True)
class VexImport:
    """What importing one VEX file did."""

    path: str
    document: str = ""
    statements: int = 0
    dropped: int = 0
    """Statements of an earlier import of the document that it no longer has (withdrawn)."""
    suppressed: list[int] = field(default_factory=list)
    """Open findings now suppressed by the document."""


def _encode(s: VexStatement) -> dict[str, Any]:
    raw = dataclasses.asdict(s)
    raw["timestamp"] = s.timestamp.isoformat() if s.timestamp else None
    return raw


def decode(record: dict[str, Any]) -> VexStatement:
    """A stored statement back as a :class:`VexStatement`."""
    raw = dict(record)
    raw["timestamp"] = dt.datetime.fromisoformat(raw["timestamp"]) if raw["timestamp"] else None
    raw["aliases"] = tuple(raw["aliases"])
    raw["products"] = tuple(raw["products"])
    raw["status"] = VexStatus(raw["status"])
    raw["format"] = VexFormat(raw["format"])
    return VexStatement(**raw)


def _audit(
    conn: Connection, action: str, subject: str, inputs: Any, details: dict[str, Any]
) -> None:
    # The audit trail has no VEX action yet; a not_affected statement is a standing
    # exception on findings, so it is recorded as one with the VEX details.
    kind = audit.Action.EXCEPTION_CREATE if action == "import" else audit.Action.EXCEPTION_EXPIRE
    audit.append(
        conn,
        actor=audit.default_actor(),
        action=kind,
        subject=subject,
        inputs=inputs,
        details={"vex": action, **details},
    )


def import_vex(
    store: Store, paths: Sequence[Path], *, now: dt.datetime | None = None
) -> list[VexImport]:
    """Parse and store every file (all or nothing per file; a bad file raises VexError)."""
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    out = []
    for path in paths:
        statements = parse_file(path)
        item = VexImport(path=str(path))
        document = statements[0].document if statements else path.name
        item.document = document
        rows = [
            {
                "key": s.key,
                "source": s.source,
                "vulnerability": s.vulnerability,
                "status": s.status.value,
                "record": _encode(s),
            }
            for s in statements
        ]
        with store.transaction() as conn:
            before = set(suppressions(store, _open(store), conn=conn))
            item.statements, item.dropped = store.replace_vex_document(conn, document, rows, now)
            after = suppressions(store, _open(store), conn=conn)
            item.suppressed = sorted(set(after) - before)
            released = sorted(before - set(after))
            _audit(
                conn,
                "import",
                f"vex:{document}",
                {"statements": rows},
                {
                    "file": str(path),
                    "statements": item.statements,
                    "dropped": item.dropped,
                    "suppressed": item.suppressed,
                    "released": released,
                    "authors": sorted({s.author for s in statements if s.author}),
                },
            )
        out.append(item)
    return out


def withdraw(store: Store, target: str) -> tuple[list[str], list[int]]:
    """Withdraw a document or one statement; return (statement keys removed, findings back)."""
    with store.transaction() as conn:
        before = set(suppressions(store, _open(store), conn=conn))
        rows = store.withdraw_vex(conn, target)
        if not rows:
            raise NotFound(f"no vex document or statement {target!r} (see `patchwarden vex list`)")
        after = set(suppressions(store, _open(store), conn=conn))
        released = sorted(before - after)
        _audit(
            conn,
            "withdraw",
            f"vex:{target}",
            {"keys": [r["key"] for r in rows]},
            {"withdrawn": [r["key"] for r in rows], "released": released},
        )
    return [r["key"] for r in rows], released


def _open(store: Store) -> list[Finding]:
    return store.findings(FindingFilter())


def statements(store: Store, conn: Connection | None = None) -> list[VexStatement]:
    """Every stored statement."""
    return [decode(r["record"]) for r in store.vex_statements(conn)]


def suppressions(
    store: Store, findings: Iterable[Finding], *, conn: Connection | None = None
) -> dict[int, VexStatement]:
    """Finding id -> the ``not_affected`` statement that suppresses it (first by key)."""
    stored = [s for s in statements(store, conn) if s.status is VexStatus.NOT_AFFECTED]
    if not stored:
        return {}
    if conn is None:
        with store.transaction() as own:
            canon = store.canonical_ids(own, statement_ids(stored))
    else:
        canon = store.canonical_ids(conn, statement_ids(stored))
    out: dict[int, VexStatement] = {}
    for finding in findings:
        for s in stored:
            ids = [canon[i] for i in (s.vulnerability, *s.aliases)]
            if covers(s, finding, ids):
                out[finding.id] = s
                break
    return out


# --------------------------------------------------------------------------- export


def _purl(f: Finding) -> str:
    """A purl for a finding's package (the ecosystem's purl type; distro as qualifier)."""
    from packageurl import PackageURL

    base, _, release = f.ecosystem.partition(":")
    qualifiers: dict[str, str] = {}
    ns: str | None
    match base:
        case "Debian" | "Ubuntu":
            kind, ns = "deb", base.lower()
            if release:
                qualifiers["distro"] = f"{base.lower()}-{release}"
        case "Alpine":
            kind, ns = "apk", "alpine"
            if release:
                qualifiers["distro"] = f"alpine-{release.removeprefix('v')}"
        case "PyPI":
            kind, ns = "pypi", None
        case "npm":
            kind, ns = "npm", None
        case _:
            kind, ns = "generic", None
    name = f.package
    if kind == "npm" and name.startswith("@") and "/" in name:
        ns, name = name.split("/", 1)
    return PackageURL(
        type=kind, namespace=ns, name=name, version=f.installed_version, qualifiers=qualifiers
    ).to_string()


def _fleet_status(store: Store) -> list[tuple[Finding, VexStatus, VexStatement | None]]:
    rows = store.findings(FindingFilter())
    hidden = suppressions(store, rows)
    out: list[tuple[Finding, VexStatus, VexStatement | None]] = []
    for f in rows:
        s = hidden.get(f.id)
        if s is not None:
            out.append((f, VexStatus.NOT_AFFECTED, s))
        elif f.fix_state is FixState.UNDER_INVESTIGATION:
            out.append((f, VexStatus.UNDER_INVESTIGATION, None))
        else:
            out.append((f, VexStatus.AFFECTED, None))
    return out


def export(store: Store, fmt: VexFormat, *, author: str, now: dt.datetime | None = None) -> str:
    """The fleet's current status (every open finding) as an OpenVEX or CycloneDX document."""
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    status = _fleet_status(store)
    stamp = now.isoformat().replace("+00:00", "Z")
    if fmt is VexFormat.OPENVEX:
        statements_out: dict[tuple[str, VexStatus, str], dict[str, Any]] = {}
        for f, st, s in status:
            key = (f.vulnerability, st, s.key if s else "")
            entry = statements_out.setdefault(
                key,
                {
                    "vulnerability": {"name": f.vulnerability, "aliases": list(f.aliases)},
                    "products": [],
                    "status": st.value,
                },
            )
            if s is not None:
                for k in ("justification", "impact_statement"):
                    if getattr(s, k):
                        entry[k] = getattr(s, k)
            if st is VexStatus.AFFECTED:
                entry["action_statement"] = (
                    f"update to {f.fixed_version}" if f.fixed_version else "no fix available yet"
                )
            purl = _purl(f)
            if {"@id": purl} not in entry["products"]:
                entry["products"].append({"@id": purl})
        doc: dict[str, Any] = {
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": f"urn:uuid:{uuid.uuid4()}",
            "author": author,
            "timestamp": stamp,
            "version": 1,
            "statements": list(statements_out.values()),
        }
        return json.dumps(doc, indent=2)
    if fmt is VexFormat.CYCLONEDX:
        components: dict[str, dict[str, Any]] = {}
        vulns: dict[tuple[str, VexStatus, str], dict[str, Any]] = {}
        cdx_state = {
            VexStatus.NOT_AFFECTED: "not_affected",
            VexStatus.AFFECTED: "exploitable",
            VexStatus.UNDER_INVESTIGATION: "in_triage",
            VexStatus.FIXED: "resolved",
        }
        for f, st, s in status:
            purl = _purl(f)
            components.setdefault(
                purl,
                {
                    "type": "library",
                    "bom-ref": purl,
                    "name": f.package,
                    "version": f.installed_version,
                    "purl": purl,
                },
            )
            key = (f.vulnerability, st, s.key if s else "")
            analysis: dict[str, Any] = {"state": cdx_state[st]}
            if s is not None and s.justification:
                analysis["justification"] = s.justification
            if s is not None and s.impact_statement:
                analysis["detail"] = s.impact_statement
            entry = vulns.setdefault(
                key,
                {
                    "id": f.vulnerability,
                    "references": [{"id": a, "source": {"name": "alias"}} for a in f.aliases],
                    "analysis": analysis,
                    "affects": [],
                },
            )
            if {"ref": purl} not in entry["affects"]:
                entry["affects"].append({"ref": purl})
        bom = {
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "serialNumber": f"urn:uuid:{uuid.uuid4()}",
            "version": 1,
            "metadata": {"timestamp": stamp, "authors": [{"name": author}]},
            "components": list(components.values()),
            "vulnerabilities": list(vulns.values()),
        }
        return json.dumps(bom, indent=2)
    raise ValueError(f"vex export supports openvex and cyclonedx, not {fmt.value!r}")
