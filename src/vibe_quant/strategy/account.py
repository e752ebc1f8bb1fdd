"""What a strategy may know about its account: one :class:`InstrumentBook` per instrument and the
:class:`AccountView` over all of them.

A book holds an instrument's trading rules, the bars seen so far (as floats, for sizing and risk
formulas), the open position (NETTING: at most one) and the cash flows of its trading. The
simulated venue keeps books as its per-instrument state (``backtest/execution.py`` extends this
class with what only the simulation needs); a paper or live node keeps them from NautilusTrader's
own events (``strategy/node.py``). Both book fills and positions with the same two methods, so
margin, trade returns and per-strategy equity mean the same thing everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from nautilus_trader.model.events import PositionChanged, PositionClosed, PositionOpened

from vibe_quant.instruments.margin import Bracket


@dataclass
class InstrumentBook:
    """One instrument as strategies and the risk gate see it (floats; prices in quote currency).

    ``ts``/``opens``/``highs``/``lows``/``closes``/``volumes`` hold the bars known so far and
    ``i`` the one being processed: a backtest knows every bar up front and advances ``i``; a
    node appends each bar as it closes. Nothing after ``i`` may be read (look-ahead).
    """

    instrument_id: object
    symbol: str
    bar_ns: int
    tick: float
    price_precision: int
    size_precision: int
    leverage: float
    brackets: tuple[Bracket, ...]
    taker_fee: float = 0.0
    ts: list = field(default_factory=list)  # bar close times (ns)
    opens: list = field(default_factory=list)
    highs: list = field(default_factory=list)
    lows: list = field(default_factory=list)
    closes: list = field(default_factory=list)
    volumes: list = field(default_factory=list)
    i: int = -1  # index of the bar being (or last) processed
    # position (NETTING: at most one per instrument)
    signed_qty: float = 0.0
    avg_px: float = 0.0
    wallet: float = 0.0  # isolated margin
    position_id: str = ""
    trade_seq: int = 0  # round trips opened so far (funding is attributed by it)
    # funding schedule when known: sorted (snapshot_ns, rate, interval_hours)
    funding: list = field(default_factory=list)
    # cash flows of this instrument's trading (fills, fees, funding, clearance fees): its net
    # PnL so far is cash + signed_qty * close; closed round trips as (net PnL, return on notional)
    cash: float = 0.0
    flat_cash: float = 0.0  # cash when the position was last flat
    entry_notional: float = 0.0
    closed: list = field(default_factory=list)

    @property
    def open(self) -> float:
        return self.opens[self.i] if self.i >= 0 else math.nan

    @property
    def close(self) -> float:
        return self.closes[self.i] if self.i >= 0 else math.nan

    @property
    def bar_ts(self) -> int:
        return self.ts[self.i]

    @property
    def bar_open_ns(self) -> int:
        return self.ts[self.i] - self.bar_ns

    def append_bar(self, bar) -> None:
        """Append a closed NautilusTrader bar and make it the current one (books kept from the
        message bus: a node's, a tick backtest's)."""
        self.ts.append(bar.ts_event)
        self.opens.append(bar.open.as_double())
        self.highs.append(bar.high.as_double())
        self.lows.append(bar.low.as_double())
        self.closes.append(bar.close.as_double())
        self.volumes.append(bar.volume.as_double())
        self.i = len(self.ts) - 1

    def book_fill(self, side: int, qty: float, price: float, fee: float) -> None:
        """A fill of `qty` at `price` (`side` +1 buy, -1 sell) paying `fee`."""
        self.cash -= side * qty * price + fee

    def book_position(self, event) -> str | None:
        """Apply a NautilusTrader position event (after its fill was booked).

        Returns ``"open"`` for a new position (or a side flip), ``"close"`` when it closed (its
        round trip appended to ``closed``), else None. The isolated margin of a new position is
        its notional over the leverage; adding scales it up at the fill price, reducing scales
        it down in proportion.
        """
        new_qty = event.signed_qty
        old_qty = self.signed_qty
        if isinstance(event, PositionClosed) or new_qty == 0:
            self.signed_qty, self.avg_px, self.wallet = 0.0, 0.0, 0.0
            net = self.cash - self.flat_cash
            self.closed.append((net, net / self.entry_notional if self.entry_notional else 0.0))
            self.flat_cash = self.cash
            return "close"
        opened = isinstance(event, PositionOpened) or old_qty == 0 or old_qty * new_qty < 0
        if opened:
            self.trade_seq += 1
            self.wallet = abs(new_qty) * event.avg_px_open / self.leverage
            self.entry_notional = abs(new_qty) * event.avg_px_open
        elif isinstance(event, PositionChanged):
            if abs(new_qty) > abs(old_qty):
                self.wallet += (abs(new_qty) - abs(old_qty)) * event.last_px.as_double() / self.leverage
            else:
                self.wallet *= abs(new_qty) / abs(old_qty)
        self.signed_qty = new_qty
        self.avg_px = event.avg_px_open
        self.position_id = event.position_id.value
        return "open" if opened else None


class AccountView(Protocol):
    """The account a strategy trades on (the simulated venue's, or a node's)."""

    def equity(self) -> float:
        """Balance plus the unrealised PnL of every open position at the last closes."""

    def used_margin(self) -> float:
        """Isolated margin held by the open positions."""

    def book(self, instrument_id: str) -> InstrumentBook:
        """The book of one instrument (raises KeyError for an instrument not traded here)."""

    def books(self) -> Sequence[InstrumentBook]:
        """Every instrument's book, in a fixed order."""

    def resting(self, instrument_id: str) -> dict[str, tuple[str, int, float]]:
        """Resting stop and limit orders: client order id -> (``"stop"``/``"limit"``, side, price)."""
