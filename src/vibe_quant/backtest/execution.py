"""Fill prices: what NautilusTrader's bar matching cannot express, decided by us.

NautilusTrader 1.221 fills a market order at the price of the last processed bar tick, so with
bars it fills at the signal bar's close (no latency) or the next bar's close (any latency), and a
triggered stop always fills exactly at its trigger, even when the bar opened far beyond it.

Here every market order carries at least 1 ns of latency and the venue module has the exchange
execute it when the next bar opens, before that bar is matched (``venue.py``);
:class:`PerpFillModel` then hands the matching engine a one-level book at

* market: the next bar's open, moved against the order by the slippage model;
* stop-market: its trigger, or the bar's open when the bar gapped through it, one tick worse
  (validation) or with a probabilistic tick (screening);
* forced orders (liquidations): the exact price the venue module set.

Limit orders keep NautilusTrader's own rule (their limit price, with the queue probability
``prob_fill_on_limit`` when the market only touches it).
"""

from __future__ import annotations

import dataclasses
import math
from array import array
from dataclasses import dataclass, field

import numpy as np
from nautilus_trader.backtest.models import FillModel
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BookOrder
from nautilus_trader.model.enums import BookType, OrderSide, OrderType
from nautilus_trader.model.objects import Price, Quantity

from vibe_quant.backtest.draws import LIMIT_QUEUE, SLIPPAGE, Draws, instrument_key
from vibe_quant.backtest.recorder import RunRecorder
from vibe_quant.instruments.ticks import round_adverse
from vibe_quant.strategy.account import InstrumentBook

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def volume_slippage(spread: float, volatility: float, order_size: float, avg_volume: float, impact: float) -> float:
    """The validation slippage ``spread/2 + impact * volatility * sqrt(size / avg_volume)`` (docs/specs.md#slippage-model).

    Parameters
    ----------
    spread : float
        Estimated bid-ask spread (price units).
    volatility : float
        Standard deviation of one bar's price change (price units).
    order_size, avg_volume : float
        Order quantity and average bar volume, both in base units.
    impact : float
        The impact coefficient (0.1 by default, docs/specs.md#slippage-model).

    Returns
    -------
    float
        Adverse price move (>= 0).
    """
    participation = order_size / avg_volume if avg_volume > 0 else 1.0
    return spread / 2.0 + impact * volatility * math.sqrt(max(participation, 0.0))


def latency_drift(volatility: float, latency_ns: int, bar_ns: int) -> float:
    """Expected absolute price move while an order travels: ``sigma * sqrt(latency/bar) * sqrt(2/pi)``.

    Counted as adverse (conservative): with bars we cannot know the path inside the bar, only
    that a slower order sees a price further from the open.
    """
    if latency_ns <= 0 or bar_ns <= 0:
        return 0.0
    return volatility * math.sqrt(latency_ns / bar_ns) * SQRT_2_OVER_PI


