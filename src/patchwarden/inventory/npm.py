"""npm: packages recorded in a ``package-lock.json`` (lockfileVersion 1, 2 and 3).

npm docs, "package-lock.json": versions 2 and 3 have a ``packages`` map keyed by the folder
path of each installed package (``node_modules/@scope/a/node_modules/b``); the package name
is the entry's ``name`` field when present, else the path part after the LAST
``node_modules/``. The root project (key ``""``) and ``link: true`` entries (symlinks to a
workspace folder, whose real entry is listed under its own path) are skipped. Version 1 has
a nested ``dependencies`` tree instead (name -> ``{version, dependencies}``); v2 files carry
both and are read from ``packages``.

Entries without a ``version`` (e.g. an optional dependency not installed on this platform is
still listed WITH a version, but a bundled/extraneous record may lack one) are skipped.
``location`` is ``<lockfile>#<path in the lock>`` so that the copy can be found.
Development dependencies (``dev: true``) are kept like the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from patchwarden.errors import InventoryFormatError
from patchwarden.inventory.interface import Collector
from patchwarden.model import InstalledPackage

_MARK = "node_modules/"


def npm_purl(name: str, version: str) -> str:
    """The purl of an npm package (purl-spec ``npm``: scope as namespace, ``@`` escaped).

    >>> npm_purl("@babel/core", "7.23.2")
    'pkg:npm/%40babel/core@7.23.2'
    >>> npm_purl("lodash", "4.17.20")
    'pkg:npm/lodash@4.17.20'
    """
    namespace, _, base = name.rpartition("/")
    return PackageURL(
        type="npm", namespace=namespace or None, name=base, version=version
    ).to_string()


def name_from_lock_path(key: str) -> str:
    """The package name for a v2/v3 ``packages`` key.

    >>> name_from_lock_path("node_modules/@scope/a/node_modules/b")
    'b'
    >>> name_from_lock_path("node_modules/a/node_modules/@types/node")
    '@types/node'
    """
    idx = key.rfind(_MARK)
    return key[idx + len(_MARK) :] if idx >= 0 else key


class NpmCollector(Collector):
    """Reads a ``package-lock.json`` (see module doc)."""

    name = "npm"

    def collect(self, path: Path, *, distro: str | None = None) -> list[InstalledPackage]:
        """Every installed package the lockfile at ``path`` records (``distro`` is ignored)."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InventoryFormatError(f"{path}: cannot read package-lock.json: {exc}") from exc
        if not isinstance(doc, dict):
            raise InventoryFormatError(f"{path}: top level is not a JSON object")
        version = doc.get("lockfileVersion")
        packages = doc.get("packages")
        if version in (2, 3) or (version is None and isinstance(packages, dict)):
            if not isinstance(packages, dict):
                raise InventoryFormatError(
                    f"{path}: field 'packages' is missing or not an object "
                    f"(lockfileVersion {version})"
                )
            return self._v2(packages, path)
        if version == 1:
            deps = doc.get("dependencies", {})
            if not isinstance(deps, dict):
                raise InventoryFormatError(f"{path}: field 'dependencies' is not an object")
            out: list[InstalledPackage] = []
            self._v1(deps, path, "dependencies", out)
            return out
        raise InventoryFormatError(
            f"{path}: field 'lockfileVersion' is {version!r}, expected 1, 2 or 3"
        )

    def locate(self, root: Path) -> list[Path]:
        """Lockfiles are per project, not per root: nothing is searched for."""
        return []

    @staticmethod
    def _v2(packages: dict[str, Any], path: Path) -> list[InstalledPackage]:
        out: list[InstalledPackage] = []
        for key, entry in packages.items():
            if key == "":
                continue
            if not isinstance(entry, dict):
                raise InventoryFormatError(f"{path}: packages[{key!r}] is not an object")
            if entry.get("link") is True:
                continue
            name = entry.get("name") or name_from_lock_path(key)
            version = entry.get("version")
            if version is None:
                continue
            if not isinstance(name, str) or not isinstance(version, str) or not name:
                raise InventoryFormatError(
                    f"{path}: packages[{key!r}]: field 'name'/'version' is not a string"
                )
            out.append(_package(name, version, f"{path}#{key}"))
        return out

    def _v1(
        self, deps: dict[str, Any], path: Path, where: str, out: list[InstalledPackage]
    ) -> None:
        for name, entry in deps.items():
            field = f"{where}.{name}"
            if not isinstance(entry, dict):
                raise InventoryFormatError(f"{path}: {field} is not an object")
            version = entry.get("version")
            if not isinstance(version, str) or not version:
                raise InventoryFormatError(f"{path}: {field}: field 'version' is missing")
            # v1 records a git/file dependency's source in 'version'; those are not registry
            # versions and cannot be matched against npm advisories.
            if ":" not in version:
                out.append(_package(name, version, f"{path}#{field}"))
            nested = entry.get("dependencies")
            if nested is not None:
                if not isinstance(nested, dict):
                    raise InventoryFormatError(f"{path}: {field}.dependencies is not an object")
                self._v1(nested, path, f"{field}.dependencies", out)


def _package(name: str, version: str, location: str) -> InstalledPackage:
    return InstalledPackage(
        ecosystem="npm",
        name=name,
        version=version,
        purl=npm_purl(name, version),
        location=location,
    )
