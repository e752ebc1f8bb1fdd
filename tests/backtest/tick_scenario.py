"""Scenario harness on ticks: hand-written trades and quotes, a scripted strategy, the real tick runner.

FILUSDT-PERP as in ``scenario.py`` (tick 0.001, step 0.1, taker 0.0005, maker 0.0002). Times are
seconds after ``T0``; the strategy sees the 1m bars NautilusTrader aggregates from the trades
(bar ``i`` closes at ``T0 + (i + 1) minutes`` and holds the trades in ``(close - 1m, close]``).
"""

from __future__ import annotations

import json

from nautilus_trader.model.data import Bar, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide, OrderSide, TimeInForce
from nautilus_trader.model.identifiers import InstrumentId, TradeId
from nautilus_trader.model.objects import Price, Quantity

from tests.backtest.scenario import IID, SYMBOL, T0, Scripted, ScriptedConfig, funding, scripted_plan
from vibe_quant.backtest.engine import BacktestResult
from vibe_quant.backtest.ticks import TickData, run_tick_backtest
from vibe_quant.instruments.factory import crypto_perpetual
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.strategy.base import PerpStrategy, PerpStrategyConfig

S = 10**9
BUY, SELL = "B", "S"  # aggressor of a trade: buyer (at the ask) or seller (at the bid)
_IID = InstrumentId.from_str(IID)


class TickScriptedConfig(ScriptedConfig, frozen=True, kw_only=True):
    pass


class TickScripted(Scripted):
    """:class:`~tests.backtest.scenario.Scripted` plus ``["limit", side, qty, price]``: a post-only GTC limit."""

    def on_bar(self, bar: Bar) -> None:
        super().on_bar(bar)
        for action in self.plan.get(self.i, []):
            if action[0] == "limit":
                _, side, qty, price = action
                order = self.order_factory.limit(
                    self.instrument_id, OrderSide.BUY if side > 0 else OrderSide.SELL,
                    Quantity(qty, self.instrument.size_precision), Price(price, self.instrument.price_precision),
                    time_in_force=TimeInForce.GTC, post_only=True, tags=["entry"],
                )  # fmt: skip
                self.submit_order(order)


def trades(rows: list[tuple[float, float, str]], qty: float = 10.0) -> list[TradeTick]:
    """(seconds after T0, price, B|S) rows -> trade ticks."""
    out = []
    for n, (sec, price, aggressor) in enumerate(rows):
        side = AggressorSide.BUYER if aggressor == BUY else AggressorSide.SELLER
        ts = T0 + round(sec * S)
        out.append(TradeTick(_IID, Price(price, 3), Quantity(qty, 1), side, TradeId(str(n + 1)), ts, ts))
    return out


def quotes(rows: list[tuple[float, float, float]], qty: float = 1000.0) -> list[QuoteTick]:
    """(seconds after T0, bid, ask) rows -> quote ticks."""
    return [QuoteTick(_IID, Price(bid, 3), Price(ask, 3), Quantity(qty, 1), Quantity(qty, 1), T0 + round(sec * S),
                      T0 + round(sec * S)) for sec, bid, ask in rows]  # fmt: skip


def steady(first: int, last: int, price: float = 10.0, every: int = 5) -> list[tuple[float, float, str]]:
    """Alternating buyer/seller trades at `price` every `every` s in [first, last]: the touch stays at `price`."""
    return [(s, price, BUY if (s // every) % 2 else SELL) for s in range(first, last + 1, every)]


def run_ticks(trade_rows, script: dict, quote_rows=(), funding_rows=(), strategy: str = f"{__name__}:TickScripted",
              **config) -> BacktestResult:  # fmt: skip
    """Run `script` on the hand-written ticks; extra kwargs go to :class:`BacktestConfig`."""
    spec = InstrumentSpecs().get(SYMBOL)
    data = TickData(
        specs={SYMBOL: spec}, instruments={SYMBOL: crypto_perpetual(spec)},
        trades={SYMBOL: trades(sorted(trade_rows))}, quotes={SYMBOL: quotes(sorted(quote_rows))},
        funding={SYMBOL: funding(list(funding_rows))}, digest="tick-scenario",
    )  # fmt: skip
    return run_tick_backtest(scripted_plan(strategy, script, **config), data, run_id="tick-scenario")


class QuoteScriptedConfig(PerpStrategyConfig, frozen=True, kw_only=True):
    script: str = "[]"  # JSON [[not-before ns, direction, qty], ...]


class QuoteScripted(PerpStrategy):
    """A tick strategy: sends a market order on the first quote at or after each scripted time."""

    def setup(self) -> None:
        self.todo = [tuple(a) for a in json.loads(self.config.script)]
        self.sent: list[tuple[int, str]] = []  # (quote time, client order id)
        self.subscribe_quote_ticks(self.instrument_id)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        if self.todo and tick.ts_event >= self.todo[0][0]:
            _, direction, qty = self.todo.pop(0)
            order = self.order_factory.market(
                self.instrument_id, OrderSide.BUY if direction > 0 else OrderSide.SELL,
                Quantity(qty, self.instrument.size_precision),
            )  # fmt: skip
            self.sent.append((tick.ts_event, order.client_order_id.value))
            self.submit_order(order)


class FundingListenerConfig(ScriptedConfig, frozen=True, kw_only=True):
    pass


class FundingListener(TickScripted):
    """:class:`TickScripted` that also subscribes to funding rates and logs each one it receives."""

    def setup(self) -> None:
        super().setup()
        self.subscribe_funding_rates(self.instrument_id)

    def on_funding_rate(self, update) -> None:
        self.events.event(update.ts_event, "FUNDING_RATE_SEEN", rate=float(update.rate))
