"""Binance tick files -> :class:`LpiInputs` arrays (pyarrow CSV, no Python loop over rows).

``aggTrades``: ``is_buyer_maker`` true means the seller crossed the spread (aggressor -1). Two real
rows of the COIN-M BTCUSD_PERP 2026-05-08 file::

    agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker
    480537903,79972.8,542.0,1123474160,1123474164,1778198400020,false

``bookTicker``: ``event_time`` is the quote's time::

    update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time
    3319366863672,27981.30000000,12.91100000,27981.40000000,7.25800000,1696204800012,1696204800018
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv

from vibe_quant.lpi.features import LpiInputs

NS_PER_MS = 1_000_000


def _read_csv(path: Path):
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            data = zf.read(zf.namelist()[0])
        return pacsv.read_csv(io.BytesIO(data))
    return pacsv.read_csv(path)


def aggtrades_arrays(path: Path, contract_size: float | None = None) -> dict[str, np.ndarray]:
    """Trade arrays of an ``aggTrades`` CSV or zip.

    Parameters
    ----------
    path : Path
        The file.
    contract_size : float or None, default None
        Inverse (COIN-M) contract size in USD (100 for BTCUSD_PERP): notional = quantity x
        contract_size. None: linear, notional = price x quantity.

    Returns
    -------
    dict
        ``trade_ts`` (ns), ``trade_price``, ``trade_notional``, ``trade_side`` (+1/-1), shape (n,).
    """
    t = _read_csv(path)
    price = t.column("price").to_numpy().astype(np.float64)
    qty = t.column("quantity").to_numpy().astype(np.float64)
    notional = qty * contract_size if contract_size is not None else price * qty
    maker = t.column("is_buyer_maker").to_numpy(zero_copy_only=False).astype(bool)
    return {
        "trade_ts": t.column("transact_time").to_numpy().astype(np.int64) * NS_PER_MS,
        "trade_price": price,
        "trade_notional": notional,
        "trade_side": np.where(maker, -1, 1).astype(np.int8),
    }


def bookticker_arrays(path: Path) -> dict[str, np.ndarray]:
    """Quote arrays (``quote_ts`` ns, ``bid``, ``ask``) of a ``bookTicker`` CSV or zip, sorted by time."""
    t = _read_csv(path)
    ts = t.column("event_time").to_numpy().astype(np.int64) * NS_PER_MS
    order = np.argsort(ts, kind="stable")
    return {
        "quote_ts": ts[order],
        "bid": t.column("best_bid_price").to_numpy().astype(np.float64)[order],
        "ask": t.column("best_ask_price").to_numpy().astype(np.float64)[order],
    }


def quotes_free_inputs(path: Path, contract_size: float | None = None) -> LpiInputs:
    """Inputs of an ``aggTrades`` file alone (run with ``LpiParams(quotes_free=True)``)."""
    return LpiInputs(**aggtrades_arrays(path, contract_size))
