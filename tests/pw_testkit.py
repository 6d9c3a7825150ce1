"""Small helpers several test packages share (imported as ``tests.pw_testkit``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


def write_pypi_bom(path: Path, name: str, components: Mapping[str, str]) -> Path:
    """Write a CycloneDX 1.5 SBOM of subject ``name`` with PyPI ``components`` (name -> version)."""
    path.write_text(
        json.dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.5",
                "version": 1,
                "metadata": {"component": {"type": "application", "name": name}},
                "components": [
                    {"type": "library", "name": n, "version": v, "purl": f"pkg:pypi/{n}@{v}"}
                    for n, v in components.items()
                ],
            }
        )
    )
    return path
