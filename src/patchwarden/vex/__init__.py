"""VEX (Vulnerability Exploitability eXchange): statements about findings, in and out.

Three input formats are parsed into plain :class:`VexStatement` values:

* **OpenVEX** (``@context`` ``https://openvex.dev/ns/...``): ``statements[]`` with
  ``vulnerability`` (``{"name", "aliases"}`` or a string), ``products[]`` (``@id`` purls,
  with ``subcomponents``), ``status``, ``justification``, ``impact_statement``,
  ``action_statement``; the document's ``author`` and ``@id``.
* **CycloneDX VEX** (``bomFormat: CycloneDX``): ``vulnerabilities[]`` with ``id``,
  ``references[].id`` (aliases), ``analysis.state`` / ``justification`` / ``detail`` and
  ``affects[].ref`` (a component ``bom-ref`` or a purl). States map ``not_affected`` and
  ``false_positive`` to not_affected, ``exploitable`` to affected, ``resolved`` /
  ``resolved_with_pedigree`` to fixed, ``in_triage`` to under_investigation.
* **CSAF VEX** (``document.category: csaf_vex``, CSAF 2.0 section 4.5): ``product_status``
  lists; a ``known_not_affected`` product needs a ``flags[]`` label or an ``impact`` threat
  (section 6.1.27.9).

A ``not_affected`` statement without a justification and without an impact statement is
refused with :class:`VexError` naming the file and the statement (OpenVEX spec, "Status
Justifications": one of the two is required). Matching (:func:`covers`) is by package URL --
type, namespace/distro release, name (the finding's package or one of its binaries) and,
when the purl has one, the exact version (``epoch`` qualifier included) -- and by
vulnerability id including aliases.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from patchwarden.ecosystems import Ecosystem, normalize_name, release_matches
from patchwarden.errors import InvalidPurl, PatchwardenError, UnknownEcosystem
from patchwarden.intel.csaf import product_tree, purl_package
from patchwarden.model import Finding

__all__ = [
    "VexError",
    "VexFormat",
    "VexStatement",
    "VexStatus",
    "covers",
    "parse_file",
]


class VexError(PatchwardenError):
    """A VEX document cannot be used: unreadable, wrong shape, or a statement is invalid."""


class VexStatus(StrEnum):
    """OpenVEX statuses (the other formats map onto them)."""

    NOT_AFFECTED = "not_affected"
    AFFECTED = "affected"
    FIXED = "fixed"
    UNDER_INVESTIGATION = "under_investigation"


class VexFormat(StrEnum):
    """Input/output document formats."""

    OPENVEX = "openvex"
    CYCLONEDX = "cyclonedx"
    CSAF = "csaf"


@dataclass(frozen=True, slots=True, kw_only=True)
class VexStatement:
    """One statement: the status of one vulnerability in some products."""

    document: str
    """The document id (OpenVEX ``@id``, CycloneDX ``serialNumber``, CSAF tracking id)."""
    key: str
    """Unique statement id: ``<document>#<index>``."""
    source: str
    """The file it was read from."""
    format: VexFormat
    """The document format."""
    vulnerability: str
    """The vulnerability id as the statement names it."""
    aliases: tuple[str, ...] = ()
    """Other ids the statement gives for it."""
    products: tuple[str, ...]
    """Package URLs the statement is about."""
    status: VexStatus
    """The status."""
    justification: str | None = None
    """Machine-readable justification (``vulnerable_code_not_present``, ...)."""
    impact_statement: str | None = None
    """Free-text why not affected."""
    action_statement: str | None = None
    """What to do (for ``affected``)."""
    author: str = ""
    """Who made the statement."""
    timestamp: dt.datetime | None = None
    """When."""


