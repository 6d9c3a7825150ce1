"""Reading ``os-release`` into an OSV ecosystem string.

``os-release(5)``: a file of ``KEY=value`` lines (values optionally quoted with shell
quoting), at ``/etc/os-release`` with ``/usr/lib/os-release`` as the fallback. ``ID`` and
``VERSION_ID`` name the distribution and release; OSV spells the ecosystem as ``Debian:12``,
``Ubuntu:22.04``, ``Alpine:v3.19`` (major.minor only), ``Red Hat:9``, ``Rocky Linux:9``,
``AlmaLinux:9`` (OSV schema 1.6, "affected[].package.ecosystem").
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from patchwarden.ecosystems import DEBIAN_CODENAMES
from patchwarden.errors import InventoryFormatError

_BASE_BY_ID = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "alpine": "Alpine",
    "rhel": "Red Hat",
    "rocky": "Rocky Linux",
    "almalinux": "AlmaLinux",
    "sles": "SUSE",
    "opensuse-leap": "openSUSE",
}
"""os-release ``ID`` to OSV base ecosystem."""


def parse_os_release(text: str, *, source: str = "<os-release>") -> dict[str, str]:
    """Parse os-release text into a dict; comments and blank lines are skipped.

    >>> parse_os_release('ID=debian\\nVERSION_ID="12"\\n# c\\n')
    {'ID': 'debian', 'VERSION_ID': '12'}
    """
    fields: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, raw = stripped.partition("=")
        if not sep or not key.strip():
            raise InventoryFormatError(f"{source}:{lineno}: expected KEY=value, got {line!r}")
        try:
            words = shlex.split(raw, posix=True)
        except ValueError as exc:
            raise InventoryFormatError(
                f"{source}:{lineno}: field {key.strip()!r}: bad quoting in {raw!r}"
            ) from exc
        fields[key.strip()] = " ".join(words)
    return fields


def ecosystem_from_os_release(fields: dict[str, str]) -> str | None:
    """The OSV ecosystem for parsed os-release fields, or None for an unknown distro.

    >>> ecosystem_from_os_release({"ID": "alpine", "VERSION_ID": "3.19.1"})
    'Alpine:v3.19'
    >>> ecosystem_from_os_release({"ID": "debian", "VERSION_CODENAME": "trixie"})
    'Debian:13'
    >>> ecosystem_from_os_release({"ID": "debian", "VERSION_CODENAME": "sid"})
    'Debian'
    >>> ecosystem_from_os_release({"ID": "rhel", "VERSION_ID": "9.3"})
    'Red Hat:9'
    >>> ecosystem_from_os_release({"ID": "ubuntu", "VERSION_ID": "22.04"})
    'Ubuntu:22.04'
    >>> ecosystem_from_os_release({"ID": "linuxmint", "ID_LIKE": "ubuntu"}) is None
    True
    """
    distro_id = fields.get("ID", "").lower()
    base = _BASE_BY_ID.get(distro_id)
    if base is None:
        return None
    version = fields.get("VERSION_ID", "").strip()
    if distro_id == "debian":
        if version:
            return f"{base}:{version.split('.')[0]}"
        release = DEBIAN_CODENAMES.get(fields.get("VERSION_CODENAME", "").lower())
        return f"{base}:{release}" if release else base
    if not version:
        return base
    if distro_id == "alpine":
        return f"{base}:v{'.'.join(version.split('.')[:2])}"
    if distro_id in {"rhel", "rocky", "almalinux"}:
        return f"{base}:{version.split('.')[0]}"
    return f"{base}:{version}"


def os_release_path(root: Path) -> Path | None:
    """``<root>/etc/os-release``, else ``<root>/usr/lib/os-release``, else None.

    An absolute symlink (``/etc/os-release -> /usr/lib/os-release`` in some images) is
    followed inside ``root``, never to the scanning host's own file.
    """
    for candidate in (root / "etc" / "os-release", root / "usr" / "lib" / "os-release"):
        if candidate.is_symlink():
            target = Path(os.readlink(candidate))
            if target.is_absolute():
                candidate = root / target.relative_to(target.anchor)
        if candidate.is_file():
            return candidate
    return None


def read_os_release(root: Path) -> str | None:
    """The OSV ecosystem of the filesystem ``root`` (``Debian:12``), or None when unknown.

    Returns None when there is no os-release file or the distro is not one patchwarden knows.
    """
    path = os_release_path(root)
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryFormatError(f"{path}: cannot read os-release: {exc}") from exc
    return ecosystem_from_os_release(parse_os_release(text, source=str(path)))
