"""CSAF 2.0 advisories (OASIS Common Security Advisory Framework), including ``csaf_vex``.

A CSAF document is one JSON file: ``document`` (``category``, ``tracking.id``,
``tracking.current_release_date``, ``publisher``), ``product_tree`` (nested ``branches``
ending in ``product`` objects, ``full_product_names`` and ``relationships``, each product
with a ``product_id`` and optionally a ``product_identification_helper`` giving a ``purl``
and/or a ``cpe``) and ``vulnerabilities[]`` (``cve``, ``ids``, ``product_status``,
``remediations``, ``scores``, ``threats``, ``flags``). See CSAF 2.0 sections 3.1 (product
tree), 3.2.3 (vulnerabilities) and 4.5 (the ``csaf_vex`` profile).

One :class:`~patchwarden.model.Advisory` is made per vulnerability of the document, id
``CSAF:<tracking id>:<CVE>`` (or ``:<index>`` without a CVE), aliases the CVE and every
``ids[].text``. Products are resolved to packages through their purl (a relationship product
uses its ``product_reference``'s purl); products known only by CPE cannot be matched to
installed packages and are listed in ``database_specific["cpe_only"]``. Per package
(ecosystem, name), from ``product_status`` (section 3.2.3.9):

* ``fixed`` / ``first_fixed`` versions give ``introduced 0, fixed <version>`` ranges (the
  vendor's fixed build, not the upstream release);
* ``known_affected`` versions are enumerated in ``versions``;
* ``under_investigation`` gives ``state = under_investigation``;
* ``known_not_affected`` of a versionless product gives ``state = not_affected``; of one
  version it is kept in ``database_specific["known_not_affected"]`` (an OSV entry cannot say
  "not this version" -- use ``vex import`` to suppress findings for it);
* remediations (section 3.2.3.12): ``vendor_fix`` keeps its details/URL, ``no_fix_planned``
  sets ``will_not_fix``, ``none_available`` sets ``no_fix``; ``workaround`` and
  ``mitigation`` are kept as given. The raw category is kept in
  ``database_specific["remediations"]``.

CVSS v3 scores (``scores[].cvss_v3.vectorString``) become ``CVSS_V3`` severity entries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from packageurl import PackageURL

from patchwarden.errors import FeedFormatError, InvalidPurl, Problem, UnknownEcosystem
from patchwarden.intel._common import (
    FieldError,
    load_json_file,
    parse_rfc3339,
    read_head,
    type_name,
)
from patchwarden.intel.interface import FeedInfo, FeedReader, FeedRecord
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
from patchwarden.purls import purl_to_package

PRODUCT_STATUSES = (
    "known_affected",
    "known_not_affected",
    "fixed",
    "first_fixed",
    "under_investigation",
    "first_affected",
    "last_affected",
    "recommended",
)
"""``product_status`` keys of CSAF 2.0 section 3.2.3.9."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Product:
    """One product of a CSAF product tree, resolved to what patchwarden can match."""

    product_id: str
    """The document-local ``product_id``."""
    name: str
    """The product's ``name``."""
    purl: str | None = None
    """The purl of the product (or of its ``product_reference`` for a relationship)."""
    cpe: str | None = None
    """The CPE from ``product_identification_helper`` (or the related platform's)."""


