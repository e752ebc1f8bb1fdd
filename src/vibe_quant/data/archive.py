"""The raw lake: every source file stored byte for byte, content-addressed and immutable.

Layout: ``{venue}/{market}/{dataset}/{symbol}/{YYYY}/{MM}/{sha256}/{original_name}``, e.g.
``binance/futures-um/klines/FILUSDT/2023/08/06f1fa.../FILUSDT-1m-2023-08.zip``. The path is a
function of the content, so storing the same bytes twice is a no-op, and a file is never
rewritten. New files are staged and moved in only when the ingest commits, together with the
index (what was stored, from where, covering what) in the state database's ``raw_files`` table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

from vibe_quant.errors import DataFileError
from vibe_quant.staging import OnExists, StagingArea


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RawLake:
    """Content-addressed file store under `root` (``$VQ_HOME/archive``)."""

    def __init__(self, root: Path):
        self.root = root

    @staticmethod
    def relative_path(venue: str, market: str, dataset: str, symbol: str, day: dt.date, sha256: str, name: str) -> str:
        return f"{venue.lower()}/{market}/{dataset}/{symbol}/{day:%Y}/{day:%m}/{sha256}/{name}"

    def stage(self, staging: StagingArea, rel_path: str, data: bytes) -> None:
        """Stage `data` for `rel_path`; the commit skips it if the lake already has it.

        Stored files are read-only: content addresses are never rewritten.
        """
        if (self.root / rel_path).exists():
            return
        target = staging.path(rel_path)
        target.write_bytes(data)
        os.chmod(target, 0o444)
        staging.add(rel_path, OnExists.KEEP)

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
