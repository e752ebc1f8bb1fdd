"""The LPI signal trace of Binance tick files: what ``vq lpi features`` computes and writes.

Input: an ``aggTrades`` file (CSV or the official zip) and, optionally, a ``bookTicker`` file; without
quotes the run is quotes-free (the touch inferred from the trades, every snapshot flagged). Output:
one row per closed bucket (:data:`~vibe_quant.lpi.params.SNAPSHOT_DTYPE`), written as Parquet
through a temporary file (a failed run leaves no partial trace).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vibe_quant.errors import DataFileError, UserError
from vibe_quant.lpi.features import LpiInputs, compute
from vibe_quant.lpi.inputs import aggtrades_arrays, bookticker_arrays
from vibe_quant.lpi.params import LpiParams


@dataclass
class Trace:
    snapshots: np.ndarray  # structured, SNAPSHOT_DTYPE
    trades: int
    quotes: int
    params: LpiParams

    def summary(self) -> dict:
        s = self.snapshots
        finite = s["lpi_fast"][np.isfinite(s["lpi_fast"])] if len(s) else np.empty(0)
        return {
            "trades": self.trades, "quotes": self.quotes, "snapshots": len(s),
            "quotes_free": self.params.quotes_free, "clock": self.params.clock,
            "first_ts": int(s["ts_event"][0]) if len(s) else None, "last_ts": int(s["ts_event"][-1]) if len(s) else None,
            "lpi_fast_valid": int(finite.size),
            "lpi_fast_p50": float(np.median(finite)) if finite.size else None,
            "lpi_fast_max": float(finite.max()) if finite.size else None,
        }  # fmt: skip


def trace(trades: Path, quotes: Path | None, params: LpiParams, contract_size: float | None = None) -> Trace:
    """Compute the snapshots of `trades` (and `quotes`) with `params`.

    Raises
    ------
    UserError
        A file that does not exist, quotes given to a quotes-free run (or none to a run that needs them).
    DataFileError
        A file without the expected columns (names the file and the columns).
    """
    for flag, path in (("TRADES", trades), ("--quotes", quotes)):
        if path is not None and not Path(path).is_file():
            raise UserError(f"{flag} {path}: no such file")
    if params.quotes_free and quotes is not None:
        raise UserError("--quotes-free infers the touch from the trades: do not give --quotes too")
    if not params.quotes_free and quotes is None:
        raise UserError("no --quotes file: give a bookTicker file, or --quotes-free to infer the touch from the trades")
    try:
        arrays = aggtrades_arrays(Path(trades), contract_size)
        if quotes is not None:
            arrays.update(bookticker_arrays(Path(quotes)))
    except KeyError as exc:  # pyarrow: a column the Binance layout has is missing
        raise DataFileError(f"{trades if quotes is None else f'{trades} / {quotes}'}: missing column {exc}; "
                            "expected Binance aggTrades (and bookTicker) CSV columns") from None  # fmt: skip
    inputs = LpiInputs(**arrays).checked()
    return Trace(compute(inputs, params), len(inputs.trade_ts), len(inputs.quote_ts), params)


def write_trace(result: Trace, out: Path) -> Path:
    """Write the snapshots to `out` (Parquet) atomically; returns `out`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vibe_quant.staging import write_atomic

    table = pa.table({name: result.snapshots[name] for name in result.snapshots.dtype.names})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_atomic(out, sink.getvalue().to_pybytes())
    return out
