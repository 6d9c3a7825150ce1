"""Debian security tracker: the DSA/DLA ``list`` files and the tracker's JSON dump.

**DSA/DLA lists** (``data/DSA/list``, ``data/DLA/list`` of the security-tracker repository)
are plain text, one block per advisory::

    [29 Mar 2023] DSA-5380-1 xorg-server - security update
            {CVE-2023-1393}
            [bullseye] - xorg-server 2:1.20.11-1+deb11u6
            NOTE: fixed in testing at time of DSA

Each block becomes one :class:`~patchwarden.model.Advisory` (source ``debian``) whose
``upstream`` holds its CVE ids and with one :class:`~patchwarden.model.Affected` per release
line. A version is an ECOSYSTEM range ``introduced 0, fixed <version>``; the markers map to a
:class:`~patchwarden.model.FixState`: ``<not-affected>`` to ``not_affected``, ``<unfixed>`` to
``no_fix``, ``<no-dsa>``/``<ignored>`` to ``will_not_fix`` and ``<end-of-life>`` to
``will_not_fix`` with ``database_specific = {"reason": "end-of-life"}``. A trailing
``(bug #NNN; medium)`` comment is kept in ``database_specific``. ``NOTE:`` lines are notes
only, even when they quote a marker (``NOTE: [etch] - clamav <end-of-life> (...)``), and are
kept in the record's ``database_specific["notes"]``.

**JSON dump** (``security-tracker.debian.org/tracker/data/json``) is
``{srcpkg: {CVE-id: {description, scope, debianbug, releases: {codename: {status,
repositories, fixed_version, urgency, nodsa, nodsa_reason}}}}}``. It becomes one Advisory per
CVE with id ``DEBIAN-<CVE>`` and one Affected per (source package, release).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from patchwarden.ecosystems import DEBIAN_CODENAMES
from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel._common import (
    FieldError,
    check_depth,
    load_json_file,
    mtime_utc,
    read_head,
    type_name,
)
from patchwarden.intel.interface import FeedReader, FeedRecord
from patchwarden.model import (
    Advisory,
    Affected,
    AffectedRange,
    EventKind,
    FixState,
    RangeEvent,
    RangeType,
    VulnId,
)

TRACKER_URL = "https://security-tracker.debian.org/tracker/"
"""Where the tracker shows an advisory or CVE; used as the records' reference."""

_HEADER = re.compile(r"^\[(?P<date>[^\]]*)\]\s+(?P<id>D[SL]A-\d+(?:-\d+)?)\s*(?P<rest>.*)$")
_RELEASE = re.compile(r"^\[(?P<release>[^\]\s]+)\]\s+-\s+(?P<package>\S+)(?:\s+(?P<rest>.*))?$")
_CVE_LINE = re.compile(r"^\{(?P<ids>[^}]*)\}$")
_DEBIAN_VERSION = re.compile(r"^(?:\d+:)?[0-9][A-Za-z0-9.+~:-]*$")
"""Debian Policy 5.6.12: ``[epoch:]upstream[-revision]``, the upstream part starts with a
digit and uses only alphanumerics and ``. + ~ -`` (and ``:`` when there is an epoch)."""
_URGENCIES = {"unimportant", "low", "medium", "high", "not yet assigned", "end-of-life"}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
        start=1,
    )
}


def parse_list_date(text: str) -> dt.datetime:
    """Parse a list header date ``DD Mon YYYY`` to UTC midnight.

    >>> parse_list_date("29 Mar 2023")
    datetime.datetime(2023, 3, 29, 0, 0, tzinfo=datetime.timezone.utc)
    >>> parse_list_date("31 Feb 2023")
    Traceback (most recent call last):
    ...
    patchwarden.intel._common.FieldError: invalid date '31 Feb 2023' (day is out of range for month)
    """
    parts = text.split()
    if len(parts) != 3 or parts[1] not in _MONTHS or not parts[0].isdigit():
        raise FieldError("date", f"invalid date {text!r} (expected 'DD Mon YYYY')")
    if not parts[2].isdigit():
        raise FieldError("date", f"invalid date {text!r} (expected 'DD Mon YYYY')")
    try:
        return dt.datetime(int(parts[2]), _MONTHS[parts[1]], int(parts[0]), tzinfo=dt.UTC)
    except ValueError as exc:
        raise FieldError("date", f"invalid date {text!r} ({exc})") from exc


