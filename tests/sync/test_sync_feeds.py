"""A real HTTP server on 127.0.0.1 (ephemeral port) that serves the sync fixture files.

Each route plays a script of responses in order (the last one repeats): a file with its
ETag / Last-Modified (answering 304 to a matching conditional request), a bare status, a
body cut short of its Content-Length, or a slow body.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Reply:
    """One scripted response."""

    body: bytes = b""
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    truncate_at: int | None = None
    """Send only this many bytes of the body (Content-Length still says the whole)."""
    delay: float = 0.0
    """Seconds to wait before the body."""


@dataclass
class Route:
    replies: list[Reply]
    served: int = 0

    def next(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


@dataclass
class FeedServer:
    """Routes by path (and ``startIndex`` for NVD pages); records each request's headers."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *replies: Reply) -> str:
        self.routes[path] = Route(list(replies))
        return self.url(path.split("?", maxsplit=1)[0])

    def hits(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            key = parts.path
            start = parse_qs(parts.query).get("startIndex")
            if start:
                key = f"{parts.path}?startIndex={start[0]}"
            server.requests.append((key, dict(self.headers.items())))
            route = server.routes.get(key)
            if route is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            reply = route.next()
            if reply.etag and self.headers.get("If-None-Match") == reply.etag:
                self.send_response(304)
                self.send_header("ETag", reply.etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(reply.status)
            if reply.etag:
                self.send_header("ETag", reply.etag)
            if reply.last_modified:
                self.send_header("Last-Modified", reply.last_modified)
            self.send_header("Content-Length", str(len(reply.body)))
            if reply.truncate_at is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            if reply.delay:
                time.sleep(reply.delay)
            body = reply.body if reply.truncate_at is None else reply.body[: reply.truncate_at]
            try:
                self.wfile.write(body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            if reply.truncate_at is not None:
                self.close_connection = True

    return Handler


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A running loopback server; nothing else is ever contacted."""
    state = FeedServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def sync_data(data: Path) -> Path:
    """tests/data/sync."""
    return data / "sync"


# --------------------------------------------------------------------------- helpers

import gzip  # noqa: E402
import json  # noqa: E402

import sqlalchemy as sa  # noqa: E402

from patchwarden.intel.sync import (  # noqa: E402
    Outcome,
    RetryPolicy,
    Source,
    Syncer,
    SyncReport,
    sources_from,
)
from patchwarden.store import Store  # noqa: E402
from patchwarden.store import schema as t  # noqa: E402

LM = "Thu, 29 Jan 2026 20:24:37 GMT"


class Notes:
    """An observer that keeps notes and counts downloaded bytes."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.stages: list[str] = []
        self.units = 0

    def stage(self, name: str, total: int | None = None) -> None:
        self.stages.append(name)

    def advance(self, units: int = 1) -> None:
        self.units += units

    def note(self, message: str) -> None:
        self.notes.append(message)


def _syncer(store: Store, tmp_path: Path, obs: Notes | None = None, **kw: object) -> Syncer:
    args: dict[str, object] = {
        "timeout": 2.0,
        "retry": RetryPolicy(attempts=3, base=0.01, cap=0.05),
        "nvd_pause": 0.0,
        "nvd_api_key": "",
        "seed": 1,
    }
    args.update(kw)
    return Syncer(store, tmp_path / "cache", observer=obs, **args)  # type: ignore[arg-type]


def _run(syncer: Syncer, *sources: Source) -> SyncReport:
    try:
        return syncer.sync(list(sources))
    finally:
        syncer.close()


def _kev_ids(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return {r.cve_id for r in conn.execute(sa.select(t.kev.c.cve_id))}


def _epss_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.epss)).scalar_one())


def _source_row(store: Store, name: str) -> dict[str, object]:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.feed_sources).where(t.feed_sources.c.name == name)).one()
    return dict(row._mapping)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'pw.db'}")
    yield s
    s.close()


# --------------------------------------------------------------------------- tests