def _fail(path: Path, where: str, reason: str) -> VexError:
    return VexError(f"{path}: {where}: {reason}")


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _check_not_affected(path: Path, where: str, statement: VexStatement) -> VexStatement:
    if statement.status is VexStatus.NOT_AFFECTED and not (
        statement.justification or statement.impact_statement
    ):
        raise _fail(
            path,
            where,
            f"not_affected statement for {statement.vulnerability} has neither a "
            "justification nor an impact statement",
        )
    if not statement.products:
        raise _fail(path, where, f"statement for {statement.vulnerability} names no product")
    return statement


def parse_file(path: Path) -> list[VexStatement]:
    """Every statement of one OpenVEX, CycloneDX VEX or CSAF VEX file (format sniffed)."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise VexError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise VexError(f"{path} is not valid json: {exc}") from exc
    if not isinstance(data, dict):
        raise VexError(f"{path} is not a vex document: expected a json object")
    if str(data.get("@context", "")).startswith("https://openvex.dev/ns"):
        return _openvex(path, data)
    if data.get("bomFormat") == "CycloneDX":
        return _cyclonedx(path, data)
    document = data.get("document")
    if isinstance(document, dict) and "csaf_version" in document:
        return _csaf(path, data)
    raise VexError(
        f"{path} is not a vex document: expected openvex (@context), cyclonedx (bomFormat) "
        "or csaf (document.csaf_version)"
    )


def _openvex(path: Path, data: Mapping[str, Any]) -> list[VexStatement]:
    doc_id = str(data.get("@id") or path.name)
    author = str(data.get("author") or "")
    out = []
    statements = data.get("statements")
    if not isinstance(statements, list):
        raise _fail(path, "statements", "expected a list")
    for i, st in enumerate(statements):
        where = f"statement {i}"
        if not isinstance(st, dict):
            raise _fail(path, where, "expected an object")
        vuln = st.get("vulnerability")
        aliases: list[str] = []
        if isinstance(vuln, dict):
            name = vuln.get("name") or vuln.get("@id")
            aliases = [a for a in vuln.get("aliases") or [] if isinstance(a, str)]
        else:
            name = vuln
        if not isinstance(name, str) or not name:
            raise _fail(path, where, "field 'vulnerability' has no name")
        products: list[str] = []
        for product in st.get("products") or []:
            if isinstance(product, str):
                products.append(product)
                continue
            if not isinstance(product, dict):
                continue
            subs = [s.get("@id") for s in product.get("subcomponents") or [] if isinstance(s, dict)]
            ids: list[object] = [s for s in subs if isinstance(s, str)] or [product.get("@id")]
            products.extend(p for p in ids if isinstance(p, str))
        try:
            status = VexStatus(str(st.get("status")))
        except ValueError as exc:
            raise _fail(path, where, f"unknown status {st.get('status')!r}") from exc
        statement = VexStatement(
            document=doc_id,
            key=f"{doc_id}#{i}",
            source=str(path),
            format=VexFormat.OPENVEX,
            vulnerability=name,
            aliases=tuple(aliases),
            products=tuple(products),
            status=status,
            justification=st.get("justification") or None,
            impact_statement=st.get("impact_statement") or None,
            action_statement=st.get("action_statement") or None,
            author=author,
            timestamp=_time(st.get("timestamp") or data.get("timestamp")),
        )
        out.append(_check_not_affected(path, f"{where} ({name})", statement))
    return out


_CDX_STATE = {
    "not_affected": VexStatus.NOT_AFFECTED,
    "false_positive": VexStatus.NOT_AFFECTED,
    "exploitable": VexStatus.AFFECTED,
    "resolved": VexStatus.FIXED,
    "resolved_with_pedigree": VexStatus.FIXED,
    "in_triage": VexStatus.UNDER_INVESTIGATION,
}


def _cyclonedx(path: Path, data: Mapping[str, Any]) -> list[VexStatement]:
    doc_id = str(data.get("serialNumber") or path.name)
    raw_metadata = data.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    authors = metadata.get("authors") or []
    author = ", ".join(str(a.get("name")) for a in authors if isinstance(a, dict) and a.get("name"))
    refs: dict[str, str] = {}
    stack: list[Any] = list(data.get("components") or [])
    if isinstance(metadata.get("component"), dict):
        stack.append(metadata["component"])
    while stack:
        comp = stack.pop()
        if isinstance(comp, dict):
            if isinstance(comp.get("bom-ref"), str) and isinstance(comp.get("purl"), str):
                refs[comp["bom-ref"]] = comp["purl"]
            stack.extend(comp.get("components") or [])
    out = []
    for i, v in enumerate(data.get("vulnerabilities") or []):
        where = f"vulnerabilities[{i}]"
        if not isinstance(v, dict) or not isinstance(v.get("id"), str):
            raise _fail(path, where, "expected an object with an 'id'")
        analysis = v.get("analysis")
        if not isinstance(analysis, dict) or analysis.get("state") not in _CDX_STATE:
            raise _fail(
                path, f"{where} ({v['id']})", "field 'analysis.state' is missing or unknown"
            )
        products = []
        for a in v.get("affects") or []:
            ref = a.get("ref") if isinstance(a, dict) else None
            if not isinstance(ref, str):
                continue
            ref = ref.split("#", 1)[1] if ref.startswith("urn:cdx:") and "#" in ref else ref
            purl = refs.get(ref) or (ref if ref.startswith("pkg:") else None)
            if purl is None:
                raise _fail(path, f"{where} ({v['id']})", f"affects ref {ref!r} names no purl")
            products.append(purl)
        aliases = tuple(
            r["id"] for r in v.get("references") or [] if isinstance(r, dict) and r.get("id")
        )
        statement = VexStatement(
            document=doc_id,
            key=f"{doc_id}#{i}",
            source=str(path),
            format=VexFormat.CYCLONEDX,
            vulnerability=v["id"],
            aliases=aliases,
            products=tuple(products),
            status=_CDX_STATE[analysis["state"]],
            justification=analysis.get("justification") or None,
            impact_statement=analysis.get("detail") or None,
            action_statement=", ".join(analysis.get("response") or []) or None,
            author=author,
            timestamp=_time(analysis.get("lastUpdated") or metadata.get("timestamp")),
        )
        out.append(_check_not_affected(path, f"{where} ({v['id']})", statement))
    return out


_CSAF_STATUS = {
    "known_not_affected": VexStatus.NOT_AFFECTED,
    "known_affected": VexStatus.AFFECTED,
    "fixed": VexStatus.FIXED,
    "first_fixed": VexStatus.FIXED,
    "under_investigation": VexStatus.UNDER_INVESTIGATION,
}


def _csaf(path: Path, data: Mapping[str, Any]) -> list[VexStatement]:
    document = data["document"]
    tracking = document.get("tracking") if isinstance(document.get("tracking"), dict) else {}
    doc_id = str((tracking or {}).get("id") or path.name)
    publisher = document.get("publisher") if isinstance(document.get("publisher"), dict) else {}
    author = str((publisher or {}).get("name") or "")
    when = _time((tracking or {}).get("current_release_date"))
    products = product_tree(data.get("product_tree"))
    out: list[VexStatement] = []
    for i, v in enumerate(data.get("vulnerabilities") or []):
        if not isinstance(v, dict):
            raise _fail(path, f"vulnerabilities[{i}]", "expected an object")
        name = v.get("cve") or next(
            (x.get("text") for x in v.get("ids") or [] if isinstance(x, dict)), None
        )
        if not isinstance(name, str):
            raise _fail(path, f"vulnerabilities[{i}]", "has neither 'cve' nor 'ids'")
        aliases = tuple(
            x["text"] for x in v.get("ids") or [] if isinstance(x, dict) and x.get("text") != name
        )
        flags = {
            pid: f.get("label")
            for f in v.get("flags") or []
            if isinstance(f, dict)
            for pid in f.get("product_ids") or []
        }
        impacts = {
            pid: t.get("details")
            for t in v.get("threats") or []
            if isinstance(t, dict) and t.get("category") == "impact"
            for pid in t.get("product_ids") or []
        }
        actions = {
            pid: r.get("details")
            for r in v.get("remediations") or []
            if isinstance(r, dict)
            for pid in r.get("product_ids") or []
        }
        status = v.get("product_status") if isinstance(v.get("product_status"), dict) else {}
        for key, vex_status in _CSAF_STATUS.items():
            for pid in (status or {}).get(key) or []:
                where = f"vulnerabilities[{i}] ({name}) product_status.{key} {pid!r}"
                product = products.get(pid)
                if product is None:
                    raise _fail(path, where, "product is not in the product tree")
                if product.purl is None:
                    continue  # CPE-only platform: no package to match
                statement = VexStatement(
                    document=doc_id,
                    key=f"{doc_id}#{i}:{key}:{pid}",
                    source=str(path),
                    format=VexFormat.CSAF,
                    vulnerability=name,
                    aliases=aliases,
                    products=(product.purl,),
                    status=vex_status,
                    justification=flags.get(pid),
                    impact_statement=impacts.get(pid),
                    action_statement=actions.get(pid),
                    author=author,
                    timestamp=when,
                )
                out.append(_check_not_affected(path, where, statement))
    return out


# --------------------------------------------------------------------------- matching


def product_matches(purl: str, finding: Finding) -> bool:
    """Whether a statement's product purl names the finding's package.

    The purl's type and ``distro`` qualifier give the ecosystem and release (a purl without
    ``distro`` applies to every release), its name must be the finding's package or one of
    its binaries, and a version, when present, must equal the installed one.

    >>> import datetime as dt
    >>> from patchwarden.model import AssetId, FixState, Severity, VulnId
    >>> now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    >>> f = Finding(id=1, asset=AssetId("h"), ecosystem="Ubuntu:24.04", package="openssl",
    ...     installed_version="3.0.13-0ubuntu3", binaries=("libssl3t64", "openssl"),
    ...     vulnerability=VulnId("CVE-2024-0727"), aliases=(), advisories=(),
    ...     fix_state=FixState.FIXED, fixed_version=None, severity=Severity.LOW,
    ...     cvss_score=None, kev=False, epss=None, epss_percentile=None,
    ...     first_seen=now, last_seen=now, resolved_at=None)
    >>> product_matches("pkg:deb/ubuntu/libssl3t64@3.0.13-0ubuntu3?distro=ubuntu-24.04", f)
    True
    >>> product_matches("pkg:deb/ubuntu/openssl?distro=ubuntu-22.04", f)
    False
    >>> product_matches("pkg:deb/ubuntu/openssl@3.0.13-0ubuntu3.1", f)
    False
    """
    try:
        ecosystem, name, version = purl_package(purl)
        stated = Ecosystem.parse(ecosystem)
        actual = Ecosystem.parse(finding.ecosystem)
    except (InvalidPurl, UnknownEcosystem):
        return False
    if not release_matches(stated, actual):
        return False
    wanted = normalize_name(actual, name)
    names = {normalize_name(actual, n) for n in (finding.package, *finding.binaries)}
    if wanted not in names:
        return False
    return version is None or version == finding.installed_version


def covers(statement: VexStatement, finding: Finding, ids: Iterable[str]) -> bool:
    """Whether ``statement`` is about ``finding``.

    ``ids`` are the canonical ids of the statement's vulnerability and aliases (the store's
    alias groups); the finding matches when its vulnerability or one of its aliases is among
    them, and one of the statement's products names its package.
    """
    wanted = set(ids) | {statement.vulnerability, *statement.aliases}
    if finding.vulnerability not in wanted and not wanted.intersection(finding.aliases):
        return False
    return any(product_matches(p, finding) for p in statement.products)


def statement_ids(statements: Sequence[VexStatement]) -> set[str]:
    """Every vulnerability id the statements name (for one canonical-id lookup)."""
    return {i for s in statements for i in (s.vulnerability, *s.aliases)}
