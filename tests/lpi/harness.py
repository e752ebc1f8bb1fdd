"""A plain NautilusTrader engine for the LPI strategy tests (the tick backtest core is elsewhere):
venue BINANCE, NETTING, MARGIN, L1_MBP, fills against trade ticks; the strategy resolves a node's
ports (``strategy/node.py``)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AccountType, AggressorSide, BookType, OmsType
from nautilus_trader.model.identifiers import TradeId, Venue
from nautilus_trader.model.objects import Money, Price, Quantity

from vibe_quant.instruments.factory import crypto_perpetual
from vibe_quant.instruments.margin import Bracket
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.lpi.config import LpiStrategyConfig
from vibe_quant.lpi.strategy import LpiStrategy
from vibe_quant.strategy.account import InstrumentBook
from vibe_quant.strategy.ports import StrategyPorts

BALANCE = 100_000.0


def instrument():
    return crypto_perpetual(InstrumentSpecs().get("BTCUSDT"))


def trade_ticks(inst, ts_ns, price, qty, side) -> list[TradeTick]:
    """TradeTicks of arrays (side +1 buyer, -1 seller); sizes rounded to the instrument's step (0 dropped)."""
    out = []
    pp, sp = inst.price_precision, inst.size_precision
    q = np.round(np.asarray(qty, dtype=float), sp)
    for i, (t, p, s, d) in enumerate(zip(ts_ns, price, q, side, strict=True)):
        if s <= 0:
            continue
        out.append(TradeTick(inst.id, Price(float(p), pp), Quantity(float(s), sp),
                             AggressorSide.BUYER if d > 0 else AggressorSide.SELLER, TradeId(str(i + 1)),
                             int(t), int(t)))  # fmt: skip
    return out


def quote_ticks(inst, ts_ns, bid, ask, size: float = 5.0) -> list[QuoteTick]:
    pp, sp = inst.price_precision, inst.size_precision
    return [QuoteTick(inst.id, Price(float(b), pp), Price(float(a), pp), Quantity(size, sp), Quantity(size, sp),
                      int(t), int(t)) for t, b, a in zip(ts_ns, bid, ask, strict=True)]  # fmt: skip


class FixedAccount:
    """Ports' account the way a backtest runner gives it: one book, equity fixed at the balance."""

    def __init__(self, inst, leverage: float = 10.0):
        self.inst_book = InstrumentBook(
            instrument_id=inst.id, symbol="BTCUSDT", bar_ns=60_000_000_000, tick=inst.price_increment.as_double(),
            price_precision=inst.price_precision, size_precision=inst.size_precision, leverage=leverage,
            brackets=(Bracket(0.0, 1e9, 125, 0.004, 0.0),), taker_fee=0.0005,
        )  # fmt: skip

    def equity(self) -> float:
        return BALANCE

    def used_margin(self) -> float:
        return 0.0

    def book(self, instrument_id: str) -> InstrumentBook:
        return self.inst_book

    def books(self) -> list[InstrumentBook]:
        return [self.inst_book]

    def resting(self, instrument_id: str) -> dict:
        return {}


def run(data: list, ports: StrategyPorts | None = None, **params) -> tuple[BacktestEngine, LpiStrategy]:
    """Run one LpiStrategy (`params` over the config defaults) over `data` (ticks, any order), with
    `ports` (None: it resolves a node's own when it starts)."""
    inst = instrument()
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True), run_analysis=False))
    engine.add_venue(Venue("BINANCE"), oms_type=OmsType.NETTING, account_type=AccountType.MARGIN, base_currency=None,
                     starting_balances=[Money(BALANCE, USDT)], default_leverage=Decimal(10), book_type=BookType.L1_MBP,
                     trade_execution=True)  # fmt: skip
    engine.add_instrument(inst)
    engine.add_data(sorted(data, key=lambda d: d.ts_init))
    cfg = LpiStrategyConfig(instrument_id=inst.id.value, bar_type=f"{inst.id.value}-1-MINUTE-LAST-INTERNAL", **params)
    strategy = LpiStrategy(cfg, ports)
    engine.add_strategy(strategy)
    engine.run()
    return engine, strategy
