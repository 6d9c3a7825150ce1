"""Ubuntu USN OVAL (``com.ubuntu.<codename>.usn.oval.xml``, Canonical "USN OVAL Generator").

An OVAL 5.11 file holds ``definitions`` (one ``class="patch"`` definition per USN/LSN, with
``metadata/advisory/cve[@cvss_vector, @cvss_score, @priority, @public]``) whose ``criteria``
name ``tests``; a ``linux:dpkginfo_test`` points at a ``dpkginfo_object`` (the binary package
names, usually through a ``constant_variable``) and a ``dpkginfo_state`` whose ``evr`` with
``operation="less than"`` is **Ubuntu's** fixed version (a backport such as
``3.0.13-0ubuntu3.1``, never the upstream release). The file is streamed with
:func:`xml.etree.ElementTree.iterparse`: definitions come first, so they are kept (small)
until the tests, objects, states and variables that follow resolve them.

Records: one :class:`~patchwarden.model.Advisory` per CVE of the file, id
``UBUNTU-<release>-<CVE>`` (``UBUNTU-24.04-CVE-2024-26130``), ``aliases = (CVE,)`` so that it
joins the CVE's alias group and its severity counts, ``severity`` = the CVE's
``cvss_vector`` (``CVSS_V3``) and Ubuntu ``priority`` (type ``Ubuntu``). A USN without CVEs
(a hardening update such as USN-6663-3) becomes ``UBUNTU-<release>-<USN id>``. Each gets one
:class:`~patchwarden.model.Affected` per (package name, fixed version) with ecosystem
``Ubuntu:<YY.MM>`` and the range ``introduced 0, fixed <Ubuntu version>``; the USN ids,
binaries and Ubuntu priority are kept in ``database_specific``.

Package names. USN OVAL tests *binary* packages (``libssl3t64``, ``openssl``), while
patchwarden keys Ubuntu findings by *source* package (as for Debian). The file has no
binary-to-source map, so each entry names every tested binary **and** the USN title's
subject when it is a package-like token (``USN-6673-3 -- python-cryptography
vulnerability`` gives ``python-cryptography``, whose binaries are ``python3-cryptography``).
A source package whose name is neither is missed; the reader records which names came from
the title in ``database_specific["names_from_title"]``. By Debian Python Policy 4.3 a
``python3-X`` binary comes from source ``python-X`` (``python3-django`` from
``python-django``), which is added too (``names_from_python3_binaries``).

Definitions that check the running kernel (``uname_test``/``variable_test`` of the Linux
kernel notices, ``file_test``/``textfilecontent54_test`` of the Livepatch notices) are not
package advisories and cannot be expressed as package ranges. They are skipped **by design**,
not reported as problems (the real noble file has 53 of them, and reporting them made every
import of it "partial"): they are counted in a second :class:`FeedInfo`
(``feed="ubuntu-oval-kernel-skipped"``, see :data:`KERNEL_SKIP_FEED`) whose ``version``
names the count and the notices. A definition that tests nothing, or tests something else, or
whose dpkg checks are broken, stays a :class:`~patchwarden.errors.Problem`.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel._common import mtime_utc, read_head
from patchwarden.intel.interface import FeedInfo, FeedReader, FeedRecord
from patchwarden.model import (
    Advisory,
    Affected,
    AffectedRange,
    EventKind,
    RangeEvent,
    RangeType,
    SeverityScore,
    VulnId,
)

UBUNTU_CODENAMES: dict[str, str] = {
    "trusty": "14.04",
    "xenial": "16.04",
    "bionic": "18.04",
    "focal": "20.04",
    "jammy": "22.04",
    "kinetic": "22.10",
    "lunar": "23.04",
    "mantic": "23.10",
    "noble": "24.04",
    "oracular": "24.10",
    "plucky": "25.04",
    "questing": "25.10",
}
"""Ubuntu release codenames to the ``YY.MM`` versions OSV uses in ``Ubuntu:<YY.MM>``."""

_NS_DEF = "{http://oval.mitre.org/XMLSchema/oval-definitions-5}"
_NS_LINUX = "{http://oval.mitre.org/XMLSchema/oval-definitions-5#linux}"
_NS_COMMON = "{http://oval.mitre.org/XMLSchema/oval-common-5}"
_DEF_ID = re.compile(r"^oval:com\.ubuntu\.(?P<codename>[a-z]+):def:\d+$")
_TITLE = re.compile(r"^(?P<id>[UL]SN-\d+-\d+)\s+--\s+(?P<subject>.*)$")
_SUBJECT = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9+.-]+)\s+(?:vulnerability|vulnerabilities|update|regression)$"
)
"""A title subject that is a Debian package name (Debian Policy 5.6.1: lower case letters,
digits, ``+ - .``) followed by the USN kind; display names ("OpenSSL update") do not match."""
_DPKG_VERSION = re.compile(r"^(?:\d+:)?[0-9][A-Za-z0-9.+~:-]*$")
KERNEL_SKIP_FEED = "ubuntu-oval-kernel-skipped"
"""The :class:`FeedInfo` ``feed`` that counts the running-kernel definitions skipped by design."""
_KERNEL_TEST_KINDS = frozenset(
    {"uname_test", "variable_test", "file_test", "textfilecontent54_test"}
)
"""OVAL test kinds of Canonical's kernel (uname + kernel-version variable) and Livepatch
(module file + livepatch status text) definitions: they check the running system, not dpkg."""


def release_of(codename: str) -> str:
    """The ``YY.MM`` release of an Ubuntu codename.

    >>> release_of("noble")
    '24.04'
    >>> release_of("warty")
    Traceback (most recent call last):
    ...
    patchwarden.errors.FeedFormatError: unknown ubuntu release codename 'warty'
    """
    try:
        return UBUNTU_CODENAMES[codename]
    except KeyError:
        raise FeedFormatError(f"unknown ubuntu release codename {codename!r}") from None


def fixed_version(evr: str) -> str:
    """Ubuntu's fixed version from an OVAL ``debian_evr_string`` (the explicit ``0:`` epoch
    that the generator always writes is dropped: dpkg compares it equal to no epoch).

    >>> fixed_version("0:3.0.13-0ubuntu3.1")
    '3.0.13-0ubuntu3.1'
    >>> fixed_version("1:9.18.28-0ubuntu0.24.04.1")
    '1:9.18.28-0ubuntu0.24.04.1'
    """
    return evr[2:] if evr.startswith("0:") else evr


@dataclass(slots=True)
class _Definition:
    """One patch definition, kept until the tests that resolve it have been read."""

    oval_id: str
    usn: str
    title: str
    subject_name: str | None
    issued: dt.datetime | None
    severity: str
    cves: dict[str, dict[str, str]] = field(default_factory=dict)
    test_refs: list[str] = field(default_factory=list)
    line: int | None = None


@dataclass(slots=True)
class _Tables:
    tests: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """dpkginfo test id -> (object id, state id)."""
    other_tests: dict[str, str] = field(default_factory=dict)
    """Any other test id -> its kind (``uname_test``, ``variable_test``)."""
    objects: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    """dpkginfo object id -> (variable id, literal name)."""
    states: dict[str, tuple[str, str]] = field(default_factory=dict)
    """dpkginfo state id -> (operation, evr)."""
    variables: dict[str, tuple[list[str], str]] = field(default_factory=dict)
    """constant variable id -> (values, comment)."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_issued(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _definition(elem: ET.Element) -> _Definition | Problem | None:
    oval_id = elem.get("id", "")
    meta = elem.find(f"{_NS_DEF}metadata")
    title = (meta.findtext(f"{_NS_DEF}title") if meta is not None else None) or ""
    m = _TITLE.match(title.strip())
    usn = m["id"] if m else ""
    if meta is not None:
        for ref in meta.findall(f"{_NS_DEF}reference"):
            if ref.get("source") == "USN" and ref.get("ref_id"):
                usn = ref.get("ref_id", usn)
    if not usn:
        return None  # not a notice (never seen in Canonical's files)
    subject = m["subject"].strip() if m else ""
    sm = _SUBJECT.match(subject)
    advisory = meta.find(f"{_NS_DEF}advisory") if meta is not None else None
    issued = None
    severity = ""
    cves: dict[str, dict[str, str]] = {}
    if meta is not None:
        for ref in meta.findall(f"{_NS_DEF}reference"):
            if ref.get("source") == "CVE" and ref.get("ref_id"):
                cves.setdefault(ref.get("ref_id", ""), {})
    if advisory is not None:
        issued_el = advisory.find(f"{_NS_DEF}issued")
        issued = _parse_issued(issued_el.get("date") if issued_el is not None else None)
        severity = (advisory.findtext(f"{_NS_DEF}severity") or "").strip()
        for cve in advisory.findall(f"{_NS_DEF}cve"):
            cve_id = (cve.text or "").strip()
            if cve_id:
                cves[cve_id] = dict(cve.attrib)
    refs = [c.get("test_ref", "") for c in elem.iter(f"{_NS_DEF}criterion") if c.get("test_ref")]
    return _Definition(
        oval_id=oval_id,
        usn=usn,
        title=title.strip(),
        subject_name=sm["name"] if sm else None,
        issued=issued,
        severity=severity,
        cves=cves,
        test_refs=refs,
    )


