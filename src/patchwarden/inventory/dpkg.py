"""dpkg: the ``status`` database of Debian and Ubuntu, or a saved ``dpkg-query`` listing.

Two inputs are accepted, told apart by their first non-blank line:

* **The status file** (``/var/lib/dpkg/status``, ``deb-control(5)`` / RFC 822 style):
  stanzas of ``Field: value`` lines separated by blank lines; lines starting with a space
  continue the previous field. Only packages whose ``Status`` is ``install ok installed``
  or ``hold ok installed`` are kept (``deinstall ok config-files`` and half-installed
  packages are not installed). ``Source: openssl (3.0.11-1~deb12u2)`` gives the source
  package and its version; ``Source: glibc`` gives the name only (the source version is then
  the binary version); no ``Source`` means the source package has the binary's name and
  version.
* **A saved dpkg-query listing**, one package per line, tab-separated, made on the host with::

      dpkg-query -W -f='${Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\n'

  An optional fifth column ``${db:Status-Abbrev}`` is honoured: when present, only lines whose
  status starts with ``ii`` or ``hi`` (installed, wanted install/hold) are kept. Without it,
  lines with an empty version (packages dpkg knows but never installed) are skipped.

Distro advisories (Debian DSA/DLA, OSV ``Debian:12``) are keyed by the source package, so
``source_name``/``source_version`` are always set.
"""

from __future__ import annotations

import functools
import re
from itertools import repeat
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from patchwarden.ecosystems import DEBIAN_CODENAMES
from patchwarden.errors import InventoryFormatError
from patchwarden.inventory.interface import Collector
from patchwarden.model import InstalledPackage, InventoryRow

_INSTALLED = {("install", "ok", "installed"), ("hold", "ok", "installed")}
_SOURCE_RE = re.compile(r"^(?P<name>[^\s(]+)(?:\s+\((?P<version>[^)\s]+)\))?$")
_CODENAME_BY_RELEASE = {v: k for k, v in DEBIAN_CODENAMES.items()}