@dataclass
class InstrumentState(InstrumentBook):
    """The simulated venue's state of one instrument: its book (``strategy/account.py``), which the
    strategies read through their ports, plus what only the simulation needs (fill-model inputs,
    liquidation price, the next funding settlement).

    The execution bars are known before the run, so their fields sit in flat arrays and the
    venue module only advances ``i`` as the engine processes each bar: reading a float from an
    array costs a fraction of converting a NautilusTrader ``Price`` on every bar. The arrays are
    ``array('q')`` (times) and ``array('d')`` (prices, volumes, rolling inputs): 8 bytes a bar
    each, where a list of Python floats takes 32-40, and items read back as Python ints and
    floats (numpy scalars would leak into records). Plain lists work too (tests build states by
    hand).
    """

    vol_window: int = 20
    key: int = 0  # the instrument's key for the venue's draws (``draws.py``), set from the symbol
    liq_price: float = 0.0
    next_funding: int = 0  # index of the next funding settlement to apply
    vols: list = field(default_factory=list)  # per bar: volatility from the bars before it
    avg_volumes: list = field(default_factory=list)
    _arrays: tuple | None = None  # (ts, closes) as numpy arrays, built once and shared by fresh() copies

    def __post_init__(self) -> None:
        self.key = instrument_key(self.symbol)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Bar close times (int64) and closes (float64) as numpy arrays."""
        if self._arrays is None:  # views of array('q')/array('d') fields, copies of lists
            self._arrays = (np.asarray(self.ts, dtype=np.int64), np.asarray(self.closes, dtype=np.float64))
        return self._arrays

    @classmethod
    def from_bars(cls, bars: list, **fields) -> InstrumentState:
        st = cls(**fields)
        st.ts = array("q", [b.ts_init for b in bars])
        st.opens = array("d", [b.open.as_double() for b in bars])
        st.highs = array("d", [b.high.as_double() for b in bars])
        st.lows = array("d", [b.low.as_double() for b in bars])
        st.closes = array("d", [b.close.as_double() for b in bars])
        st.volumes = array("d", [b.volume.as_double() for b in bars])
        vols, avg_volumes = rolling_inputs(np.asarray(st.closes), np.asarray(st.volumes), st.vol_window)
        st.vols, st.avg_volumes = array("d", vols.tobytes()), array("d", avg_volumes.tobytes())
        st.arrays()
        return st

    def fresh(self) -> InstrumentState:
        """A copy at the start of a run: bar and funding lists shared (never written), position empty."""
        return dataclasses.replace(self, i=-1, signed_qty=0.0, avg_px=0.0, wallet=0.0, liq_price=0.0,
                                   position_id="", trade_seq=0, next_funding=0, cash=0.0, flat_cash=0.0,
                                   entry_notional=0.0, closed=[])  # fmt: skip

    def volatility(self) -> float:
        """Std of the bar-to-bar close changes over the ``vol_window`` bars before the current one."""
        return self.vols[self.i] if self.i >= 0 else 0.0

    def avg_volume(self) -> float:
        """Mean volume of the ``vol_window`` bars before the current one (0 if none)."""
        return self.avg_volumes[self.i] if self.i >= 0 else 0.0


def rolling_inputs(closes: np.ndarray, volumes: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Per bar ``i``: std (ddof 1) of the close changes and mean volume of the `window` bars
    before ``i`` (bar ``i`` itself excluded: a fill at its open cannot know it).

    Shorter histories use what exists (0 until three closes are known). Computed once per run
    with prefix sums instead of per fill.
    """
    n = closes.size
    vols = np.zeros(n)
    avg = np.zeros(n)
    if n == 0:
        return vols, avg
    diffs = np.diff(closes)  # diffs[k] = closes[k+1] - closes[k]
    c1 = np.concatenate(([0.0], np.cumsum(diffs)))
    c2 = np.concatenate(([0.0], np.cumsum(diffs * diffs)))
    cv = np.concatenate(([0.0], np.cumsum(volumes)))
    idx = np.arange(n)
    # changes among closes[max(0, i-window-1) : i]: diffs[lo : i-1]
    lo = np.maximum(0, idx - window - 1)
    hi = np.maximum(idx - 1, lo)
    m = hi - lo
    s1 = c1[hi] - c1[lo]
    s2 = c2[hi] - c2[lo]
    ok = m >= 2
    var = np.where(ok, (s2 - s1 * s1 / np.maximum(m, 1)) / np.maximum(m - 1, 1), 0.0)
    vols = np.sqrt(np.maximum(var, 0.0))
    vlo = np.maximum(0, idx - window)
    count = idx - vlo
    avg = np.where(count > 0, (cv[idx] - cv[vlo]) / np.maximum(count, 1), 0.0)
    return vols, avg


