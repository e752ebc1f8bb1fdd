"""The data home ``$VQ_HOME`` (default ``./data``) and its fixed layout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vibe_quant.errors import UserError

ENV_VAR = "VQ_HOME"
DEFAULT_HOME = "data"


@dataclass(frozen=True)
class Home:
    """Paths of one data home.

    Parameters
    ----------
    root : Path
        The home directory; every other path lives under it.
    """

    root: Path

    @property
    def catalog(self) -> Path:
        return self.root / "catalog"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "vibe_quant.db"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def layout(self) -> tuple[Path, ...]:
        """The folders every home has, in creation order."""
        return (self.catalog, self.archive, self.state_dir, self.logs, self.runs)

    def blocker(self) -> Path | None:
        """The first path that must be a directory but is something else (a file): the root, one of
        its parents, or a layout folder; None when nothing is in the way."""
        for path in (*reversed(self.root.parents), self.root, *self.layout()):
            if path.exists() and not path.is_dir():
                return path
            if not path.exists() and path not in self.layout():
                return None  # nothing below a missing directory exists
        return None

    def check(self) -> Home:
        """Return self if its paths can be directories (whether they exist or not).

        Raises
        ------
        UserError
            A file is where the home or one of its folders should be.
        """
        blocker = self.blocker()
        if blocker is not None:
            where = f"data home {self.root}" + ("" if blocker == self.root else f": {blocker}")
            raise UserError(
                f"{where} is a file, not a directory. Fix: choose a --home (or ${ENV_VAR}) that is a directory "
                f"or does not exist yet, or move {blocker} away"
            )
        return self

    def ensure(self) -> Home:
        """Create the layout if missing and return self (nothing is created if it cannot be).

        Raises
        ------
        UserError
            A file is in the way (see :meth:`check`), or the directories cannot be created.
        """
        self.check()
        for path in self.layout():
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(
                    f"cannot create data home folder {path}: {exc.strerror}. Fix: pass --home (or set "
                    f"${ENV_VAR}) to a directory you can write"
                ) from None
        return self

    def require_catalog(self) -> Home:
        """Return self if it holds a catalog (something was ingested).

        Raises
        ------
        UserError
            No ``catalog/`` folder: naming the home and the ingest command.
        """
        if not self.catalog.is_dir():
            raise UserError(
                f"no data in {self.root} (no catalog/): ingest first, e.g. vq --home {self.root} data ingest "
                "--symbols FILUSDT --start 2023-08-01 --end 2023-10-31"
            )
        return self

    def require_state(self, fix: str) -> Home:
        """Return self if its state database exists.

        Raises
        ------
        UserError
            No ``state/vibe_quant.db``: naming the home and `fix`.
        """
        if not self.db_path.is_file():
            raise UserError(f"no state database in {self.root} (no {self.db_path.relative_to(self.root)}): {fix}")
        return self


def resolve_home(path: str | Path | None = None) -> Home:
    """Return the home at `path`, else ``$VQ_HOME``, else ``./data`` (absolute), checked.

    Raises
    ------
    UserError
        A file is where the home or one of its folders should be (see :meth:`Home.check`).
    """
    chosen = path if path is not None else os.environ.get(ENV_VAR) or DEFAULT_HOME
    return Home(Path(chosen).expanduser().resolve()).check()
