"""All-or-nothing file writes: stage under ``<root>/.staging/<token>/``, then move into place.

Both the catalog and the raw lake write through a :class:`StagingArea`, so a run that fails
before :meth:`StagingArea.commit` leaves them exactly as they were, and a failure during the
commit undoes the moves already made. Staging lives on the same filesystem as its root, so
each move is an atomic rename.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid
from enum import Enum
from pathlib import Path

STAGING = ".staging"


class OnExists(Enum):
    """What committing a file does when its destination already exists."""

    FAIL = "fail"  # new data: an existing file means a bookkeeping bug
    REPLACE = "replace"  # derived, idempotent files (instrument definitions)
    KEEP = "keep"  # content-addressed files: same path, same bytes


class StagingArea:
    """A private staging directory under `root` whose files are committed together."""

    def __init__(self, root: Path):
        self.root = root
        self.dir = root / STAGING / uuid.uuid4().hex
        self.dir.mkdir(parents=True)
        self._files: dict[Path, OnExists] = {}
        self._lock = threading.Lock()

    def path(self, rel: Path | str) -> Path:
        """Return the staging path for `rel` (parents created)."""
        target = self.dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def add(self, rel: Path | str, on_exists: OnExists = OnExists.FAIL) -> None:
        """Register a file written at :meth:`path` (`rel`) for the commit."""
        if not (self.dir / rel).exists():
            raise RuntimeError(f"staged file {rel} was not written")
        with self._lock:
            if Path(rel) in self._files:
                raise RuntimeError(f"{rel} was staged twice in one commit (two sources wrote the same catalog file)")
            self._files[Path(rel)] = on_exists

    def write_bytes(self, rel: Path | str, data: bytes, on_exists: OnExists = OnExists.FAIL) -> None:
        self.path(rel).write_bytes(data)
        self.add(rel, on_exists)

    def discard(self, rel: Path | str) -> None:
        """Forget and delete one staged file (nothing of it reaches `root`)."""
        with self._lock:
            self._files.pop(Path(rel), None)
        (self.dir / rel).unlink(missing_ok=True)

    @property
    def files(self) -> list[Path]:
        return list(self._files)

    def commit(self) -> list[Path]:
        """Move every staged file into `root`; on failure undo the moves made and re-raise.

        Returns the files actually moved (``KEEP`` files already present are skipped).

        Raises
        ------
        FileExistsError
            If a ``FAIL`` file's destination exists.
        """
        moved: list[Path] = []
        try:
            for rel, on_exists in self._files.items():
                dst = self.root / rel
                if dst.exists():
                    if on_exists is OnExists.KEEP:
                        continue
                    if on_exists is OnExists.FAIL:
                        raise FileExistsError(f"{dst} already exists; refusing to overwrite")
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.dir / rel, dst)
                if on_exists is not OnExists.REPLACE:
                    moved.append(rel)
        except BaseException:
            for rel in moved:
                (self.root / rel).unlink(missing_ok=True)
            raise
        finally:
            self.abort()
        return moved

    def abort(self) -> None:
        """Delete the staging directory (no effect on `root`)."""
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.dir.parent.rmdir()  # only when no other staging is in progress


def clean_stale_staging(root: Path) -> None:
    """Remove staging left by a killed process (nothing in it was committed). Hold the home lock."""
    shutil.rmtree(root / STAGING, ignore_errors=True)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write one file whole or not at all: a temporary file beside it, then an atomic rename."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
