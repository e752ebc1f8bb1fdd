"""A linear (USD-M) proxy of a COIN-M aggTrades day: derived data, not a Binance file.

Binance's public archive holds COIN-M inverse trades for days whose USD-M trades the project
has no copy of. The perp backtest core simulates linear USDT-margined contracts only, so tick
runs and the LPI experiments use a *proxy*: the same trades (times, ids, prices, aggressor
sides) with each quantity converted from contracts of ``multiplier`` USD to base units,
``contracts * multiplier / price``, rounded to the USD-M step (at least one step). The result
is written as a USD-M ``aggTrades`` CSV that ``vq data ingest`` (``run_ingest``) reads like any
other; prices keep the source's text (BTCUSD_PERP's tick 0.1 equals BTCUSDT's).

What the proxy is not: USD-M liquidity. Sizes are the COIN-M venue's, the spread and the
trade flow are the inverse market's; results on it say how the rules behave on real tick
dynamics, not what BTCUSDT would have returned.

Two real raw lines (BTCUSD_PERP-aggTrades-2026-05-08.csv)::

    480537903,79972.8,542.0,1123474160,1123474164,1778198400020,false
    480537904,79972.9,1.0,1123474165,1123474165,1778198400024,false

become (step 0.001)::

    480537903,79972.8,0.678,1123474160,1123474164,1778198400020,false
    480537904,79972.9,0.001,1123474165,1123474165,1778198400024,false
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

from vibe_quant.errors import DataFileError

HEADER = ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker")


def proxy_quantity(contracts: str, price: str, multiplier: Decimal, step: Decimal) -> str:
    """``contracts * multiplier / price`` base units at `step` (half-even; at least one step).

    Examples
    --------
    >>> proxy_quantity("542.0", "79972.8", Decimal(100), Decimal("0.001"))
    '0.678'
    """
    qty = (Decimal(contracts) * multiplier / Decimal(price)).quantize(step, rounding=ROUND_HALF_EVEN)
    return str(max(qty, step))


def write_linear_proxy(cm_zip: Path, out_csv: Path, step: float = 0.001, multiplier: float = 100.0) -> Path:
    """Write the USD-M proxy of a COIN-M aggTrades file (see the module docstring).

    Parameters
    ----------
    cm_zip : Path
        A COIN-M ``<SYMBOL>-aggTrades-<day>.zip`` (or its ``.csv``), with or without header.
    out_csv : Path
        Where the USD-M aggTrades CSV goes (with header); for ``vq data ingest`` place it as
        ``<root>/data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-<day>.csv``
        (:func:`proxy_path`). Written atomically; parent folders are created.
    step : float, default 0.001
        The USD-M step size (BTCUSDT's).
    multiplier : float, default 100.0
        USD per contract (BTCUSD_PERP's).

    Returns
    -------
    Path
        `out_csv`.

    Raises
    ------
    DataFileError
        A row that is not a COIN-M aggTrades row (file and line named).
    """
    step_d, mult = Decimal(str(step)), Decimal(str(multiplier))
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_csv.with_name(out_csv.name + ".tmp")
    with _open_rows(cm_zip) as text, tmp.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        for line, row in enumerate(csv.reader(text), start=1):
            if line == 1 and row and row[0] == HEADER[0]:
                continue
            try:
                if len(row) != len(HEADER):
                    raise ValueError(f"{len(row)} fields, expected {len(HEADER)}")
                row[2] = proxy_quantity(row[2], row[1], mult, step_d)
            except (ValueError, InvalidOperation, ZeroDivisionError) as exc:
                tmp.unlink(missing_ok=True)
                raise DataFileError(f"{cm_zip}:{line}: not a COIN-M aggTrades row ({exc}): {','.join(row)}") from None
            writer.writerow(row)
    os.replace(tmp, out_csv)
    return out_csv


def proxy_path(root: Path, symbol: str, day: str) -> Path:
    """Where `write_linear_proxy` output goes for ``vq data ingest --source <root>`` (USD-M daily layout)."""
    return root / "data" / "futures" / "um" / "daily" / "aggTrades" / symbol / f"{symbol}-aggTrades-{day}.csv"


class _open_rows:
    """The text of a CSV or of the single CSV inside a zip."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        if self.path.suffix == ".zip":
            self._zip = zipfile.ZipFile(self.path)
            name = next(n for n in self._zip.namelist() if n.endswith(".csv"))
            self._raw = self._zip.open(name)
        else:
            self._zip, self._raw = None, self.path.open("rb")
        return io.TextIOWrapper(self._raw, encoding="utf-8", newline="")

    def __exit__(self, *exc) -> None:
        self._raw.close()
        if self._zip is not None:
            self._zip.close()