def _helper(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    helper = obj.get("product_identification_helper")
    if not isinstance(helper, dict):
        return None, None
    purl = helper.get("purl")
    cpe = helper.get("cpe")
    return (purl if isinstance(purl, str) else None, cpe if isinstance(cpe, str) else None)


def product_tree(tree: object) -> dict[str, Product]:
    """Every product of a CSAF ``product_tree`` by id (branches, full names, relationships).

    >>> tree = {"branches": [{"category": "vendor", "name": "Example", "branches": [
    ...     {"category": "product_version", "name": "1.0", "product": {
    ...         "product_id": "P1", "name": "lib 1.0",
    ...         "product_identification_helper": {"purl": "pkg:pypi/lib@1.0"}}}]}],
    ...     "relationships": [{"category": "default_component_of",
    ...         "product_reference": "P1", "relates_to_product_reference": "OS",
    ...         "full_product_name": {"product_id": "OS:P1", "name": "lib on OS"}}]}
    >>> sorted((p.product_id, p.purl) for p in product_tree(tree).values())
    [('OS:P1', 'pkg:pypi/lib@1.0'), ('P1', 'pkg:pypi/lib@1.0')]
    """
    out: dict[str, Product] = {}
    if not isinstance(tree, dict):
        return out
    stack: list[object] = list(tree.get("branches") or [])
    while stack:
        branch = stack.pop()
        if not isinstance(branch, dict):
            continue
        product = branch.get("product")
        if isinstance(product, dict) and isinstance(product.get("product_id"), str):
            purl, cpe = _helper(product)
            pid = product["product_id"]
            out[pid] = Product(
                product_id=pid, name=str(product.get("name", "")), purl=purl, cpe=cpe
            )
        stack.extend(branch.get("branches") or [])
    for product in tree.get("full_product_names") or []:
        if isinstance(product, dict) and isinstance(product.get("product_id"), str):
            purl, cpe = _helper(product)
            pid = product["product_id"]
            out[pid] = Product(
                product_id=pid, name=str(product.get("name", "")), purl=purl, cpe=cpe
            )
    for rel in tree.get("relationships") or []:
        if not isinstance(rel, dict):
            continue
        full = rel.get("full_product_name")
        if not isinstance(full, dict) or not isinstance(full.get("product_id"), str):
            continue
        component = out.get(str(rel.get("product_reference")))
        platform = out.get(str(rel.get("relates_to_product_reference")))
        purl, cpe = _helper(full)
        pid = full["product_id"]
        out[pid] = Product(
            product_id=pid,
            name=str(full.get("name", "")),
            purl=purl or (component.purl if component else None),
            cpe=cpe or (platform.cpe if platform else None),
        )
    return out


def purl_package(purl: str) -> tuple[str, str, str | None]:
    """``(ecosystem, name, version or None)`` of a purl that may lack a version.

    >>> purl_package("pkg:deb/ubuntu/curl?distro=ubuntu-24.04")
    ('Ubuntu:24.04', 'curl', None)
    >>> purl_package("pkg:pypi/Jinja2@2.10")
    ('PyPI', 'jinja2', '2.10')
    """
    try:
        parsed = PackageURL.from_string(purl)
    except ValueError as exc:
        raise InvalidPurl(f"invalid purl {purl!r}: {exc}") from exc
    if parsed.version:
        return purl_to_package(purl)
    with_version = PackageURL(
        type=parsed.type,
        namespace=parsed.namespace,
        name=parsed.name,
        version="0",
        qualifiers=parsed.qualifiers,
        subpath=parsed.subpath,
    ).to_string()
    ecosystem, name, _ = purl_to_package(with_version)
    return ecosystem, name, None


@dataclass(slots=True)
class _Package:
    affected: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    state: FixState | None = None
    not_affected: list[str] = field(default_factory=list)
    purls: set[str] = field(default_factory=set)
    remediations: list[dict[str, Any]] = field(default_factory=list)


_REMEDIATION_STATE = {
    "no_fix_planned": FixState.WILL_NOT_FIX,
    "none_available": FixState.NO_FIX,
}


class CsafReader(FeedReader):
    """Reads one CSAF 2.0 JSON document (``csaf_security_advisory`` or ``csaf_vex``)."""

    name: ClassVar[str] = "csaf"

    def read(self, path: Path) -> Iterator[FeedRecord]:
        """Yield FeedInfo, then one Advisory (or Problem) per vulnerability."""
        data = load_json_file(path)
        document = data.get("document") if isinstance(data, dict) else None
        if not isinstance(document, dict) or not str(document.get("csaf_version", "")).startswith(
            "2."
        ):
            raise FeedFormatError(
                f"{path} is not a csaf 2.0 document: expected an object with "
                "'document.csaf_version' 2.0"
            )
        source = str(path)
        tracking = document.get("tracking")
        if not isinstance(tracking, dict) or not isinstance(tracking.get("id"), str):
            raise FeedFormatError(f"{path}: field 'document.tracking.id' is missing")
        doc_id = tracking["id"]
        try:
            modified = parse_rfc3339(
                tracking.get("current_release_date"), "document.tracking.current_release_date"
            )
            published = (
                parse_rfc3339(
                    tracking["initial_release_date"], "document.tracking.initial_release_date"
                )
                if tracking.get("initial_release_date")
                else None
            )
        except FieldError as exc:
            raise FeedFormatError(f"{path}: field {exc.field!r}: {exc.reason}") from exc
        publisher = document.get("publisher") if isinstance(document.get("publisher"), dict) else {}
        yield FeedInfo(
            feed="csaf",
            version=f"{doc_id} {tracking.get('version', '')}".strip(),
            date=modified,
            path=source,
        )
        products = product_tree(data.get("product_tree"))
        vulns = data.get("vulnerabilities") or []
        if not isinstance(vulns, list):
            raise FeedFormatError(
                f"{path}: field 'vulnerabilities' must be a list, got {type_name(vulns)}"
            )
        for index, vuln in enumerate(vulns):
            try:
                yield self._vulnerability(
                    vuln,
                    index,
                    doc_id=doc_id,
                    category=str(document.get("category", "")),
                    publisher=str(publisher.get("name", "")) if publisher else "",
                    title=str(document.get("title", "")),
                    products=products,
                    modified=modified,
                    published=published,
                )
            except FieldError as exc:
                yield Problem(
                    source=source,
                    record=f"{doc_id} vulnerabilities[{index}]",
                    field=exc.field,
                    reason=exc.reason,
                )

    @staticmethod
    def _vulnerability(
        vuln: object,
        index: int,
        *,
        doc_id: str,
        category: str,
        publisher: str,
        title: str,
        products: Mapping[str, Product],
        modified: dt.datetime,
        published: dt.datetime | None,
    ) -> Advisory:
        base = f"vulnerabilities[{index}]"
        if not isinstance(vuln, dict):
            raise FieldError(base, f"expected an object, got {type_name(vuln)}")
        cve = vuln.get("cve")
        if cve is not None and not isinstance(cve, str):
            raise FieldError(f"{base}.cve", f"expected a string, got {type_name(cve)}")
        aliases: list[str] = [cve] if cve else []
        for i, item in enumerate(vuln.get("ids") or []):
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise FieldError(f"{base}.ids[{i}]", "expected an object with 'text'")
            aliases.append(item["text"])
        status = vuln.get("product_status") or {}
        if not isinstance(status, dict):
            raise FieldError(
                f"{base}.product_status", f"expected an object, got {type_name(status)}"
            )
        packages: dict[tuple[str, str], _Package] = {}
        cpe_only: set[str] = set()

        def resolve(pid: object, where: str) -> tuple[_Package, str | None] | None:
            if not isinstance(pid, str):
                raise FieldError(where, f"expected a product id string, got {type_name(pid)}")
            product = products.get(pid)
            if product is None:
                raise FieldError(where, f"product {pid!r} is not in the product tree")
            if product.purl is None:
                cpe_only.add(product.cpe or product.name or pid)
                return None
            try:
                ecosystem, name, version = purl_package(product.purl)
            except (InvalidPurl, UnknownEcosystem) as exc:
                raise FieldError(where, f"product {pid!r}: {exc}") from exc
            pkg = packages.setdefault((ecosystem, name), _Package())
            pkg.purls.add(product.purl)
            return pkg, version

        for key in PRODUCT_STATUSES:
            ids = status.get(key) or []
            if not isinstance(ids, list):
                raise FieldError(f"{base}.product_status.{key}", "expected a list of product ids")
            for i, pid in enumerate(ids):
                hit = resolve(pid, f"{base}.product_status.{key}[{i}]")
                if hit is None:
                    continue
                pkg, version = hit
                match key:
                    case "known_affected" | "first_affected" | "last_affected":
                        if version is None:
                            pkg.state = pkg.state or FixState.NO_FIX
                        else:
                            pkg.affected.append(version)
                    case "fixed" | "first_fixed":
                        if version is not None:
                            pkg.fixed.append(version)
                    case "under_investigation":
                        pkg.state = FixState.UNDER_INVESTIGATION
                        if version is not None:
                            pkg.affected.append(version)
                    case "known_not_affected":
                        if version is None:
                            pkg.state = FixState.NOT_AFFECTED
                        else:
                            pkg.not_affected.append(version)
        for i, rem in enumerate(vuln.get("remediations") or []):
            where = f"{base}.remediations[{i}]"
            if not isinstance(rem, dict) or not isinstance(rem.get("category"), str):
                raise FieldError(where, "expected an object with a 'category'")
            kept = {
                k: rem[k] for k in ("category", "details", "url") if isinstance(rem.get(k), str)
            }
            for j, pid in enumerate(rem.get("product_ids") or []):
                hit = resolve(pid, f"{where}.product_ids[{j}]")
                if hit is None:
                    continue
                pkg, _ = hit
                if kept not in pkg.remediations:
                    pkg.remediations.append(kept)
                state = _REMEDIATION_STATE.get(rem["category"])
                if state is not None and pkg.state is not FixState.NOT_AFFECTED:
                    pkg.state = state
        severity: list[SeverityScore] = []
        for i, score in enumerate(vuln.get("scores") or []):
            cvss = score.get("cvss_v3") if isinstance(score, dict) else None
            if cvss is None:
                continue
            vector = cvss.get("vectorString") if isinstance(cvss, dict) else None
            if not isinstance(vector, str):
                raise FieldError(f"{base}.scores[{i}].cvss_v3.vectorString", "missing vector")
            severity.append(SeverityScore(type="CVSS_V3", score=vector))
        affected: list[Affected] = []
        for (ecosystem, name), pkg in sorted(packages.items()):
            extra: dict[str, Any] = {"purls": sorted(pkg.purls)}
            if pkg.remediations:
                extra["remediations"] = pkg.remediations
            if pkg.not_affected:
                extra["known_not_affected"] = sorted(set(pkg.not_affected))
            ranges = tuple(
                AffectedRange(
                    type=RangeType.ECOSYSTEM,
                    events=(
                        RangeEvent(kind=EventKind.INTRODUCED, version="0"),
                        RangeEvent(kind=EventKind.FIXED, version=v),
                    ),
                )
                for v in sorted(set(pkg.fixed))
            )
            state = pkg.state
            if not ranges and not pkg.affected and state is None:
                continue  # only "recommended" or versioned not-affected: no exposure to match
            affected.append(
                Affected(
                    ecosystem=ecosystem,
                    name=name,
                    ranges=ranges,
                    versions=tuple(sorted(set(pkg.affected))),
                    state=state,
                    database_specific=extra,
                )
            )
        database_specific: dict[str, Any] = {"document": doc_id, "category": category}
        if publisher:
            database_specific["publisher"] = publisher
        if cpe_only:
            database_specific["cpe_only"] = sorted(cpe_only)
        vid = cve or str(index)
        summary = str(vuln.get("title") or title)
        return Advisory(
            id=VulnId(f"CSAF:{doc_id}:{vid}"),
            source="csaf",
            modified=modified,
            published=published,
            aliases=tuple(dict.fromkeys(aliases)),
            summary=summary,
            severity=tuple(severity),
            affected=tuple(affected),
            database_specific=database_specific,
        )

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """JSON with ``"csaf_version"`` near its start."""
        if path.is_dir():
            return False
        return b'"csaf_version"' in read_head(path, 8192)
