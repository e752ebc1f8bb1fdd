"""A strategy's ports on a node that is not our backtest: NautilusTrader's own cache and portfolio.

A paper or live ``TradingNode`` builds strategies from ``ImportableStrategyConfig`` and gives them
nothing of ours. When such a strategy starts, :func:`node_ports` gives it:

* :class:`NodeAccount`, the :class:`~vibe_quant.strategy.account.AccountView` over the venue
  account NautilusTrader keeps: balance from the portfolio, positions and fills booked into one
  :class:`~vibe_quant.strategy.account.InstrumentBook` per instrument from the message bus (the
  same bookkeeping as the simulated venue), bars appended as they close, resting orders from the
  cache. Margin tiers come from ``instrument_specs.yaml`` when the symbol is there (else one
  bracket at the instrument's maintenance rate); the leverage is the account's for the instrument.
* an in-memory :class:`~vibe_quant.strategy.ports.EventLog` of the newest 10,000 events;
* no risk gate and no precomputed indicators (the strategy computes them bar by bar).

The funding schedule is unknown ahead on a node: books start with none, and a DSL strategy's
funding filter falls back to Binance's 00:00/08:00/16:00 UTC times (it warns).
"""

from __future__ import annotations

from nautilus_trader.model.enums import OrderSide, OrderType
from nautilus_trader.model.events import OrderFilled

from vibe_quant.errors import UserError
from vibe_quant.instruments.margin import Bracket, brackets_from_spec
from vibe_quant.strategy.account import InstrumentBook
from vibe_quant.strategy.ports import EventLog, StrategyPorts

EVENTS_KEPT = 10_000
# Run before the strategy's own handlers: the book must hold the bar (or position) it is told about.
_BEFORE_STRATEGIES = 10


class NodeAccount:
    """:class:`AccountView` of `strategy`'s instruments, kept from NautilusTrader's message bus.

    Parameters
    ----------
    strategy : PerpStrategy or PortfolioStrategy
        A registered strategy (its ``legs`` name the instruments and bar types).
    """

    def __init__(self, strategy):
        from vibe_quant.instruments.specs import InstrumentSpecs

        self.strategy = strategy
        self.cache, self.portfolio = strategy.cache, strategy.portfolio
        legs = getattr(strategy, "legs", None) or [strategy.leg]
        specs = InstrumentSpecs()
        self._books: dict[str, InstrumentBook] = {}
        for leg in legs:
            instrument = self.cache.instrument(leg.instrument_id)
            if instrument is None:
                raise UserError(f"{strategy.id}: the node has no instrument {leg.instrument_id} (load it first)")
            self._books[leg.instrument_id.value] = self._new_book(instrument, leg.bar_type, specs)
            strategy.msgbus.subscribe(topic=f"data.bars.{leg.bar_type.standard()}", handler=self._on_bar,
                                      priority=_BEFORE_STRATEGIES)  # fmt: skip
        self._venue = legs[0].instrument_id.venue
        self._currency = self.cache.instrument(legs[0].instrument_id).settlement_currency
        sid = strategy.id.value
        strategy.msgbus.subscribe(topic=f"events.order.{sid}", handler=self._on_order, priority=_BEFORE_STRATEGIES)
        strategy.msgbus.subscribe(topic=f"events.position.{sid}", handler=self._on_position,
                                  priority=_BEFORE_STRATEGIES)  # fmt: skip

    def _new_book(self, instrument, bar_type, specs) -> InstrumentBook:
        account = self.portfolio.account(instrument.id.venue)
        leverage = None
        if account is not None and hasattr(account, "leverage"):
            leverage = account.leverage(instrument.id) or account.default_leverage
        symbol = instrument.raw_symbol.value
        try:
            brackets = brackets_from_spec(specs.get(symbol))
        except UserError:  # not in instrument_specs.yaml: one bracket at the instrument's own rates
            brackets = (Bracket(0.0, float("inf"), 125, float(instrument.margin_maint), 0.0),)
        step_ns = bar_type.spec.timedelta.total_seconds() * 1e9
        return InstrumentBook(
            instrument_id=instrument.id, symbol=symbol, bar_ns=int(step_ns), tick=instrument.price_increment.as_double(),
            price_precision=instrument.price_precision, size_precision=instrument.size_precision,
            leverage=float(leverage or 1), brackets=brackets, taker_fee=float(instrument.taker_fee),
        )  # fmt: skip

    # -- AccountView ------------------------------------------------------------------------------

    def equity(self) -> float:
        account = self.portfolio.account(self._venue)
        balance = account.balance_total(self._currency).as_double() if account is not None else 0.0
        return balance + sum(b.signed_qty * (b.close - b.avg_px) for b in self._books.values() if b.signed_qty)

    def used_margin(self) -> float:
        return sum(b.wallet for b in self._books.values() if b.signed_qty)

    def book(self, instrument_id: str) -> InstrumentBook:
        return self._books[instrument_id]

    def books(self) -> list[InstrumentBook]:
        return list(self._books.values())

    def resting(self, instrument_id: str) -> dict[str, tuple[str, int, float]]:
        out = {}
        book = self._books[instrument_id]
        for order in self.cache.orders_open(instrument_id=book.instrument_id, strategy_id=self.strategy.id):
            side = 1 if order.side == OrderSide.BUY else -1
            if order.order_type == OrderType.STOP_MARKET:
                out[order.client_order_id.value] = ("stop", side, order.trigger_price.as_double())
            elif order.order_type == OrderType.LIMIT:
                out[order.client_order_id.value] = ("limit", side, order.price.as_double())
        return out

    # -- message-bus handlers ---------------------------------------------------------------------

    def _on_bar(self, bar) -> None:
        self._books[bar.bar_type.instrument_id.value].append_bar(bar)

    def _on_order(self, event) -> None:
        if isinstance(event, OrderFilled):
            book = self._books.get(event.instrument_id.value)
            if book is not None:
                side = 1 if event.order_side == OrderSide.BUY else -1
                book.book_fill(
                    side, event.last_qty.as_double(), event.last_px.as_double(), event.commission.as_double()
                )

    def _on_position(self, event) -> None:
        book = self._books.get(event.instrument_id.value)
        if book is not None:
            book.book_position(event)


def node_ports(strategy) -> StrategyPorts:
    """The default ports of a strategy started by a node (see the module docstring)."""
    return StrategyPorts(account=NodeAccount(strategy), events=EventLog(maxlen=EVENTS_KEPT))
