"""Helpers shared by the feed readers: time parsing, file metadata, JSON loading, record errors."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from patchwarden.errors import FeedFormatError

MAX_DEPTH = 32
"""Deepest nesting accepted inside kept-as-given mappings (``database_specific`` ...).

Real OSV records nest three or four levels; anything far deeper is hostile or broken and is
reported as a problem instead of being stored (where serialising it could blow the stack)."""

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


class FieldError(ValueError):
    """One field of one record is malformed; the reader turns it into a Problem."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def parse_rfc3339(text: object, field: str) -> dt.datetime:
    """Parse an RFC 3339 timestamp (OSV schema "modified"/"published") to an aware UTC datetime.

    A time zone is required (RFC 3339 section 5.6); fractions of any length are accepted.

    >>> parse_rfc3339("2023-06-27T18:49:56.911238Z", "modified")
    datetime.datetime(2023, 6, 27, 18, 49, 56, 911238, tzinfo=datetime.timezone.utc)
    >>> parse_rfc3339("2024-01-01T02:00:00+02:00", "modified").isoformat()
    '2024-01-01T00:00:00+00:00'
    >>> parse_rfc3339("2024-01-01", "modified")
    Traceback (most recent call last):
    ...
    patchwarden.intel._common.FieldError: not an rfc 3339 timestamp: '2024-01-01'
    """
    if not isinstance(text, str):
        raise FieldError(field, f"expected an rfc 3339 timestamp string, got {type_name(text)}")
    if not _RFC3339.match(text):
        raise FieldError(field, f"not an rfc 3339 timestamp: {text!r}")
    head, frac, tail = text, "", ""
    # fromisoformat takes at most 6 fraction digits; RFC 3339 allows any number.
    m = re.match(r"^(.*?:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", text)
    if m:
        head, frac, tail = m.group(1), (m.group(2) or "")[:7], m.group(3)
    if tail in {"Z", "z"}:
        tail = "+00:00"
    try:
        value = dt.datetime.fromisoformat(head.replace("t", "T") + frac + tail)
    except ValueError as exc:
        raise FieldError(field, f"not an rfc 3339 timestamp: {text!r} ({exc})") from exc
    return value.astimezone(dt.UTC)


def type_name(value: object) -> str:
    """JSON-ish name of a value's type, for messages.

    >>> type_name([]), type_name("x"), type_name(None), type_name(1.5)
    ('list', 'string', 'null', 'number')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def check_depth(value: object, field: str, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`FieldError` when ``value`` nests deeper than ``limit`` (iteratively)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise FieldError(field, f"nested deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def mtime_utc(path: Path) -> dt.datetime:
    """The file's modification time as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)


def load_json_file(path: Path) -> Any:
    """Load a whole JSON file, turning every way it can fail into :class:`FeedFormatError`."""
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except OSError as exc:
        raise FeedFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise FeedFormatError(f"{path} is not utf-8 text: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise FeedFormatError(
            f"{path} is not valid json: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise FeedFormatError(f"{path} is not usable json: nested too deeply") from exc


def read_head(path: Path, size: int = 65536) -> bytes:
    """The first ``size`` bytes of a file (empty when it cannot be read), for sniffing."""
    try:
        with path.open("rb") as fh:
            return fh.read(size)
    except OSError:
        return b""
