"""Strategies built the way a paper or live ``TradingNode`` builds them: from the plan's
``ImportableStrategyConfig`` through NautilusTrader's ``StrategyFactory``, given no ports, on a
plain NautilusTrader engine (its own fills, no venue module of ours). They resolve their ports
from NautilusTrader's cache and portfolio when they start (``strategy/node.py``) and trade; the
node account's books agree with NautilusTrader's account and positions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType, OmsType, OrderType
from nautilus_trader.model.identifiers import InstrumentId, Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.trading.config import StrategyFactory

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.plan import plan_run
from vibe_quant.errors import ConfigError
from vibe_quant.instruments.factory import crypto_perpetual
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.strategy.node import NodeAccount
from vibe_quant.strategy.ports import resolve_ports
from vibe_quant.strategy.registry import LegSpec, find_strategy

START, END = dt.date(2023, 8, 1), dt.date(2023, 8, 31)
BALANCE = 10_000.0
SYMBOLS = ("FILUSDT", "NEARUSDT")


@pytest.fixture(scope="module")
def catalog(aug_2023_catalog):
    return aug_2023_catalog  # FILUSDT + NEARUSDT, August 2023 (tests/conftest.py)


class Watcher(Actor):
    """After the strategies at every bar close: the node account's books against NautilusTrader's
    portfolio (net position, average entry price) and account balance (every cash flow booked)."""

    def __init__(self, strategies: list, bar_types: list):
        super().__init__()
        self.strategies, self.bar_types = strategies, bar_types
        self.checked, self.mismatches, self.held = 0, [], 0

    def on_start(self) -> None:
        for bar_type in self.bar_types:
            self.subscribe_bars(BarType.from_str(bar_type))

    def on_bar(self, bar) -> None:
        books = [b for s in self.strategies for b in s.ports.account.books()]
        balance = self.portfolio.account(Venue("BINANCE")).balance_total(USDT).as_double()
        booked = BALANCE + sum(b.cash + b.signed_qty * b.avg_px for b in books)
        if abs(booked - balance) > 1e-6 * balance:
            self.mismatches.append((bar.ts_event, "balance", booked, balance))
        for book in books:
            iid = InstrumentId.from_str(book.instrument_id.value)
            net = float(self.portfolio.net_position(iid))
            if abs(book.signed_qty - net) > 1e-9:
                self.mismatches.append((bar.ts_event, book.symbol, book.signed_qty, net))
            if net:
                self.held += 1
                (position,) = self.cache.positions_open(instrument_id=iid)
                if abs(book.avg_px - position.avg_px_open) > 1e-9 * position.avg_px_open:
                    self.mismatches.append((bar.ts_event, book.symbol, book.avg_px, position.avg_px_open))
        self.checked += 1


def run_on_plain_engine(catalog, config: BacktestConfig, leverage: int = 5):
    """Build the plan's strategies as a node would and run them on NautilusTrader's own engine."""
    plan = plan_run(config)
    specs, cat = InstrumentSpecs(), ParquetDataCatalog(str(catalog))
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"), run_analysis=False))
    # A small account: NautilusTrader's own book offers a quarter of a bar's volume per tick, and a
    # partly filled bracket take-profit panics its OUO bookkeeping (see backtest/execution.py).
    engine.add_venue(Venue("BINANCE"), oms_type=OmsType.NETTING, account_type=AccountType.MARGIN, base_currency=None,
                     starting_balances=[Money(BALANCE, USDT)], default_leverage=Decimal(leverage))  # fmt: skip
    legs = []
    for symbol in plan.symbols:
        spec = specs.get(symbol)
        engine.add_instrument(crypto_perpetual(spec))
        bar_type = f"{spec.nautilus_id}-{ {'15m': '15-MINUTE', '5m': '5-MINUTE'}[plan.timeframe] }-LAST-EXTERNAL"
        engine.add_data(cat.bars([bar_type]))
        legs.append(LegSpec(symbol, spec.nautilus_id, bar_type))
    strategies = [StrategyFactory.create(c) for c in plan.strategy.importable(legs)]
    for strategy in strategies:
        assert strategy.ports is None  # nothing given: it resolves its own when it starts
        engine.add_strategy(strategy)
    watcher = Watcher(strategies, [leg.bar_type for leg in legs])
    engine.add_actor(watcher)
    engine.run()
    assert watcher.mismatches == []
    assert watcher.checked > 1000
    assert watcher.held > 100
    return engine, strategies


def check_books_against_nautilus(engine, strategy) -> None:
    """At the end of the run (the Watcher checked every bar): equity, resting orders, round trips, events."""
    account = strategy.ports.account
    assert isinstance(account, NodeAccount)
    balance = engine.portfolio.account(Venue("BINANCE")).balance_total(USDT).as_double()
    others = sum(b.cash + b.signed_qty * b.avg_px for s in engine.trader.strategies() if s is not strategy
                 for b in s.ports.account.books())  # fmt: skip
    unrealised = sum(b.signed_qty * (b.close - b.avg_px) for b in account.books())
    assert account.equity() == pytest.approx(balance + unrealised, rel=1e-12)
    assert BALANCE + others + sum(b.cash + b.signed_qty * b.avg_px for b in account.books()) == pytest.approx(balance)
    for book in account.books():
        iid = InstrumentId.from_str(book.instrument_id.value)
        assert len(book.ts) == book.i + 1 > 1000  # every bar seen, appended as it closed
        assert len(book.closed) > 3
        resting = {o.client_order_id.value for o in engine.cache.orders_open(instrument_id=iid, strategy_id=strategy.id)
                   if o.order_type in (OrderType.STOP_MARKET, OrderType.LIMIT)}  # fmt: skip
        assert set(account.resting(book.instrument_id.value)) == resting
    kinds = {e["type"] for e in strategy.ports.events.events}
    assert {"SIGNAL", "ORDER"} <= kinds


def test_a_python_strategy_with_brackets_runs_on_node_ports(catalog) -> None:
    config = BacktestConfig(strategy="ema_trend_atr", symbols=SYMBOLS, timeframe="15m", start=START, end=END)
    engine, strategies = run_on_plain_engine(catalog, config)
    assert len(strategies) == 2  # one per symbol
    for strategy in strategies:
        check_books_against_nautilus(engine, strategy)
        types = {o.order_type for o in engine.cache.orders(strategy_id=strategy.id)}
        assert {OrderType.MARKET, OrderType.STOP_MARKET, OrderType.LIMIT} <= types  # entries with brackets
    engine.dispose()


def test_a_portfolio_and_a_dsl_strategy_run_on_node_ports(catalog) -> None:
    basket = BacktestConfig(strategy="ema_cross_basket", symbols=SYMBOLS, timeframe="15m", start=START, end=END,
                            params={"exposure": 0.5})  # fmt: skip
    engine, (strategy,) = run_on_plain_engine(catalog, basket)
    assert [leg.book.symbol for leg in strategy.legs] == list(SYMBOLS)
    check_books_against_nautilus(engine, strategy)
    engine.dispose()
    ref = find_strategy("rsi_mean_reversion_mtf")
    dsl = BacktestConfig(strategy=ref.name, kind="dsl", document=ref.document, symbols=("FILUSDT",), timeframe="5m",
                         start=START, end=END)  # fmt: skip
    engine, (strategy,) = run_on_plain_engine(catalog, dsl)
    assert strategy.table is None  # indicators computed bar by bar, as live
    check_books_against_nautilus(engine, strategy)
    # no funding schedule on a node: the funding filter falls back to Binance's times and says so
    assert any("00:00/08:00/16:00" in w for w in strategy.ports.events.warnings)
    engine.dispose()


def test_ports_named_by_the_config_must_be_importable() -> None:
    strategy = SimpleNamespace(config=SimpleNamespace(ports="vibe_quant.nowhere:ports"))
    with pytest.raises(ConfigError, match=r"ports='vibe_quant.nowhere:ports': not an importable module:function"):
        resolve_ports(strategy)
