"""Collect a fleet's inventories in worker processes and stream them into a scan.

A fleet file of 10,000 hosts names 4.4 GB of dpkg status files; reading them costs more CPU
than storing and matching what they hold. :func:`scan_fleet` (what ``patchwarden scan
--fleet`` and the daemon run) therefore:

* reads each asset's sources through the collectors' row path
  (:func:`~patchwarden.inventory.collect_fleet_rows`: no
  :class:`~patchwarden.model.InstalledPackage` per package), in worker processes when the fleet
  is large (:func:`collect_fleet`), while the scanning process stores and matches the assets
  already read. Results come back in fleet-file order, and at most a window of assets is
  read ahead of the scan, so memory stays flat however large the fleet;
* skips reading an asset whose files did not change since its stored inventory was
  collected: every source that is a plain file is signed by device, inode, size,
  modification and change time (:func:`source_signature`, as ``make`` and ``git`` decide
  what changed; dpkg and apk replace their database by renaming a new file over it), together
  with the fleet entry's sources and the collectors' code. A matching signature sends the
  stored digest instead of the rows, and the scan treats the asset as unchanged. Roots,
  folders and image archives are always read;
* keeps going when one asset cannot be read: its failure (:class:`CollectFailure`) is
  reported in :attr:`ScanReport.errors <patchwarden.service.ScanReport.errors>` and the
  others are scanned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import multiprocessing
import multiprocessing.forkserver
import os
import stat
import time
import uuid
from array import array
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import cast

from patchwarden.errors import PatchwardenError
from patchwarden.inventory import collect_fleet_rows
from patchwarden.inventory.fleet import SOURCE_FIELDS, Fleet, FleetAsset, InventorySources
from patchwarden.model import AssetId, InventoryColumns, Runs, source_digest
from patchwarden.risk import RiskWeights
from patchwarden.service import Observer, PreparedInventory, ScanReport, prepare_rows, scan
from patchwarden.store import Collected, Store
from patchwarden.store.bulk import gc_paused

__all__ = [
    "CollectFailure",
    "collect_fleet",
    "default_workers",
    "prepare_fleet_asset",
    "scan_fleet",
    "source_signature",
    "start_workers",
]

PARALLEL_FROM = 64
"""Fleets with fewer assets are read in the scanning process (starting workers costs more)."""
_CHUNK = 16
"""Assets per task sent to a worker."""
READ_AHEAD = 1_024
"""Assets the workers may read ahead of the scan: a little more than the scan's batch (500
assets are stored and matched together), so that the workers keep reading while the scan
writes a batch (each read-ahead asset holds ~0.3 MB: ~300 MB at most)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectFailure:
    """An asset whose inventory could not be read; the rest of the fleet is scanned."""

    asset: AssetId
    """The asset."""
    message: str
    """Why (the collector's error, which names the file and record)."""

    def __str__(self) -> str:
        return f"asset {self.asset!r}: {self.message}"


@functools.cache
def _code_digest() -> str:
    """A digest of the code that turns inventory files into rows (once per process)."""
    import patchwarden.inventory
    import patchwarden.model
    import patchwarden.service

    folder = Path(patchwarden.inventory.__file__ or "").parent
    return source_digest(
        (
            *sorted(folder.glob("*.py")),
            Path(patchwarden.model.__file__ or ""),
            Path(patchwarden.service.__file__ or ""),
            Path(__file__),
        )
    )


RECENT_NS = 2_000_000_000
"""A file changed less than this long ago (ns) is not signed. File times come from a coarse
clock (a few ms; 1-2 s on some filesystems), so a file rewritten at the same size within
that tick of being read would keep its signature while its content changed ("racily clean",
as git calls it); it is read again on the next scan instead."""


