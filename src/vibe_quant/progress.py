"""Progress reporting that compute code can call without knowing about terminals.

Stages take a :class:`Progress` and call ``task()``/``advance()``; the CLI passes a rich-backed
one, tests and libraries the silent default.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class Progress:
    """Silent progress sink (the default)."""

    def task(self, description: str, total: int | None) -> int:
        return 0

    def advance(self, task_id: int, amount: float = 1, description: str | None = None) -> None:
        return None

    def update(self, task_id: int, completed: float, total: float | None = None) -> None:
        return None

    def finish(self, task_id: int) -> None:
        return None


class RichProgress(Progress):
    """Progress bars on stderr via rich; use as a context manager."""

    def __init__(self, console=None):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import (
            Progress as _Progress,
        )

        self._bars = _Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def task(self, description: str, total: int | None) -> int:
        return int(self._bars.add_task(description, total=total))

    def advance(self, task_id: int, amount: float = 1, description: str | None = None) -> None:
        if description is None:
            self._bars.advance(task_id, amount)
        else:
            self._bars.update(task_id, advance=amount, description=description)

    def update(self, task_id: int, completed: float, total: float | None = None) -> None:
        if total is None:
            self._bars.update(task_id, completed=completed)
        else:
            self._bars.update(task_id, completed=completed, total=total)

    def finish(self, task_id: int) -> None:
        task = self._bars.tasks[task_id]
        if task.total is not None:
            self._bars.update(task_id, completed=task.total)


@contextmanager
def rich_progress(enabled: bool = True) -> Iterator[Progress]:
    """Yield a rich progress sink on stderr, or the silent one when not `enabled`."""
    if not enabled:
        yield Progress()
        return
    from rich.console import Console

    with RichProgress(Console(stderr=True)) as bars:
        yield bars
