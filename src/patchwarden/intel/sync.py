"""``feeds sync``: download the live public feeds and import them safely.

Sources (each configurable, see :data:`DEFAULT_URLS`):

* ``osv-<Ecosystem>`` - osv.dev's per-ecosystem archive
  ``https://osv-vulnerabilities.storage.googleapis.com/<Ecosystem>/all.zip``;
* ``kev`` - the CISA Known Exploited Vulnerabilities catalog JSON;
* ``epss`` - FIRST's daily EPSS scores ``epss_scores-current.csv.gz``;
* ``nvd`` - the NVD CVE API 2.0, for CVSS vectors (paged; ``NVD_API_KEY`` from the environment
  raises the rate limit from 5 to 50 requests per 30 s, NVD "Getting started > API key").

Every download is conditional (``If-None-Match`` / ``If-Modified-Since`` from the validators of
the last imported copy, kept per source in the ``feed_sources`` table), retried with bounded
exponential backoff and jitter on 5xx, 429 and timeouts, capped in size, and written to a
``.part`` file that is validated before anything is imported: zip CRCs for OSV archives, gzip
integrity and the header for EPSS, a JSON parse and the catalog's own ``count`` for KEV, the
page arithmetic (``totalResults``) for NVD. KEV and EPSS publish no checksums, so "complete and
parses" is the check. A download that fails any of this is deleted, the previous file and the
stored data are kept, and the report says so. Good files are imported with
:func:`patchwarden.service.import_feeds`, one transaction per file.

NVD records become OSV-shaped records ``NVD-<CVE id>`` with ``aliases: [<CVE id>]`` and the
CVSS vectors as ``severity``: they join the CVE's alias group, so the best CVSS vector of the
group (:func:`patchwarden.severity.best`) reaches the risk model without a second code path.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import hashlib
import json
import os
import random
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from patchwarden.errors import FeedFormatError, IntelError
from patchwarden.service import FileImport, NullObserver, Observer, import_feeds
from patchwarden.store import Store
from patchwarden.store import schema as t

OSV_URL = "https://osv-vulnerabilities.storage.googleapis.com/{ecosystem}/all.zip"
"""osv.dev's per-ecosystem archive (osv.dev docs, "Data dumps")."""

DEFAULT_URLS: dict[str, str] = {
    "kev": "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
    "epss": "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz",
    "nvd": "https://services.nvd.nist.gov/rest/json/cves/2.0",
    **{
        f"osv-{eco}": OSV_URL.format(ecosystem=eco)
        for eco in ("PyPI", "npm", "Go", "Maven", "Debian", "Alpine")
    },
}
"""The real public sources; ``feeds sync`` fetches all of them unless told otherwise."""

MAX_BYTES: dict[str, int] = {
    "kev": 64 * 2**20,
    "epss": 256 * 2**20,
    "nvd": 64 * 2**20,
    "osv": 2 * 2**30,
}
"""Size caps per source kind (a download past its cap is abandoned, not imported)."""


class SourceKind(StrEnum):
    """What a source serves, which decides how its download is validated and imported."""

    OSV = "osv"
    KEV = "kev"
    EPSS = "epss"
    NVD = "nvd"


def source_kind(name: str) -> SourceKind:
    """The kind of a source from its name (``osv-PyPI`` -> osv).

    >>> source_kind("osv-PyPI"), source_kind("kev")
    (<SourceKind.OSV: 'osv'>, <SourceKind.KEV: 'kev'>)
    """
    base = name.split("-", 1)[0]
    try:
        return SourceKind(base)
    except ValueError as exc:
        known = ", ".join(k.value for k in SourceKind)
        raise IntelError(
            f"unknown feed source {name!r}: a source name starts with one of {known} "
            "(osv sources are named osv-<Ecosystem>)"
        ) from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """One download source."""

    name: str
    """``kev``, ``epss``, ``nvd`` or ``osv-<Ecosystem>``."""
    url: str
    """Where it is fetched from."""

    @property
    def kind(self) -> SourceKind:
        """What it serves."""
        return source_kind(self.name)


