"""``patchwarden feeds changelog``: import the changelogs of candidate upgrades (as Vuls does)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from patchwarden.cli.main import (
    Exit,
    _fail,
    _import_json,
    _observer,
    _print_json,
    _show_import,
    _store,
    feeds_app,
    out,
)
from patchwarden.errors import IntelError
from patchwarden.intel.apt_changelogs import Apt, candidates_for, download, upgrade_candidates
from patchwarden.intel.debian_changelog import DebianChangelogReader
from patchwarden.service import import_feeds


def _default_cache() -> Path:
    return Path.home() / ".cache" / "patchwarden" / "debs"


@feeds_app.command("changelog")
def feeds_changelog(
    packages: Annotated[
        list[str] | None,
        typer.Argument(
            help="Packages (pkg or pkg=version); default: every package with a candidate upgrade.",
            show_default=False,
        ),
    ] = None,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="Ask the apt of this system root instead (-o Dir=ROOT; run "
            "'apt-get -o Dir=ROOT update' first).",
        ),
    ] = None,
    apt_config: Annotated[
        Path | None, typer.Option("--apt-config", help="A private apt configuration (APT_CONFIG).")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Where .deb files are kept (~/.cache/patchwarden/debs)."),
    ] = None,
    release: Annotated[
        str | None,
        typer.Option(
            "--release", help="The release of the changelogs (12, bookworm) when apt's is unclear."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Download the candidate upgrades' .deb files and import the CVE ids their Debian
    changelogs say they fix (source package, fixed version, release).

    The candidates come from 'apt-get -s dist-upgrade' (or the packages named); each is
    fetched with 'apt-get download pkg=version' into the cache folder (kept for next time)
    and read by the debian-changelog reader.

    Example:

      patchwarden feeds changelog                   # every upgradable package of this machine

      patchwarden feeds changelog openssl libssl3=3.0.22-1~deb12u2
    """
    for path, what in ((root, "--root"), (apt_config, "--apt-config")):
        if path is not None and not path.exists():
            raise _fail(f"{what}: no such file or directory: {path}", Exit.USAGE)
    apt = Apt(config=apt_config, root=root)
    try:
        reader = DebianChangelogReader(release=release)
        candidates = candidates_for(packages, apt) if packages else upgrade_candidates(apt)
        debs = download(candidates, cache_dir or _default_cache(), apt) if candidates else []
    except IntelError as exc:
        raise _fail(str(exc), Exit.USAGE) from exc
    report = None
    if debs:
        with _store() as store, _observer() as obs:
            report = import_feeds(store, debs, observer=obs, reader=reader)
    if as_json:
        _print_json(
            {
                "candidates": [
                    {
                        "package": c.package,
                        "installed": c.installed,
                        "candidate": c.version,
                        "deb": str(deb),
                    }
                    for c, deb in zip(candidates, debs, strict=True)
                ],
                **(_import_json(report) if report else {"files": [], "partial": False}),
            }
        )
    else:
        table = Table(title="candidate upgrades")
        for col in ("package", "installed", "candidate", "deb"):
            table.add_column(col)
        for c, deb in zip(candidates, debs, strict=True):
            table.add_row(escape(c.package), c.installed or "-", c.version, escape(str(deb)))
        out.print(table)
        if report is not None:
            _show_import(report, as_json=False)
        else:
            out.print("no candidate upgrades: nothing to import")
    if report is not None and report.partial:
        raise typer.Exit(int(Exit.PARTIAL))
