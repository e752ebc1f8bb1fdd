"""The data home ``$VQ_HOME`` (default ``./data``) and its fixed layout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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

    def ensure(self) -> Home:
        """Create the layout if missing and return self."""
        for path in (self.catalog, self.archive, self.state_dir, self.logs, self.runs):
            path.mkdir(parents=True, exist_ok=True)
        return self


def resolve_home(path: str | Path | None = None) -> Home:
    """Return the home at `path`, else ``$VQ_HOME``, else ``./data`` (absolute)."""
    chosen = path if path is not None else os.environ.get(ENV_VAR) or DEFAULT_HOME
    return Home(Path(chosen).expanduser().resolve())