class UbuntuOvalReader(FeedReader):
    """Reads one Canonical USN OVAL file (``com.ubuntu.<codename>.usn.oval.xml``)."""

    name: ClassVar[str] = "ubuntu-oval"

    def read(self, path: Path) -> Iterator[FeedRecord]:
        """Yield FeedInfo (and the kernel-skip FeedInfo), one Advisory per CVE (or CVE-less USN),
        then Problems."""
        source = str(path)
        definitions: list[_Definition] = []
        tables = _Tables()
        problems: list[Problem] = []
        codename: str | None = None
        timestamp: str | None = None
        root_seen = False
        try:
            for event, elem in ET.iterparse(str(path), events=("start", "end")):
                tag = elem.tag
                if event == "start":
                    if not root_seen:
                        root_seen = True
                        if _local(tag) != "oval_definitions":
                            raise FeedFormatError(
                                f"{path} is not an oval file: root element is "
                                f"{_local(tag)!r}, expected 'oval_definitions'"
                            )
                    continue
                local = _local(tag)
                if tag == f"{_NS_COMMON}timestamp":
                    timestamp = (elem.text or "").strip()
                elif tag == f"{_NS_DEF}definition":
                    dm = _DEF_ID.match(elem.get("id", ""))
                    if dm and codename is None:
                        codename = dm["codename"]
                    if elem.get("class") == "patch":
                        parsed = _definition(elem)
                        if isinstance(parsed, _Definition):
                            definitions.append(parsed)
                    elem.clear()
                elif tag == f"{_NS_LINUX}dpkginfo_test":
                    obj = elem.find(f"{_NS_LINUX}object")
                    ste = elem.find(f"{_NS_LINUX}state")
                    tables.tests[elem.get("id", "")] = (
                        obj.get("object_ref", "") if obj is not None else "",
                        ste.get("state_ref") if ste is not None else None,
                    )
                    elem.clear()
                elif local.endswith("_test") and elem.get("id"):
                    tables.other_tests[elem.get("id", "")] = local
                    elem.clear()
                elif tag == f"{_NS_LINUX}dpkginfo_object":
                    name = elem.find(f"{_NS_LINUX}name")
                    if name is not None:
                        tables.objects[elem.get("id", "")] = (
                            name.get("var_ref"),
                            (name.text or "").strip() or None,
                        )
                    elem.clear()
                elif tag == f"{_NS_LINUX}dpkginfo_state":
                    evr = elem.find(f"{_NS_LINUX}evr")
                    if evr is not None:
                        tables.states[elem.get("id", "")] = (
                            evr.get("operation", "equals"),
                            (evr.text or "").strip(),
                        )
                    elem.clear()
                elif tag == f"{_NS_DEF}constant_variable":
                    values = [(v.text or "").strip() for v in elem.findall(f"{_NS_DEF}value")]
                    tables.variables[elem.get("id", "")] = (values, elem.get("comment", ""))
                    elem.clear()
        except ET.ParseError as exc:
            raise FeedFormatError(f"{path} is not well-formed xml: {exc}") from exc
        except OSError as exc:
            raise FeedFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if codename is None:
            raise FeedFormatError(
                f"{path} is not a ubuntu usn oval file: no definition id like "
                "'oval:com.ubuntu.<codename>:def:<n>'"
            )
        release = release_of(codename)
        ecosystem = f"Ubuntu:{release}"
        generated = _parse_generator_time(timestamp)
        yield FeedInfo(
            feed="ubuntu-oval",
            version=f"{codename} {timestamp or ''}".strip(),
            date=generated or mtime_utc(path),
            path=source,
        )
        fallback = generated or mtime_utc(path)
        kernel_skipped: list[str] = []
        # Per vulnerability: affected (name, fixed) -> entry data, USNs, attributes.
        per_vuln: dict[str, _Vuln] = {}
        for d in definitions:
            fixes, bad = self._fixes(d, tables)
            for reason in bad:
                problems.append(
                    Problem(source=source, record=d.usn, field="criteria", reason=reason)
                )
            if not fixes:
                kinds = {tables.other_tests.get(r, "") for r in d.test_refs}
                if bad:
                    continue  # already reported above, per broken test
                if kinds and kinds <= _KERNEL_TEST_KINDS:
                    kernel_skipped.append(d.usn)
                else:
                    problems.append(
                        Problem(
                            source=source,
                            record=d.usn,
                            field="criteria",
                            reason=(
                                "no dpkg version check to match (the definition tests "
                                f"{', '.join(sorted(kinds)) or 'nothing'}); skipped"
                            ),
                        )
                    )
                continue
            for vid in d.cves or {d.usn: {}}:
                vuln = per_vuln.setdefault(vid, _Vuln())
                vuln.usns.append(d.usn)
                vuln.attrs.update(d.cves.get(vid, {}))
                if d.issued is not None:
                    vuln.issued.append(d.issued)
                vuln.titles.append(d.title)
                for (name, version), binaries in fixes.items():
                    entry = vuln.fixes.setdefault((name, version), set())
                    entry.update(binaries)
                    if name.startswith("python3-"):
                        vuln.python_names.add("python-" + name.removeprefix("python3-"))
                if d.subject_name:
                    vuln.title_names.add(d.subject_name)
        if kernel_skipped:
            yield FeedInfo(
                feed=KERNEL_SKIP_FEED,
                version=(
                    f"{len(kernel_skipped)} running-kernel/livepatch definitions skipped by "
                    f"design: {', '.join(sorted(kernel_skipped))}"
                ),
                date=generated or mtime_utc(path),
                path=source,
            )
        for vid, vuln in sorted(per_vuln.items()):
            yield self._advisory(vid, vuln, release, ecosystem, fallback)
        yield from problems

    @staticmethod
    def _fixes(
        d: _Definition, tables: _Tables
    ) -> tuple[dict[tuple[str, str], set[str]], list[str]]:
        """(name, Ubuntu fixed version) -> binaries, and the reasons of unusable tests."""
        out: dict[tuple[str, str], set[str]] = {}
        bad: list[str] = []
        for ref in d.test_refs:
            test = tables.tests.get(ref)
            if test is None:
                if ref not in tables.other_tests:
                    bad.append(f"test {ref!r} is not defined in the file")
                continue
            object_ref, state_ref = test
            obj = tables.objects.get(object_ref)
            if obj is None:
                bad.append(f"test {ref!r}: object {object_ref!r} is not defined")
                continue
            var_ref, literal = obj
            if var_ref is not None:
                var = tables.variables.get(var_ref)
                if var is None:
                    bad.append(f"object {object_ref!r}: variable {var_ref!r} is not defined")
                    continue
                names = [n for n in var[0] if n]
            else:
                names = [literal] if literal else []
            if not names:
                bad.append(f"object {object_ref!r} names no package")
                continue
            if state_ref is None:
                bad.append(f"test {ref!r} has no version state (existence-only check)")
                continue
            state = tables.states.get(state_ref)
            if state is None:
                bad.append(f"test {ref!r}: state {state_ref!r} is not defined")
                continue
            operation, evr = state
            if operation != "less than":
                bad.append(f"state {state_ref!r}: operation {operation!r}, expected 'less than'")
                continue
            if not _DPKG_VERSION.match(evr):
                bad.append(f"state {state_ref!r}: not a debian version: {evr!r}")
                continue
            version = fixed_version(evr)
            for name in names:
                out.setdefault((name, version), set()).add(name)
        return out, bad

    @staticmethod
    def _advisory(
        vid: str, vuln: _Vuln, release: str, ecosystem: str, fallback: dt.datetime
    ) -> Advisory:
        attrs = vuln.attrs
        severity: list[SeverityScore] = []
        vector = attrs.get("cvss_vector")
        if vector and vector.startswith("CVSS:3"):
            severity.append(SeverityScore(type="CVSS_V3", score=vector))
        priority = attrs.get("priority")
        if priority:
            severity.append(SeverityScore(type="Ubuntu", score=priority))
        binaries_by_fix: dict[str, set[str]] = {}
        for (_name, version), binaries in vuln.fixes.items():
            binaries_by_fix.setdefault(version, set()).update(binaries)
        affected: list[Affected] = []
        seen: set[tuple[str, str]] = set()
        for name, version in sorted(vuln.fixes):
            seen.add((name, version))
            affected.append(_affected(ecosystem, name, version, sorted(binaries_by_fix[version])))
        # The title's package name, and python-X for a python3-X binary (Debian Python
        # Policy 4.3: source python-X builds python3-X), for every fixed version.
        for title_name in sorted(vuln.title_names | vuln.python_names):
            for version in sorted(binaries_by_fix):
                if (title_name, version) not in seen:
                    seen.add((title_name, version))
                    affected.append(
                        _affected(
                            ecosystem,
                            title_name,
                            version,
                            sorted(binaries_by_fix[version]),
                            from_title=title_name in vuln.title_names,
                        )
                    )
        published = _parse_public(attrs.get("public"))
        modified = max(vuln.issued) if vuln.issued else fallback
        is_cve = vid.startswith("CVE-")
        database_specific: dict[str, Any] = {"usns": sorted(set(vuln.usns))}
        for key in ("priority", "cvss_score", "cvss_severity"):
            if attrs.get(key):
                database_specific[key] = attrs[key]
        if vuln.title_names:
            database_specific["names_from_title"] = sorted(vuln.title_names)
        if vuln.python_names:
            database_specific["names_from_python3_binaries"] = sorted(vuln.python_names)
        references = [f"https://ubuntu.com/security/notices/{u}" for u in sorted(set(vuln.usns))]
        if is_cve:
            references.insert(0, f"https://ubuntu.com/security/{vid}")
        return Advisory(
            id=VulnId(f"UBUNTU-{release}-{vid}"),
            source="ubuntu",
            modified=modified,
            published=published or (min(vuln.issued) if vuln.issued else None),
            aliases=(vid,) if is_cve else (),
            summary=vuln.titles[0] if vuln.titles else "",
            severity=tuple(severity),
            affected=tuple(affected),
            references=tuple(references),
            database_specific=database_specific,
        )

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """An XML file whose head has ``oval_definitions`` and a ``com.ubuntu`` id."""
        if path.is_dir():
            return False
        head = read_head(path, 65536)
        return b"<oval_definitions" in head and b"oval:com.ubuntu." in head


