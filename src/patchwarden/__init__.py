"""patchwarden: automated, risk-based security patch management."""

from __future__ import annotations

__version__ = "0.1.0"