def source_signature(sources: InventorySources, *, now: int | None = None) -> str | None:
    """The signature of an asset's inventory sources when each is a plain file, else None.

    It covers every source field (paths and distro), each file's device, inode, size,
    modification and change time in nanoseconds, and the source of the code that turns files
    into rows (a fixed parser must read unchanged files again). Roots, folders (a
    site-packages folder, an rpm database) and images are not signed: they are always read;
    nor are files changed in the last :data:`RECENT_NS` before ``now`` (ns since the epoch;
    default: the clock).

    >>> import tempfile, pathlib
    >>> status = pathlib.Path(tempfile.mkdtemp()) / "status"
    >>> _ = status.write_text("Package: a\\n")
    >>> sources = InventorySources(dpkg_status=status)
    >>> source_signature(sources) is None  # just written
    True
    >>> later = time.time_ns() + 10**10
    >>> source_signature(sources, now=later) == source_signature(sources, now=later)
    True
    >>> first = source_signature(sources, now=later)
    >>> _ = status.write_text("Package: bb\\n")
    >>> first == source_signature(sources, now=later + 10**10)
    False
    >>> source_signature(InventorySources(root=status.parent)) is None
    True
    """
    if sources.root is not None or sources.image is not None:
        return None
    clock = time.time_ns() if now is None else now
    h = hashlib.sha256(_code_digest().encode())
    h.update(f"\n{sources.distro}".encode())
    for name in SOURCE_FIELDS:
        path: Path | None = getattr(sources, name)
        if path is None:
            continue
        try:
            st = os.stat(path)
        except OSError:
            return None  # reading it will report why
        if not stat.S_ISREG(st.st_mode):
            return None
        if clock - max(st.st_mtime_ns, st.st_ctime_ns) < RECENT_NS:
            return None
        h.update(
            f"\n{name}\t{path}\t{st.st_dev}\t{st.st_ino}\t{st.st_size}\t"
            f"{st.st_mtime_ns}\t{st.st_ctime_ns}".encode()
        )
    return h.hexdigest()


def prepare_fleet_asset(fa: FleetAsset, known: Collected | None = None) -> PreparedInventory:
    """One fleet-file asset, read and reduced to what a scan stores and matches.

    ``known`` is what the store remembers of the asset's latest collection
    (:meth:`~patchwarden.store.Store.collected`): when the sources' signature is the same, the
    files are not read and the stored inventory's digest is sent instead of rows.
    """
    signature = source_signature(fa.sources)
    unread = _unread(fa, known, signature)
    if unread is not None:
        return unread
    found = collect_fleet_rows(fa)
    prepared = prepare_rows(fa.asset, found.rows, distro=found.distro, source=found.source)
    if signature is None:
        return prepared
    return dataclasses.replace(prepared, signature=signature)


def _unread(
    fa: FleetAsset, known: Collected | None, signature: str | None
) -> PreparedInventory | None:
    """The stored inventory of ``fa`` when its sources have the ``known`` signature."""
    if known is None or signature is None or known.signature != signature:
        return None
    return PreparedInventory(
        asset=fa.asset,
        distro=known.distro,
        source=known.source,
        digest=known.digest,
        rows=None,
        packages=known.packages,
        unsupported=known.unsupported,
        signature=signature,
    )


_Job = tuple[FleetAsset, Collected | None]
_Result = PreparedInventory | CollectFailure


def _prepare(job: _Job) -> _Result:
    fa, known = job
    try:
        # rows hold no reference cycles; the cyclic collector costs 20-30% of reading a
        # status file in a long-running worker (it walks every remembered stanza)
        with gc_paused():
            return prepare_fleet_asset(fa, known)
    except (PatchwardenError, OSError) as exc:
        return CollectFailure(asset=fa.asset.id, message=str(exc))


_LINE_IDS: dict[str, int] = {}
"""This worker process's number for each line it has sent (see :class:`_Sent`)."""
_WORKER: list[str] = []
"""This worker process's name, made on its first task (workers are forked from one server,
so a name made at import would be the same in all of them)."""