def release_ecosystem(codename: str, field_path: str) -> str:
    """``Debian:<n>`` for a release codename (``bullseye`` -> ``Debian:11``).

    >>> release_ecosystem("bullseye", "x")
    'Debian:11'
    """
    number = DEBIAN_CODENAMES.get(codename.lower())
    if number is None:
        raise FieldError(field_path, f"unknown debian release {codename!r}")
    return f"Debian:{number}"


def _parse_comment(comment: str) -> dict[str, Any]:
    """Split a release line's ``(bug #123; medium)`` comment into kept fields.

    >>> _parse_comment("bug #332524; medium")
    {'comment': 'bug #332524; medium', 'bugs': [332524], 'urgency': 'medium'}
    """
    kept: dict[str, Any] = {"comment": comment}
    bugs = [int(b) for b in re.findall(r"#(\d+)", comment)]
    if bugs:
        kept["bugs"] = bugs
    for part in comment.split(";"):
        if part.strip().lower() in _URGENCIES:
            kept["urgency"] = part.strip().lower()
    return kept


def _parse_release_line(text: str, field_path: str) -> Affected:
    m = _RELEASE.match(text)
    if m is None:
        raise FieldError(field_path, f"not a release line '[<release>] - <package> ...': {text!r}")
    ecosystem = release_ecosystem(m["release"], f"{field_path}.release")
    rest = (m["rest"] or "").strip()
    if not rest:
        raise FieldError(f"{field_path}.version", "missing fixed version or marker")
    value, _, comment = rest.partition(" ")
    comment = comment.strip()
    if comment.startswith("(") and comment.endswith(")"):
        comment = comment[1:-1].strip()
    elif comment:
        raise FieldError(f"{field_path}.version", f"unexpected text after {value!r}: {comment!r}")
    extra = _parse_comment(comment) if comment else {}
    name = m["package"]
    match value:
        case "<not-affected>":
            return Affected(
                ecosystem=ecosystem, name=name, state=FixState.NOT_AFFECTED, database_specific=extra
            )
        case "<unfixed>":
            return Affected(
                ecosystem=ecosystem, name=name, state=FixState.NO_FIX, database_specific=extra
            )
        case "<no-dsa>" | "<ignored>":
            extra = {"reason": value.strip("<>"), **extra}
            return Affected(
                ecosystem=ecosystem, name=name, state=FixState.WILL_NOT_FIX, database_specific=extra
            )
        case "<end-of-life>":
            extra = {"reason": "end-of-life", **extra}
            return Affected(
                ecosystem=ecosystem, name=name, state=FixState.WILL_NOT_FIX, database_specific=extra
            )
    if value.startswith("<"):
        raise FieldError(f"{field_path}.version", f"unknown marker {value!r}")
    if not _DEBIAN_VERSION.match(value):
        raise FieldError(f"{field_path}.version", f"not a debian version: {value!r}")
    return Affected(
        ecosystem=ecosystem,
        name=name,
        ranges=(_fixed_range(value),),
        database_specific=extra,
    )


def _fixed_range(version: str) -> AffectedRange:
    return AffectedRange(
        type=RangeType.ECOSYSTEM,
        events=(
            RangeEvent(kind=EventKind.INTRODUCED, version="0"),
            RangeEvent(kind=EventKind.FIXED, version=version),
        ),
    )


@dataclass
class _Block:
    """The lines of one list entry, gathered before it is validated."""

    line: int
    header: str
    body: list[tuple[int, str]] = field(default_factory=list)


def _parse_block(block: _Block, source: str) -> Advisory | Problem:
    m = _HEADER.match(block.header)
    if m is None:  # pragma: no cover - blocks only start on header lines
        return Problem(source=source, line=block.line, reason="not an advisory header")
    record = m["id"]
    # Old entries (before 2007) have no revision suffix: ``DSA-1304`` is kept as given.
    try:
        date = parse_list_date(m["date"])
    except FieldError as exc:
        return Problem(source=source, record=record, field="date", line=block.line, reason=str(exc))
    rest = m["rest"].strip()
    package, sep, title = rest.partition(" - ")
    if not sep:
        # A few old entries are announcements without " - " ("DSA-2907-1 squeeze end-of-life").
        package, title = rest.split(" ", 1)[0] if rest else "", rest
    upstream: list[str] = []
    notes: list[str] = []
    affected: list[Affected] = []
    for line_no, text in block.body:
        stripped = text.strip()
        if not stripped:
            continue
        try:
            if stripped.startswith("NOTE:"):
                notes.append(stripped[len("NOTE:") :].strip())
            elif cve := _CVE_LINE.match(stripped):
                upstream.extend(cve["ids"].split())
            elif stripped.startswith("["):
                affected.append(_parse_release_line(stripped, f"affected[{len(affected)}]"))
            else:
                raise FieldError(None, f"unrecognised line {stripped!r}")
        except FieldError as exc:
            return Problem(
                source=source, record=record, field=exc.field, line=line_no, reason=exc.reason
            )
    database_specific: dict[str, Any] = {"package": package.strip()}
    if notes:
        database_specific["notes"] = notes
    return Advisory(
        id=VulnId(record),
        source="debian",
        modified=date,
        published=date,
        upstream=tuple(dict.fromkeys(upstream)),
        summary=title.strip(),
        affected=tuple(affected),
        references=(TRACKER_URL + record,),
        database_specific=database_specific,
    )


