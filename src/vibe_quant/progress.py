"""Progress reporting that compute code can call without knowing about terminals.

Stages take a :class:`Progress` and call ``task()``/``advance()``; the CLI passes a rich-backed
one, tests and libraries the silent default. A background job registers one observer
(:func:`observe`) to be handed every sink :func:`rich_progress` creates, wrapped in a
:class:`TrackedProgress` whose tasks its heartbeat copies into the job's row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
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


class TrackedProgress(Progress):
    """Forward every call to `inner` and keep each task's description, completed and total.

    Parameters
    ----------
    inner : Progress
        The sink that shows the progress (rich bars, or the silent one).
    """

    def __init__(self, inner: Progress):
        self.inner = inner
        self._tasks: list[dict] = []  # our task ids index this list (the silent sink's ids are all 0)
        self._inner_ids: list[int] = []
        self._lock = threading.Lock()  # the job's heartbeat thread reads while the stage writes

    def task(self, description: str, total: int | None) -> int:
        inner_id = self.inner.task(description, total)
        with self._lock:
            self._tasks.append({"description": description, "completed": 0, "total": total})
            self._inner_ids.append(inner_id)
            return len(self._tasks) - 1

    def advance(self, task_id: int, amount: float = 1, description: str | None = None) -> None:
        self.inner.advance(self._inner_ids[task_id], amount, description)
        with self._lock:
            entry = self._tasks[task_id]
            entry["completed"] += amount
            if description is not None:
                entry["description"] = description

    def update(self, task_id: int, completed: float, total: float | None = None) -> None:
        self.inner.update(self._inner_ids[task_id], completed, total)
        with self._lock:
            self._tasks[task_id]["completed"] = completed
            if total is not None:
                self._tasks[task_id]["total"] = total

    def finish(self, task_id: int) -> None:
        self.inner.finish(self._inner_ids[task_id])
        with self._lock:
            entry = self._tasks[task_id]
            if entry["total"] is not None:
                entry["completed"] = entry["total"]

    def snapshot(self) -> list[dict]:
        """Every task so far, in creation order: ``{"description", "completed", "total"}`` (copies)."""
        with self._lock:
            return [dict(entry) for entry in self._tasks]


_observer: Callable[[TrackedProgress], None] | None = None


def observe(callback: Callable[[TrackedProgress], None] | None) -> None:
    """Hand every sink :func:`rich_progress` creates from now on to `callback` (None: stop).

    The one registration point for a process that reports its progress elsewhere (a background
    job's heartbeat); there is one observer per process.
    """
    global _observer
    _observer = callback


def _tracked(sink: Progress) -> Progress:
    if _observer is None:
        return sink
    tracked = TrackedProgress(sink)
    _observer(tracked)
    return tracked


@contextmanager
def rich_progress(enabled: bool = True) -> Iterator[Progress]:
    """Yield a rich progress sink on stderr, or the silent one when not `enabled` (tracked when
    an observer is registered, see :func:`observe`)."""
    if not enabled:
        yield _tracked(Progress())
        return
    from rich.console import Console

    with RichProgress(Console(stderr=True)) as bars:
        yield _tracked(bars)