def sources_from(overrides: Mapping[str, str], only: tuple[str, ...] = ()) -> list[Source]:
    """The default sources with ``overrides`` (name -> URL) applied, optionally filtered.

    >>> [s.name for s in sources_from({"kev": "http://127.0.0.1:1/kev.json"}, ("kev",))]
    ['kev']
    """
    urls = dict(DEFAULT_URLS)
    for name, url in overrides.items():
        source_kind(name)
        if not url.startswith(("http://", "https://")):
            raise IntelError(f"feed source {name!r}: url {url!r} is not http(s)")
        urls[name] = url
    names = list(only) if only else list(urls)
    missing = [n for n in names if n not in urls]
    for name in missing:
        kind = source_kind(name)
        if kind is not SourceKind.OSV:
            raise IntelError(f"feed source {name!r} has no url")
        urls[name] = OSV_URL.format(ecosystem=name.split("-", 1)[1])
    return [Source(name=n, url=urls[n]) for n in names]


class Outcome(StrEnum):
    """What syncing one source did."""

    UPDATED = "updated"
    """Downloaded, validated and imported."""
    NOT_MODIFIED = "not_modified"
    """The server said 304 (or served the bytes already imported)."""
    FAILED = "failed"
    """Download, validation or import failed: the previous data is kept."""


@dataclass(slots=True, kw_only=True)
class SourceSync:
    """What ``feeds sync`` did for one source."""

    name: str
    url: str
    outcome: Outcome
    message: str = ""
    """Why it failed, or a remark."""
    bytes: int = 0
    attempts: int = 0
    imported: FileImport | None = None


@dataclass(slots=True, kw_only=True)
class SyncReport:
    """What ``feeds sync`` did."""

    sources: list[SourceSync] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when some source kept its previous data."""
        return any(s.outcome is Outcome.FAILED for s in self.sources)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter (AWS architecture blog, "Exponential
    Backoff And Jitter"): attempt ``n`` waits ``uniform(0, min(cap, base * 2**n))``."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 8.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based).

        >>> 0 <= RetryPolicy(base=1, cap=3).delay(5, random.Random(1)) <= 3
        True
        """
        return rng.uniform(0, min(self.cap, self.base * 2**attempt))


class _Retryable(Exception):
    """A transient failure (5xx, 429, timeout, dropped connection)."""