def test_all_four_kinds_import_and_304_on_second_run(
    feed_server: FeedServer, sync_data: Path, store: Store, tmp_path: Path
) -> None:
    kev = (sync_data / "kev-2025.08.25-subset.json").read_bytes()
    urls = {
        "kev": feed_server.script("/kev.json", Reply(kev, etag='"k1"', last_modified=LM)),
        "epss": feed_server.script(
            "/epss.csv.gz",
            Reply((sync_data / "epss-2026-01-30-subset.csv.gz").read_bytes(), last_modified=LM),
        ),
        "osv-PyPI": feed_server.script(
            "/PyPI/all.zip", Reply((sync_data / "osv-PyPI-all.zip").read_bytes(), etag='"z1"')
        ),
        "nvd": feed_server.script(
            "/nvd?startIndex=0", Reply((sync_data / "nvd-page-0.json").read_bytes())
        ),
    }
    feed_server.script("/nvd?startIndex=2", Reply((sync_data / "nvd-page-1.json").read_bytes()))
    urls["nvd"] = feed_server.url("/nvd")
    sources = sources_from(urls, tuple(urls))
    obs = Notes()
    report = _run(_syncer(store, tmp_path, obs, nvd_page_size=2), *sources)
    assert [s.outcome for s in report.sources] == [Outcome.UPDATED] * 4, report
    assert len(_kev_ids(store)) == 15
    assert _epss_count(store) == 306
    assert "downloading kev" in obs.stages
    assert obs.units > len(kev)
    with store.engine.connect() as conn:
        vuln = conn.execute(
            sa.select(t.vulnerabilities).where(t.vulnerabilities.c.id == "CVE-2024-45230")
        ).one()
    # PYSEC-2024-102 has no severity: the NVD page's vector reached its vulnerability.
    assert vuln.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"
    assert vuln.cvss_source == "NVD-CVE-2024-45230"
    assert "NVD-CVE-2024-45230" in vuln.aliases
    assert "PYSEC-2024-102" in vuln.aliases
    # NVD was paged: two requests, the second at startIndex 2.
    assert len(feed_server.hits("/nvd?startIndex=2")) == 1
    assert _source_row(store, "kev")["etag"] == '"k1"'

    # Second run: conditional requests; KEV/OSV answer 304 on the ETag, EPSS is served
    # again (no ETag) with the same bytes -> not modified by checksum.
    again = _run(_syncer(store, tmp_path, nvd_page_size=2), *sources[:3])
    assert [s.outcome for s in again.sources] == [Outcome.NOT_MODIFIED] * 3
    assert feed_server.hits("/kev.json")[-1]["If-None-Match"] == '"k1"'
    assert feed_server.hits("/kev.json")[-1]["If-Modified-Since"] == LM
    assert feed_server.hits("/epss.csv.gz")[-1]["If-Modified-Since"] == LM


def test_etag_change_imports_the_new_catalog(
    feed_server: FeedServer, sync_data: Path, store: Store, tmp_path: Path
) -> None:
    old = (sync_data / "kev-2025.08.25-subset.json").read_bytes()
    new = (sync_data / "kev-2026.01.29-subset.json").read_bytes()
    url = feed_server.script("/kev.json", Reply(old, etag='"v1"'), Reply(new, etag='"v2"'))
    source = Source(name="kev", url=url)
    assert _run(_syncer(store, tmp_path), source).sources[0].outcome is Outcome.UPDATED
    report = _run(_syncer(store, tmp_path), source)
    assert report.sources[0].outcome is Outcome.UPDATED
    assert feed_server.hits("/kev.json")[-1]["If-None-Match"] == '"v1"'
    new_ids = {v["cveID"] for v in json.loads(new)["vulnerabilities"]}
    assert new_ids <= _kev_ids(store)  # the store's KEV upsert adds and updates, never drops
    assert {f["feed"]: f["version"] for f in store.feeds()}["kev"] == "2026.01.29"
    assert _source_row(store, "kev")["etag"] == '"v2"'


def test_500_then_success_is_retried(
    feed_server: FeedServer, sync_data: Path, store: Store, tmp_path: Path
) -> None:
    body = (sync_data / "kev-2025.08.25-subset.json").read_bytes()
    url = feed_server.script("/kev.json", Reply(status=500), Reply(status=503), Reply(body))
    obs = Notes()
    report = _run(_syncer(store, tmp_path, obs), Source(name="kev", url=url))
    item = report.sources[0]
    assert item.outcome is Outcome.UPDATED
    assert item.attempts == 3
    assert sum("server answered 50" in n for n in obs.notes) == 2
    assert len(_kev_ids(store)) == 15


def _seed_kev(feed_server: FeedServer, sync_data: Path, store: Store, tmp_path: Path) -> None:
    good = (sync_data / "kev-2025.08.25-subset.json").read_bytes()
    url = feed_server.script("/seed-kev.json", Reply(good, etag='"good"'))
    assert _run(_syncer(store, tmp_path), Source(name="kev", url=url)).sources[0].outcome is (
        Outcome.UPDATED
    )