@dataclass(slots=True)
class _Vuln:
    usns: list[str] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    issued: list[dt.datetime] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    fixes: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    title_names: set[str] = field(default_factory=set)
    python_names: set[str] = field(default_factory=set)


def _affected(
    ecosystem: str, name: str, version: str, binaries: list[str], *, from_title: bool = False
) -> Affected:
    extra: dict[str, Any] = {"binaries": binaries}
    if from_title:
        extra["name_from"] = "usn-title"
    elif name not in binaries:
        extra["name_from"] = "python3-binary"
    return Affected(
        ecosystem=ecosystem,
        name=name,
        ranges=(
            AffectedRange(
                type=RangeType.ECOSYSTEM,
                events=(
                    RangeEvent(kind=EventKind.INTRODUCED, version="0"),
                    RangeEvent(kind=EventKind.FIXED, version=version),
                ),
            ),
        ),
        database_specific=extra,
    )


def _parse_public(text: str | None) -> dt.datetime | None:
    """``public="20240221"`` (the CVE's publication day) as UTC midnight."""
    if not text or not re.fullmatch(r"\d{8}", text):
        return None
    try:
        return dt.datetime.strptime(text, "%Y%m%d").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _parse_generator_time(text: str | None) -> dt.datetime | None:
    """The generator ``timestamp`` (``2024-12-24T07:42:06``, no zone: UTC) or None."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