@dataclass(frozen=True, slots=True)
class _Sent:
    """A worker's result as it travels to the scanning process.

    A host's 1,500 rows travel as numbers: each worker numbers the lines it meets and sends a
    line's text and purl once, with the first asset that has it; later assets send only
    numbers (4 bytes a row instead of ~130). The scanning process keeps each worker's lines
    by number, so a host's lines come back as the same string objects, already hashed, and
    never as 15 million fresh strings to unpickle and hash. Results are taken in task order
    and a worker takes its tasks in that order, so a line's text always arrives before (or
    with) the first number that names it.
    """

    result: _Result
    """The result; a :class:`PreparedInventory` read from files has ``rows`` None here."""
    worker: str = ""
    """Which worker numbered the lines."""
    ids: bytes = b""
    """The rows' line numbers (``array('i')``)."""
    locations: Runs = ()
    """The rows' locations."""
    lines: tuple[str, ...] = ()
    """Lines this worker had not sent before, numbered on from its previous ones."""
    purls: tuple[str | None, ...] = ()
    """Their purls."""


def _prepare_many(jobs: list[_Job]) -> list[_Sent]:
    """A worker's task: read those assets (see :class:`_Sent`)."""
    if not _WORKER:
        _WORKER.append(f"{os.getpid()}-{uuid.uuid4().hex}")
    out = []
    for job in jobs:
        result = _prepare(job)
        if not isinstance(result, PreparedInventory) or result.rows is None:
            out.append(_Sent(result))
            continue
        rows = result.rows
        ids = list(map(_LINE_IDS.get, rows.lines))  # a C-level pass; new lines give None
        lines: list[str] = []
        purls: list[str | None] = []
        if None in ids:
            row_purls = rows.purls
            for i, line in enumerate(rows.lines):
                if ids[i] is None:
                    ids[i] = _LINE_IDS[line] = len(_LINE_IDS)
                    lines.append(line)
                    purls.append(row_purls[i])
        out.append(
            _Sent(
                dataclasses.replace(result, rows=None),
                worker=_WORKER[0],
                ids=array("i", cast(list[int], ids)).tobytes(),  # every None was filled
                locations=rows.locations,
                lines=tuple(lines),
                purls=tuple(purls),
            )
        )
    return out


def default_workers(assets: int) -> int:
    """Worker processes for a fleet of ``assets``: one per CPU from :data:`PARALLEL_FROM`
    assets on, else none (read in the scanning process)."""
    return (os.cpu_count() or 1) if assets >= PARALLEL_FROM else 0


def collect_fleet(
    assets: Sequence[FleetAsset],
    *,
    known: Mapping[str, Collected] | None = None,
    workers: int | None = None,
) -> Iterator[_Result]:
    """Each asset's :class:`~patchwarden.service.PreparedInventory` (or why it could not be
    read), in the order given, read by ``workers`` processes (None:
    :func:`default_workers`; 0: in this process) at most a few tasks ahead of the consumer."""
    remembered = known or {}
    jobs = [(fa, remembered.get(fa.asset.id)) for fa in assets]
    count = default_workers(len(jobs)) if workers is None else workers
    if count <= 0:
        yield from map(_prepare, jobs)
        return
    # assets whose files kept their signature are answered here (two stats each, no task
    # for a worker): a rescan sends the workers only the assets that changed
    unread: dict[int, PreparedInventory] = {}
    for i, (fa, was) in enumerate(jobs):
        if was is not None:
            found = _unread(fa, was, source_signature(fa.sources))
            if found is not None:
                unread[i] = found
    # the rest changed (or were never signed): a worker reads them without checking again
    to_read: list[_Job] = [(fa, None) for i, (fa, _) in enumerate(jobs) if i not in unread]
    results: Iterator[_Result | None] = iter(())
    if to_read:
        try:
            results = _in_workers(to_read, count)
            next(results)  # the tasks are sent: the workers read while unread assets go out
        except OSError:  # no processes to be had (a sandbox, a process limit): read here
            results = map(_prepare, to_read)
    for i in range(len(jobs)):
        found = unread.get(i)
        if found is not None:
            yield found
            continue
        result = next(results)
        assert result is not None
        yield result


