"""The raw lake: every source file stored byte for byte, content-addressed and immutable.

Layout: ``{venue}/{market}/{dataset}/{symbol}/{YYYY}/{MM}/{sha256}/{original_name}``, e.g.
``binance/futures-um/klines/FILUSDT/2023/08/06f1fa.../FILUSDT-1m-2023-08.zip``. The path is a
function of the content, so storing the same bytes twice is a no-op, and a file is never
rewritten. The index (what was stored, from where, covering what) lives in the state
database's ``raw_files`` table, written only when an ingest commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from pathlib import Path

from vibe_quant.errors import DataFileError


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RawLake:
    """Content-addressed file store under `root` (``$VQ_HOME/archive``)."""

    def __init__(self, root: Path):
        self.root = root

    @staticmethod
    def relative_path(venue: str, market: str, dataset: str, symbol: str, day: dt.date, sha256: str, name: str) -> str:
        return f"{venue.lower()}/{market}/{dataset}/{symbol}/{day:%Y}/{day:%m}/{sha256}/{name}"

    def put(self, rel_path: str, data: bytes) -> bool:
        """Store `data` at `rel_path` unless already there; return True if newly written.

        The write goes to a temporary file that is renamed into place, so a crash never leaves
        a partial file under a content address. Stored files are made read-only.
        """
        target = self.root / rel_path
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def read(self, rel_path: str, sha256: str) -> bytes:
        """Return the stored bytes after checking them against `sha256`.

        Raises
        ------
        DataFileError
            If the file is missing or its content no longer matches its address.
        """
        path = self.root / rel_path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataFileError(
                path,
                f"raw archive file is missing ({exc.strerror})",
                fix="restore the archive from backup or re-ingest from the source",
            ) from exc
        actual = sha256_hex(data)
        if actual != sha256:
            raise DataFileError(
                path,
                f"raw archive file is corrupt: sha256 {actual} != indexed {sha256}",
                fix="restore it from backup or re-ingest it from the source",
            )
        return data
