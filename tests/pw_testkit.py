"""Small helpers several test packages share (imported as ``tests.pw_testkit``)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import sqlalchemy as sa
from packageurl import PackageURL

from patchwarden.model import Asset, AssetId, FixState, InstalledPackage, Inventory, VulnId
from patchwarden.store import FindingDraft, Store
from patchwarden.store import schema as t

DEMO = Path(__file__).resolve().parents[1] / "src" / "patchwarden" / "demo"
"""The bundled demo: fleet file, inventories and advisory snapshot (``data/``)."""
DEMO_FEEDS = (
    DEMO / "data" / "osv",
    DEMO / "data" / "debian" / "DSA" / "list",
    DEMO / "data" / "debian" / "DLA" / "list",
    DEMO / "data" / "alpine" / "v3.19" / "main.json",
    DEMO / "data" / "kev" / "known_exploited_vulnerabilities-2026.01.29.json",
    DEMO / "data" / "epss" / "epss_scores-2026-01-30.csv.gz",
)
"""Every feed file of the demo snapshot (a verbatim subset of ``shared/data``), in import
order."""


def write_bom(path: Path, name: str | None, purls: Iterable[str]) -> Path:
    """Write a CycloneDX 1.5 SBOM (subject ``name``, none when None) of the ``purls``."""
    components = []
    for purl in purls:
        parsed = PackageURL.from_string(purl)
        components.append(
            {"type": "library", "name": parsed.name, "version": parsed.version, "purl": purl}
        )
    bom: dict[str, object] = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}
    if name is not None:
        bom["metadata"] = {"component": {"type": "application", "name": name}}
    bom["components"] = components
    path.write_text(json.dumps(bom))
    return path


def write_pypi_bom(path: Path, name: str | None, components: Mapping[str, str]) -> Path:
    """Write a CycloneDX 1.5 SBOM of subject ``name`` with PyPI ``components`` (name -> version)."""
    return write_bom(path, name, (f"pkg:pypi/{n}@{v}" for n, v in components.items()))


WHEEL_CACHE = Path.home() / ".cache" / "patchwarden-tests" / "wheels"
"""Wheels downloaded from PyPI once per machine (fixture set-up only, never the code under test)."""


def pypi_wheel(name: str, version: str) -> Path:
    """The PyPI wheel of ``name==version`` from :data:`WHEEL_CACHE`, downloaded on first use.

    One ``pip download`` per version: pip refuses two pins of one name in one call.
    """
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(WHEEL_CACHE.glob(f"{name}-{version}-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--dest", str(WHEEL_CACHE), f"{name}=={version}"],
            check=True,
        )  # fmt: skip
        found = sorted(WHEEL_CACHE.glob(f"{name}-{version}-*.whl"))
    if not found:
        raise FileNotFoundError(f"pip download {name}=={version} left no wheel in {WHEEL_CACHE}")
    return found[0]


def build_wheel(folder: Path, name: str, version: str, body: str) -> Path:
    """A real (pure-python, py3-none-any) wheel with one module ``name`` (source ``body``)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": body.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: patchwarden-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def rollout_progress(db: str) -> tuple[int, int]:
    """(changes done, apply steps running) of the rollouts in ``db``, read while one runs."""
    store = Store.open(db, migrate=False)
    s = t.rollout_steps.c
    try:
        with store.engine.connect() as conn:
            done = conn.execute(
                sa.select(sa.func.count()).where(s.step == "change", s.state == "done")
            ).scalar_one()
            applying = conn.execute(
                sa.select(sa.func.count()).where(s.step.like("apply:%"), s.state == "running")
            ).scalar_one()
            return int(done), int(applying)
    finally:
        store.close()


def add_pending_restart(
    store: Store, asset: str, found: dt.datetime, installed: dt.datetime
) -> int:
    """A PyPI ``demo`` 1.0 finding (CVE-2099-1, fixed in 2.0) on ``asset``, found at ``found``,
    fixed on disk at ``installed`` with ``demo.service`` still running old code; its id."""
    inv = Inventory(
        asset=Asset(id=AssetId(asset)),
        packages=(InstalledPackage(ecosystem="PyPI", name="demo", version="1.0"),),
    )
    draft = FindingDraft(
        ecosystem="PyPI",
        package="demo",
        installed_version="1.0",
        binaries=("demo",),
        vulnerability=VulnId("CVE-2099-1"),
        advisories=("PYSEC-2099-1",),
        fix_state=FixState.FIXED,
        fixed_version="2.0",
    )
    with store.transaction() as conn:
        store.save_inventory(conn, inv, found)
        store.sync_findings(conn, asset, [draft], found)
        store.sync_findings(conn, asset, [], installed)  # the upgrade is installed
        finding_id = int(
            conn.execute(
                sa.select(t.findings.c.id).where(t.findings.c.asset_id == asset)
            ).scalar_one()
        )
        conn.execute(
            t.pending_restarts.insert().values(
                finding_id=finding_id,
                asset_id=asset,
                units=["demo.service"],
                reboot=False,
                since=installed,
            )
        )
    return finding_id


def migrate_to(url: str, revision: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) the database at ``url`` to the Alembic ``revision``."""
    from alembic import command
    from alembic.config import Config

    from patchwarden.store import MIGRATIONS, normalize_url

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = sa.create_engine(normalize_url(url))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)
    engine.dispose()
