"""Changelogs of candidate upgrades, as Vuls gets them: ask apt, download the ``.deb``.

For each installed package with a newer candidate (``apt-get -s dist-upgrade``, or the
packages a caller names), ``apt-get download <pkg>=<candidate>`` fetches the package into a
cache folder; :class:`~patchwarden.intel.debian_changelog.DebianChangelogReader` then turns
the changelog inside it into advisories (``patchwarden feeds changelog`` does both).

apt runs as configured on this machine, or with a private configuration (``APT_CONFIG``,
:attr:`Apt.config`) or against another system's root (``-o Dir=ROOT``, :attr:`Apt.root`: its
``etc/apt/sources.list``, ``var/lib/dpkg/status`` and ``var/lib/apt/lists``, which must be
current: ``apt-get -o Dir=ROOT update``). Output is read with ``LC_ALL=C``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from patchwarden.errors import AptError

__all__ = [
    "Apt",
    "Candidate",
    "candidates_for",
    "deb_file_name",
    "download",
    "parse_simulation",
    "parse_upgradable",
    "upgrade_candidates",
]

_INST = re.compile(
    r"^Inst (?P<package>\S+) (?:\[(?P<installed>[^\]]+)\] )?"
    r"\((?P<version>\S+)(?: (?P<origin>[^\[)]*?))?(?: \[(?P<arch>[^\]]+)\])?\)"
)
_UPGRADABLE = re.compile(
    r"^(?P<package>[^/\s]+)/(?P<origin>\S+) (?P<version>\S+) (?P<arch>\S+) "
    r"\[upgradable from: (?P<installed>[^\]]+)\]"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A package and the version apt would install."""

    package: str
    """The binary package (``libssl3``; ``libc6:i386`` for a foreign architecture)."""
    version: str
    """The candidate version."""
    installed: str | None = None
    """The installed version, None when not installed."""
    arch: str | None = None
    """The candidate's architecture when apt said it."""
    origin: str | None = None
    """Where apt takes it from (``Debian-Security:12/stable-security``), when said."""

    @property
    def spec(self) -> str:
        """``package=version`` as ``apt-get download`` takes it."""
        return f"{self.package}={self.version}"


def parse_simulation(text: str) -> list[Candidate]:
    """The upgrades in ``apt-get -s dist-upgrade`` (or ``upgrade``) output: its ``Inst`` lines
    that replace an installed version (new installs are skipped: they have no old version
    whose fixes matter).

    >>> parse_simulation(
    ...     "Inst libssl3 [3.0.17-1~deb12u2] (3.0.22-1~deb12u2 "
    ...     "Debian-Security:12/stable-security [amd64])\\n"
    ...     "Inst libfoo (1.0-1 Debian:12.5/stable [all])\\n"
    ...     "Conf libssl3 (3.0.22-1~deb12u2 Debian-Security:12/stable-security [amd64])\\n"
    ... )  # doctest: +NORMALIZE_WHITESPACE
    [Candidate(package='libssl3', version='3.0.22-1~deb12u2', installed='3.0.17-1~deb12u2',
               arch='amd64', origin='Debian-Security:12/stable-security')]
    """
    matches = (_INST.match(line) for line in text.splitlines())
    return [_candidate(m) for m in matches if m is not None and m["installed"] is not None]


def parse_upgradable(text: str) -> list[Candidate]:
    """The upgrades in ``apt list --upgradable`` output.

    >>> parse_upgradable(
    ...     "Listing...\\n"
    ...     "openssl/stable-security 3.0.22-1~deb12u2 amd64 "
    ...     "[upgradable from: 3.0.17-1~deb12u2]\\n"
    ... )  # doctest: +NORMALIZE_WHITESPACE
    [Candidate(package='openssl', version='3.0.22-1~deb12u2', installed='3.0.17-1~deb12u2',
               arch='amd64', origin='stable-security')]
    """
    matches = (_UPGRADABLE.match(line) for line in text.splitlines())
    return [_candidate(m) for m in matches if m is not None]


