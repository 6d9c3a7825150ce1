"""CISA Known Exploited Vulnerabilities catalog (``known_exploited_vulnerabilities.json``).

The file is ``{title, catalogVersion, dateReleased, count, vulnerabilities[{cveID,
vendorProject, product, vulnerabilityName, dateAdded, shortDescription, requiredAction,
dueDate, knownRansomwareCampaignUse, notes, cwes}]}`` (CISA's published JSON schema).
It yields one :class:`FeedInfo` and then one :class:`~patchwarden.model.KevEntry` per
vulnerability, or a :class:`~patchwarden.errors.Problem` for a malformed one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel._common import (
    FieldError,
    load_json_file,
    parse_rfc3339,
    read_head,
    type_name,
)
from patchwarden.intel.interface import FeedInfo, FeedReader, FeedRecord
from patchwarden.model import KevEntry

CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,}$")
"""CVE id shape (CVE JSON 5 schema ``cveId`` pattern)."""


def _date(value: object, field: str, *, required: bool) -> dt.date | None:
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str):
        raise FieldError(field, f"expected a YYYY-MM-DD date string, got {type_name(value)}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise FieldError(field, f"not a YYYY-MM-DD date: {value!r}") from exc


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError(key, f"expected a string, got {type_name(value)}")
    return value


def parse_entry(raw: object) -> KevEntry:
    """Validate one catalog entry and build its KevEntry.

    >>> parse_entry({"cveID": "CVE-2021-44228", "dateAdded": "2021-12-10",
    ...     "dueDate": "2021-12-24", "knownRansomwareCampaignUse": "Known"}).known_ransomware
    True
    """
    if not isinstance(raw, dict):
        raise FieldError(None, f"expected an object, got {type_name(raw)}")
    cve = raw.get("cveID")
    if not isinstance(cve, str) or not CVE_ID.match(cve):
        raise FieldError("cveID", f"not a cve id: {cve!r}")
    date_added = _date(raw.get("dateAdded"), "dateAdded", required=True)
    assert date_added is not None  # required=True never returns None
    ransomware = raw.get("knownRansomwareCampaignUse", "Unknown")
    if not isinstance(ransomware, str):
        raise FieldError(
            "knownRansomwareCampaignUse", f"expected a string, got {type_name(ransomware)}"
        )
    return KevEntry(
        cve_id=cve,
        date_added=date_added,
        due_date=_date(raw.get("dueDate"), "dueDate", required=False),
        known_ransomware=ransomware == "Known",
        vendor=_text(raw, "vendorProject"),
        product=_text(raw, "product"),
        name=_text(raw, "vulnerabilityName"),
    )


class KevReader(FeedReader):
    """Reads the CISA KEV catalog JSON."""

    name: ClassVar[str] = "kev"

    def read(self, path: Path) -> Iterator[FeedRecord]:
        """Yield FeedInfo, then a KevEntry or Problem per vulnerability."""
        data = load_json_file(path)
        if not isinstance(data, dict) or not isinstance(data.get("vulnerabilities"), list):
            raise FeedFormatError(
                f"{path} is not a kev catalog: expected an object with a 'vulnerabilities' list"
            )
        source = str(path)
        version = data.get("catalogVersion")
        released = data.get("dateReleased")
        try:
            date = parse_rfc3339(released, "dateReleased") if released is not None else None
        except FieldError as exc:
            raise FeedFormatError(f"{path}: field 'dateReleased': {exc.reason}") from exc
        yield FeedInfo(
            feed="kev",
            version=version if isinstance(version, str) else None,
            date=date,
            path=source,
        )
        for index, raw in enumerate(data["vulnerabilities"]):
            try:
                yield parse_entry(raw)
            except FieldError as exc:
                cve = raw.get("cveID") if isinstance(raw, dict) else None
                where = f"vulnerabilities[{index}]" + (f".{exc.field}" if exc.field else "")
                yield Problem(
                    source=source,
                    record=cve if isinstance(cve, str) and cve else None,
                    field=where,
                    reason=exc.reason,
                )

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """JSON with a ``catalogVersion`` key near its start."""
        return not path.is_dir() and b'"catalogVersion"' in read_head(path, 4096)
