"""rpm: installed RPM packages, read live from an rpm database or from saved query output.

Two inputs are accepted:

* **An rpm database directory** under a filesystem root (``var/lib/rpm`` or
  ``usr/lib/sysimage/rpm``, as :meth:`RpmCollector.locate` finds them). The ``rpm`` tool is
  run on it with ``--dbpath`` (so the host's own database is never read) and the query
  format below; the database backend must be one the local rpm can read (rpm 4.16+ reads
  the sqlite databases of RHEL/Rocky/Alma 9 and Fedora; ``bdb_ro`` reads older BerkeleyDB).
* **A saved listing**, the output of this command run on the host::

      rpm -qa --queryformat \\
        '%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n'

The version is ``[epoch:]version-release`` with the epoch left out when it is 0, as OSV's
Red Hat/Rocky/AlmaLinux records spell it. The source package name comes from the source
rpm file name (``openssl-3.0.7-24.el9.src.rpm`` -> ``openssl``, version ``3.0.7-24.el9``
plus the binary's epoch); ``(none)`` (e.g. ``gpg-pubkey``) means the package is its own
source.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from packageurl import PackageURL

from patchwarden.errors import InventoryError, InventoryFormatError
from patchwarden.inventory.interface import Collector
from patchwarden.model import InstalledPackage

QUERY_FORMAT = "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n"
"""The ``--queryformat`` both the live query and saved listings use."""

DB_DIRS = ("var/lib/rpm", "usr/lib/sysimage/rpm")
"""Where an rpm database lives under a filesystem root."""

_VENDOR = {
    "Red Hat": "redhat",
    "Rocky Linux": "rocky",
    "AlmaLinux": "almalinux",
    "SUSE": "suse",
    "openSUSE": "opensuse",
}


def split_source_rpm(srpm: str) -> tuple[str, str] | None:
    """``(name, version-release)`` of a source rpm file name; None for ``(none)``.

    >>> split_source_rpm("openssl-3.0.7-24.el9.src.rpm")
    ('openssl', '3.0.7-24.el9')
    >>> split_source_rpm("python3.11-3.11.5-1.el9_3.src.rpm")
    ('python3.11', '3.11.5-1.el9_3')
    >>> split_source_rpm("(none)") is None
    True
    """
    if srpm in {"", "(none)"}:
        return None
    stem = srpm.removesuffix(".rpm")
    stem = stem.rsplit(".", 1)[0] if stem.endswith((".src", ".nosrc")) else stem
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"source rpm {srpm!r} is not name-version-release.src.rpm")
    return parts[0], f"{parts[1]}-{parts[2]}"


def rpm_evr(epoch: str, version: str, release: str) -> str:
    """``[epoch:]version-release`` with a zero or empty epoch left out.

    >>> rpm_evr("0", "3.0.7", "24.el9")
    '3.0.7-24.el9'
    >>> rpm_evr("1", "1.1.1k", "7.el8_6")
    '1:1.1.1k-7.el8_6'
    """
    evr = f"{version}-{release}"
    return evr if epoch in {"", "0", "(none)"} else f"{epoch}:{evr}"


def parse_rpm_listing(text: str, *, source: str, distro: str | None) -> list[InstalledPackage]:
    """Packages of ``rpm -qa --queryformat QUERY_FORMAT`` output."""
    ecosystem = distro or "Red Hat"
    vendor = _VENDOR.get(ecosystem.split(":", 1)[0])
    packages: list[InstalledPackage] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 6:
            raise InventoryFormatError(
                f"{source}:{lineno}: expected 6 tab-separated columns (name, epoch, version, "
                f"release, arch, source rpm), got {len(cols)}"
            )
        name, epoch, version, release, arch, srpm = (c.strip() for c in cols)
        where = f"{source}:{lineno}: package {name!r}"
        if not name or not version or not release:
            raise InventoryFormatError(f"{where}: empty name, version or release")
        if epoch not in {"", "(none)"} and not epoch.isdigit():
            raise InventoryFormatError(f"{where}: field 'epoch' is not a number: {epoch!r}")
        try:
            split = split_source_rpm(srpm)
        except ValueError as exc:
            raise InventoryFormatError(f"{where}: field 'sourcerpm': {exc}") from exc
        evr = rpm_evr(epoch, version, release)
        src_name, src_version = (
            (name, evr) if split is None else (split[0], rpm_evr(epoch, *split[1].split("-", 1)))
        )
        qualifiers = {"arch": arch} if arch and arch != "(none)" else {}
        if epoch not in {"", "0", "(none)"}:
            qualifiers["epoch"] = epoch
        if distro and ":" in distro:
            qualifiers["distro"] = f"{vendor or 'rpm'}-{distro.split(':', 1)[1]}"
        purl = PackageURL(
            type="rpm",
            namespace=vendor,
            name=name,
            version=f"{version}-{release}",
            qualifiers=qualifiers,
        ).to_string()
        packages.append(
            InstalledPackage(
                ecosystem=ecosystem,
                name=name,
                version=evr,
                source_name=src_name,
                source_version=src_version,
                purl=purl,
                location=source,
            )
        )
    return packages


class RpmCollector(Collector):
    """Reads an rpm database directory (runs ``rpm``) or a saved listing (see module doc)."""

    name = "rpm"

    def collect(self, path: Path, *, distro: str | None = None) -> list[InstalledPackage]:
        """Installed packages from the database directory or listing file at ``path``."""
        if path.is_dir():
            return parse_rpm_listing(self._query(path), source=str(path), distro=distro)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InventoryFormatError(f"{path}: cannot read rpm listing: {exc}") from exc
        return parse_rpm_listing(text, source=str(path), distro=distro)

    def locate(self, root: Path) -> list[Path]:
        """The first rpm database directory under ``root`` that holds a database."""
        for rel in DB_DIRS:
            candidate = root / rel
            if candidate.is_dir() and any(candidate.iterdir()):
                return [candidate]
        return []

    @staticmethod
    def _query(dbpath: Path) -> str:
        rpm = shutil.which("rpm")
        if rpm is None:
            raise InventoryError(
                f"{dbpath}: reading an rpm database needs the 'rpm' tool, which is not installed"
            )
        cmd = [rpm, "--dbpath", str(dbpath.resolve()), "-qa", "--queryformat", QUERY_FORMAT]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InventoryError(f"{dbpath}: running rpm failed: {exc}") from exc
        if done.returncode != 0:
            raise InventoryFormatError(
                f"{dbpath}: rpm could not read the database (exit {done.returncode}): "
                f"{done.stderr.strip()[:500]}"
            )
        return done.stdout
