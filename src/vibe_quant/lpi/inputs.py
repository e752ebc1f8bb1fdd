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

from vibe_quant.lpi.features import LpiInputs, exact

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


def nautilus_inputs(trades: list, quotes: list = (), slow: list = (), funding: list = (),
                    depth_pct: float = 1.0) -> LpiInputs:  # fmt: skip
    """:class:`LpiInputs` of NautilusTrader objects, as the per-tick engine reads them.

    Parameters
    ----------
    trades, quotes : list
        ``TradeTick`` (notional = price x size: linear contracts) and ``QuoteTick``, sorted by time.
    slow : list
        ``BinanceOiMetrics`` (open interest: ``sum_open_interest_value``) and ``BinanceBookDepth``
        rows, bare or wrapped in ``CustomData``, sorted by time. The depth proxy of a snapshot is
        the notional at ``-depth_pct`` plus at ``+depth_pct`` (``FeatureEngine.on_custom_data``).
    funding : list
        ``FundingRateUpdate``.
    depth_pct : float, default 1.0
        Which percent level of ``bookDepth`` is the depth proxy.
    """
    n = len(trades)
    price = np.fromiter((exact(t.price) for t in trades), float, n)
    size = np.fromiter((exact(t.size) for t in trades), float, n)
    # AggressorSide: BUYER 1 -> +1, SELLER 2 -> -1, NO_AGGRESSOR 0 -> 0
    side = np.fromiter((int(t.aggressor_side) for t in trades), np.int8, n)
    arrays = {
        "trade_ts": np.fromiter((t.ts_event for t in trades), np.int64, n), "trade_price": price,
        "trade_notional": price * size, "trade_side": np.where(side == 2, -1, side).astype(np.int8),
    }  # fmt: skip
    if len(quotes):
        arrays["quote_ts"] = np.fromiter((q.ts_event for q in quotes), np.int64, len(quotes))
        arrays["bid"] = np.fromiter((exact(q.bid_price) for q in quotes), float, len(quotes))
        arrays["ask"] = np.fromiter((exact(q.ask_price) for q in quotes), float, len(quotes))
    oi, depth, sides = [], [], {}
    for record in slow:
        d = getattr(record, "data", record)
        if hasattr(d, "sum_open_interest_value"):
            oi.append((d.ts_event, float(d.sum_open_interest_value)))
        elif hasattr(d, "percentage") and abs(float(d.percentage)) == depth_pct:
            if sides.get("ts") != d.ts_event:
                sides = {"ts": d.ts_event}
            sides[1 if float(d.percentage) > 0 else -1] = abs(float(d.notional))
            if 1 in sides and -1 in sides:
                depth.append((d.ts_event, sides[-1] + sides[1]))
    for name, rows in (("oi", oi), ("depth", depth)):
        if rows:
            arrays[f"{name}_ts"] = np.array([r[0] for r in rows], np.int64)
            arrays[name] = np.array([r[1] for r in rows], float)
    if len(funding):
        arrays["funding_ts"] = np.array([u.ts_event for u in funding], np.int64)
        arrays["funding"] = np.array([float(u.rate) for u in funding], float)
    return LpiInputs(**arrays)
