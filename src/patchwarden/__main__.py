"""``python -m patchwarden``."""

from __future__ import annotations

from patchwarden.cli.main import run

run()
