"""Python: distributions installed in a site-packages folder or seen by an interpreter.

A distribution is found by its metadata directory (PyPA "Recording installed projects"
specification): ``<name>-<version>.dist-info/METADATA`` (wheels, pip), or the older
``<name>.egg-info/PKG-INFO`` (setuptools; ``.egg-info`` may also be a plain file holding the
PKG-INFO text). ``Name`` and ``Version`` are read from the metadata (core metadata,
RFC 822 headers); names are normalised per PEP 503 and the ecosystem is ``PyPI``.

The collector's input is either

* a **folder** (``site-packages``/``dist-packages``), read directly, or
* an **interpreter** (an executable file such as ``venv/bin/python``): it is run as
  ``<interpreter> -I -c <script>`` to print the folders on its ``sys.path`` as JSON, and each
  folder is then read as above (``-I``: isolated mode, so the caller's ``PYTHONPATH`` and
  working directory do not leak in).

``location`` is the metadata directory's path. Debian and Ubuntu install their ``python3-*``
packages into ``/usr/lib/python3/dist-packages``; those are ALSO dpkg packages (and are
patched by the distro). They are kept; :func:`is_distro_managed` tells them apart from
pip-installed ones (which Debian puts in ``/usr/local/lib/python3.X/dist-packages``).
"""

from __future__ import annotations

import json
import subprocess
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

from packageurl import PackageURL
from packaging.utils import canonicalize_name

from patchwarden.errors import InventoryError, InventoryFormatError
from patchwarden.inventory.interface import Collector
from patchwarden.model import InstalledPackage

_SYS_PATH_SCRIPT = (
    "import json, os, sys; print(json.dumps([p for p in sys.path if p and os.path.isdir(p)]))"
)


def is_distro_managed(location: str) -> bool:
    """Whether a Python package location is the distro's own (dpkg) Python directory.

    Debian Python policy: distro packages go to ``/usr/lib/python3/dist-packages``; pip and
    local installs go to ``/usr/local/lib/python3.X/dist-packages`` or a venv.

    >>> is_distro_managed("/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info")
    True
    >>> is_distro_managed("/usr/local/lib/python3.11/dist-packages/rich-13.7.0.dist-info")
    False
    >>> is_distro_managed("/srv/app/.venv/lib/python3.11/site-packages/rich-13.7.0.dist-info")
    False
    """
    parts = PurePosixPath(location).parts
    for i in range(len(parts) - 3):
        if parts[i : i + 2] == ("usr", "lib") and parts[i + 2].startswith("python3"):
            return parts[i + 3] == "dist-packages" and (i == 0 or parts[i - 1] != "local")
    return False


def pypi_purl(name: str, version: str) -> str:
    """The purl of a PyPI distribution (purl-spec ``pypi``: PEP 503 name).

    >>> pypi_purl("Jinja2", "2.10")
    'pkg:pypi/jinja2@2.10'
    """
    return PackageURL(type="pypi", name=canonicalize_name(name), version=version).to_string()


def _metadata_file(entry: Path) -> Path | None:
    if entry.name.endswith(".dist-info") and entry.is_dir():
        return entry / "METADATA"
    if entry.name.endswith(".egg-info"):
        return entry / "PKG-INFO" if entry.is_dir() else entry
    return None


def read_site_packages(folder: Path) -> list[InstalledPackage]:
    """Every distribution recorded in ``folder`` (one per normalised name and version).

    A ``.dist-info`` wins over an ``.egg-info`` of the same name and version.
    """
    found: dict[tuple[str, str], InstalledPackage] = {}
    try:
        entries = sorted(folder.iterdir(), key=lambda p: (not p.name.endswith(".dist-info"), p))
    except OSError as exc:
        raise InventoryFormatError(f"{folder}: cannot list python folder: {exc}") from exc
    for entry in entries:
        meta = _metadata_file(entry)
        if meta is None:
            continue
        if not meta.is_file():
            raise InventoryFormatError(f"{entry}: metadata directory has no {meta.name} file")
        try:
            headers = HeaderParser().parsestr(meta.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            raise InventoryFormatError(f"{meta}: cannot read: {exc}") from exc
        name, version = headers.get("Name"), headers.get("Version")
        if not name or not version:
            missing = "Name" if not name else "Version"
            raise InventoryFormatError(f"{meta}: field {missing!r} is missing or empty")
        name, version = str(name).strip(), str(version).strip()
        key = (canonicalize_name(name), version)
        if key in found:
            continue
        found[key] = InstalledPackage(
            ecosystem="PyPI",
            name=key[0],
            version=version,
            purl=pypi_purl(name, version),
            location=str(entry),
        )
    return list(found.values())


def interpreter_site_dirs(interpreter: Path) -> list[Path]:
    """The existing folders on the ``sys.path`` of ``interpreter`` (run in isolated mode)."""
    try:
        done = subprocess.run(
            [str(interpreter), "-I", "-c", _SYS_PATH_SCRIPT],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InventoryError(f"{interpreter}: cannot run python interpreter: {exc}") from exc
    if done.returncode != 0:
        raise InventoryError(
            f"{interpreter}: python interpreter failed (exit {done.returncode}): "
            f"{done.stderr.strip()[:500]}"
        )
    try:
        dirs = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"{interpreter}: unexpected output {done.stdout[:200]!r}") from exc
    if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
        raise InventoryError(f"{interpreter}: unexpected output {done.stdout[:200]!r}")
    return [Path(d) for d in dirs]


class PythonCollector(Collector):
    """Reads a site-packages folder or asks an interpreter for its folders (see module doc)."""

    name = "python"

    def collect(self, path: Path, *, distro: str | None = None) -> list[InstalledPackage]:
        """Distributions in the folder ``path``, or on the ``sys.path`` of interpreter ``path``.

        ``distro`` is ignored (PyPI packages carry no distro release).
        """
        if path.is_dir():
            return read_site_packages(path)
        if not path.is_file():
            raise InventoryFormatError(f"{path}: no such python folder or interpreter")
        packages: list[InstalledPackage] = []
        seen: set[tuple[str, str, str | None]] = set()
        for folder in interpreter_site_dirs(path):
            for pkg in read_site_packages(folder):
                key = (pkg.name, pkg.version, pkg.location)
                if key not in seen:
                    seen.add(key)
                    packages.append(pkg)
        return packages

    def locate(self, root: Path) -> list[Path]:
        """``usr/lib/python3*/`` and ``usr/local/lib/python3*/`` site-/dist-packages folders."""
        found: list[Path] = []
        for pattern in (
            "usr/lib/python3*/site-packages",
            "usr/lib/python3*/dist-packages",
            "usr/local/lib/python3*/site-packages",
            "usr/local/lib/python3*/dist-packages",
        ):
            found.extend(p for p in sorted(root.glob(pattern)) if p.is_dir())
        return found
