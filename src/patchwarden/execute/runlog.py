"""The append-only run record of one execution (after ansible-runner's artifact directory).

``<base>/<run id>/`` holds:

* ``command`` -- JSON: the patchwarden command line, backend and start time;
* ``events.jsonl`` -- one JSON object per line, appended and flushed as things happen
  (``step_start``, ``step``, ``outcome``, ...), each with ``seq``, ``time`` and ``event``;
* ``stdout/NNNN-<host>-<kind>.out`` / ``.err`` -- each step's full output;
* ``status`` (``running`` at start, then ``successful``/``failed``) and ``rc`` (at the end).

Nothing in the directory is rewritten except ``status``/``rc``; a run killed mid-way leaves
``status`` ``running`` and every event written up to the kill.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from patchwarden.execute.interface import Outcome, StepResult


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]


class RunLog:
    """One run directory; create with :meth:`create`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        """The run directory."""
        self._seq = 0
        self._events: IO[str] | None = None  # opened on the first write

    @classmethod
    def create(
        cls, base: Path, *, command: Sequence[str], backend: str, run_id: str | None = None
    ) -> RunLog:
        """Make ``base/<run id>/`` (a new, sortable id unless given) and write ``command``."""
        now = dt.datetime.now(dt.UTC)
        run_id = run_id or f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        directory = base / run_id
        directory.mkdir(parents=True, exist_ok=False)
        (directory / "stdout").mkdir()
        (directory / "command").write_text(
            json.dumps(
                {"command": list(command), "backend": backend, "started": now.isoformat()},
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        (directory / "status").write_text("running\n", encoding="utf-8")
        return cls(directory)

    def event(self, event: str, **data: Any) -> None:
        """Append one event (flushed and fsynced: it survives a kill -9 of patchwarden)."""
        self._seq += 1
        record = {
            "seq": self._seq,
            "time": dt.datetime.now(dt.UTC).isoformat(),
            "event": event,
            **data,
        }
        if self._events is None:
            self._events = (self.directory / "events.jsonl").open("a", encoding="utf-8")
        self._events.write(json.dumps(record, default=str, sort_keys=True) + "\n")
        self._events.flush()
        os.fsync(self._events.fileno())

    def step(self, host: str, result: StepResult) -> None:
        """Record a finished step: its output files and a ``step`` event."""
        stem = f"{self._seq + 1:04d}-{_safe(host)}-{result.step.kind.value}"
        out = self.directory / "stdout"
        (out / f"{stem}.out").write_text(result.stdout, encoding="utf-8")
        (out / f"{stem}.err").write_text(result.stderr, encoding="utf-8")
        self.event(
            "step",
            host=host,
            kind=result.step.kind,
            argv=list(result.step.argv),
            rc=result.rc,
            reason=result.reason,
            message=result.message,
            seconds=round(result.seconds, 3),
            output=stem,
        )

    def outcome(self, outcome: Outcome) -> None:
        """Record a host's outcome."""
        kind = type(outcome).__name__
        data: dict[str, Any] = {"host": outcome.host, "outcome": kind}
        reason = getattr(outcome, "reason", None)
        if reason is not None:
            data["reason"] = reason
            data["message"] = getattr(outcome, "message", "")
        self.event("outcome", **data)

    def close(self, rc: int) -> None:
        """Write the final ``status`` and ``rc``."""
        status = "successful" if rc == 0 else "failed"
        self.event("finished", status=status, rc=rc)
        if self._events is not None:
            self._events.close()
            self._events = None
        (self.directory / "status").write_text(status + "\n", encoding="utf-8")
        (self.directory / "rc").write_text(f"{rc}\n", encoding="utf-8")

    def events(self) -> list[dict[str, Any]]:
        """Every event written so far (read back from the file)."""
        with (self.directory / "events.jsonl").open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