def parse_stanzas(text: str, *, source: str) -> list[tuple[int, dict[str, str]]]:
    """Split deb-control text into ``(first line number, fields)`` stanzas.

    Continuation lines are joined to their field with a newline.

    >>> parse_stanzas("Package: a\\nDescription: x\\n more\\n\\nPackage: b\\n", source="s")
    [(1, {'Package': 'a', 'Description': 'x\\nmore'}), (5, {'Package': 'b'})]
    """
    stanzas: list[tuple[int, dict[str, str]]] = []
    fields: dict[str, str] = {}
    start = 0
    last: str | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if fields:
                stanzas.append((start, fields))
            fields, last = {}, None
            continue
        if line[0] in " \t":
            if last is None:
                raise InventoryFormatError(
                    f"{source}:{lineno}: continuation line outside a field: {line!r}"
                )
            fields[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key:
            raise InventoryFormatError(f"{source}:{lineno}: expected 'Field: value', got {line!r}")
        if not fields:
            start = lineno
        last = key
        fields[key] = value.strip()
    if fields:
        stanzas.append((start, fields))
    return stanzas


def debian_purl(
    name: str, version: str, *, arch: str | None, distro: str | None, vendor: str = "debian"
) -> str:
    """The purl of a Debian/Ubuntu binary package (purl-spec ``deb`` type).

    The ``distro`` qualifier is the codename when known (``bookworm``), else the release.

    >>> debian_purl("libssl3", "3.0.11-1~deb12u2", arch="amd64", distro="Debian:12")
    'pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=bookworm'
    >>> debian_purl("curl", "7.81.0-1", arch=None, distro="Ubuntu:22.04", vendor="ubuntu")
    'pkg:deb/ubuntu/curl@7.81.0-1?distro=22.04'
    """
    qualifiers: dict[str, str] = {}
    if arch:
        qualifiers["arch"] = arch
    release = distro.split(":", 1)[1] if distro and ":" in distro else None
    if release:
        qualifiers["distro"] = _CODENAME_BY_RELEASE.get(release, release)
    return PackageURL(
        type="deb", namespace=vendor, name=name, version=version, qualifiers=qualifiers
    ).to_string()


def _vendor(distro: str | None) -> tuple[str, str]:
    """(ecosystem, purl namespace) for a dpkg-based distro string."""
    if distro is None:
        return "Debian", "debian"
    base = distro.split(":", 1)[0]
    return distro, base.lower()


class DpkgCollector(Collector):
    """Reads a dpkg ``status`` file or a saved ``dpkg-query -W`` listing (see module doc)."""

    name = "dpkg"

    def collect(self, path: Path, *, distro: str | None = None) -> list[InstalledPackage]:
        """Installed packages of the status file or listing at ``path``."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InventoryFormatError(f"{path}: cannot read dpkg database: {exc}") from exc
        if _is_listing(_first_line(text)):
            return self._from_listing(text, path, distro)
        return self._from_status(text, path, distro)

    def collect_rows(self, path: Path, *, distro: str | None = None) -> list[InventoryRow]:
        """:meth:`collect` as inventory rows, straight from the status file's bytes.

        A fleet's hosts share most stanzas byte for byte, so each distinct stanza is parsed
        once per process and remembered with its row line and purl: a 1,500-package status
        file then costs one split and 1,500 dictionary look-ups, with no text decoding and no
        :class:`~patchwarden.model.InstalledPackage` per package. Anything unusual (a
        dpkg-query listing, CR line ends, bytes that are not UTF-8, a stanza the fast parse
        rejects) goes through :meth:`collect`, which reports errors with their line.
        """
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InventoryFormatError(f"{path}: cannot read dpkg database: {exc}") from exc
        first = _first_line(data)
        if b"\r" in data or _is_listing(first.decode("utf-8", "replace")):
            return super().collect_rows(path, distro=distro)
        ecosystem, vendor = _vendor(distro)
        memo = _ROWS.get((ecosystem, distro))
        if memo is None or len(memo) > _MEMO_MAX:
            memo = _ROWS[(ecosystem, distro)] = {}
        blocks = data.split(b"\n\n")
        # a C-level look-up pass; a stanza not seen before in this process gives None
        found: list[Any] = list(map(memo.get, blocks))
        if None in found:
            for i, block in enumerate(blocks):
                if found[i] is not None:
                    continue
                parsed = _block_package(block)
                if parsed is _UNUSUAL:
                    return super().collect_rows(path, distro=distro)
                row: tuple[str, str] | tuple[()] = ()
                if parsed is not None:
                    name, version, source_name, source_version, arch = parsed
                    row = (
                        "\t".join((ecosystem, name, version, source_name, source_version)),
                        _purl(name, version, arch, distro, vendor),
                    )
                found[i] = memo[block] = row
        # () (blank, or not installed) drops out; of duplicate lines the last one wins, as in
        # inventory_rows
        purls: dict[str, str] = dict(filter(None, found))
        lines = sorted(purls)  # distinct lines: sorting them sorts the rows
        return list(zip(lines, repeat(str(path)), map(purls.__getitem__, lines), strict=False))

    def locate(self, root: Path) -> list[Path]:
        """``<root>/var/lib/dpkg/status`` when it exists."""
        status = root / "var" / "lib" / "dpkg" / "status"
        return [status] if status.is_file() else []

    def _from_status(self, text: str, path: Path, distro: str | None) -> list[InstalledPackage]:
        ecosystem, vendor = _vendor(distro)
        location = str(path)
        found = _from_status_memo(text) if "\r" not in text else None
        if found is None:  # something unusual (or wrong): the line-numbered parse
            found = []
            for lineno, fields in parse_stanzas(text, source=location):
                found.append(_stanza_package(fields, f"{path}:{lineno}"))
        packages: list[InstalledPackage] = []
        for item in found:
            if item is None:
                continue
            name, version, source_name, source_version, arch = item
            packages.append(
                InstalledPackage(
                    ecosystem=ecosystem,
                    name=name,
                    version=version,
                    source_name=source_name,
                    source_version=source_version,
                    purl=_purl(name, version, arch, distro, vendor),
                    location=location,
                )
            )
        return packages

    def _from_listing(self, text: str, path: Path, distro: str | None) -> list[InstalledPackage]:
        ecosystem, vendor = _vendor(distro)
        packages: list[InstalledPackage] = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) not in (4, 5):
                raise InventoryFormatError(
                    f"{path}:{lineno}: expected 4 or 5 tab-separated columns "
                    f"(package, version, source package, source version[, status]), "
                    f"got {len(cols)}"
                )
            name, version, source_name, source_version = (c.strip() for c in cols[:4])
            if not name:
                raise InventoryFormatError(f"{path}:{lineno}: empty package name")
            if len(cols) == 5 and cols[4].strip()[:2] not in {"ii", "hi"}:
                continue
            if not version:
                continue
            packages.append(
                InstalledPackage(
                    ecosystem=ecosystem,
                    name=name,
                    version=version,
                    source_name=source_name or name,
                    source_version=source_version or version,
                    purl=debian_purl(name, version, arch=None, distro=distro, vendor=vendor),
                    location=str(path),
                )
            )
        return packages


_Parsed = tuple[str, str, str, str, str | None] | None
"""(name, version, source name, source version, architecture) of an installed stanza; None
for a stanza that is not installed."""

_MEMO: dict[str, _Parsed] = {}
_MEMO_MAX = 200_000
_ROWS: dict[tuple[str, str | None], dict[bytes, tuple[str, str] | tuple[()]]] = {}
"""Per (ecosystem, distro): stanza bytes -> (row line, purl), () when blank or not installed."""
_UNUSUAL = object()
_FIELD_RE = re.compile(r"^[A-Za-z][\w-]*:")


def _first_line(text: Any) -> Any:
    """The first line with something on it (str or bytes), without splitting the whole text.

    >>> _first_line("\\n  \\nPackage: a\\nVersion: 1\\n"), _first_line(b"x\\ty")
    ('Package: a', b'x\\ty')
    """
    newline = "\n" if isinstance(text, str) else b"\n"
    start = 0
    while start < len(text):
        end = text.find(newline, start)
        end = len(text) if end < 0 else end
        line = text[start:end]
        if line.strip():
            return line.rstrip("\r" if isinstance(text, str) else b"\r")
        start = end + 1
    return text[:0]


def _is_listing(first: str) -> bool:
    """True when the first line is a dpkg-query listing line, not a ``Field: value`` line."""
    return "\t" in first and _FIELD_RE.match(first) is None


def _block_package(block: bytes) -> Any:
    """:func:`_stanza_package` of one blank-line separated block of a status file.

    None for a blank block or a package that is not installed; ``_UNUSUAL`` when the block
    is not one plain stanza in UTF-8 (the caller then parses the whole file with line
    numbers, which explains what is wrong).
    """
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return _UNUSUAL
    if not text.strip():
        return None
    try:
        stanzas = parse_stanzas(text, source="")
        if len(stanzas) != 1:
            return _UNUSUAL
        return _stanza_package(stanzas[0][1], "")
    except InventoryFormatError:
        return _UNUSUAL


def _stanza_package(fields: dict[str, str], where: str) -> _Parsed:
    """Validate one stanza's fields (``where`` is ``file:line`` for errors)."""
    name = fields.get("Package")
    if not name:
        raise InventoryFormatError(f"{where}: stanza has no 'Package' field")
    where = f"{where}: package {name!r}"
    if "Status" not in fields:
        raise InventoryFormatError(f"{where}: field 'Status' is missing")
    status = tuple(fields["Status"].split())
    if len(status) != 3:
        raise InventoryFormatError(
            f"{where}: field 'Status' must have 3 words, got {fields.get('Status')!r}"
        )
    if status not in _INSTALLED:
        return None
    version = fields.get("Version")
    if not version:
        raise InventoryFormatError(f"{where}: installed package has no 'Version' field")
    source_name, source_version = name, version
    if "Source" in fields:
        match = _SOURCE_RE.match(fields["Source"])
        if match is None:
            raise InventoryFormatError(
                f"{where}: field 'Source' is not 'name [(version)]': {fields['Source']!r}"
            )
        source_name = match["name"]
        source_version = match["version"] or version
    return name, version, source_name, source_version, fields.get("Architecture")


def _from_status_memo(text: str) -> list[_Parsed] | None:
    """Fast path: stanzas split on blank lines, each parsed once per process.

    A fleet's hosts share most of their stanzas byte for byte, so a collector reading
    thousands of status files parses each distinct stanza once. Returns None when a stanza
    is not a plain one (a whitespace-only line inside, a format error): the caller then runs
    the line-numbered parse, which reports errors with their line.
    """
    if len(_MEMO) > _MEMO_MAX:
        _MEMO.clear()
    out: list[_Parsed] = []
    for block in text.split("\n\n"):
        try:
            out.append(_MEMO[block])
            continue
        except KeyError:
            pass
        if not block.strip():
            continue
        try:
            stanzas = parse_stanzas(block, source="")
        except InventoryFormatError:
            return None
        if len(stanzas) != 1:
            return None
        try:
            parsed = _stanza_package(stanzas[0][1], "")
        except InventoryFormatError:
            return None
        _MEMO[block] = parsed
        out.append(parsed)
    return out


@functools.lru_cache(maxsize=65_536)
def _purl(name: str, version: str, arch: str | None, distro: str | None, vendor: str) -> str:
    return debian_purl(name, version, arch=arch, distro=distro, vendor=vendor)
