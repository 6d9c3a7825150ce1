"""Debian changelogs as advisories: the CVE ids a package's own changelog says it fixes.

This is how Vuls finds what a candidate upgrade fixes: the ``changelog.Debian.gz`` shipped
inside the newer ``.deb`` (``/usr/share/doc/<binary>/changelog.Debian.gz``, or
``changelog.gz`` for a native package) names, entry by entry, the CVE ids each upload
fixes::

    openssl (3.0.17-1~deb12u3) bookworm-security; urgency=medium

      * CVE-2025-9230 (Out-of-bounds read & write in RFC 3211 KEK Unwrap)
      * CVE-2025-9232 (Out-of-bounds read in HTTP client no_proxy handling)

     -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Fri, 26 Sep 2025 20:59:22 +0200

Rules (:func:`changelog_advisories`):

* Every ``CVE-YYYY-NNNN`` in an entry's change lines says the vulnerability is fixed in that
  entry's version for the *source* package (the changelog's subject; a ``.deb``'s control
  ``Source:`` field, else its ``Package:``). The advisory says "affected: every version
  below it" (OSV ECOSYSTEM range ``introduced 0, fixed V``, dpkg order).
* When several entries name a CVE, the oldest one is the fix (the first upload that fixed
  it); later mentions ("alternative fix for CVE-...", a regression fix) are ignored.
* An item (a ``*``/``-``/``+`` bullet with its continuation lines and its nested bullets)
  that says *revert*, *not affected*, *not vulnerable* or *does not affect* is skipped:
  its CVE ids are not fixes at that entry (:func:`cve_mentions`). This is conservative:
  a real fix worded "revert the broken workaround, fix CVE-X" is missed at that entry.
* The release (``Debian:12``) comes from the top entry and applies to the whole file:
  its distribution's codename (``bookworm-security`` -> ``bookworm`` -> 12), else a
  ``~deb12uN``/``+deb12uN``/``~bpo12+N`` (or Ubuntu ``ubuntu0.22.04.1``) version suffix
  (:func:`release_ecosystem`). ``unstable``/``experimental`` uploads have neither: pass
  ``DebianChangelogReader(release="12")``; the CLI has no option for it.
* An entry whose version or date does not parse is reported as a
  :class:`~patchwarden.errors.Problem` and the CVE ids it names get no record (their first
  fix is unknown); other formatting slips python-debian tolerates are reported too.

Each (release, source package, CVE) becomes one :class:`~patchwarden.model.Advisory` with id
``debian-changelog:<ecosystem>:<source>:<CVE>`` (``debian-changelog:Debian:12:openssl:
CVE-2025-9230``), the CVE as its alias (so it joins the same CVE from OSV, the Debian
tracker or a DSA), the fixing entry's date as ``published`` and ``modified`` (a re-import
of a newer changelog, which names the same first fix, is "unchanged"), and the source
version's page on snapshot.debian.org (Launchpad for Ubuntu) as reference.

Caveat: dh_installchangelogs trims old entries from changelogs shipped in newer packages
(the real openssl 3.0.22-1~deb12u2 changelog stops at 1.1.1d-1); a CVE whose first fix was
trimmed away is dated by its oldest remaining mention, which only widens the affected range.

Parsing and ``.deb`` reading use python-debian (``debian.changelog.Changelog``,
``debian.debfile.DebFile``): gzip, xz, bzip2 and uncompressed members natively, zstd
(Ubuntu's default) through the ``unzstd`` program from Debian's ``zstd`` package.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import gzip
import io
import lzma
import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from debian.arfile import ArError
from debian.changelog import ChangeBlock, Changelog, topline
from debian.debfile import DebError, DebFile

from patchwarden.ecosystems import DEBIAN_CODENAMES
from patchwarden.errors import FeedFormatError, InvalidVersion, Problem
from patchwarden.intel.interface import FeedReader, FeedRecord
from patchwarden.intel.ubuntu_oval import UBUNTU_CODENAMES
from patchwarden.model import (
    Advisory,
    Affected,
    AffectedRange,
    EventKind,
    RangeEvent,
    RangeType,
    VulnId,
)
from patchwarden.versions.dpkg import parse_dpkg

__all__ = [
    "MAX_CHANGELOG_BYTES",
    "MAX_DEB_BYTES",
    "SOURCE",
    "ChangelogFile",
    "DebianChangelogReader",
    "advisory_id",
    "changelog_advisories",
    "cve_mentions",
    "load_changelog",
    "read_changelog_file",
    "read_deb",
    "release_ecosystem",
]

SOURCE = "debian-changelog"
"""The advisories' ``source`` and the reader's registry name."""

MAX_CHANGELOG_BYTES = 64 * 1024 * 1024
"""Largest changelog accepted, uncompressed (Debian's longest, linux's, is a few MiB)."""

MAX_DEB_BYTES = 2 * 1024 * 1024 * 1024
"""Largest ``.deb`` accepted (a zstd member is decompressed in memory by python-debian)."""

_MAX_PARSE_PROBLEMS = 20
"""Parse complaints reported per file; the rest are counted in one last problem."""

_CVE = re.compile(r"\bCVE-(\d{4})-(\d{4,})\b", re.IGNORECASE)
_BULLET = re.compile(r"^(?P<indent>\s*)(?:[*+-]|\[)\s")
"""An item starts with a ``*``/``-``/``+`` bullet or a ``[ Maintainer Name ]`` heading."""
_NOT_A_FIX = re.compile(
    r"\brevert|\bnot\s+(?:affected|vulnerable)\b|\bunaffected\b|\bdoes(?:\s+not|n't)\s+affect\b"
    r"|\bisn't\s+(?:affected|vulnerable)\b",
    re.IGNORECASE,
)
"""Wording that says a CVE mention is not a fix at this entry (reverted or not affected)."""
_DEB_SUFFIX = re.compile(r"[~+](?:deb(?P<deb>\d+)u\d+|bpo(?P<bpo>\d+)\+\d+)")
_UBUNTU_SUFFIX = re.compile(r"ubuntu\d*\.(?P<release>\d{2}\.\d{2})(?:\.|$)")
_DEB_MAGIC = b"!<arch>\ndebian-binary"
_GZIP_MAGIC = b"\x1f\x8b"
_CHANGELOG_NAMES = ("changelog.Debian.gz", "changelog.Debian", "changelog.gz", "changelog")


# --------------------------------------------------------------------------- pure parts


def cve_mentions(lines: Sequence[str]) -> tuple[list[str], list[str]]:
    """The CVE ids named in one entry's change lines: ``(fixed, skipped)``, each in order.

    Lines are grouped into items (a bullet and its continuation lines); an item that says
    it reverts something or is not affected is skipped together with the items nested
    under it.

    >>> cve_mentions(["  * CVE-2025-9230 (Out-of-bounds read & write", "    in KEK Unwrap)"])
    (['CVE-2025-9230'], [])
    >>> cve_mentions([
    ...     "  * Import 3.0.15",
    ...     "    - cve-2024-5535 (SSL_select_next_proto buffer overread)",
    ...     '  * Revert "Fix CVE-2024-1111" (regressions)',
    ...     "  * Drop the patch for CVE-2024-2222: this release is not affected.",
    ... ])
    (['CVE-2024-5535'], ['CVE-2024-1111', 'CVE-2024-2222'])
    >>> cve_mentions(["  * Revert the following changes:", "    - CVE-2024-3333 fix", "  * x"])
    ([], ['CVE-2024-3333'])
    """
    items: list[tuple[int, list[str]]] = []
    for line in lines:
        if not line.strip():
            continue
        m = _BULLET.match(line)
        if m is not None or not items:
            indent = len(m["indent"].expandtabs()) if m is not None else 0
            items.append((indent, [line.strip()]))
        else:
            items[-1][1].append(line.strip())
    fixed: list[str] = []
    skipped: list[str] = []
    tainted_at: int | None = None
    """Indent of the innermost reverting item whose nested items are still being read."""
    for indent, text_lines in items:
        if tainted_at is not None and indent <= tainted_at:
            tainted_at = None
        text = " ".join(text_lines)
        ids = [f"CVE-{m[1]}-{m[2]}" for m in _CVE.finditer(text)]
        if tainted_at is not None or _NOT_A_FIX.search(text):
            skipped.extend(ids)
            if tainted_at is None:
                tainted_at = indent
        else:
            fixed.extend(ids)
    return list(dict.fromkeys(fixed)), list(dict.fromkeys(skipped))


def release_ecosystem(distribution: str, version: str) -> str | None:
    """The ``Debian:<n>`` (or ``Ubuntu:<YY.MM>``) ecosystem of an upload, None when unknown.

    The distribution's codename decides, then the version's stable-update suffix.

    >>> release_ecosystem("bookworm-security", "3.0.22-1~deb12u2")
    'Debian:12'
    >>> release_ecosystem("unstable", "2.36-9+deb12u4"), release_ecosystem("trixie", "1.0-1")
    ('Debian:12', 'Debian:13')
    >>> release_ecosystem("bullseye-backports", "1.2-1~bpo11+1")
    'Debian:11'
    >>> release_ecosystem("jammy-security", "3.0.2-0ubuntu1.18")
    'Ubuntu:22.04'
    >>> release_ecosystem("UNRELEASED", "1.2-0ubuntu0.24.04.1")
    'Ubuntu:24.04'
    >>> release_ecosystem("unstable", "3.0.9-1") is None
    True
    """
    for dist in distribution.split():
        codename = dist.lower().split("-", 1)[0]
        if codename in DEBIAN_CODENAMES:
            return f"Debian:{DEBIAN_CODENAMES[codename]}"
        if codename in UBUNTU_CODENAMES:
            return f"Ubuntu:{UBUNTU_CODENAMES[codename]}"
    if m := _DEB_SUFFIX.search(version):
        return f"Debian:{m['deb'] or m['bpo']}"
    if m := _UBUNTU_SUFFIX.search(version):
        return f"Ubuntu:{m['release']}"
    return None


def parse_release(text: str) -> str:
    """An explicit release given by a caller: ``12``, ``bookworm``, ``Debian:12``, ``jammy``,
    ``Ubuntu:22.04``.

    >>> parse_release("bookworm"), parse_release("12"), parse_release("Ubuntu:22.04")
    ('Debian:12', 'Debian:12', 'Ubuntu:22.04')
    >>> parse_release("sid")
    Traceback (most recent call last):
    ...
    patchwarden.errors.FeedFormatError: unknown release 'sid' (expected e.g. bookworm, 12)
    """
    value = text.strip()
    base, sep, rest = value.partition(":")
    if sep and base.lower() == "debian" and rest in DEBIAN_CODENAMES.values():
        return f"Debian:{rest}"
    if sep and base.lower() == "ubuntu" and rest in UBUNTU_CODENAMES.values():
        return f"Ubuntu:{rest}"
    if value.lower() in DEBIAN_CODENAMES:
        return f"Debian:{DEBIAN_CODENAMES[value.lower()]}"
    if value in DEBIAN_CODENAMES.values():
        return f"Debian:{value}"
    if value.lower() in UBUNTU_CODENAMES:
        return f"Ubuntu:{UBUNTU_CODENAMES[value.lower()]}"
    raise FeedFormatError(f"unknown release {text!r} (expected e.g. bookworm, 12)")


def advisory_id(ecosystem: str, source: str, cve: str) -> VulnId:
    """The stable id of one (release, source package, CVE) record.

    >>> advisory_id("Debian:12", "openssl", "CVE-2025-9230")
    'debian-changelog:Debian:12:openssl:CVE-2025-9230'
    """
    return VulnId(f"{SOURCE}:{ecosystem}:{source}:{cve}")


def _reference(ecosystem: str, source: str, version: str) -> str:
    if ecosystem.startswith("Ubuntu:"):
        return f"https://launchpad.net/ubuntu/+source/{source}/{version}"
    return f"https://snapshot.debian.org/package/{source}/{version}/"


class _Changelog(Changelog):
    """python-debian's parser, keeping its complaints instead of logging them."""

    def __init__(self, text: str) -> None:
        self.complaints: list[str] = []
        super().__init__(text, strict=False)

    def _parse_error(self, message: str, strict: bool) -> None:  # type: ignore[override]
        self.complaints.append(message)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One changelog entry, checked: its version, date and CVE mentions."""

    version: str
    distribution: str
    urgency: str
    date: dt.datetime
    line: int | None
    fixed: dict[str, str]
    """CVE id -> the text of the item that names it."""


def _item_texts(lines: Sequence[str], cves: Iterable[str]) -> dict[str, str]:
    """For each CVE, the first change line (with its continuation) that names it, for the
    advisory summary."""
    wanted = set(cves)
    out: dict[str, str] = {}
    current: list[str] = []
    blocks: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        if _BULLET.match(line) and current:
            blocks.append(" ".join(current))
            current = []
        current.append(line.strip().lstrip("*+-").strip())
    if current:
        blocks.append(" ".join(current))
    for text in blocks:
        for m in _CVE.finditer(text):
            cve = f"CVE-{m[1]}-{m[2]}"
            if cve in wanted and cve not in out:
                out[cve] = text[:300]
    return out


def _header_lines(text: str) -> dict[str, int]:
    """Raw version -> 1-based line of its first entry header (python-debian has no lines)."""
    out: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        m = topline.match(line)
        if m is not None:
            out.setdefault(m.group(2), number)
    return out


def _parse_date(text: str | None) -> dt.datetime:
    if not text:
        raise ValueError("missing date")
    try:
        value = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"invalid date {text.strip()!r}") from exc
    if value.tzinfo is None:
        raise ValueError(f"date without a time zone {text.strip()!r}")
    return value.astimezone(dt.UTC)


def _check_block(block: ChangeBlock, lines: dict[str, int]) -> _Entry:
    """An :class:`_Entry`, or ValueError naming the field that is wrong."""
    raw = block._raw_version or ""
    line = lines.get(raw)
    try:
        version = str(block.version)
        parse_dpkg(version)
    except (ValueError, InvalidVersion) as exc:
        raise _BadEntry("version", f"unparsable version {raw!r} ({exc})", raw, line) from exc
    try:
        date = _parse_date(block.date)
    except ValueError as exc:
        raise _BadEntry("date", str(exc), raw, line) from exc
    changes = block.changes()
    fixed, _skipped = cve_mentions(changes)
    return _Entry(
        version=version,
        distribution=(block.distributions or "").strip(),
        urgency=block.urgency or "",
        date=date,
        line=line,
        fixed=_item_texts(changes, fixed),
    )


class _BadEntry(ValueError):
    def __init__(self, field: str, reason: str, raw_version: str, line: int | None) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.raw_version = raw_version
        self.line = line


def load_changelog(text: str, *, path: str) -> tuple[list[ChangeBlock], list[Problem]]:
    """Parse a changelog's text into its entries, newest first; raise
    :class:`FeedFormatError` when it has no entry at all.

    The returned problems are python-debian's complaints about lines it skipped.
    """
    parsed = _Changelog(text)
    # At the end of a text that stops inside an entry (or never starts one) python-debian
    # still adds a block; one without a header is no entry.
    blocks = [b for b in parsed if b.package and b._raw_version]
    if not blocks:
        first = next((ln for ln in text.splitlines() if ln.strip()), "")
        raise FeedFormatError(
            f"{path} is not a debian changelog: no entry header like "
            f"'package (version) distribution; urgency=...' (first line: {first[:80]!r})"
        )
    problems = [
        Problem(source=path, reason=f"changelog line skipped: {msg[:200]}")
        for msg in parsed.complaints[:_MAX_PARSE_PROBLEMS]
    ]
    if len(parsed.complaints) > _MAX_PARSE_PROBLEMS:
        problems.append(
            Problem(
                source=path,
                reason=f"{len(parsed.complaints) - _MAX_PARSE_PROBLEMS} more changelog lines "
                "skipped",
            )
        )
    return blocks, problems


def changelog_advisories(
    text: str,
    *,
    path: str,
    source: str | None = None,
    release: str | None = None,
    binary: str | None = None,
) -> Iterator[Advisory | Problem]:
    """The advisories one changelog's text implies (see the module docstring for the rules).

    ``source`` names the source package (default: the top entry's package); ``release``
    forces the ecosystem (``12``, ``bookworm``, ``Debian:12``) instead of deriving it from
    the top entry; ``binary`` (the ``.deb`` it came from) is kept in ``database_specific``.
    Raises :class:`FeedFormatError` when the text has no entry or no release can be told.
    """
    blocks, problems = load_changelog(text, path=path)
    yield from problems
    top = blocks[0]
    package = source or top.package or ""
    if not package:
        raise FeedFormatError(f"{path}: the top changelog entry names no package")
    if release is not None:
        ecosystem = parse_release(release)
    else:
        found = release_ecosystem(top.distributions or "", top._raw_version or "")
        if found is None:
            raise FeedFormatError(
                f"{path}: cannot tell which release {package} "
                f"{top._raw_version} ({(top.distributions or '').strip()}) belongs to: the "
                "top entry names no debian/ubuntu codename and its version has no "
                "~debNuM/+debNuM/~bpoN suffix; give the release explicitly"
            )
        ecosystem = found
    lines = _header_lines(text)
    first_fix: dict[str, tuple[_Entry, str] | None] = {}
    """CVE -> (entry, item text) of its oldest mention; None when that entry is unusable."""
    for block in reversed(blocks):  # oldest first
        try:
            entry = _check_block(block, lines)
        except _BadEntry as exc:
            fixed, _ = cve_mentions(block.changes())
            lost = [c for c in fixed if c not in first_fix]
            for cve in lost:
                first_fix[cve] = None
            note = f"; no record for {', '.join(lost)}" if lost else ""
            yield Problem(
                source=path,
                record=f"{block.package} ({exc.raw_version})",
                field=exc.field,
                line=exc.line,
                reason=exc.reason + note,
            )
            continue
        for cve, item in entry.fixed.items():
            first_fix.setdefault(cve, (entry, item))
    for cve, found_fix in sorted(first_fix.items()):
        if found_fix is None:
            continue
        entry, item = found_fix
        kept: dict[str, Any] = {
            "package": package,
            "version": entry.version,
            "distribution": entry.distribution,
            "urgency": entry.urgency,
            "changelog": path,
        }
        if binary:
            kept["binary"] = binary
        if entry.line is not None:
            kept["line"] = entry.line
        yield Advisory(
            id=advisory_id(ecosystem, package, cve),
            source=SOURCE,
            modified=entry.date,
            published=entry.date,
            aliases=(cve,),
            summary=f"{package} {entry.version}: {item}",
            affected=(
                Affected(
                    ecosystem=ecosystem,
                    name=package,
                    ranges=(
                        AffectedRange(
                            type=RangeType.ECOSYSTEM,
                            events=(
                                RangeEvent(kind=EventKind.INTRODUCED, version="0"),
                                RangeEvent(kind=EventKind.FIXED, version=entry.version),
                            ),
                        ),
                    ),
                ),
            ),
            references=(_reference(ecosystem, package, entry.version),),
            database_specific=kept,
        )


# --------------------------------------------------------------------------- files


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangelogFile:
    """A changelog's text and where it came from."""

    path: str
    """The file it was read from (``x.deb:./usr/share/doc/openssl/changelog.Debian.gz``)."""
    text: str
    """The changelog, decoded."""
    source: str | None = None
    """The source package (a ``.deb``'s ``Source:``, else its ``Package:``); None for a
    plain changelog, whose top entry names it."""
    binary: str | None = None
    """The binary package of a ``.deb``."""
    version: str | None = None
    """The binary package's version of a ``.deb``."""


def _decode(data: bytes) -> str:
    # Changelogs are UTF-8 (Debian Policy 4.4); a stray latin-1 byte in an old entry must
    # not lose the file, and CVE ids are ASCII either way.
    return data.decode("utf-8", errors="replace")


def _gunzip(data: bytes, where: str) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            out = gz.read(MAX_CHANGELOG_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise FeedFormatError(f"{where}: broken gzip data: {exc}") from exc
    if len(out) > MAX_CHANGELOG_BYTES:
        raise FeedFormatError(
            f"{where}: the changelog is larger than {MAX_CHANGELOG_BYTES // 2**20} MiB "
            "uncompressed; refusing it"
        )
    return out


def read_changelog_file(path: Path) -> ChangelogFile:
    """Read a plain or gzipped changelog file (size-limited)."""
    try:
        size = path.stat().st_size
        if size > MAX_CHANGELOG_BYTES:
            raise FeedFormatError(
                f"{path}: {size} bytes is larger than {MAX_CHANGELOG_BYTES // 2**20} MiB; "
                "refusing it"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise FeedFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if data.startswith(_GZIP_MAGIC):
        data = _gunzip(data, str(path))
    return ChangelogFile(path=str(path), text=_decode(data))


def read_deb(path: Path) -> ChangelogFile:
    """Read the Debian changelog inside a ``.deb`` with python-debian's ``DebFile``.

    Looks for ``/usr/share/doc/<binary>/changelog.Debian.gz``, then ``changelog.gz``
    (native packages), following symlinks inside the package. Every way a package can be
    broken (not an ar archive, truncated, unknown compression, no changelog) is a
    :class:`FeedFormatError` naming the file.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FeedFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size > MAX_DEB_BYTES:
        raise FeedFormatError(
            f"{path}: {size} bytes is larger than {MAX_DEB_BYTES // 2**30} GiB; refusing it"
        )
    try:
        with path.open("rb") as head:
            if not head.read(len(_DEB_MAGIC)).startswith(b"!<arch>\n"):
                raise FeedFormatError(f"{path} is not a .deb package: not an ar archive")
        deb = DebFile(filename=str(path))
    except FeedFormatError:
        raise
    except (ArError, DebError, OSError, EOFError, ValueError, KeyError) as exc:
        raise FeedFormatError(f"{path} is not a usable .deb package: {_why(exc)}") from exc
    try:
        try:
            control = deb.debcontrol()
        except (DebError, OSError, EOFError, lzma.LZMAError, tarfile.TarError, zlib.error) as exc:
            raise FeedFormatError(f"{path}: cannot read the control member: {_why(exc)}") from exc
        binary = (control.get("Package") or "").strip()
        version = (control.get("Version") or "").strip() or None
        if not binary:
            raise FeedFormatError(f"{path}: the control file has no Package field")
        source = (control.get("Source") or "").split("(", 1)[0].strip() or binary
        for name in ("changelog.Debian.gz", "changelog.gz"):
            member = f"usr/share/doc/{binary}/{name}"
            try:
                fh = deb.data.get_file(member, follow_symlinks=True)
            except DebError as exc:
                if "not found" in str(exc).lower():
                    continue
                raise FeedFormatError(f"{path}: cannot read the data member: {_why(exc)}") from exc
            where = f"{path}:/{member}"
            with fh:
                data = fh.read(MAX_CHANGELOG_BYTES + 1)
            if len(data) > MAX_CHANGELOG_BYTES:
                raise FeedFormatError(f"{where}: larger than {MAX_CHANGELOG_BYTES} bytes")
            text = _decode(_gunzip(data, where))
            return ChangelogFile(
                path=where, text=text, source=source, binary=binary, version=version
            )
        raise FeedFormatError(
            f"{path}: package {binary} ships no /usr/share/doc/{binary}/changelog.Debian.gz "
            "or changelog.gz (its doc folder may be a symlink into another package)"
        )
    except (OSError, EOFError, lzma.LZMAError, tarfile.TarError, zlib.error) as exc:
        raise FeedFormatError(f"{path}: cannot read the data member: {_why(exc)}") from exc
    finally:
        with contextlib.suppress(OSError, DebError):
            deb.close()


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "unzstd" in text:
        return f"{text} (zstd-compressed members need the unzstd program: apt-get install zstd)"
    if isinstance(exc, EOFError) or "ended before" in text or "Incorrect header length" in text:
        return f"truncated ({text})"
    return text


def _is_deb(path: Path) -> bool:
    if path.suffix in {".deb", ".udeb"}:
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(len(_DEB_MAGIC)) == _DEB_MAGIC
    except OSError:
        return False


def _is_changelog_name(name: str) -> bool:
    return name in _CHANGELOG_NAMES or name.startswith("changelog.Debian")


def _looks_like_changelog(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
        if head.startswith(_GZIP_MAGIC):
            with gzip.open(path, "rb") as gz:
                head = gz.read(4096)
    except (OSError, EOFError, zlib.error):
        return False
    first = next((ln for ln in _decode(head).splitlines() if ln.strip()), "")
    return topline.match(first) is not None


def _files_in(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and (_is_deb(p) or _is_changelog_name(p.name))
    )


# --------------------------------------------------------------------------- reader


class DebianChangelogReader(FeedReader):
    """Reads Debian changelogs: a ``.deb``, a ``changelog.Debian(.gz)`` file, or a folder.

    A folder is searched recursively for ``*.deb`` and ``changelog.Debian*`` files; a bad
    file in it is reported as a problem and the others are imported. When two files name
    the same (release, source, CVE), the record with the older fixed version is kept.
    """

    name: ClassVar[str] = SOURCE

    def __init__(self, *, release: str | None = None) -> None:
        """``release`` (``12``, ``bookworm``, ``Debian:12``) overrides the release derived
        from each changelog's top entry."""
        self.release = parse_release(release) if release is not None else None

    def read(self, path: Path) -> Iterator[FeedRecord]:
        """Yield the advisories (and problems) of ``path``."""
        if path.is_dir():
            yield from self._read_dir(path)
            return
        yield from self._read_file(path)

    def read_file(self, path: Path) -> ChangelogFile:
        """The changelog of one ``.deb`` or changelog file."""
        return read_deb(path) if _is_deb(path) else read_changelog_file(path)

    def _read_file(self, path: Path) -> Iterator[Advisory | Problem]:
        found = self.read_file(path)
        yield from changelog_advisories(
            found.text,
            path=found.path,
            source=found.source,
            release=self.release,
            binary=found.binary,
        )

    def _read_dir(self, path: Path) -> Iterator[FeedRecord]:
        files = _files_in(path)
        if not files:
            raise FeedFormatError(
                f"{path}: no .deb or changelog.Debian files in this folder or below"
            )
        best: dict[str, Advisory] = {}
        for item in files:
            try:
                records = list(self._read_file(item))
            except FeedFormatError as exc:
                yield Problem(source=str(item), reason=str(exc))
                continue
            for record in records:
                if isinstance(record, Problem):
                    yield record
                    continue
                old = best.get(record.id)
                if old is None or _fixed_key(record) < _fixed_key(old):
                    best[record.id] = record
        yield from best.values()

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """A ``.deb``; a file named ``changelog.Debian*`` or ``changelog(.gz)`` or starting
        with a changelog entry header; a folder holding ``.deb`` or ``changelog.Debian*``
        files at its top level."""
        if path.is_dir():
            try:
                return any(
                    p.is_file() and (_is_deb(p) or p.name.startswith("changelog.Debian"))
                    for p in path.iterdir()
                )
            except OSError:
                return False
        if _is_deb(path):
            return True
        if path.name.startswith("changelog.Debian"):
            return True
        return _looks_like_changelog(path)


def _fixed_key(advisory: Advisory) -> tuple[Any, ...]:
    version = advisory.affected[0].ranges[0].events[-1].version
    return parse_dpkg(version).key
