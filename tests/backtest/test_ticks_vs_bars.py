"""The same strategy on 1m bars and on the ticks they are built from: every difference explained.

Data: the linear proxy of the real COIN-M BTCUSD_PERP day 2026-05-08 (105,280 trades, quotes-free),
ingested with the real ingester and read back with :func:`load_tick_data`; the 1m bars are
aggregated here from those very trades with NautilusTrader's convention (a bar closing at ``T``
holds the trades in ``(T - 1m, T]``; a minute without trades repeats the last close).

What must be equal: every signal (time, direction) -- the strategy sees identical bars. What
differs, and why (each asserted fill by fill):

* **when**: on bars an order sent at a close executes at the next bar's open and is reported at
  that bar's close; on ticks it executes at the first trade at or after the close + latency;
* **price**: on bars the next bar's open (screening, no slippage draw); on ticks the touch the
  trades imply then (quotes-free: the last buyer-initiated trade is the ask, the last
  seller-initiated one the bid, NautilusTrader's ``trade_execution``), recomputed here from the
  trades by a slow obvious reference;
* **size**: the strategy sizes at 1x equity, and equity at each signal differs by the PnL of the
  earlier fills: each entry is ``floor(equity(T) / close(T))`` at the step with each run's own
  equity, so the first entries are equal.
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path

import numpy as np
import pytest
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import AggressorSide

from tests.backtest.conftest import CM_DAY, PROXY_DAY
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.engine import BacktestResult, run_backtest
from vibe_quant.backtest.market_data import MarketData
from vibe_quant.backtest.plan import plan_run
from vibe_quant.backtest.ticks import TickData, bars_from_trades, load_tick_data, run_tick_backtest
from vibe_quant.data.proxy import write_linear_proxy
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs

DAY = PROXY_DAY
MIN = 60 * 10**9
LATENCY_NS = 50_000_000  # 50 ms from the strategy to the exchange
STEP = 0.001


def config() -> BacktestConfig:
    return BacktestConfig(strategy="ema_cross", symbols=("BTCUSDT",), timeframe="1m", start=DAY, end=DAY,
                          params={"fast": 5, "slow": 30}, mode="screening", prob_slippage=0.0, latency="custom",
                          latency_ns=(0, LATENCY_NS, 0, 0))  # fmt: skip


def touches(trades: list) -> tuple[list[int], list[tuple[float, float]]]:
    """Per trade, its time and the (bid, ask) the trades up to it imply: a buyer-initiated trade is
    the ask (and caps the bid), a seller-initiated one the bid (and floors the ask)."""
    bid = ask = 0.0
    times, books = [], []
    for t in trades:
        p = t.price.as_double()
        if t.aggressor_side == AggressorSide.BUYER:
            ask, bid = p, min(bid, p) if bid else bid
        else:
            bid, ask = p, max(ask, p)
        times.append(t.ts_init)
        books.append((bid, ask))
    return times, books


def equity_at(result: BacktestResult, ts: int) -> float:
    return float(result.equity[np.searchsorted(result.equity_ts, ts, side="right") - 1])


@pytest.fixture(scope="module")
def runs(proxy_home: Home) -> tuple[BacktestResult, BacktestResult, TickData, list[Bar]]:
    specs = InstrumentSpecs()
    plan = plan_run(config())
    ticks = load_tick_data(proxy_home.catalog, plan, specs)
    spec = ticks.specs["BTCUSDT"]
    bars = bars_from_trades(
        ticks.trades["BTCUSDT"], BarType.from_str(f"{spec.nautilus_id}-1-MINUTE-LAST-EXTERNAL"), MIN
    )
    market = MarketData(ticks.specs, ticks.instruments, {"BTCUSDT": bars}, ticks.funding, "bars-of-the-ticks")
    return run_backtest(plan, market, "bars"), run_tick_backtest(plan, ticks, "ticks"), ticks, bars


def signals(result: BacktestResult) -> list[tuple[int, int]]:
    return [(e["ts"], e["direction"]) for e in result.recorder.events if e["type"] == "SIGNAL"]


def test_same_signals_on_bars_and_on_their_ticks(runs) -> None:
    on_bars, on_ticks, ticks, bars = runs
    assert len(signals(on_bars)) > 20  # a strategy that trades all day
    assert signals(on_ticks) == signals(on_bars)
    assert on_ticks.bars_processed == len(ticks.trades["BTCUSDT"]) == 105_280
    # the equity curve is sampled at every bar close, plus the last trade
    assert on_ticks.equity_ts[:-1].tolist() == [b.ts_event for b in bars]
    assert on_ticks.equity_ts[-1] == ticks.trades["BTCUSDT"][-1].ts_init


def test_every_fill_difference_is_explained(runs) -> None:
    on_bars, on_ticks, ticks, bars = runs
    times, books = touches(ticks.trades["BTCUSDT"])
    bar_at = {b.ts_event: k for k, b in enumerate(bars)}
    sent = {e["order_id"]: e["ts"] for e in on_ticks.recorder.events if e["type"] == "ORDER"}
    sent_bars = {e["order_id"]: e["ts"] for e in on_bars.recorder.events if e["type"] == "ORDER"}
    assert len(on_ticks.recorder.fills) == len(on_bars.recorder.fills) > 40
    for fb, ft in zip(on_bars.recorder.fills, on_ticks.recorder.fills, strict=True):
        assert (fb.side, fb.reason, fb.order_type, fb.liquidity) == (ft.side, ft.reason, ft.order_type, ft.liquidity)
        signal_ns = sent[ft.order_id]
        assert sent_bars[fb.order_id] == signal_ns  # sent at the same close
        # bars: the next bar's open, reported at its close
        nxt = bars[bar_at[signal_ns] + 1]
        assert (fb.ts_ns, fb.price) == (nxt.ts_event, nxt.open.as_double())
        # ticks: the touch of the first trade at or after the arrival
        k = bisect.bisect_left(times, signal_ns + LATENCY_NS)
        bid, ask = books[k]
        assert (ft.ts_ns, ft.price) == (times[k], ask if ft.side > 0 else bid)
        assert ft.fee == pytest.approx(ft.qty * ft.price * 0.0005)


def test_sizes_differ_only_through_equity(runs) -> None:
    on_bars, on_ticks, _, bars = runs
    close_at = {b.ts_event: b.close.as_double() for b in bars}
    for result in (on_bars, on_ticks):
        sent = {e["order_id"]: e["ts"] for e in result.recorder.events if e["type"] == "ORDER"}
        for fill in result.recorder.fills:
            if fill.reason != "entry":
                continue
            t = sent[fill.order_id]
            expected = math.floor(equity_at(result, t) / close_at[t] / STEP + 1e-9) * STEP
            assert fill.qty == pytest.approx(expected, abs=STEP / 2)
    first_bar = next(f for f in on_bars.recorder.fills if f.reason == "entry")
    first_tick = next(f for f in on_ticks.recorder.fills if f.reason == "entry")
    assert first_tick.qty == first_bar.qty  # same equity before any fill


def test_results_are_bar_results_with_the_tick_extras(runs) -> None:
    on_bars, on_ticks, *_ = runs
    assert on_ticks.extra["mode"] == "ticks"
    assert on_ticks.extra["quotes_free"] == ["BTCUSDT"]
    assert set(on_ticks.metrics) == set(on_bars.metrics)
    assert on_ticks.metrics["fills"] == len(on_ticks.recorder.fills)
    assert on_ticks.metrics["final_equity"] == pytest.approx(on_ticks.equity[-1])


def test_load_tick_data_reads_the_window_and_digests_the_files(proxy_home: Home) -> None:
    plan = plan_run(config())
    whole = load_tick_data(proxy_home.catalog, plan, InstrumentSpecs())
    start = plan.period.start_ns + 3600 * 10**9
    window = load_tick_data(proxy_home.catalog, plan, InstrumentSpecs(), start, start + 3600 * 10**9)
    inside = [t for t in whole.trades["BTCUSDT"] if start <= t.ts_init < start + 3600 * 10**9]
    assert [t.trade_id for t in window.trades["BTCUSDT"]] == [t.trade_id for t in inside]
    assert window.quotes == {"BTCUSDT": []}
    assert window.quotes_free == ["BTCUSDT"]
    assert whole.digest.startswith("ticks:")
    assert len(whole.digest) == len("ticks:") + 64


def test_proxy_quantities_are_contracts_in_btc_at_the_step(tmp_path: Path) -> None:
    import csv
    import zipfile

    out = write_linear_proxy(CM_DAY, tmp_path / "proxy.csv")
    with zipfile.ZipFile(CM_DAY) as zf, zf.open(zf.namelist()[0]) as raw:
        source = list(csv.reader(line.decode() for line in raw))[1:]
    with out.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][2] == "quantity"
    assert len(rows) - 1 == len(source) == 105_280
    assert rows[1] == ["480537903", "79972.8", "0.678", "1123474160", "1123474164", "1778198400020", "false"]
    for src, row in zip(source[:2000], rows[1:2001], strict=True):
        assert [row[k] for k in (0, 1, 3, 4, 5, 6)] == [src[k] for k in (0, 1, 3, 4, 5, 6)]
        exact = float(src[2]) * 100 / float(src[1])
        assert float(row[2]) == pytest.approx(max(round(exact / STEP) * STEP, STEP), abs=1e-12)
