"""A rich-drawn :class:`~patchwarden.service.Observer` for long-running commands."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class RichObserver:
    """Shows one progress line per stage on stderr; notes are printed above the bars."""

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not enabled,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RichObserver:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish()
        self.progress.stop()

    def _finish(self) -> None:
        if self.task is not None:
            task = self.progress.tasks[self.task]
            if task.total is not None:
                self.progress.update(self.task, completed=task.total)
            self.progress.stop_task(self.task)

    def stage(self, name: str, total: int | None = None) -> None:
        """Start a new progress line."""
        self._finish()
        self.task = self.progress.add_task(name, total=total)

    def advance(self, units: int = 1) -> None:
        """Advance the current line."""
        if self.task is not None:
            self.progress.advance(self.task, units)

    def note(self, message: str) -> None:
        """Print a remark above the progress bars."""
        self.console.print(f"[yellow]note:[/] {escape(message)}", highlight=False)
