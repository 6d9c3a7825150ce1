"""Alpine Linux secdb JSON (``secdb.alpinelinux.org/<release>/<repo>.json``).

The file is ``{distroversion, reponame, packages[{pkg{name, secfixes{"<fixed version>":
["CVE-..", "CVE-.. XSA-..", ...]}}}]}``. Each whitespace-separated token of a secfixes entry
is an upstream id, so ``"CVE-2023-44441 ZDI-CAN-22093"`` names two. One
:class:`~patchwarden.model.Advisory` is made per (release, package, upstream id), with id
``ALPINE-<release>-<package>-<upstream id>`` (unique across all secdb files: a package lives
in exactly one repository of a release), ecosystem ``Alpine:<release>`` and the package's
origin (source) name, which is what secdb is keyed by.

A fixed version ``"0"`` means the package was never affected (secdb convention), giving
``state = not_affected``. When the same id is listed under several fixed versions of one
package (184 times in the v3.19-v3.21 files, e.g. after an incomplete first fix), the record
gets one ``introduced 0 / fixed V`` range per version, so a version is affected while it is
below the highest fix.

secdb carries no dates, so ``modified`` is the file's mtime in UTC: a re-downloaded file is
newer and replaces the records an older one gave.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel._common import load_json_file, mtime_utc, read_head, type_name
from patchwarden.intel.interface import FeedInfo, FeedReader, FeedRecord
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

_RELEASE = re.compile(r"^(?:v\d+\.\d+|edge)$")
_APK_VERSION = re.compile(r"^[0-9][A-Za-z0-9._+~-]*$")
"""apk versions: ``1.2.3_rc1-r0``; digits first, then letters, ``._+~-`` (apk-tools version.c)."""
_UPSTREAM_ID = re.compile(
    r"^[A-Za-z][A-Za-z0-9._:-]*-[A-Za-z0-9._:-]*[0-9A-Za-z]$|^[A-Za-z]+[0-9]+$"
)


class AlpineSecdbReader(FeedReader):
    """Reads one Alpine secdb JSON file (``main.json`` or ``community.json`` of a release)."""

    name: ClassVar[str] = "alpine-secdb"

    def read(self, path: Path) -> Iterator[FeedRecord]:
        """Yield FeedInfo, then one Advisory (or Problem) per (package, upstream id)."""
        data = load_json_file(path)
        if not isinstance(data, dict) or not isinstance(data.get("packages"), list):
            raise FeedFormatError(
                f"{path} is not an alpine secdb file: expected an object with a 'packages' list"
            )
        release = data.get("distroversion")
        if not isinstance(release, str) or not _RELEASE.match(release):
            raise FeedFormatError(
                f"{path} is not an alpine secdb file: 'distroversion' is {release!r}, "
                "expected a release like 'v3.19'"
            )
        source = str(path)
        modified = mtime_utc(path)
        reponame = data.get("reponame")
        yield FeedInfo(feed="alpine", version=f"{release}/{reponame}", date=modified, path=source)
        for index, entry in enumerate(data["packages"]):
            yield from self._package(entry, index, release, source, modified)

    def _package(
        self, entry: object, index: int, release: str, source: str, modified: dt.datetime
    ) -> Iterator[Advisory | Problem]:
        base = f"packages[{index}]"
        pkg = entry.get("pkg") if isinstance(entry, dict) else None
        if not isinstance(pkg, dict):
            got = type_name(pkg if isinstance(entry, dict) else entry)
            yield Problem(
                source=source, field=f"{base}.pkg", reason=f"expected an object, got {got}"
            )
            return
        name = pkg.get("name")
        if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
            yield Problem(
                source=source, field=f"{base}.pkg.name", reason=f"not a package name: {name!r}"
            )
            return
        secfixes = pkg.get("secfixes", {})
        if not isinstance(secfixes, dict):
            yield Problem(
                source=source,
                record=name,
                field=f"{base}.pkg.secfixes",
                reason=f"expected an object of fixed version -> ids, got {type_name(secfixes)}",
            )
            return
        # upstream id -> fixed versions, in file order. An id listed under a malformed
        # version is dropped whole (with a Problem) rather than emitted with fewer ranges.
        fixes: dict[str, list[str]] = {}
        poisoned: set[str] = set()
        for version, ids in secfixes.items():
            vfield = f"{base}.pkg.secfixes[{version!r}]"
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                yield Problem(
                    source=source,
                    record=name,
                    field=vfield,
                    reason=f"expected a list of id strings, got {type_name(ids)}",
                )
                continue
            tokens = [t for text in ids for t in text.split()]
            if version != "0" and not _APK_VERSION.match(version):
                poisoned.update(tokens)
                yield Problem(
                    source=source,
                    record=name,
                    field=vfield,
                    reason=f"not an apk version: {version!r} (ids {', '.join(tokens)} skipped)",
                )
                continue
            for i, text in enumerate(ids):
                for token in text.split():
                    if not _UPSTREAM_ID.match(token) or "?" in token:
                        yield Problem(
                            source=source,
                            record=f"ALPINE-{release}-{name}-{token}",
                            field=f"{vfield}[{i}]",
                            reason=f"not an upstream id: {token!r} (in {text!r})",
                        )
                        continue
                    versions = fixes.setdefault(token, [])
                    if version not in versions:
                        versions.append(version)
                if not text.split():
                    yield Problem(
                        source=source, record=name, field=f"{vfield}[{i}]", reason="empty id"
                    )
        for upstream, versions in fixes.items():
            if upstream in poisoned:
                continue
            real = [v for v in versions if v != "0"]
            affected = Affected(
                ecosystem=f"Alpine:{release}",
                name=name,
                ranges=tuple(
                    AffectedRange(
                        type=RangeType.ECOSYSTEM,
                        events=(
                            RangeEvent(kind=EventKind.INTRODUCED, version="0"),
                            RangeEvent(kind=EventKind.FIXED, version=v),
                        ),
                    )
                    for v in real
                ),
                state=None if real else FixState.NOT_AFFECTED,
            )
            yield Advisory(
                id=VulnId(f"ALPINE-{release}-{name}-{upstream}"),
                source="alpine",
                modified=modified,
                upstream=(upstream,),
                affected=(affected,),
            )

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """JSON mentioning ``distroversion`` or ``secfixes`` near its start."""
        if path.is_dir():
            return False
        head = read_head(path, 8192)
        return b'"distroversion"' in head or b'"secfixes"' in head
