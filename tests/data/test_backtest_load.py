"""Catalog data loads into NautilusTrader and reaches a strategy (BacktestNode from the catalog)."""

from __future__ import annotations

import datetime as dt

from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.config import (
    BacktestDataConfig,
    BacktestEngineConfig,
    BacktestRunConfig,
    BacktestVenueConfig,
    ImportableStrategyConfig,
    LoggingConfig,
    StrategyConfig,
)
from nautilus_trader.model.data import Bar, BarType, FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from tests.conftest import MIRROR
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs

ONE_MINUTE = "FILUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
FOUR_HOURS = "FILUSDT-PERP.BINANCE-4-HOUR-LAST-EXTERNAL"
RECEIVED: dict[str, list] = {}


class CountingConfig(StrategyConfig, frozen=True):
    key: str


class CountingStrategy(Strategy):
    """Records every bar and funding update it is given."""

    def __init__(self, config: CountingConfig) -> None:
        super().__init__(config)
        self.key = config.key
        RECEIVED[self.key] = []

    def on_start(self) -> None:
        for bar_type in (ONE_MINUTE, FOUR_HOURS):
            self.subscribe_bars(BarType.from_str(bar_type))
        self.subscribe_funding_rates(InstrumentId.from_str("BTCUSDT-PERP.BINANCE"))

    def on_bar(self, bar: Bar) -> None:
        RECEIVED[self.key].append(("bar", str(bar.bar_type), bar.ts_event))

    def on_funding_rate(self, update: FundingRateUpdate) -> None:
        RECEIVED[self.key].append(("funding", str(update.rate), update.ts_event))


def test_catalog_runs_in_a_backtest_node(home: Home, specs: InstrumentSpecs) -> None:
    run_ingest(
        home, IngestRequest(str(MIRROR), ("FILUSDT",), ("klines",), dt.date(2023, 8, 1), dt.date(2023, 8, 3)), specs
    )
    run_ingest(
        home,
        IngestRequest(str(MIRROR), ("BTCUSDT",), ("fundingRate",), dt.date(2026, 4, 1), dt.date(2026, 4, 2)),
        specs,
    )
    catalog = str(home.catalog)
    config = BacktestRunConfig(
        engine=BacktestEngineConfig(
            logging=LoggingConfig(log_level="ERROR"),
            strategies=[ImportableStrategyConfig(
                strategy_path=f"{__name__}:CountingStrategy", config_path=f"{__name__}:CountingConfig",
                config={"key": "run"},
            )],
        ),
        venues=[BacktestVenueConfig(name="BINANCE", oms_type="NETTING", account_type="MARGIN",
                                    starting_balances=["10000 USDT"], base_currency=None)],
        data=[
            BacktestDataConfig(catalog_path=catalog, data_cls=Bar, bar_types=[ONE_MINUTE, FOUR_HOURS]),
            BacktestDataConfig(catalog_path=catalog, data_cls=FundingRateUpdate, instrument_id="BTCUSDT-PERP.BINANCE"),
        ],
    )  # fmt: skip
    BacktestNode([config]).run()
    events = RECEIVED["run"]
    minute = [e for e in events if e[0] == "bar" and e[1] == ONE_MINUTE]
    four = [e for e in events if e[0] == "bar" and e[1] == FOUR_HOURS]
    funding = [e for e in events if e[0] == "funding"]
    assert len(minute) == 2 * 1440
    assert len(four) == 2 * 6
    assert len(funding) == 3
    assert minute[0][2] == 1690848060000000000  # first bar arrives at its close, 00:01
    # a 4h bar is delivered after the 1m bar that closes at the same instant (both at 04:00)
    four_at = events.index(four[0])
    assert events[four_at - 1][2] == four[0][2] == 1690862400000000000
    assert funding[0] == ("funding", "-0.00003449", 1775001600000000000)