class PerpFillModel(FillModel):
    """Prices market, stop and forced fills from the current bar (see the module docstring).

    Parameters
    ----------
    states : dict
        InstrumentId -> :class:`InstrumentState`, shared with the venue module.
    recorder : RunRecorder
        Receives the reference price and estimated slippage of each priced order.
    mode : str
        ``screening`` or ``validation``.
    """

    def __init__(
        self, states: dict, recorder: RunRecorder, mode: str, spread_ticks: float, impact: float,
        latency_ns: int, prob_fill_on_limit: float, prob_slippage: float, seed: int,
    ):  # fmt: skip
        # NautilusTrader's own probabilities drive limit queue fills; its slippage is ours below.
        super().__init__(prob_fill_on_limit=prob_fill_on_limit, prob_slippage=0.0, random_seed=seed)
        self.states = states
        self.recorder = recorder
        self.validation = mode == "validation"
        self.spread_ticks = spread_ticks
        self.impact = impact
        self.latency_ns = latency_ns
        self.slip_probability = prob_slippage
        self.limit_probability = prob_fill_on_limit
        # Draws keyed per instrument, bar and rank (``draws.py``), never a sequential generator:
        # the same fill draws the same number here and in the compiled simulator.
        self.draws = Draws(seed)
        self._bar_key = (0, 0)  # (instrument key, bar close time) of the bar being matched

    def at(self, key: int, ts: int) -> None:
        """The venue module names the instrument and bar (or tick) NautilusTrader is about to match:
        limit queue draws are that bar's."""
        self._bar_key = (key, ts)

    def is_limit_filled(self) -> bool:
        """Whether a limit order touched exactly at its price fills (its queue position)."""
        p = self.limit_probability
        return p == 1 or (p != 0 and p >= self.draws.uniform(LIMIT_QUEUE, *self._bar_key))

    def get_orderbook_for_fill_simulation(self, instrument, order, best_bid, best_ask):
        st: InstrumentState = self.states[instrument.id]
        coid = order.client_order_id.value
        side = 1 if order.side == OrderSide.BUY else -1
        order_type = order.order_type
        forced = self.recorder.forced.pop(coid, None)
        if forced is not None:
            price, reference, estimated, economic = forced, forced, 0.0, st.bar_ts
        elif order_type == OrderType.MARKET:
            # Executed at the open of the first bar that closes after submission + latency; a
            # latency longer than a bar lands the order later inside that bar.
            reference = st.open
            economic = st.bar_open_ns + self.latency_ns % st.bar_ns
            estimated = self._market_slippage(st, order.quantity.as_double())
            price = round_adverse(reference + side * estimated, st.tick, side)
        elif order_type == OrderType.STOP_MARKET:
            trigger = order.trigger_price.as_double()
            gapped = st.open <= trigger if side < 0 else st.open >= trigger
            reference = st.open if gapped else trigger
            economic = st.bar_open_ns if gapped else st.bar_ts
            estimated = st.tick if self.validation else self._coin_tick(st)
            price = round_adverse(reference + side * estimated, st.tick, side)
        else:
            # Limit orders fill at their limit price once NautilusTrader's touch rule (and the
            # queue probability) says so, and in full: NautilusTrader's own book would offer a
            # quarter of the bar's volume per tick, and partial fills of a bracket's take-profit
            # make its OUO/reduce-only bookkeeping underflow the sibling's quantity (a Rust panic).
            price = order.price.as_double()
            reference = None
        if reference is not None:
            self.recorder.pricing[coid] = (reference, estimated, economic)
        book = OrderBook(instrument.id, BookType.L2_MBP)
        book_side = OrderSide.SELL if side > 0 else OrderSide.BUY
        size = Quantity(max(order.quantity.as_double() * 10.0, 1.0), st.size_precision)
        book.add(BookOrder(book_side, Price(price, st.price_precision), size, 1), 0, 0)
        return book

    def _market_slippage(self, st: InstrumentState, qty: float) -> float:
        if not self.validation:
            return self._coin_tick(st)
        vol = st.volatility()
        slip = volume_slippage(self.spread_ticks * st.tick, vol, qty, st.avg_volume(), self.impact)
        return slip + latency_drift(vol, self.latency_ns % st.bar_ns, st.bar_ns)

    def _coin_tick(self, st: InstrumentState) -> float:
        p = self.slip_probability
        return st.tick if p > 0 and self.draws.uniform(SLIPPAGE, st.key, st.bar_ts) < p else 0.0