def _context() -> multiprocessing.context.ForkServerContext:
    # forkserver: workers are forked from a clean server process, not from this one (which
    # may hold database connections and a progress bar's thread)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def start_workers() -> None:
    """Start the server process the collection workers are forked from, without waiting for
    it: its start-up (a Python process importing the collectors, ~0.5 s) then overlaps what
    the caller does before scanning, such as loading the fleet file."""
    _context()
    with contextlib.suppress(OSError):  # then the scan reads in its own process
        multiprocessing.forkserver.ensure_running()


def _in_workers(jobs: list[_Job], count: int) -> Iterator[_Result | None]:
    """The results of ``jobs`` read by ``count`` worker processes, in order, after a first
    None once the first tasks are sent."""
    context = _context()
    chunks = iter([jobs[i : i + _CHUNK] for i in range(0, len(jobs), _CHUNK)])
    purls: dict[str, str | None] = {}
    lines_of: dict[str, list[str]] = {}
    with context.Pool(count) as pool:
        pending: deque[AsyncResult[list[_Sent]]] = deque(
            pool.apply_async(_prepare_many, (chunk,))
            for chunk in islice(chunks, max(count, READ_AHEAD // _CHUNK))
        )
        yield None
        while pending:
            done = pending.popleft().get()
            following = next(chunks, None)
            if following is not None:
                pending.append(pool.apply_async(_prepare_many, (following,)))
            for sent in done:
                yield _received(sent, lines_of, purls)


def _received(sent: _Sent, lines_of: dict[str, list[str]], purls: dict[str, str | None]) -> _Result:
    """A worker's result with its rows rebuilt from the line numbers (see :class:`_Sent`).

    Of a line's purls, the first to arrive is kept: the first asset in fleet order that has
    the line brings it, as the store keeps a package's first purl.
    """
    result = sent.result
    if not sent.worker or not isinstance(result, PreparedInventory):
        return result
    table = lines_of.setdefault(sent.worker, [])
    table.extend(sent.lines)
    for line, purl in zip(sent.lines, sent.purls, strict=True):
        purls.setdefault(line, purl)
    ids = array("i")
    ids.frombytes(sent.ids)
    lines = list(map(table.__getitem__, ids))
    rows = InventoryColumns(lines, sent.locations, ()).with_purls(purls)
    return dataclasses.replace(result, rows=rows)


def scan_fleet(
    store: Store,
    fleet: Fleet,
    *,
    workers: int | None = None,
    observer: Observer | None = None,
    weights: RiskWeights | None = None,
    actor: str | None = None,
    extra: Iterable[PreparedInventory] = (),
    now: dt.datetime | None = None,
) -> ScanReport:
    """Collect every asset of ``fleet`` (:func:`collect_fleet`, unchanged files unread) and
    scan it as it arrives (:func:`~patchwarden.service.scan`); assets that could not be read
    are listed in the report's ``errors``. ``extra`` inventories (an SBOM, a root given
    beside the fleet) are scanned after the fleet's; ``now`` is the scan time (default: the
    clock)."""
    failures: list[CollectFailure] = []

    def stream() -> Iterator[PreparedInventory]:
        for item in collect_fleet(fleet.assets, known=store.collected(), workers=workers):
            if isinstance(item, CollectFailure):
                failures.append(item)
                continue
            yield item
        yield from extra

    report = scan(
        store,
        stream(),
        observer=observer,
        weights=weights,
        actor=actor,
        total=len(fleet.assets),
        now=now,
    )
    report.errors.extend(str(f) for f in failures)
    return report


def duplicates(names: Iterable[str]) -> list[str]:
    """The names given more than once, sorted.

    >>> duplicates(["a", "b", "a"])
    ['a']
    """
    return sorted(name for name, n in Counter(names).items() if n > 1)
