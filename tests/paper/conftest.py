"""Paper-trading fixtures: real FILUSDT/NEARUSDT bars of August 2023 with a real funding schedule.

../shared/data has funding history for BTCUSDT 2026-04 only, so the 8-hourly settlements of the
replayed month carry BTCUSDT's real rates of April 2026, in order, re-stamped at FIL's and NEAR's
settlement times (what is tested is that paper and backtest charge the same funding).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from decimal import Decimal

import pytest
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId

from tests.conftest import FUNDING_FILE, linked_home
from vibe_quant.backtest.market_data import MarketData

HOUR_NS = 3_600_000_000_000


def real_rates() -> list[float]:
    with zipfile.ZipFile(FUNDING_FILE) as zf:
        text = zf.read(zf.namelist()[0]).decode()
    return [float(row["last_funding_rate"]) for row in csv.DictReader(io.StringIO(text))]


def with_funding(data: MarketData, scale: float = 1.0) -> MarketData:
    """`data` with 8-hourly settlements at 00/08/16 UTC over its bars, BTCUSDT's real rates x `scale`."""
    import dataclasses

    rates = real_rates()
    funding = {}
    for symbol, bars in data.bars.items():
        first, last = bars[0].ts_init, bars[-1].ts_init
        ts = (first // (8 * HOUR_NS) + 1) * 8 * HOUR_NS
        iid = InstrumentId.from_str(f"{symbol}-PERP.BINANCE")
        updates = []
        k = 0
        while ts <= last:
            rate = Decimal(str(round(rates[k % len(rates)] * scale, 8)))
            # Binance stamps a settlement a few ms after the hour
            updates.append(FundingRateUpdate(iid, rate, ts + 3_000_000, ts + 3_000_000,
                                             next_funding_ns=ts + 8 * HOUR_NS))  # fmt: skip
            ts += 8 * HOUR_NS
            k += 1
        funding[symbol] = updates
    return dataclasses.replace(data, funding=funding)


@pytest.fixture(scope="session")
def aug_data_loader(aug_2023_catalog):
    """`load(plan)`: the plan's market data from the August 2023 catalog, with funding."""
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.instruments.specs import InstrumentSpecs

    specs = InstrumentSpecs()

    def load(plan, scale: float = 1.0) -> MarketData:
        return with_funding(load_market_data(aug_2023_catalog, plan, specs), scale)

    return load


@pytest.fixture
def paper_home(tmp_path, aug_2023_catalog):
    """A fresh home whose catalog is the August 2023 one (linked, read only)."""
    return linked_home(tmp_path / "home", aug_2023_catalog)


@pytest.fixture
def run_home(paper_home, cli):
    """`paper_home` with one completed validation run (id 1): ema_trend_atr FILUSDT 15m, Aug 1-8."""
    code, out = cli(["--home", str(paper_home.root), "backtest", "run", "--strategy", "ema_trend_atr", "--symbols",
                     "FILUSDT-PERP", "--timeframe", "15m", "--start", "2023-08-01", "--end", "2023-08-08", "--json"])  # fmt: skip
    assert code == 0, out
    return paper_home


def day(n: int) -> dt.date:
    return dt.date(2023, 8, n)