class DebianListReader(FeedReader):
    """Reads a Debian security tracker ``DSA/list`` or ``DLA/list`` file."""

    name: ClassVar[str] = "debian-list"

    def read(self, path: Path) -> Iterator[FeedRecord]:
        """Yield one Advisory (or Problem) per DSA/DLA entry, in file order."""
        source = str(path)
        try:
            fh = path.open(encoding="utf-8", errors="strict")
        except OSError as exc:
            raise FeedFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
        block: _Block | None = None
        seen_header = False
        with fh:
            try:
                for line_no, raw in enumerate(fh, start=1):
                    text = raw.rstrip("\n")
                    if not text.strip():
                        continue
                    if text[0] in " \t":
                        if block is not None:
                            block.body.append((line_no, text))
                        elif not seen_header:
                            raise FeedFormatError(
                                f"{path}:{line_no} is not a DSA/DLA list: "
                                "indented line before the first advisory header"
                            )
                        continue
                    if block is not None:
                        yield _parse_block(block, source)
                        block = None
                    if _HEADER.match(text):
                        block = _Block(line=line_no, header=text)
                        seen_header = True
                    elif not seen_header:
                        raise FeedFormatError(
                            f"{path}:{line_no} is not a DSA/DLA list: expected a header like "
                            f"'[29 Mar 2023] DSA-5380-1 pkg - title', got {text[:60]!r}"
                        )
                    else:
                        # Its indented lines are skipped with it (block stays None).
                        yield Problem(
                            source=source,
                            line=line_no,
                            reason=f"unrecognised header line {text[:80]!r}",
                        )
            except UnicodeDecodeError as exc:
                raise FeedFormatError(f"{path} is not utf-8 text: {exc.reason}") from exc
        if block is not None:
            yield _parse_block(block, source)

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """A file named ``list`` or starting with ``[DD Mon YYYY] DSA-``/``DLA-``."""
        if path.is_dir():
            return False
        if path.name == "list":
            return True
        head = read_head(path, 256).decode("utf-8", "replace")
        return bool(re.match(r"\[\d{1,2} \w{3} \d{4}\] D[SL]A-", head))


# --------------------------------------------------------------------------- JSON dump

_SKIPPED_RELEASES = {"sid", "unstable", "experimental"}
"""Releases without a ``Debian:<n>`` ecosystem (OSV has none for unstable); not emitted."""
_WILL_NOT_FIX_URGENCIES = {"unimportant", "end-of-life"}


def _dump_affected(package: str, codename: str, entry: object, field_path: str) -> Affected | None:
    """The Affected for one (source package, release) of the JSON dump; None when skipped."""
    if codename in _SKIPPED_RELEASES:
        return None
    if not isinstance(entry, dict):
        raise FieldError(field_path, f"expected an object, got {type_name(entry)}")
    ecosystem = release_ecosystem(codename, field_path)
    status = entry.get("status")
    urgency = entry.get("urgency")
    nodsa = entry.get("nodsa")
    nodsa_reason = entry.get("nodsa_reason")
    for key, value in (("urgency", urgency), ("nodsa", nodsa), ("nodsa_reason", nodsa_reason)):
        if value is not None and not isinstance(value, str):
            raise FieldError(f"{field_path}.{key}", f"expected a string, got {type_name(value)}")
    extra: dict[str, Any] = {}
    if urgency:
        extra["urgency"] = urgency
    if nodsa:
        extra["nodsa"] = nodsa
    if nodsa_reason:
        extra["nodsa_reason"] = nodsa_reason
    match status:
        case "resolved":
            fixed = entry.get("fixed_version")
            if not isinstance(fixed, str) or not fixed:
                raise FieldError(
                    f"{field_path}.fixed_version",
                    f"a resolved entry needs a fixed version string, got {fixed!r}",
                )
            if fixed == "0":
                # The tracker's "0" means the release never had the vulnerable code.
                return Affected(
                    ecosystem=ecosystem,
                    name=package,
                    state=FixState.NOT_AFFECTED,
                    database_specific=extra,
                )
            if not _DEBIAN_VERSION.match(fixed):
                raise FieldError(f"{field_path}.fixed_version", f"not a debian version: {fixed!r}")
            return Affected(
                ecosystem=ecosystem,
                name=package,
                ranges=(_fixed_range(fixed),),
                database_specific=extra,
            )
        case "open":
            state = FixState.NO_FIX
            if urgency == "end-of-life":
                state = FixState.WILL_NOT_FIX
                extra["reason"] = "end-of-life"
            elif nodsa or nodsa_reason == "ignored" or urgency in _WILL_NOT_FIX_URGENCIES:
                state = FixState.WILL_NOT_FIX
            return Affected(ecosystem=ecosystem, name=package, state=state, database_specific=extra)
        case "undetermined":
            return Affected(
                ecosystem=ecosystem,
                name=package,
                state=FixState.UNDER_INVESTIGATION,
                database_specific=extra,
            )
    raise FieldError(
        f"{field_path}.status",
        f"unknown status {status!r} (known: resolved, open, undetermined)",
    )


