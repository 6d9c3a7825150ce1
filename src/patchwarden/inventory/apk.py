"""apk: Alpine's installed-package database ``/lib/apk/db/installed``.

The file is a list of package records separated by blank lines; each line is a one-letter
key, a colon and a value (apk-tools ``database.c``, "installed" db format): ``P:`` package
name, ``V:`` version, ``A:`` architecture, ``o:`` origin (the source package, i.e. the
APKBUILD name, which Alpine secdb advisories are keyed by), ``F:``/``R:`` file entries, and
more that are ignored here. A record without ``o:`` has the package itself as its origin.
"""

from __future__ import annotations

from pathlib import Path

from packageurl import PackageURL

from patchwarden.errors import InventoryFormatError
from patchwarden.inventory.interface import Collector
from patchwarden.model import InstalledPackage


def alpine_purl(name: str, version: str, *, arch: str | None, distro: str | None) -> str:
    """The purl of an Alpine package (purl-spec ``apk`` type, namespace ``alpine``).

    >>> alpine_purl("musl", "1.2.4_git20230717-r4", arch="x86_64", distro="Alpine:v3.19")
    'pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=3.19'
    """
    qualifiers: dict[str, str] = {}
    if arch:
        qualifiers["arch"] = arch
    if distro and ":" in distro:
        qualifiers["distro"] = distro.split(":", 1)[1].removeprefix("v")
    return PackageURL(
        type="apk", namespace="alpine", name=name, version=version, qualifiers=qualifiers
    ).to_string()


class ApkCollector(Collector):
    """Reads Alpine's ``lib/apk/db/installed`` (see module doc)."""

    name = "apk"

    def collect(self, path: Path, *, distro: str | None = None) -> list[InstalledPackage]:
        """Every package record of the apk installed database at ``path``."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InventoryFormatError(f"{path}: cannot read apk database: {exc}") from exc
        ecosystem = distro or "Alpine"
        packages: list[InstalledPackage] = []
        record: dict[str, str] = {}
        start = 0

        def flush() -> None:
            name = record.get("P")
            version = record.get("V")
            if not name:
                raise InventoryFormatError(f"{path}:{start}: package record has no 'P:' (name)")
            if not version:
                raise InventoryFormatError(
                    f"{path}:{start}: package {name!r} has no 'V:' (version)"
                )
            packages.append(
                InstalledPackage(
                    ecosystem=ecosystem,
                    name=name,
                    version=version,
                    source_name=record.get("o") or name,
                    source_version=version,
                    purl=alpine_purl(name, version, arch=record.get("A"), distro=distro),
                    location=str(path),
                )
            )

        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                if record:
                    flush()
                record = {}
                continue
            if len(line) < 2 or line[1] != ":":
                raise InventoryFormatError(
                    f"{path}:{lineno}: expected 'K:value' (one-letter key), got {line!r}"
                )
            if not record:
                start = lineno
            # Repeated keys (F:, R:, a:, Z:) describe files; only the first of each matters here.
            record.setdefault(line[0], line[2:])
        if record:
            flush()
        return packages

    def locate(self, root: Path) -> list[Path]:
        """``<root>/lib/apk/db/installed`` when it exists."""
        db = root / "lib" / "apk" / "db" / "installed"
        return [db] if db.is_file() else []
