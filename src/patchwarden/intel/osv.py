"""OSV records (OSV schema 1.6) as JSON or YAML: one file, a directory tree or an ``all.zip``.

Layouts read:

* one ``.json``/``.yaml``/``.yml`` file holding one record (or a JSON list of records);
* a directory tree, walked recursively for those suffixes (the PyPA advisory database layout
  ``vulns/<package>/PYSEC-*.yaml``);
* an osv.dev-style ``all.zip``: a zip of JSON (or YAML) records. Entries are only ever read
  in memory by name, never extracted, so ``../`` or absolute entry names are harmless; an
  entry whose uncompressed size is over :data:`MAX_ENTRY_BYTES` is reported and skipped.

Each record is validated completely before an :class:`~patchwarden.model.Advisory` is built
from it, so a malformed record becomes one :class:`~patchwarden.errors.Problem` and never a
half record. Unknown ecosystems are kept as given: the matcher ignores what it cannot order.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import yaml

from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel._common import (
    FieldError,
    check_depth,
    parse_rfc3339,
    read_head,
    type_name,
)
from patchwarden.intel.interface import FeedReader, FeedRecord
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

MAX_ENTRY_BYTES = 64 * 1024 * 1024
"""Largest uncompressed record (zip entry or file) read; the biggest real OSV record is well
under 10 MiB, so anything larger is treated as a zip bomb or junk."""

SUFFIXES = (".json", ".yaml", ".yml")
"""File name endings read as OSV records inside directories and zips."""

_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StringScalarLoader(_BaseLoader):  # type: ignore[misc]
    """Safe YAML loader that keeps numbers and timestamps as the strings they were written as.

    YAML 1.1 would read an unquoted ``fixed: 1.10`` as the float ``1.1`` and an unquoted
    ``modified: 2023-01-01T00:00:00Z`` as a naive-looking datetime; OSV versions and
    timestamps are strings (OSV schema 1.6, "affected[].ranges[].events", "modified"), so only
    ``null`` and booleans keep their implicit YAML types.
    """


_STRING_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}
_StringScalarLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _STRING_TAGS]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}

_EVENT_KINDS = {k.value: k for k in EventKind}
_RANGE_TYPES = {t.value: t for t in RangeType}


class _DocumentError(ValueError):
    """A whole document (one file or zip entry) cannot be decoded."""


def load_document(data: bytes, name: str) -> Any:
    """Decode one JSON or YAML document (chosen by the name's suffix, JSON otherwise).

    >>> load_document(b"id: X-1\\nfixed: 1.10\\n", "a.yaml")
    {'id': 'X-1', 'fixed': '1.10'}
    >>> load_document(b"[1", "a.json")
    Traceback (most recent call last):
    ...
    patchwarden.intel.osv._DocumentError: not valid json: Expecting ',' delimiter at line 1 column 3
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _DocumentError(f"not utf-8 text: {exc.reason} at byte {exc.start}") from exc
    try:
        if name.lower().endswith((".yaml", ".yml")):
            return yaml.load(text, Loader=_StringScalarLoader)  # a safe loader, see above
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _DocumentError(
            f"not valid json: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise _DocumentError(f"not valid yaml: {problem}{where}") from exc
    except RecursionError as exc:
        raise _DocumentError("nested too deeply to read") from exc


# --------------------------------------------------------------------------- validation


def _str(obj: Mapping[str, Any], key: str, field: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise FieldError(field, "required field is missing")
        return None
    if not isinstance(value, str):
        raise FieldError(field, f"expected a string, got {type_name(value)}")
    return value


def _str_list(obj: Mapping[str, Any], key: str, field: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise FieldError(field, f"expected a list of strings, got {type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise FieldError(f"{field}[{i}]", f"expected a string, got {type_name(item)}")
    return tuple(value)


def _obj_list(obj: Mapping[str, Any], key: str, field: str) -> list[dict[str, Any]]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(field, f"expected a list, got {type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise FieldError(f"{field}[{i}]", f"expected an object, got {type_name(item)}")
    return value


def _mapping(obj: Mapping[str, Any], key: str, field: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FieldError(field, f"expected an object, got {type_name(value)}")
    check_depth(value, field)
    return value


def _parse_range(raw: dict[str, Any], field: str) -> AffectedRange:
    type_text = _str(raw, "type", f"{field}.type", required=True)
    range_type = _RANGE_TYPES.get(type_text or "")
    if range_type is None:
        known = ", ".join(_RANGE_TYPES)
        raise FieldError(f"{field}.type", f"unknown range type {type_text!r} (known: {known})")
    repo = _str(raw, "repo", f"{field}.repo")
    if range_type is RangeType.GIT and not repo:
        # OSV schema 1.6, "affected[].ranges[].repo": required when type is GIT.
        raise FieldError(f"{field}.repo", "a GIT range needs a repo")
    events_raw = raw.get("events")
    if not isinstance(events_raw, list) or not events_raw:
        got = "missing" if events_raw is None else type_name(events_raw)
        raise FieldError(f"{field}.events", f"expected a non-empty list of events, got {got}")
    events: list[RangeEvent] = []
    for j, event in enumerate(events_raw):
        efield = f"{field}.events[{j}]"
        if not isinstance(event, dict):
            raise FieldError(efield, f"expected an object, got {type_name(event)}")
        if len(event) != 1:
            keys = ", ".join(map(str, event)) or "none"
            raise FieldError(efield, f"an event needs exactly one key, got {len(event)} ({keys})")
        ((key, version),) = event.items()
        kind = _EVENT_KINDS.get(key)
        if kind is None:
            raise FieldError(efield, f"unknown event {key!r} (known: {', '.join(_EVENT_KINDS)})")
        if not isinstance(version, str) or not version:
            raise FieldError(f"{efield}.{key}", f"expected a version string, got {version!r}")
        events.append(RangeEvent(kind=kind, version=version))
    if not any(e.kind is EventKind.INTRODUCED for e in events):
        # OSV schema 1.6, "ranges[].events": every range has at least one introduced event.
        raise FieldError(f"{field}.events", "a range needs at least one introduced event")
    return AffectedRange(type=range_type, events=tuple(events), repo=repo)


def _parse_affected(raw: dict[str, Any], field: str) -> Affected:
    package = raw.get("package")
    ranges = tuple(
        _parse_range(r, f"{field}.ranges[{i}]")
        for i, r in enumerate(_obj_list(raw, "ranges", f"{field}.ranges"))
    )
    if package is None:
        # OSV 1.6 allows a package-less entry whose ranges are all GIT; it matches nothing
        # here, but is kept so that the record is complete.
        if not ranges or any(r.type is not RangeType.GIT for r in ranges):
            raise FieldError(f"{field}.package", "required field is missing")
        ecosystem, name, purl = "", "", None
    elif not isinstance(package, dict):
        raise FieldError(f"{field}.package", f"expected an object, got {type_name(package)}")
    else:
        ecosystem = _str(package, "ecosystem", f"{field}.package.ecosystem", required=True) or ""
        name = _str(package, "name", f"{field}.package.name", required=True) or ""
        purl = _str(package, "purl", f"{field}.package.purl")
        if not ecosystem:
            raise FieldError(f"{field}.package.ecosystem", "must not be empty")
        if not name:
            raise FieldError(f"{field}.package.name", "must not be empty")
    return Affected(
        ecosystem=ecosystem,
        name=name,
        purl=purl,
        ranges=ranges,
        versions=_str_list(raw, "versions", f"{field}.versions"),
        ecosystem_specific=_mapping(raw, "ecosystem_specific", f"{field}.ecosystem_specific"),
        database_specific=_mapping(raw, "database_specific", f"{field}.database_specific"),
    )


def parse_advisory(raw: object, *, source: str = "osv") -> Advisory:
    """Validate one OSV record (a decoded JSON/YAML object) and build its Advisory.

    Raises :class:`~patchwarden.intel._common.FieldError` naming the field path
    (``affected[0].ranges[1].type``) for the first thing that is wrong.

    >>> adv = parse_advisory({"id": "PYSEC-0", "modified": "2024-01-02T03:04:05Z",
    ...     "affected": [{"package": {"ecosystem": "PyPI", "name": "x"},
    ...     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]}]})
    >>> adv.id, adv.affected[0].ranges[0].events[1].version
    ('PYSEC-0', '1.0')
    >>> parse_advisory({"id": "X", "modified": "2024-01-02T03:04:05Z", "aliases": "CVE-1"})
    Traceback (most recent call last):
    ...
    patchwarden.intel._common.FieldError: expected a list of strings, got string
    """
    if not isinstance(raw, dict):
        raise FieldError(None, f"a record must be an object, got {type_name(raw)}")
    vuln_id = _str(raw, "id", "id", required=True)
    if not vuln_id or not vuln_id.strip():
        raise FieldError("id", "must not be empty")
    modified = parse_rfc3339(raw.get("modified"), "modified") if "modified" in raw else None
    if modified is None:
        raise FieldError("modified", "required field is missing")
    published = parse_rfc3339(raw["published"], "published") if raw.get("published") else None
    withdrawn = parse_rfc3339(raw["withdrawn"], "withdrawn") if raw.get("withdrawn") else None
    severity = []
    for i, sev in enumerate(_obj_list(raw, "severity", "severity")):
        stype = _str(sev, "type", f"severity[{i}].type", required=True) or ""
        score = _str(sev, "score", f"severity[{i}].score", required=True) or ""
        severity.append(SeverityScore(type=stype, score=score))
    references = []
    for i, ref in enumerate(_obj_list(raw, "references", "references")):
        url = _str(ref, "url", f"references[{i}].url", required=True)
        references.append(url or "")
    affected = tuple(
        _parse_affected(a, f"affected[{i}]")
        for i, a in enumerate(_obj_list(raw, "affected", "affected"))
    )
    return Advisory(
        id=VulnId(vuln_id),
        source=source,
        modified=modified,
        published=published,
        withdrawn=withdrawn,
        aliases=_str_list(raw, "aliases", "aliases"),
        related=_str_list(raw, "related", "related"),
        upstream=_str_list(raw, "upstream", "upstream"),
        summary=_str(raw, "summary", "summary") or "",
        details=_str(raw, "details", "details") or "",
        severity=tuple(severity),
        affected=affected,
        references=tuple(references),
        database_specific=_mapping(raw, "database_specific", "database_specific"),
    )


def _record_id(raw: object) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, str) and value.strip():
            return value
    return None


def records_from_document(doc: object, source: str) -> Iterator[Advisory | Problem]:
    """Yield the Advisory or Problem for each record of one decoded document."""
    items = doc if isinstance(doc, list) else [doc]
    for index, raw in enumerate(items):
        record_id = _record_id(raw)
        try:
            yield parse_advisory(raw)
        except FieldError as exc:
            field = exc.field
            if isinstance(doc, list):
                field = f"[{index}]" + (f".{field}" if field else "")
            yield Problem(source=source, record=record_id, field=field, reason=exc.reason)


# --------------------------------------------------------------------------- reader


class OsvReader(FeedReader):
    """Reads OSV records from a file, a directory tree or a zip archive."""

    name: ClassVar[str] = "osv"

    def __init__(self, *, max_entry_bytes: int = MAX_ENTRY_BYTES) -> None:
        self.max_entry_bytes = max_entry_bytes

    def read(self, path: Path) -> Iterator[FeedRecord]:
        """Yield an Advisory or a Problem per record found under ``path``."""
        if path.is_dir():
            yield from self._read_tree(path)
        elif zipfile.is_zipfile(path) or path.suffix.lower() == ".zip":
            yield from self._read_zip(path)
        else:
            yield from self._read_single(path)

    def _read_bytes(self, path: Path) -> bytes:
        size = path.stat().st_size
        if size > self.max_entry_bytes:
            raise _DocumentError(f"file is {size} bytes, over the {self.max_entry_bytes} cap")
        return path.read_bytes()

    def _read_single(self, path: Path) -> Iterator[FeedRecord]:
        try:
            doc = load_document(self._read_bytes(path), path.name)
        except OSError as exc:
            raise FeedFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except _DocumentError as exc:
            raise FeedFormatError(f"{path} is not an osv record: {exc}") from exc
        if not isinstance(doc, dict | list):
            raise FeedFormatError(
                f"{path} is not an osv record: top level is a {type_name(doc)}, "
                "expected an object or a list of objects"
            )
        yield from records_from_document(doc, str(path))

    def _read_tree(self, root: Path) -> Iterator[FeedRecord]:
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
        for file in files:
            try:
                doc = load_document(self._read_bytes(file), file.name)
            except OSError as exc:
                yield Problem(source=str(file), reason=f"cannot read: {exc.strerror or exc}")
                continue
            except _DocumentError as exc:
                yield Problem(source=str(file), reason=str(exc))
                continue
            yield from records_from_document(doc, str(file))

    def _read_zip(self, path: Path) -> Iterator[FeedRecord]:
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FeedFormatError(f"{path} is not a readable zip archive: {exc}") from exc
        with archive:
            for info in archive.infolist():
                if info.is_dir() or not info.filename.lower().endswith(SUFFIXES):
                    continue
                # The entry name is only a label: nothing is ever written to disk.
                source = f"{path}!{info.filename}"
                if info.file_size > self.max_entry_bytes:
                    yield Problem(
                        source=source,
                        reason=(
                            f"zip entry is {info.file_size} bytes uncompressed, over the "
                            f"{self.max_entry_bytes} cap; skipped"
                        ),
                    )
                    continue
                try:
                    with archive.open(info) as member:
                        # Never trust the header's size: read at most one byte past the cap.
                        data = member.read(self.max_entry_bytes + 1)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                    raise FeedFormatError(
                        f"{path} is a damaged zip archive (entry {info.filename!r}): {exc}"
                    ) from exc
                except (RuntimeError, NotImplementedError) as exc:
                    # Encrypted entries and unsupported compression methods.
                    yield Problem(source=source, reason=f"cannot read zip entry: {exc}")
                    continue
                if len(data) > self.max_entry_bytes:
                    yield Problem(
                        source=source,
                        reason=f"zip entry inflates past the {self.max_entry_bytes} cap; skipped",
                    )
                    continue
                try:
                    doc = load_document(data, info.filename)
                except _DocumentError as exc:
                    yield Problem(source=source, reason=str(exc))
                    continue
                yield from records_from_document(doc, source)

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """A directory, a zip archive, or a JSON/YAML file with ``id`` and ``modified``."""
        if path.is_dir():
            return True
        if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
            return True
        head = read_head(path).decode("utf-8", "replace")
        if path.suffix.lower() in {".yaml", ".yml"}:
            return bool(re.search(r"(?m)^id:", head) and re.search(r"(?m)^modified:", head))
        return '"id"' in head and '"modified"' in head