class DebianJsonReader(FeedReader):
    """Reads the Debian security tracker's JSON dump (``tracker/data/json``).

    The dump carries no dates at all, so every record's ``modified`` is the file's mtime in
    UTC: a re-downloaded dump is newer and replaces what an older one said.
    """

    name: ClassVar[str] = "debian-json"

    def read(self, path: Path) -> Iterator[FeedRecord]:
        """Yield one Advisory per CVE (``DEBIAN-<CVE>``), or Problems for bad entries."""
        data = load_json_file(path)
        if not isinstance(data, dict):
            raise FeedFormatError(
                f"{path} is not a debian tracker json dump: top level is a {type_name(data)}, "
                "expected an object of source packages"
            )
        source = str(path)
        modified = mtime_utc(path)
        affected: dict[str, list[Affected]] = {}
        details: dict[str, str] = {}
        extra: dict[str, dict[str, Any]] = {}
        bad: set[str] = set()
        for package, cves in data.items():
            if not isinstance(cves, dict):
                yield Problem(
                    source=source,
                    field=package,
                    reason=f"expected an object of cve ids, got {type_name(cves)}",
                )
                continue
            for cve, body in cves.items():
                try:
                    items, description, kept = self._entry(package, cve, body)
                except FieldError as exc:
                    bad.add(cve)
                    yield Problem(source=source, record=cve, field=exc.field, reason=exc.reason)
                    continue
                affected.setdefault(cve, []).extend(items)
                if description and cve not in details:
                    details[cve] = description
                extra.setdefault(cve, {})[package] = kept
        for cve, items in affected.items():
            if cve in bad:
                continue  # reported above; never a record missing one of its packages
            yield Advisory(
                id=VulnId(f"DEBIAN-{cve}"),
                source="debian",
                modified=modified,
                upstream=(cve,),
                details=details.get(cve, ""),
                affected=tuple(items),
                references=(TRACKER_URL + cve,),
                database_specific={"packages": extra.get(cve, {})},
            )

    @staticmethod
    def _entry(package: str, cve: str, body: object) -> tuple[list[Affected], str, dict[str, Any]]:
        base = f"{package}.{cve}"
        if not isinstance(body, dict):
            raise FieldError(base, f"expected an object, got {type_name(body)}")
        description = body.get("description") or ""
        if not isinstance(description, str):
            raise FieldError(
                f"{base}.description", f"expected a string, got {type_name(description)}"
            )
        releases = body.get("releases")
        if not isinstance(releases, dict):
            raise FieldError(f"{base}.releases", f"expected an object, got {type_name(releases)}")
        kept: dict[str, Any] = {}
        for key in ("scope", "debianbug"):
            if body.get(key) is not None:
                check_depth(body[key], f"{base}.{key}")
                kept[key] = body[key]
        items: list[Affected] = []
        for codename, entry in releases.items():
            item = _dump_affected(package, codename, entry, f"{base}.releases.{codename}")
            if item is not None:
                items.append(item)
        return items, description, kept

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """JSON whose top level maps package names to objects keyed by CVE/TEMP ids."""
        if path.is_dir():
            return False
        head = read_head(path, 4096).decode("utf-8", "replace")
        return bool(re.match(r'\s*\{\s*"[^"]+"\s*:\s*\{\s*"(?:CVE|TEMP)-', head))
