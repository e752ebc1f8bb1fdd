"""Catalog I/O: staged, all-or-nothing writes into a NautilusTrader ``ParquetDataCatalog``.

Layout and file names are NautilusTrader's own (``data/bar/<bar_type>/<start>_<end>.parquet``),
so ``ParquetDataCatalog``, ``BacktestNode`` and DuckDB read the result directly. A file's
interval is the span of time it speaks for, not just its first and last row: a whole month of
1m bars is ``(month_start, month_end]`` in close time even if the exchange skipped minutes.
The union of file intervals is therefore the catalog's *coverage*, which incremental ingests
use to write only what is new.

Writes go to ``<catalog>/.staging/<token>/`` first (same filesystem) and are moved into place
in :meth:`StagedCatalog.commit`; a failure before that leaves the catalog untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from nautilus_trader.core.nautilus_pyo3 import unix_nanos_to_iso8601
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.funcs import urisafe_identifier
from nautilus_trader.serialization.arrow.serializer import register_arrow

ROW_GROUP_SIZE = 5_000  # ParquetDataCatalog's default max_rows_per_group
STAGING = ".staging"
NS_PER_HOUR = 3_600_000_000_000

# -- FundingRateUpdate Arrow codec ----------------------------------------------------------------
# NautilusTrader 1.221 defines FundingRateUpdate but ships no Arrow codec for it, so the catalog
# cannot store it (NAUTILUS_FACTS.md). We register one. The funding interval travels as
# next_funding_ns = ts_event + interval, the time the exchange announced for the next settlement,
# and is also stored as its own column for SQL.

FUNDING_RATE_SCALE = 18
FUNDING_SCHEMA = pa.schema(
    [
        pa.field("instrument_id", pa.dictionary(pa.int64(), pa.string()), nullable=False),
        pa.field("rate", pa.decimal128(38, FUNDING_RATE_SCALE), nullable=False),
        pa.field("funding_interval_hours", pa.int32()),
        pa.field("next_funding_ns", pa.uint64()),
        pa.field("ts_event", pa.uint64(), nullable=False),
        pa.field("ts_init", pa.uint64(), nullable=False),
    ],
    metadata={"type": "FundingRateUpdate"},
)


def encode_funding(data: FundingRateUpdate | list[FundingRateUpdate]) -> pa.RecordBatch:
    items = data if isinstance(data, list) else [data]
    quantum = Decimal(1).scaleb(-FUNDING_RATE_SCALE)
    rows = {
        "instrument_id": [u.instrument_id.value for u in items],
        "rate": [Decimal(u.rate).quantize(quantum) for u in items],
        "funding_interval_hours": [
            None if u.next_funding_ns is None else (u.next_funding_ns - u.ts_event) // NS_PER_HOUR for u in items
        ],
        "next_funding_ns": [u.next_funding_ns for u in items],
        "ts_event": [u.ts_event for u in items],
        "ts_init": [u.ts_init for u in items],
    }
    return pa.RecordBatch.from_pydict(rows, schema=FUNDING_SCHEMA)


def decode_funding(table: pa.Table | pa.RecordBatch) -> list[FundingRateUpdate]:
    cols = table.to_pydict()
    return [
        FundingRateUpdate(
            instrument_id=InstrumentId.from_str(iid),
            rate=rate.normalize() if rate else Decimal(0),
            ts_event=ts_event,
            ts_init=ts_init,
            next_funding_ns=next_ns,
        )
        for iid, rate, next_ns, ts_event, ts_init in zip(
            cols["instrument_id"],
            cols["rate"],
            cols["next_funding_ns"],
            cols["ts_event"],
            cols["ts_init"],
            strict=True,
        )
    ]


register_arrow(FundingRateUpdate, FUNDING_SCHEMA, encoder=encode_funding, decoder=decode_funding)


# -- layout ------------------------------------------------------------------------------------


def interval_filename(start_ns: int, end_ns: int) -> str:
    """Return NautilusTrader's file name for the closed interval ``[start_ns, end_ns]``."""

    def stamp(ns: int) -> str:
        return unix_nanos_to_iso8601(ns).replace(":", "-").replace(".", "-")

    return f"{stamp(start_ns)}_{stamp(end_ns)}.parquet"


def parse_interval_filename(name: str) -> tuple[int, int] | None:
    """Inverse of :func:`interval_filename`; None for other names."""
    import pandas as pd

    stem = Path(name).name.removesuffix(".parquet")
    if "_" not in stem:
        return None
    out = []
    for part in stem.split("_", 1):
        date, _, time = part.partition("T")
        time = time.removesuffix("Z")
        hms, _, nanos = time.rpartition("-")
        try:
            out.append(pd.Timestamp(f"{date}T{hms.replace('-', ':')}.{nanos}Z").value)
        except ValueError:
            return None
    return out[0], out[1]


