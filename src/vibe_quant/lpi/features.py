"""The LPI feature engine: trades, quotes and slow custom data in, a `SignalSnapshot` per bucket out.

Two implementations of one set of formulas (``docs/specs.md#liquidation-pressure-index``):

* :class:`FeatureEngine`, tick by tick behind :class:`SignalEngineProtocol` (a NautilusTrader
  strategy feeds it events); plain Python, and the reference the kernel is checked against;
* :func:`compute`, the batch path over numpy arrays, a numba kernel (``kernel.lpi_nb``).

:func:`compute_reference` drives :class:`FeatureEngine` over the same arrays in the kernel's event
order; the two agree bit for bit (``tests/lpi/test_parity.py``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from vibe_quant.errors import DataFileError
from vibe_quant.lpi import params as P
from vibe_quant.lpi.params import LpiParams
from vibe_quant.lpi.rolling import RollingZ

# Event kinds in the order they are applied at one timestamp: state (quotes, depth, open interest,
# funding) before the trades, so a trade sees every quote stamped at or before it.
QUOTE, DEPTH, OI, FUNDING, TRADE = 0, 1, 2, 3, 4

NAN = math.nan


def exact(value: Any) -> float:
    """The double nearest a NautilusTrader ``Price``/``Quantity``'s decimal value.

    ``as_double()`` (and ``float()``) divide the fixed-point integer by 10^16 and can be one ulp off
    (``Price.from_str("79974.1").as_double()`` is 79974.09999999999); rounding to the value's own
    precision gives what the file said, so a signal computed from the catalog's ticks equals the
    one computed from the raw file (``vq lpi features``) bit for bit. Plain numbers pass through.
    """
    precision = getattr(value, "precision", None)
    return float(value) if precision is None else round(value.as_double(), precision)


@dataclass(frozen=True)
class SignalSnapshot:
    """The features of one closed bucket (fields as in ``params.SNAPSHOT_DTYPE``)."""

    ts_event: int
    n_trades: int
    notional: float
    impact_sell: float
    impact_buy: float
    spread: float
    mid: float
    depth_proxy: float
    ld: float
    p: float
    l: float  # noqa: E741 - the formula's name
    lpi_fast: float
    exh: float
    lev: float
    rv: float
    sigma: float
    quote_age_ns: int
    validity_flags: int

    def as_tuple(self) -> tuple:
        """The fields in ``SNAPSHOT_DTYPE`` order."""
        return tuple(getattr(self, name) for name in P.SNAPSHOT_DTYPE.names)


class SignalEngineProtocol(Protocol):
    """What a strategy needs from a signal engine: events in, a snapshot when a bucket closes."""

    def on_trade_tick(self, tick: Any) -> None: ...

    def on_quote_tick(self, tick: Any) -> None: ...

    def on_custom_data(self, data: Any) -> None: ...

    def maybe_emit_signal(self) -> SignalSnapshot | None: ...


@dataclass(frozen=True)
class LpiInputs:
    """Event arrays, each sorted by its timestamps (int64 ns); only the trades are required.

    Parameters
    ----------
    trade_ts, trade_price, trade_notional, trade_side : ndarray, shape (n,)
        Trades: time, price, notional in the quote currency (price x base size for linear
        contracts, contracts x contract size for inverse ones) and aggressor side (+1 buyer,
        -1 seller, 0 unknown: never impact).
    quote_ts, bid, ask : ndarray, shape (q,)
        Top of book.
    depth_ts, depth : ndarray, shape (d,)
        Percent-depth notional (both sides within X % of the touch).
    oi_ts, oi, funding_ts, funding : ndarray
        Open interest and funding rate updates.
    """

    trade_ts: np.ndarray
    trade_price: np.ndarray
    trade_notional: np.ndarray
    trade_side: np.ndarray
    quote_ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    bid: np.ndarray = field(default_factory=lambda: np.empty(0))
    ask: np.ndarray = field(default_factory=lambda: np.empty(0))
    depth_ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    depth: np.ndarray = field(default_factory=lambda: np.empty(0))
    oi_ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    oi: np.ndarray = field(default_factory=lambda: np.empty(0))
    funding_ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    funding: np.ndarray = field(default_factory=lambda: np.empty(0))

    def checked(self) -> LpiInputs:
        """The arrays as contiguous int64/float64/int8, checked for equal lengths and sorted times.

        Raises
        ------
        DataFileError
            Lengths differ or a series is not sorted by time; the message names it.
        """
        groups = {
            "trade": ("trade_ts", ("trade_price", "trade_notional", "trade_side")),
            "quote": ("quote_ts", ("bid", "ask")),
            "depth": ("depth_ts", ("depth",)),
            "oi": ("oi_ts", ("oi",)),
            "funding": ("funding_ts", ("funding",)),
        }
        out: dict[str, np.ndarray] = {}
        for _name, (ts_name, cols) in groups.items():
            ts = np.ascontiguousarray(getattr(self, ts_name), dtype=np.int64)
            if ts.size > 1 and bool(np.any(np.diff(ts) < 0)):
                i = int(np.argmax(np.diff(ts) < 0))
                raise DataFileError(f"lpi inputs: {ts_name} not sorted at row {i + 1} ({ts[i]} then {ts[i + 1]})")
            out[ts_name] = ts
            for col in cols:
                dtype = np.int8 if col == "trade_side" else np.float64
                arr = np.ascontiguousarray(getattr(self, col), dtype=dtype)
                if arr.shape != ts.shape:
                    raise DataFileError(f"lpi inputs: {col} has {arr.size} rows, {ts_name} {ts.size}")
                out[col] = arr
        return LpiInputs(**out)

    def events(self) -> Iterator[tuple[int, int, int]]:
        """``(kind, row, ts)`` of every event in processing order: time, then kind (state first)."""
        series = (
            (QUOTE, self.quote_ts),
            (DEPTH, self.depth_ts),
            (OI, self.oi_ts),
            (FUNDING, self.funding_ts),
            (TRADE, self.trade_ts),
        )
        ptr = [0] * 5
        while True:
            best = -1
            best_ts = 0
            for kind, ts in series:
                i = ptr[kind]
                if i < len(ts) and (best < 0 or ts[i] < best_ts):
                    best, best_ts = kind, int(ts[i])
            if best < 0:
                return
            yield best, ptr[best], best_ts
            ptr[best] += 1


class FeatureEngine:
    """The LPI engine, one event at a time (the plain-Python reference of the kernel).

    Parameters
    ----------
    params : LpiParams
        Formula parameters.
    multiplier : float, default 1.0
        Contract multiplier of ticks given to :meth:`on_trade_tick`.
    inverse : bool, default False
        Inverse contract (COIN-M): a tick's notional is ``size * multiplier`` (contracts x contract
        size in USD), not ``price * size * multiplier``.
    depth_pct : float, default 1.0
        Which ``bookDepth`` band (± percent) :meth:`on_custom_data` takes as the depth proxy.
    """

    def __init__(self, params: LpiParams, multiplier: float = 1.0, inverse: bool = False, depth_pct: float = 1.0):
        self.params = params
        self.multiplier = multiplier
        self.inverse = inverse
        self.depth_pct = depth_pct
        p = params
        robust = p.zscore == "mad"
        self._zp = RollingZ(p.window, p.min_periods, robust)
        self._zl = RollingZ(p.window, p.min_periods, robust)
        self._ze1 = RollingZ(p.window, p.min_periods, robust)
        self._ze2 = RollingZ(p.window, p.min_periods, robust)
        self._zoi = RollingZ(p.lev_window, min(p.min_periods, p.lev_window), robust)
        self._zf = RollingZ(p.lev_window, min(p.min_periods, p.lev_window), robust)
        self._rv: deque[float] = deque(maxlen=p.rv_window)
        self._pending: deque[SignalSnapshot] = deque()
        self._depth_sides: dict[int, float] = {}
        self._depth_sides_ts = -1
        self.bid = NAN
        self.ask = NAN
        self.quote_ts = -1
        self.depth_value = NAN
        self.z_oi = NAN
        self.z_funding = NAN
        self.funding_seen = False
        self.lev = NAN
        self._open = False
        self._end = 0
        self._n = 0
        self._notional = 0.0
        self._is = 0.0
        self._ib = 0.0
        self._unquoted = False
        self._prev_lpi = NAN
        self._prev_spread = NAN
        self._prev_depth = NAN
        self._prev_mid = NAN

    # -- the protocol: NautilusTrader objects in -------------------------------------------
    def on_trade_tick(self, tick: Any) -> None:
        """Apply a ``TradeTick`` (aggressor BUYER +1, SELLER -1, otherwise 0)."""
        price = exact(tick.price)
        size = exact(tick.size)
        notional = size * self.multiplier if self.inverse else price * size * self.multiplier
        side_name = getattr(tick.aggressor_side, "name", str(tick.aggressor_side))
        side = 1 if side_name == "BUYER" else -1 if side_name == "SELLER" else 0
        self.trade(int(tick.ts_event), price, notional, side)

    def on_quote_tick(self, tick: Any) -> None:
        """Apply a ``QuoteTick``."""
        self.quote(int(tick.ts_event), exact(tick.bid_price), exact(tick.ask_price))

    def on_custom_data(self, data: Any) -> None:
        """Apply open interest (``sum_open_interest_value``), funding (``rate``) or a ``bookDepth`` row.

        A ``bookDepth`` snapshot is several rows sharing one ``ts_event``; the depth proxy is the sum
        of the notionals at ``+depth_pct`` and ``-depth_pct``, set once both rows are in. Other data
        is ignored.
        """
        ts = int(data.ts_event)
        if hasattr(data, "sum_open_interest_value"):
            self.open_interest(ts, float(data.sum_open_interest_value))
        elif hasattr(data, "rate"):
            self.funding_rate(ts, float(data.rate))
        elif hasattr(data, "percentage") and hasattr(data, "notional"):
            pct = float(data.percentage)
            if abs(pct) != self.depth_pct:
                return
            if ts != self._depth_sides_ts:
                self._depth_sides = {}
                self._depth_sides_ts = ts
            self._depth_sides[1 if pct > 0 else -1] = abs(float(data.notional))
            if len(self._depth_sides) == 2:
                self.depth(ts, self._depth_sides[-1] + self._depth_sides[1])

    def maybe_emit_signal(self) -> SignalSnapshot | None:
        """The oldest snapshot not yet emitted, or None."""
        return self._pending.popleft() if self._pending else None

    # -- plain values in ---------------------------------------------------------------------
    def quote(self, ts: int, bid: float, ask: float) -> None:
        """Apply a top-of-book update (ignored in quotes-free mode)."""
        self._advance(ts)
        if not self.params.quotes_free:
            self.bid, self.ask, self.quote_ts = bid, ask, ts

    def depth(self, ts: int, value: float) -> None:
        """Apply a depth-proxy update (percent-depth notional)."""
        self._advance(ts)
        self.depth_value = value

    def open_interest(self, ts: int, value: float) -> None:
        """Apply an open-interest update."""
        self._advance(ts)
        self.z_oi = self._zoi.push(value)
        self._set_lev()

    def funding_rate(self, ts: int, value: float) -> None:
        """Apply a funding-rate update."""
        self._advance(ts)
        self.funding_seen = True
        self.z_funding = self._zf.push(value)
        self._set_lev()

    def trade(self, ts: int, price: float, notional: float, side: int) -> None:
        """Apply a trade; in volume time it may close the bucket."""
        p = self.params
        self._advance(ts)
        if not self._open:
            self._open = True
            self._end = ts - ts % p.bucket_ns + p.bucket_ns
        self._n += 1
        self._notional += notional
        if side < 0:
            if math.isnan(self.bid):
                self._unquoted = True
            elif price < self.bid * (1.0 - p.eta):
                self._is += notional
        elif side > 0:
            if math.isnan(self.ask):
                self._unquoted = True
            elif price > self.ask * (1.0 + p.eta):
                self._ib += notional
        if p.quotes_free:
            if side < 0:
                self.bid, self.quote_ts = price, ts
            elif side > 0:
                self.ask, self.quote_ts = price, ts
        if p.clock == "volume" and self._notional >= p.bucket_notional:
            self._close(ts)

    # -- internals ---------------------------------------------------------------------------
    def _set_lev(self) -> None:
        self.lev = self.z_oi + self.params.lambda_f * self.z_funding if self.funding_seen else self.z_oi

    def _advance(self, ts: int) -> None:
        if self._open and self.params.clock == "time" and ts >= self._end:
            self._close(self._end)

    def _close(self, ts_event: int) -> None:
        p = self.params
        flags = P.QUOTES_FREE if p.quotes_free else 0
        if self._unquoted:
            flags |= P.UNQUOTED_TRADE
        spread = mid = NAN
        if not (math.isnan(self.bid) or math.isnan(self.ask)):
            spread = self.ask - self.bid
            if p.quotes_free and spread < 0.0:
                spread = 0.0
            mid = (self.ask + self.bid) * 0.5
        d = self.depth_value
        pz = self._zp.push(self._is - self._ib)
        ld = spread / mid if p.ld_variant == "spread_mid" else spread / (d + p.depth_eps)
        lz = self._zl.push(ld)
        lpi = pz + p.lambda_ld * lz
        e1 = self._ze1.push(-(lpi - self._prev_lpi))
        if p.exh_variant == "spread":
            e2 = self._ze2.push(-(spread - self._prev_spread))
            exh = e1 + p.lambda_spr * e2
        else:
            e2 = self._ze2.push(d - self._prev_depth)
            exh = e1 + p.lambda_liq * e2
        rv = sigma = NAN
        if not (math.isnan(mid) or math.isnan(self._prev_mid)):
            r = math.log(mid / self._prev_mid)
            self._rv.append(r * r)
            if len(self._rv) == p.rv_window:
                rv = 0.0
                for v in self._rv:
                    rv += v
                sigma = math.sqrt(rv)
        for value, flag in (
            (mid, P.NO_QUOTE),
            (pz, P.P_WARMUP),
            (lz, P.L_WARMUP),
            (exh, P.EXH_WARMUP),
            (self.lev, P.NO_LEV),
            (d, P.NO_DEPTH),
            (rv, P.RV_WARMUP),
        ):
            if math.isnan(value):
                flags |= flag
        age = ts_event - self.quote_ts if self.quote_ts >= 0 else -1
        self._pending.append(
            SignalSnapshot(
                ts_event,
                self._n,
                self._notional,
                self._is,
                self._ib,
                spread,
                mid,
                d,
                ld,
                pz,
                lz,
                lpi,
                exh,
                self.lev,
                rv,
                sigma,
                age,
                flags,
            )
        )
        self._prev_lpi, self._prev_spread, self._prev_depth, self._prev_mid = lpi, spread, d, mid
        self._open = False
        self._n = 0
        self._notional = self._is = self._ib = 0.0
        self._unquoted = False


def compute_reference(inputs: LpiInputs, params: LpiParams) -> np.ndarray:
    """Snapshots of :class:`FeatureEngine` fed `inputs` event by event (slow; the kernel's oracle).

    Returns
    -------
    ndarray of ``SNAPSHOT_DTYPE``, shape (buckets,)
        One row per closed bucket; the bucket still open at the end of the data is not emitted.
    """
    x = inputs.checked()
    eng = FeatureEngine(params)
    rows = []
    tt, tp, tn, tsd = x.trade_ts.tolist(), x.trade_price.tolist(), x.trade_notional.tolist(), x.trade_side.tolist()
    bid, ask, depth, oi, fund = x.bid.tolist(), x.ask.tolist(), x.depth.tolist(), x.oi.tolist(), x.funding.tolist()
    for kind, i, ts in x.events():
        if kind == TRADE:
            eng.trade(tt[i], tp[i], tn[i], tsd[i])
        elif kind == QUOTE:
            eng.quote(ts, bid[i], ask[i])
        elif kind == DEPTH:
            eng.depth(ts, depth[i])
        elif kind == OI:
            eng.open_interest(ts, oi[i])
        else:
            eng.funding_rate(ts, fund[i])
        while (snap := eng.maybe_emit_signal()) is not None:
            rows.append(snap.as_tuple())
    return np.array(rows, dtype=P.SNAPSHOT_DTYPE)


def compute(inputs: LpiInputs, params: LpiParams) -> np.ndarray:
    """Snapshots of every closed bucket of `inputs`, by the numba kernel.

    Parameters
    ----------
    inputs : LpiInputs
        Event arrays (see its docstring).
    params : LpiParams
        Formula parameters.

    Returns
    -------
    ndarray of ``SNAPSHOT_DTYPE``, shape (buckets,)
        Identical to :func:`compute_reference`.

    Raises
    ------
    DataFileError
        An input series is unsorted or its arrays differ in length.
    """
    from vibe_quant.lpi.kernel import run_kernel

    return run_kernel(inputs.checked(), params)
