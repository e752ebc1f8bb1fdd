"""Scenario harness: hand-drawn bars, a scripted strategy, the real runner.

Bars are FILUSDT-PERP 1m (tick 0.001, step 0.1, taker 0.0005, maker 0.0002, "alt" margin
schedule from instrument_specs.yaml). Bar ``i`` opens at ``T0 + i minutes`` and is stamped at
its close ``T0 + (i + 1) minutes`` (NautilusTrader's convention).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from nautilus_trader.model.data import Bar, BarType, FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.engine import BacktestResult, run_backtest
from vibe_quant.backtest.market_data import MarketData
from vibe_quant.backtest.plan import RunPlan, plan_run
from vibe_quant.instruments.factory import crypto_perpetual
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.strategy.base import PerpStrategy, PerpStrategyConfig

SYMBOL = "FILUSDT"
IID = "FILUSDT-PERP.BINANCE"
BAR_TYPE = f"{IID}-1-MINUTE-LAST-EXTERNAL"
DAY = dt.date(2024, 1, 1)
T0 = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()) * 10**9
MIN = 60 * 10**9


class ScriptedConfig(PerpStrategyConfig, frozen=True, kw_only=True):
    script: str = "{}"  # JSON {bar index: [[action, ...], ...]}


class Scripted(PerpStrategy):
    """Does exactly what the script says at the close of each bar.

    Actions: ``["go", direction, qty, stop_distance|null, target_distance|null]``.
    """

    def setup(self) -> None:
        self.i = -1
        self.plan = {int(k): v for k, v in json.loads(self.config.script).items()}

    def on_bar(self, bar: Bar) -> None:
        self.i += 1
        for action in self.plan.get(self.i, []):
            if action[0] == "go":
                _, direction, qty, *rest = action
                stop, target = [*rest, None, None][:2]
                self.go(bar, direction, qty, stop=stop, target=target)


def bars(rows: list[tuple[float, float, float, float, float]]) -> list[Bar]:
    """(open, high, low, close, volume) rows -> 1m bars from T0."""
    bar_type = BarType.from_str(BAR_TYPE)
    out = []
    for i, (o, h, lo, c, v) in enumerate(rows):
        ts = T0 + (i + 1) * MIN
        out.append(Bar(bar_type, Price(o, 3), Price(h, 3), Price(lo, 3), Price(c, 3), Quantity(v, 1), ts, ts))
    return out


def funding(rows: list[tuple[int, float]]) -> list[FundingRateUpdate]:
    """(minute offset from T0, rate) rows -> 8-hourly funding updates."""
    iid = InstrumentId.from_str(IID)
    return [
        FundingRateUpdate(
            iid, Decimal(str(rate)), T0 + m * MIN, T0 + m * MIN, next_funding_ns=T0 + m * MIN + 8 * 3600 * 10**9
        )
        for m, rate in rows
    ]


def run(rows, script: dict, funding_rows=(), **config) -> BacktestResult:
    """Run `script` over hand-drawn `rows`; extra kwargs go to :class:`BacktestConfig`."""
    spec = InstrumentSpecs().get(SYMBOL)
    data = MarketData(
        specs={SYMBOL: spec},
        instruments={SYMBOL: crypto_perpetual(spec)},
        bars={SYMBOL: bars(rows)},
        funding={SYMBOL: funding(list(funding_rows))},
        digest="scenario",
    )
    return run_backtest(scripted_plan(f"{__name__}:Scripted", script, **config), data, run_id="scenario")


def scripted_plan(strategy: str, script: dict, **config) -> RunPlan:
    """The 1m FILUSDT plan of a scripted strategy on DAY (screening, no slippage draw, limits fill when touched)."""
    config.setdefault("mode", "screening")
    config.setdefault("prob_slippage", 0.0)
    config.setdefault("prob_fill_on_limit", 1.0)
    cfg = BacktestConfig(strategy=strategy, symbols=(SYMBOL,), timeframe="1m", start=DAY, end=DAY,
                         params={"script": json.dumps(script)}, **config)  # fmt: skip
    return plan_run(cfg)


def flat(n: int, price: float = 10.0, volume: float = 1000.0) -> list[tuple]:
    return [(price, price, price, price, volume)] * n
