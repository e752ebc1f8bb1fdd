"""An exclusive, process-level lock on a data home for commands that write to it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vibe_quant.errors import UserError


@contextmanager
def home_lock(state_dir: Path, what: str) -> Iterator[None]:
    """Hold ``state/.write.lock`` for the block; fail at once if another writer holds it.

    Raises
    ------
    UserError
        If another process is writing to the same home.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / ".write.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise UserError(
                f"cannot {what}: {holder} is writing to this data home ({state_dir.parent}); wait for it to finish"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} ({what})")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)
