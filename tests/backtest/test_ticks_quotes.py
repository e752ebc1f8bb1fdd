"""Tick runs on real quotes: the USD-M bookTicker sample (BTCUSDT 2023-10-02, 9,999 quotes in 27 s)
ingested with a few hand-written trades of the same seconds; market orders fill at the ask/bid of
the first real quote at or after send time + the retail latency (300 ms)."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from tests.conftest import SHARED_DATA
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.plan import plan_run
from vibe_quant.backtest.ticks import load_tick_data, merge_ticks, run_tick_backtest
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs

BOOK_SAMPLE = SHARED_DATA / "samples" / "BTCUSDT-bookTicker-2023-10-02-short.csv"
DAY = dt.date(2023, 10, 2)
DAY_MS = 1_696_204_800_000
MS = 1_000_000
SUBMIT_NS = 300 * MS  # retail: base 200 ms + insert 100 ms
# trades at 1 s and 26 s only: between them the touch is the quotes'
AGG = [
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker",
    f"1,27981.40,0.010,1,1,{DAY_MS + 1000},false",
    f"2,27969.80,0.020,2,2,{DAY_MS + 26000},true",
]


@pytest.fixture(scope="module")
def quotes_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    root = tmp_path_factory.mktemp("quotes")
    folder = root / "src" / "BTCUSDT"
    folder.mkdir(parents=True)
    shutil.copy(BOOK_SAMPLE, folder / "BTCUSDT-bookTicker-2023-10-02.csv")
    (folder / "BTCUSDT-aggTrades-2023-10-02.csv").write_text("\n".join(AGG) + "\n")
    home = Home(root / "home").ensure()
    run_ingest(home, IngestRequest(str(root / "src"), ("BTCUSDT",), ("aggTrades", "bookTicker"), DAY,
                                   DAY + dt.timedelta(1)), InstrumentSpecs())  # fmt: skip
    return home


def test_market_orders_fill_at_the_first_real_quote_after_the_latency(quotes_home: Home) -> None:
    script = [[DAY_MS * MS + 5_000 * MS, 1, 0.5], [DAY_MS * MS + 20_000 * MS, -1, 0.5]]
    plan = plan_run(BacktestConfig(
        strategy="tests.backtest.tick_scenario:QuoteScripted", symbols=("BTCUSDT",), timeframe="1m", start=DAY,
        end=DAY, params={"script": json.dumps(script)}, mode="validation", latency="retail",
    ))  # fmt: skip
    data = load_tick_data(quotes_home.catalog, plan, InstrumentSpecs())
    quotes = data.quotes["BTCUSDT"]
    assert len(quotes) > 9_000
    assert data.quotes_free == []
    r = run_tick_backtest(plan, data, "quotes")
    assert r.extra == {"mode": "ticks", "trades": 2, "quotes": len(quotes), "quotes_free": []}
    assert not any("quotes-free" in w for w in r.warnings)
    replay = merge_ticks(data, plan.symbols)
    buy, sell = r.recorder.fills
    for fill, (not_before, direction, _) in zip((buy, sell), script, strict=True):
        sent = next(q.ts_event for q in quotes if q.ts_event >= not_before)
        at = next(t for t in replay if t.ts_init >= sent + SUBMIT_NS)  # a quote: no trade in between
        expected = at.ask_price.as_double() if direction > 0 else at.bid_price.as_double()
        assert (fill.ts_ns, fill.price, fill.liquidity) == (at.ts_init, expected, "TAKER")
    assert r.trades[0].net_pnl == pytest.approx(0.5 * (sell.price - buy.price) - buy.fee - sell.fee)


def test_replay_puts_quotes_before_trades_at_one_time(quotes_home: Home) -> None:
    plan = plan_run(BacktestConfig(strategy="ema_cross", symbols=("BTCUSDT",), timeframe="1m", start=DAY, end=DAY))
    data = load_tick_data(quotes_home.catalog, plan, InstrumentSpecs())
    replay = merge_ticks(data, plan.symbols)
    keys = [(t.ts_init, type(t).__name__ != "QuoteTick") for t in replay]
    assert keys == sorted(keys)
    assert len(replay) == len(data.quotes["BTCUSDT"]) + 2
