"""FIRST EPSS daily scores (``epss_scores-YYYY-MM-DD.csv.gz``), plain CSV or gzip.

Line 1 is a comment ``#model_version:v2025.03.14,score_date:2026-01-30T12:55:00Z``, line 2
the header ``cve,epss,percentile``, then one row per CVE. The reader streams: it yields a
:class:`FeedInfo` and then an :class:`~patchwarden.model.EpssScore` per row, or a
:class:`~patchwarden.errors.Problem` with the line number for a bad row. A gzip file that
is cut short raises :class:`~patchwarden.errors.FeedFormatError` when the reader gets there,
after the rows before the cut were yielded; the importer rolls the whole file back.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel._common import FieldError, parse_rfc3339, read_head
from patchwarden.intel.interface import FeedInfo, FeedReader, FeedRecord
from patchwarden.model import EpssScore

HEADER = ["cve", "epss", "percentile"]
"""The column header FIRST publishes."""
_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}")
_GZIP_MAGIC = b"\x1f\x8b"


def parse_metadata(line: str) -> tuple[str | None, str | None]:
    """Split the ``#key:value,key:value`` comment line into (model_version, score_date).

    >>> parse_metadata("#model_version:v2025.03.14,score_date:2026-01-30T12:55:00Z")
    ('v2025.03.14', '2026-01-30T12:55:00Z')
    """
    fields: dict[str, str] = {}
    for part in line.lstrip("#").strip().split(","):
        key, sep, value = part.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields.get("model_version"), fields.get("score_date")


def _score(text: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise FieldError(column, f"not a number: {text!r}") from exc
    if not (0.0 <= value <= 1.0) or math.isnan(value):
        raise FieldError(column, f"{text!r} is outside 0..1")
    return value


class EpssReader(FeedReader):
    """Reads a FIRST EPSS scores CSV (plain or gzip-compressed)."""

    name: ClassVar[str] = "epss"

    def read(self, path: Path) -> Iterator[FeedRecord]:
        """Yield FeedInfo, then an EpssScore or Problem per row, streaming."""
        source = str(path)
        try:
            if read_head(path, 2) == _GZIP_MAGIC:
                # Closed by the ``with fh`` below (the wrapper closes the gzip stream).
                raw = gzip.open(path, "rb")  # noqa: SIM115
                fh: io.TextIOBase = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            else:
                fh = path.open(encoding="utf-8", newline="")
        except OSError as exc:
            raise FeedFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
        with fh:
            try:
                yield from self._rows(fh, path, source)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise FeedFormatError(f"{path} is a damaged or truncated gzip file: {exc}") from exc
            except UnicodeDecodeError as exc:
                raise FeedFormatError(f"{path} is not utf-8 text: {exc.reason}") from exc
            except csv.Error as exc:
                raise FeedFormatError(f"{path} is not a readable csv file: {exc}") from exc

    @staticmethod
    def _rows(fh: io.TextIOBase, path: Path, source: str) -> Iterator[FeedRecord]:
        reader = csv.reader(fh)
        first = next(reader, None)
        if first is None:
            raise FeedFormatError(f"{path} is empty, expected an epss csv")
        version = date_text = None
        if first and first[0].startswith("#"):
            version, date_text = parse_metadata(",".join(first))
            first = next(reader, None)
        if first is None or [c.strip().lower() for c in first] != HEADER:
            raise FeedFormatError(
                f"{path}:{reader.line_num} is not an epss csv: expected the header "
                f"'cve,epss,percentile', got {','.join(first or [])[:60]!r}"
            )
        date = None
        if date_text:
            try:
                date = parse_rfc3339(date_text, "score_date")
            except FieldError as exc:
                raise FeedFormatError(f"{path}:1: score_date: {exc.reason}") from exc
        yield FeedInfo(feed="epss", version=version, date=date, path=source)
        cve_match = _CVE_ID.fullmatch
        for row in reader:
            if len(row) == 3 and cve_match(row[0]):
                # Fast path: the shape of every real row.
                try:
                    epss, percentile = float(row[1]), float(row[2])
                except ValueError:
                    pass
                else:
                    if 0.0 <= epss <= 1.0 and 0.0 <= percentile <= 1.0:
                        yield EpssScore(cve_id=row[0], epss=epss, percentile=percentile)
                        continue
            if not row:
                continue
            record = row[0] if row and cve_match(row[0]) else None
            try:
                if len(row) != 3:
                    raise FieldError(None, f"expected 3 columns, got {len(row)}")
                if not cve_match(row[0]):
                    raise FieldError("cve", f"not a cve id: {row[0]!r}")
                _score(row[1], "epss")
                _score(row[2], "percentile")
                raise FieldError(None, "unreadable row")  # pragma: no cover - fast path took it
            except FieldError as exc:
                yield Problem(
                    source=source,
                    record=record,
                    field=exc.field,
                    line=reader.line_num,
                    reason=exc.reason,
                )

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """A (gzipped) CSV whose first lines are the EPSS comment and/or header."""
        if path.is_dir():
            return False
        head = read_head(path, 4096)
        if head[:2] == _GZIP_MAGIC:
            try:
                with gzip.open(path, "rb") as gz:
                    head = gz.read(4096)
            except (OSError, EOFError, zlib.error):
                return False
        text = head.decode("utf-8", "replace")
        lines = text.splitlines()[:2]
        return any(line.strip().lower() == "cve,epss,percentile" for line in lines) or (
            bool(lines) and lines[0].startswith("#model_version")
        )