class _Fatal(Exception):
    """A failure that retrying will not fix (4xx, over the size cap)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Fetched:
    status: int
    path: Path | None
    etag: str | None
    last_modified: str | None
    bytes: int
    sha256: str | None


class Syncer:
    """Downloads sources into ``cache_dir`` and imports the ones that changed."""

    def __init__(
        self,
        store: Store,
        cache_dir: Path,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        observer: Observer | None = None,
        max_bytes: Mapping[str, int] | None = None,
        nvd_api_key: str | None = None,
        nvd_page_size: int = 2000,
        nvd_pause: float | None = None,
        actor: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ) -> None:
        self.store = store
        self.cache_dir = cache_dir
        self.retry = retry or RetryPolicy()
        self.obs = observer or NullObserver()
        self.max_bytes = {**MAX_BYTES, **(max_bytes or {})}
        self.nvd_api_key = nvd_api_key if nvd_api_key is not None else os.environ.get("NVD_API_KEY")
        self.nvd_page_size = nvd_page_size
        # NVD: 5 requests per rolling 30 s without a key, 50 with one ("best practice: sleep
        # six seconds between requests").
        self.nvd_pause = nvd_pause if nvd_pause is not None else (0.6 if self.nvd_api_key else 6.0)
        self.actor = actor
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            headers={"User-Agent": "patchwarden-feeds-sync"},
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    # ------------------------------------------------------------------ entry point

    def sync(self, sources: list[Source], *, now: dt.datetime | None = None) -> SyncReport:
        """Sync every source; one failing source never stops the others."""
        report = SyncReport()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for source in sources:
            now_ = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
            item = self._sync_one(source, now_)
            report.sources.append(item)
            if item.outcome is Outcome.FAILED:
                self.obs.note(f"{source.name}: {item.message}; kept the previous data")
        return report

    def _sync_one(self, source: Source, now: dt.datetime) -> SourceSync:
        state = self._state(source.name)
        item = SourceSync(name=source.name, url=source.url, outcome=Outcome.FAILED)
        final = self.cache_dir / _file_name(source)
        try:
            if source.kind is SourceKind.NVD:
                fetched = self._fetch_nvd(source, state, now, item)
            else:
                fetched = self._fetch_file(source, state, item)
                if fetched.path is not None:
                    validate(source.kind, fetched.path, source.name)
        except (_Retryable, _Fatal, IntelError) as exc:
            item.message = str(exc)
            self._record(source, state, now, status=Outcome.FAILED, message=item.message)
            _unlink(self.cache_dir / (final.name + ".part"))
            return item
        item.bytes = fetched.bytes
        if fetched.path is None or (
            state is not None and fetched.sha256 and fetched.sha256 == state.get("sha256")
        ):
            if fetched.path is not None:
                _unlink(fetched.path)
            item.outcome = Outcome.NOT_MODIFIED
            item.message = "not modified"
            kept = dict(state or {})
            if source.kind is SourceKind.NVD:
                kept["synced_at"] = now  # every page was read: nothing changed since then
            self._record(source, kept, now, status=Outcome.NOT_MODIFIED, message="not modified")
            return item
        fetched.path.replace(final)
        report = import_feeds(
            self.store, [final], fmt=_FORMAT[source.kind], observer=self.obs, actor=self.actor
        )
        item.imported = report.files[0]
        if item.imported.error:
            # The transaction rolled back; forget the file so the next sync asks afresh.
            _unlink(final)
            item.message = f"import failed: {item.imported.error}"
            self._record(source, state, now, status=Outcome.FAILED, message=item.message)
            return item
        item.outcome = Outcome.UPDATED
        notes = [*item.imported.notes]
        if item.imported.problems:
            notes.append(f"{len(item.imported.problems)} malformed records skipped")
        item.message = "; ".join(notes)
        self._record(
            source,
            {
                "etag": fetched.etag,
                "last_modified": fetched.last_modified,
                "sha256": fetched.sha256,
                "bytes": fetched.bytes,
                "synced_at": now,
            },
            now,
            status=Outcome.UPDATED,
            message=item.message,
        )
        return item

    # ------------------------------------------------------------------ state

    def _state(self, name: str) -> dict[str, Any] | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.feed_sources).where(t.feed_sources.c.name == name)
            ).first()
        return dict(row._mapping) if row is not None else None

    def _record(
        self,
        source: Source,
        good: Mapping[str, Any] | None,
        now: dt.datetime,
        *,
        status: Outcome,
        message: str,
    ) -> None:
        """Store the outcome; the validators change only with a successful import."""
        prev = good or {}
        row = {
            "name": source.name,
            "url": source.url,
            "etag": prev.get("etag"),
            "last_modified": prev.get("last_modified"),
            "sha256": prev.get("sha256"),
            "bytes": prev.get("bytes"),
            "synced_at": prev.get("synced_at"),
            "checked_at": now,
            "status": status.value,
            "message": message,
        }
        with self.store.transaction() as conn:
            conn.execute(t.feed_sources.delete().where(t.feed_sources.c.name == source.name))
            conn.execute(t.feed_sources.insert().values(**row))

    # ------------------------------------------------------------------ HTTP

    def _with_retries(self, what: str, call: Callable[[], _Fetched], item: SourceSync) -> _Fetched:
        last: Exception | None = None
        for attempt in range(self.retry.attempts):
            item.attempts = attempt + 1
            try:
                return call()
            except _Retryable as exc:
                last = exc
                if attempt + 1 < self.retry.attempts:
                    delay = self.retry.delay(attempt, self.rng)
                    self.obs.note(f"{what}: {exc}; retrying in {delay:.1f} s")
                    self.sleep(delay)
        raise _Retryable(f"{what}: gave up after {self.retry.attempts} attempts: {last}")

    def _fetch_file(
        self, source: Source, state: Mapping[str, Any] | None, item: SourceSync
    ) -> _Fetched:
        headers: dict[str, str] = {}
        # Conditional only when the stored copy is still on disk: a 304 must leave us with
        # the data we already imported (RFC 9110 section 13.1).
        if state is not None and (self.cache_dir / _file_name(source)).exists():
            if state.get("etag"):
                headers["If-None-Match"] = state["etag"]
            if state.get("last_modified"):
                headers["If-Modified-Since"] = state["last_modified"]
        part = self.cache_dir / (_file_name(source) + ".part")
        cap = self.max_bytes[source.kind.value]
        return self._with_retries(
            f"{source.name} ({source.url})",
            lambda: self._download(source, source.url, headers, part, cap, {}),
            item,
        )

    def _download(
        self,
        source: Source,
        url: str,
        headers: Mapping[str, str],
        part: Path,
        cap: int,
        params: Mapping[str, str | int],
    ) -> _Fetched:
        digest = hashlib.sha256()
        size = 0
        try:
            with self.client.stream("GET", url, headers=headers, params=params) as resp:
                if resp.status_code == 304:
                    return _Fetched(
                        status=304, path=None, etag=None, last_modified=None, bytes=0, sha256=None
                    )
                if resp.status_code >= 500 or resp.status_code in (408, 429):
                    raise _Retryable(f"server answered {resp.status_code}")
                if source.kind is SourceKind.NVD and resp.status_code == 403:
                    # NVD answers 403 when the rolling-window rate limit is hit.
                    raise _Retryable("nvd answered 403 (rate limit)")
                if resp.status_code != 200:
                    raise _Fatal(f"server answered {resp.status_code} for {url}")
                declared = resp.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > cap:
                    raise _Fatal(f"{url} is {declared} bytes, over the {cap}-byte cap")
                self.obs.stage(
                    f"downloading {source.name}",
                    int(declared) if declared and declared.isdigit() else None,
                )
                with part.open("wb") as fh:
                    for chunk in resp.iter_raw(64 * 1024):
                        size += len(chunk)
                        if size > cap:
                            raise _Fatal(f"{url} sent more than the {cap}-byte cap")
                        digest.update(chunk)
                        fh.write(chunk)
                        self.obs.advance(len(chunk))
                if declared is not None and declared.isdigit() and size != int(declared):
                    raise _Retryable(f"truncated download: {size} of {declared} bytes")
                return _Fetched(
                    status=200,
                    path=part,
                    etag=resp.headers.get("ETag"),
                    last_modified=resp.headers.get("Last-Modified"),
                    bytes=size,
                    sha256=digest.hexdigest(),
                )
        except httpx.TimeoutException as exc:
            _unlink(part)
            raise _Retryable(f"timed out ({type(exc).__name__})") from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            # A peer that closes mid-body (truncated) lands here: RemoteProtocolError.
            _unlink(part)
            raise _Retryable(f"connection failed after {size} bytes: {exc}") from exc
        except (_Retryable, _Fatal):
            _unlink(part)
            raise

    # ------------------------------------------------------------------ NVD

    def _fetch_nvd(
        self,
        source: Source,
        state: Mapping[str, Any] | None,
        now: dt.datetime,
        item: SourceSync,
    ) -> _Fetched:
        """Every page of the CVE API; incremental (``lastModStartDate``) after a first sync."""
        params: dict[str, str | int] = {"resultsPerPage": self.nvd_page_size}
        synced = state.get("synced_at") if state else None
        if synced is not None and now - synced < dt.timedelta(days=120):
            # The API allows a lastMod range of at most 120 days (NVD CVE API 2.0 docs).
            params["lastModStartDate"] = synced.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            params["lastModEndDate"] = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        headers = {"apiKey": self.nvd_api_key} if self.nvd_api_key else {}
        part = self.cache_dir / "nvd-page.json.part"
        records: list[dict[str, Any]] = []
        start, total, size = 0, None, 0
        while total is None or start < total:
            if start:
                self.sleep(self.nvd_pause)
            page_params = {**params, "startIndex": start}
            fetched = self._with_retries(
                f"nvd page at {start} ({source.url})",
                functools.partial(
                    self._download,
                    source,
                    source.url,
                    headers,
                    part,
                    self.max_bytes["nvd"],
                    page_params,
                ),
                item,
            )
            assert fetched.path is not None  # no conditional headers: never a 304
            size += fetched.bytes
            page = _load_json(fetched.path, f"nvd page at startIndex {start}")
            _unlink(fetched.path)
            vulns, total = _nvd_page(page, start)
            records.extend(r for r in (nvd_record(v) for v in vulns) if r is not None)
            if not vulns:
                break
            start += len(vulns)
        if not records:
            return _Fetched(
                status=304, path=None, etag=None, last_modified=None, bytes=size, sha256=None
            )
        out = self.cache_dir / "nvd.json.part"
        data = json.dumps(records, sort_keys=True).encode()
        out.write_bytes(data)
        return _Fetched(
            status=200,
            path=out,
            etag=None,
            last_modified=None,
            bytes=size,
            sha256=hashlib.sha256(data).hexdigest(),
        )


_FORMAT = {
    SourceKind.OSV: "osv",
    SourceKind.KEV: "kev",
    SourceKind.EPSS: "epss",
    SourceKind.NVD: "osv",
}


def _file_name(source: Source) -> str:
    return {
        SourceKind.OSV: f"{source.name}.zip",
        SourceKind.KEV: "kev.json",
        SourceKind.EPSS: "epss.csv.gz",
        SourceKind.NVD: "nvd.json",
    }[source.kind]


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedFormatError(f"{what} is not valid json: {exc}") from exc


def _nvd_page(page: Any, start: int) -> tuple[list[Any], int]:
    where = f"nvd page at startIndex {start}"
    if not isinstance(page, dict) or not isinstance(page.get("vulnerabilities"), list):
        raise FeedFormatError(f"{where}: expected an object with a 'vulnerabilities' list")
    total = page.get("totalResults")
    if not isinstance(total, int) or total < 0:
        raise FeedFormatError(f"{where}: field 'totalResults' is not a count: {total!r}")
    if page.get("startIndex", start) != start:
        raise FeedFormatError(
            f"{where}: field 'startIndex' is {page.get('startIndex')!r}, expected {start}"
        )
    vulns: list[Any] = page["vulnerabilities"]
    if start + len(vulns) > total:
        raise FeedFormatError(
            f"{where}: {len(vulns)} records past totalResults {total} (inconsistent paging)"
        )
    return vulns, total


_NVD_METRICS = (
    ("cvssMetricV40", "CVSS_V4"),
    ("cvssMetricV31", "CVSS_V3"),
    ("cvssMetricV30", "CVSS_V3"),
    ("cvssMetricV2", "CVSS_V2"),
)


def nvd_record(item: object) -> dict[str, Any] | None:
    """An OSV-shaped record carrying one NVD CVE's CVSS vectors; None without any.

    The NVD's own (``Primary``) metric is preferred over a CNA's (``Secondary``) one.

    >>> r = nvd_record({"cve": {"id": "CVE-2021-44228", "lastModified": "2025-02-04T15:15:13.773",
    ...     "metrics": {"cvssMetricV31": [{"type": "Primary", "cvssData": {"vectorString":
    ...     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}}]}}})
    >>> r["id"], r["aliases"], r["severity"][0]["type"], r["modified"]
    ('NVD-CVE-2021-44228', ['CVE-2021-44228'], 'CVSS_V3', '2025-02-04T15:15:13.773Z')
    """
    cve = item.get("cve") if isinstance(item, dict) else None
    if not isinstance(cve, dict) or not isinstance(cve.get("id"), str):
        return None
    metrics = cve.get("metrics") if isinstance(cve.get("metrics"), dict) else {}
    assert isinstance(metrics, dict)
    severity: list[dict[str, str]] = []
    for key, osv_type in _NVD_METRICS:
        entries = [m for m in metrics.get(key) or () if isinstance(m, dict)]
        entries.sort(key=lambda m: m.get("type") != "Primary")
        for entry in entries[:1]:
            vector = (entry.get("cvssData") or {}).get("vectorString")
            if isinstance(vector, str) and vector:
                severity.append({"type": osv_type, "score": vector})
    if not severity:
        return None
    modified = cve.get("lastModified") or cve.get("published")
    if not isinstance(modified, str):
        return None
    summary = next(
        (
            d.get("value", "")
            for d in cve.get("descriptions") or ()
            if isinstance(d, dict) and d.get("lang") == "en"
        ),
        "",
    )
    record: dict[str, Any] = {
        "id": f"NVD-{cve['id']}",
        "modified": _utc(modified),
        "aliases": [cve["id"]],
        "summary": summary[:200] if isinstance(summary, str) else "",
        "severity": severity,
        "database_specific": {"source": "nvd"},
    }
    if isinstance(cve.get("published"), str):
        record["published"] = _utc(cve["published"])
    return record


def _utc(text: str) -> str:
    # NVD timestamps carry no zone; the API documents them as UTC.
    return text if text.endswith("Z") or "+" in text[10:] else text + "Z"


# --------------------------------------------------------------------------- validation


def validate(kind: SourceKind, path: Path, name: str) -> None:
    """Check that a downloaded file is complete and parses; raise FeedFormatError if not.

    KEV and EPSS publish no checksums: completeness is the gzip CRC/length trailer (EPSS),
    the JSON parse plus the catalog's own ``count`` (KEV), and every member CRC (OSV zip).
    """
    match kind:
        case SourceKind.OSV:
            _validate_zip(path, name)
        case SourceKind.KEV:
            _validate_kev(path, name)
        case SourceKind.EPSS:
            _validate_epss(path, name)
        case SourceKind.NVD:
            pass  # validated page by page in Syncer._fetch_nvd


def _validate_zip(path: Path, name: str) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            members = sum(1 for i in archive.infolist() if not i.is_dir())
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise FeedFormatError(f"{name}: download is not a complete zip archive: {exc}") from exc
    if bad is not None:
        raise FeedFormatError(f"{name}: zip member {bad!r} fails its crc check")
    if members == 0:
        raise FeedFormatError(f"{name}: zip archive has no records")


def _validate_kev(path: Path, name: str) -> None:
    data = _load_json(path, f"{name} download")
    if not isinstance(data, dict) or not isinstance(data.get("vulnerabilities"), list):
        raise FeedFormatError(f"{name}: download is not a kev catalog (no 'vulnerabilities' list)")
    count = data.get("count")
    if isinstance(count, int) and count != len(data["vulnerabilities"]):
        raise FeedFormatError(
            f"{name}: catalog says count {count} but holds {len(data['vulnerabilities'])} "
            "vulnerabilities (incomplete download)"
        )


def _validate_epss(path: Path, name: str) -> None:
    rows = 0
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            lines: Iterator[str] = iter(fh)
            first = next(lines, "")
            header = next(lines, "") if first.startswith("#") else first
            if header.strip().split(",")[:3] != ["cve", "epss", "percentile"]:
                raise FeedFormatError(
                    f"{name}: download has no 'cve,epss,percentile' header (got {header[:60]!r})"
                )
            for _ in lines:
                rows += 1
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError, UnicodeDecodeError) as exc:
        raise FeedFormatError(f"{name}: download is not a complete gzip file: {exc}") from exc
    if rows == 0:
        raise FeedFormatError(f"{name}: download has no score rows")