def data_dir(root: Path, kind: str, identifier: str) -> Path:
    """Return ``<root>/data/<kind>/<identifier>`` (kind: ``bar``, ``funding_rate_update``, ...)."""
    return root / "data" / kind / urisafe_identifier(identifier)


def intervals(root: Path, kind: str, identifier: str) -> list[tuple[int, int]]:
    """Return the sorted closed ns intervals covered by the files of one data directory."""
    directory = data_dir(root, kind, identifier)
    if not directory.is_dir():
        return []
    found = [parse_interval_filename(p.name) for p in directory.glob("*.parquet")]
    return sorted(iv for iv in found if iv is not None)


def subtract(span: tuple[int, int], covered: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Return the parts of the closed integer interval `span` not inside any of `covered`."""
    pieces = [span]
    for a, b in covered:
        nxt = []
        for s, e in pieces:
            if b < s or a > e:
                nxt.append((s, e))
                continue
            if s < a:
                nxt.append((s, a - 1))
            if b < e:
                nxt.append((b + 1, e))
        pieces = nxt
    return pieces


def read_span(root: Path, kind: str, identifier: str, start_ns: int, end_ns: int, columns=None) -> pa.Table | None:
    """Read rows with ``start_ns <= ts_init <= end_ns`` from one data directory (None if no file)."""
    directory = data_dir(root, kind, identifier)
    files = (
        [
            directory / name
            for name in sorted(os.listdir(directory))
            if name.endswith(".parquet")
            for iv in [parse_interval_filename(name)]
            if iv and iv[0] <= end_ns and iv[1] >= start_ns
        ]
        if directory.is_dir()
        else []
    )
    if not files:
        return None
    tables = [pq.read_table(f, columns=columns) for f in files]
    table = pa.concat_tables(tables, promote_options="none") if len(tables) > 1 else tables[0]
    ts = table.column("ts_init")
    mask = pc.and_(
        pc.greater_equal(ts, pa.scalar(start_ns, pa.uint64())), pc.less_equal(ts, pa.scalar(end_ns, pa.uint64()))
    )
    return table.filter(mask).sort_by("ts_init")


class StagedCatalog:
    """Collect new catalog files in a staging directory, then move them in at once.

    Parameters
    ----------
    root : Path
        The catalog root (``$VQ_HOME/catalog``).
    """

    def __init__(self, root: Path):
        self.root = root
        self.dir = root / STAGING / uuid.uuid4().hex
        self.dir.mkdir(parents=True)
        self.files: list[Path] = []  # relative to dir
        self.replaceable: set[Path] = set()
        self._lock = threading.Lock()

    def write_table(self, table: pa.Table, kind: str, identifier: str, start_ns: int, end_ns: int) -> Path:
        """Stage `table` as the file for the closed interval ``[start_ns, end_ns]``."""
        rel = data_dir(Path(), kind, identifier) / interval_filename(start_ns, end_ns)
        target = self.dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target, row_group_size=ROW_GROUP_SIZE)
        with self._lock:
            self.files.append(rel)
        return rel

    def write_objects(
        self,
        objects: list,
        kind: str,
        identifier: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        replace: bool = False,
    ) -> Path:
        """Stage Nautilus objects of one type and identifier via ``ParquetDataCatalog.write_data``.

        Used for instruments and funding rates, where the library's own encoding is the
        reference and volumes are small. `replace` allows overwriting the catalog file on
        commit (instruments are rewritten in place).
        """
        start = objects[0].ts_init if start_ns is None else start_ns
        end = objects[-1].ts_init if end_ns is None else end_ns
        rel = data_dir(Path(), kind, identifier) / interval_filename(start, end)
        ParquetDataCatalog(str(self.dir)).write_data(objects, start=start, end=end, skip_disjoint_check=True)
        if not (self.dir / rel).exists():
            raise RuntimeError(f"NautilusTrader did not write the expected file {rel}")
        with self._lock:
            self.files.append(rel)
            if replace:
                self.replaceable.add(rel)
        return rel

    def commit(self) -> list[Path]:
        """Move every staged file into the catalog; on any failure undo the moves and re-raise.

        Raises
        ------
        FileExistsError
            If a staged file would overwrite an existing catalog file (a coverage bug).
        """
        moved: list[Path] = []
        try:
            for rel in self.files:
                dst = self.root / rel
                if dst.exists() and rel not in self.replaceable:
                    raise FileExistsError(f"catalog file {dst} already exists; refusing to overwrite")
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.dir / rel, dst)
                moved.append(rel)
        except BaseException:
            for rel in moved:
                if rel not in self.replaceable:
                    (self.root / rel).unlink(missing_ok=True)
            raise
        finally:
            self.abort()
        return moved

    def abort(self) -> None:
        """Delete the staging directory (no effect on the catalog)."""
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.dir.parent.rmdir()  # only if no other staging is in progress


def clean_stale_staging(root: Path) -> None:
    """Remove staging left behind by a killed process (nothing in it was ever committed)."""
    shutil.rmtree(root / STAGING, ignore_errors=True)