def _candidate(m: re.Match[str]) -> Candidate:
    """A :class:`Candidate` from a match of :data:`_INST` or :data:`_UPGRADABLE`."""
    return Candidate(
        package=m["package"],
        version=m["version"],
        installed=m["installed"],
        arch=m["arch"],
        origin=(m["origin"] or "").strip() or None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Apt:
    """How to run apt: this machine's configuration, a private one, or another root."""

    config: Path | None = None
    """A private apt configuration file (``APT_CONFIG``)."""
    root: Path | None = None
    """Another system's root folder (``-o Dir=ROOT``)."""
    options: tuple[str, ...] = ()
    """More ``-o Name=Value`` settings."""
    timeout: float = 900.0
    """Seconds one apt command may take."""

    def argv(self, tool: str, *args: str) -> list[str]:
        """The command line of ``tool`` (``apt-get``, ``apt-cache``) with these settings."""
        argv = [tool, "-q"]
        if self.root is not None:
            argv += ["-o", f"Dir={self.root}"]
        if os.geteuid() == 0:
            # apt drops to the _apt user to download, which cannot write into a root-owned
            # cache folder; root downloads itself instead of warning about it.
            argv += ["-o", "APT::Sandbox::User=root"]
        for option in self.options:
            argv += ["-o", option]
        return [*argv, *args]

    def env(self) -> dict[str, str]:
        """The environment: ``LC_ALL=C`` for parseable output, ``APT_CONFIG`` when set."""
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("LANGUAGE", None)
        if self.config is not None:
            env["APT_CONFIG"] = str(self.config)
        return env

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        """Run an apt command and return its standard output; :class:`AptError` when it
        fails, naming the command and apt's own message."""
        argv = self.argv(tool, *args)
        if shutil.which(tool) is None:
            raise AptError(f"{tool} is not installed (needed to find candidate upgrades)")
        try:
            done = subprocess.run(
                argv,
                cwd=cwd,
                env=self.env(),
                capture_output=True,
                text=True,
                check=False,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise AptError(f"{' '.join(argv)} took longer than {self.timeout:.0f} s") from exc
        except OSError as exc:
            raise AptError(f"cannot run {' '.join(argv)}: {exc}") from exc
        if done.returncode != 0:
            lines = [ln for ln in done.stderr.splitlines() if ln.startswith(("E:", "W:"))]
            why = " ".join(lines or done.stderr.strip().splitlines()[-3:]) or "no message"
            raise AptError(f"{' '.join(argv)} failed (exit {done.returncode}): {why}")
        return done.stdout


def upgrade_candidates(apt: Apt | None = None) -> list[Candidate]:
    """Every installed package with a newer candidate (``apt-get -s dist-upgrade``).

    ``dist-upgrade`` rather than ``upgrade``: a package ``upgrade`` holds back (it needs a new
    dependency) still has a candidate whose changelog says what it fixes.
    """
    apt = apt or Apt()
    return parse_simulation(apt.run("apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade"))


def candidates_for(specs: Iterable[str], apt: Apt | None = None) -> list[Candidate]:
    """Candidates for named packages: ``pkg=version`` as given, ``pkg`` at apt's candidate
    version (``apt-cache policy``); :class:`AptError` when apt has none."""
    apt = apt or Apt()
    out: list[Candidate] = []
    for spec in specs:
        package, sep, version = spec.partition("=")
        if not package or (sep and not version):
            raise AptError(f"not a package or package=version: {spec!r}")
        if sep:
            out.append(Candidate(package=package, version=version))
            continue
        policy = apt.run("apt-cache", "policy", package)
        installed = re.search(r"^\s*Installed: (\S+)", policy, re.MULTILINE)
        candidate = re.search(r"^\s*Candidate: (\S+)", policy, re.MULTILINE)
        if candidate is None or candidate[1] == "(none)":
            raise AptError(f"apt knows no candidate version of {package!r}")
        out.append(
            Candidate(
                package=package,
                version=candidate[1],
                installed=installed[1] if installed and installed[1] != "(none)" else None,
            )
        )
    return out


def deb_file_name(package: str, version: str, arch: str) -> str:
    """The file name ``apt-get download`` gives a package (an epoch's ``:`` is ``%3a``).

    >>> deb_file_name("libc6:i386", "1:2.36-9", "i386")
    'libc6_1%3a2.36-9_i386.deb'
    """
    return f"{package.split(':', 1)[0]}_{version.replace(':', '%3a')}_{arch}.deb"


def download(
    candidates: Sequence[Candidate], cache_dir: Path, apt: Apt | None = None
) -> list[Path]:
    """``apt-get download`` each candidate into ``cache_dir`` unless it is already there;
    the paths of every candidate's ``.deb``, in the candidates' order.

    Files are downloaded into a temporary folder inside ``cache_dir`` and renamed into place,
    so an interrupted download never leaves a half file that looks cached.
    """
    apt = apt or Apt()
    cache_dir.mkdir(parents=True, exist_ok=True)
    found: dict[Candidate, Path] = {}
    wanted: list[Candidate] = []
    for c in candidates:
        cached = sorted(cache_dir.glob(deb_file_name(c.package, c.version, c.arch or "*")))
        if cached:
            found[c] = cached[0]
        else:
            wanted.append(c)
    if wanted:
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
            apt.run("apt-get", "download", *(c.spec for c in wanted), cwd=Path(tmp))
            for item in Path(tmp).glob("*.deb"):
                item.replace(cache_dir / item.name)
        for c in wanted:
            cached = sorted(cache_dir.glob(deb_file_name(c.package, c.version, c.arch or "*")))
            if not cached:
                raise AptError(f"apt-get download {c.spec} left no .deb in {cache_dir}")
            found[c] = cached[0]
    return [found[c] for c in candidates]
