"""``patchwarden feeds sync`` and ``patchwarden daemon``.

Sources and schedule come from options or from a YAML config file (``--config``)::

    feeds:
      cache_dir: /var/cache/patchwarden
      only: [kev, epss, nvd, osv-PyPI]
      sources:                      # name -> URL, overrides the public defaults
        kev: https://mirror.example/kev.json
    daemon:
      interval: 6h
      workers: 2
      fleet: /etc/patchwarden/fleet.yaml
      lease: 5m
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from rich.console import Console
from rich.markup import escape

from patchwarden.cli import main as cli
from patchwarden.daemon import DaemonConfig, JobQueue, parse_interval, run_daemon
from patchwarden.errors import IntelError, PatchwardenError
from patchwarden.intel.sync import DEFAULT_URLS, Outcome, Syncer, SyncReport, sources_from

err = Console(stderr=True, highlight=False, soft_wrap=True)


class _FeedsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cache_dir: Path | None = None
    only: list[str] = []
    sources: dict[str, str] = {}


class _DaemonSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interval: str = "6h"
    workers: int = 1
    fleet: Path | None = None
    lease: str = "5m"


class _ConfigSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the same file may carry a policy
    feeds: _FeedsSpec = _FeedsSpec()
    daemon: _DaemonSpec = _DaemonSpec()


def load_config(path: Path | None) -> _ConfigSpec:
    """Read the ``feeds:`` and ``daemon:`` sections; errors name the file and field."""
    if path is None:
        return _ConfigSpec()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        spec = _ConfigSpec.model_validate(raw)
    except OSError as exc:
        raise _usage(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise _usage(f"{path}: not valid yaml: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].lower()}" for e in exc.errors()
        )
        raise _usage(f"{path}: {problems}") from exc
    base = path.parent
    if spec.daemon.fleet is not None and not spec.daemon.fleet.is_absolute():
        spec.daemon.fleet = base / spec.daemon.fleet
    if spec.feeds.cache_dir is not None and not spec.feeds.cache_dir.is_absolute():
        spec.feeds.cache_dir = base / spec.feeds.cache_dir
    return spec


def _usage(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(2)


def _default_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "patchwarden" / "feeds"


def _overrides(options: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in options or ():
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise _usage(f"--source {item!r}: expected NAME=URL (e.g. kev=https://...)")
        out[name.strip()] = url.strip()
    return out


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file with feeds: and daemon: sections."),
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option("--source", help="Override a source URL: NAME=URL (repeatable)."),
]
OnlyOpt = Annotated[
    list[str] | None,
    typer.Option("--only", help="Sync only this source (repeatable): kev, epss, nvd, osv-PyPI."),
]
CacheOpt = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Downloaded files (default ~/.cache/patchwarden/feeds)."),
]


def _show_sync(report: SyncReport, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(
            json.dumps(
                [
                    {
                        "source": s.name,
                        "url": s.url,
                        "outcome": s.outcome.value,
                        "message": s.message,
                        "bytes": s.bytes,
                        "attempts": s.attempts,
                    }
                    for s in report.sources
                ],
                indent=2,
            )
            + "\n"
        )
        return
    colour = {Outcome.UPDATED: "green", Outcome.NOT_MODIFIED: "dim", Outcome.FAILED: "red"}
    for s in report.sources:
        extra = f" - {escape(s.message)}" if s.message else ""
        if s.outcome is Outcome.FAILED:
            extra += " (previous data kept)"
        Console(highlight=False, soft_wrap=True).print(
            f"[{colour[s.outcome]}]{s.outcome.value:>12}[/] {s.name}{extra}"
        )


def register(feeds_app: typer.Typer, app: typer.Typer) -> None:
    """Add ``feeds sync`` to the feeds group and ``daemon`` to the top-level app."""

    @feeds_app.command("sync")
    def feeds_sync(
        config: ConfigOpt = None,
        source: SourceOpt = None,
        only: OnlyOpt = None,
        cache_dir: CacheOpt = None,
        timeout: Annotated[float, typer.Option(help="HTTP timeout in seconds.")] = 60.0,
        as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    ) -> None:
        """Download the live feeds (OSV archives, CISA KEV, FIRST EPSS, NVD CVSS) and import
        what changed. A failed or corrupt download keeps the previous data (exit 3).

        Examples:

          patchwarden feeds sync

          patchwarden feeds sync --only kev --only epss --only osv-PyPI

          patchwarden feeds sync --source kev=http://mirror.local/kev.json
        """
        spec = load_config(config)
        overrides = {**spec.feeds.sources, **_overrides(source)}
        try:
            sources = sources_from(overrides, tuple(only or spec.feeds.only))
        except IntelError as exc:
            raise _usage(str(exc)) from exc
        with cli._store() as store, cli._observer() as obs:
            syncer = Syncer(
                store,
                cache_dir or spec.feeds.cache_dir or _default_cache(),
                timeout=timeout,
                observer=obs,
            )
            try:
                report = syncer.sync(sources)
            finally:
                syncer.close()
        _show_sync(report, as_json)
        if report.failed:
            raise typer.Exit(3)

    @app.command("daemon")
    def daemon_cmd(
        config: ConfigOpt = None,
        fleet: Annotated[
            Path | None, typer.Option("--fleet", help="Fleet file to rescan each cycle.")
        ] = None,
        interval: Annotated[
            str | None, typer.Option(help="Cycle interval: 90s, 15m, 6h, 1d (default 6h).")
        ] = None,
        workers: Annotated[
            int | None, typer.Option("--workers", min=1, help="Worker threads (default 1).")
        ] = None,
        once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
        lease: Annotated[
            str | None, typer.Option(help="Job lease; a dead worker's job is retaken after it.")
        ] = None,
        poll: Annotated[float, typer.Option(help="Seconds between queue polls.")] = 5.0,
        source: SourceOpt = None,
        only: OnlyOpt = None,
        cache_dir: CacheOpt = None,
    ) -> None:
        """Run on a schedule: sync feeds, rescan the fleet, re-score, re-plan, roll out.

        Several daemons may share one PostgreSQL database: each step of each cycle runs
        once (jobs are claimed with row locks under a lease). On SQLite run one worker.

        Examples:

          patchwarden --db postgresql://db/pw daemon --fleet fleet.yaml --interval 6h --workers 2

          patchwarden daemon --once --fleet fleet.yaml
        """
        spec = load_config(config)
        try:
            every = parse_interval(interval or spec.daemon.interval)
            held = parse_interval(lease or spec.daemon.lease)
            sources_from({**spec.feeds.sources, **_overrides(source)}, tuple(only or ()))
        except (ValueError, IntelError) as exc:
            raise _usage(str(exc)) from exc
        settings = DaemonConfig(
            fleet=fleet or spec.daemon.fleet,
            sources={**spec.feeds.sources, **_overrides(source)},
            only=tuple(only or spec.feeds.only),
            cache_dir=cache_dir or spec.feeds.cache_dir or _default_cache(),
            policy=cli.state.policy_path,
        )
        stop = threading.Event()
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_a: stop.set())

        def log(message: str) -> None:
            if not cli.state.quiet:
                err.print(f"{dt.datetime.now(dt.UTC):%H:%M:%S} {escape(message)}")

        with cli._store() as store:
            try:
                run_daemon(
                    store,
                    settings,
                    interval=every,
                    workers=workers or spec.daemon.workers,
                    once=once,
                    lease=held,
                    poll=poll,
                    log=log,
                    stop=stop,
                )
            except PatchwardenError as exc:
                raise _usage(str(exc)) from exc
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
            rows = JobQueue(store).jobs()
        if once:
            failed = [r for r in rows if r["state"] == "failed"]
            for r in failed:
                err.print(f"[red]failed:[/] {escape(r['id'])}: {escape(r['error'] or '')}")
            if failed:
                raise typer.Exit(3)


def known_sources() -> list[str]:
    """The default source names (for help texts and docs)."""
    return list(DEFAULT_URLS)


register(cli.feeds_app, cli.app)