@pytest.mark.parametrize(
    ("case", "reply"),
    [
        ("truncated", "truncate"),
        ("garbage", "garbage"),
        ("short catalog", "count"),
        ("always 500", "500"),
        ("too slow", "slow"),
    ],
)
def test_failed_download_keeps_previous_data(
    feed_server: FeedServer,
    sync_data: Path,
    store: Store,
    tmp_path: Path,
    case: str,
    reply: str,
) -> None:
    _seed_kev(feed_server, sync_data, store, tmp_path)
    before = _kev_ids(store)
    new = (sync_data / "kev-2026.01.29-subset.json").read_bytes()
    doc = json.loads(new)
    doc["vulnerabilities"] = doc["vulnerabilities"][:-3]  # count still says 20
    replies = {
        "truncate": Reply(new, etag='"n"', truncate_at=len(new) // 2),
        "garbage": Reply(b"<html>gateway error</html>" * 40, etag='"n"'),
        "count": Reply(json.dumps(doc).encode(), etag='"n"'),
        "500": Reply(status=500),
        "slow": Reply(new, etag='"n"', delay=1.5),
    }
    url = feed_server.script("/kev.json", replies[reply])
    obs = Notes()
    syncer = _syncer(store, tmp_path, obs, timeout=0.5, retry=RetryPolicy(attempts=2, base=0.01))
    report = _run(syncer, Source(name="kev", url=url))
    item = report.sources[0]
    assert item.outcome is Outcome.FAILED, case
    assert report.failed
    assert _kev_ids(store) == before, case
    assert any("kept the previous data" in n for n in obs.notes)
    row = _source_row(store, "kev")
    assert row["status"] == "failed"
    assert row["etag"] == '"good"'
    assert not list((tmp_path / "cache").glob("*.part"))
    assert (tmp_path / "cache" / "kev.json").exists()


def test_slow_but_within_timeout_succeeds(
    feed_server: FeedServer, sync_data: Path, store: Store, tmp_path: Path
) -> None:
    body = (sync_data / "kev-2025.08.25-subset.json").read_bytes()
    url = feed_server.script("/kev.json", Reply(body, delay=0.3))
    report = _run(_syncer(store, tmp_path, timeout=2.0), Source(name="kev", url=url))
    assert report.sources[0].outcome is Outcome.UPDATED


def test_corrupt_gzip_and_zip_are_refused(
    feed_server: FeedServer, sync_data: Path, store: Store, tmp_path: Path
) -> None:
    gz = (sync_data / "epss-2026-01-30-subset.csv.gz").read_bytes()
    zipped = bytearray((sync_data / "osv-PyPI-all.zip").read_bytes())
    zipped[200] ^= 0xFF  # inside the first member's deflate data: its CRC no longer matches
    urls = {
        "epss": feed_server.script("/epss.csv.gz", Reply(gz[: len(gz) - 10])),
        "osv-PyPI": feed_server.script("/all.zip", Reply(bytes(zipped))),
    }
    report = _run(_syncer(store, tmp_path), *sources_from(urls, tuple(urls)))
    epss, osv = report.sources
    assert epss.outcome is Outcome.FAILED
    assert "gzip" in epss.message
    assert osv.outcome is Outcome.FAILED
    assert "crc" in osv.message or "zip" in osv.message
    assert store.counts()["advisories"] == 0
    assert _epss_count(store) == 0


def test_nvd_inconsistent_page_fails_whole_source(
    feed_server: FeedServer, sync_data: Path, store: Store, tmp_path: Path
) -> None:
    feed_server.script("/nvd?startIndex=0", Reply((sync_data / "nvd-page-0.json").read_bytes()))
    page = json.loads((sync_data / "nvd-page-1.json").read_bytes())
    page["startIndex"] = 0
    feed_server.script("/nvd?startIndex=2", Reply(json.dumps(page).encode()))
    source = Source(name="nvd", url=feed_server.url("/nvd"))
    report = _run(_syncer(store, tmp_path, nvd_page_size=2, nvd_api_key="k-123"), source)
    assert report.sources[0].outcome is Outcome.FAILED
    assert "startIndex" in report.sources[0].message
    assert store.counts()["advisories"] == 0
    assert feed_server.hits("/nvd?startIndex=0")[0]["apiKey"] == "k-123"


def test_fixture_files_are_what_the_readme_says(sync_data: Path) -> None:
    kev = json.loads((sync_data / "kev-2026.01.29-subset.json").read_bytes())
    assert kev["count"] == len(kev["vulnerabilities"]) == 20
    with gzip.open(sync_data / "epss-2026-01-30-subset.csv.gz", "rt") as fh:
        assert fh.readline().startswith("#model_version:v2025.03.14")
