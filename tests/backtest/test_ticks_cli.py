"""``vq backtest run --ticks`` end to end on the proxy day (a Python and a DSL strategy), the
result bundle of a tick run, walk-forward slices of one load, and the user errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.backtest.conftest import PROXY_DAY
from tests.backtest.tick_scenario import run_ticks, steady
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.plan import plan_run
from vibe_quant.backtest.ticks import load_tick_data, slice_tick_data
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager

HOUR = 3600 * 10**9
QUOTES_FREE = "quotes-free: touch inferred from trades for BTCUSDT (no bookTicker quotes in the catalog)"


def tick_run(home: Path, *extra: str) -> list[str]:
    return ["--home", str(home), "-q", "backtest", "run", "--symbols", "BTCUSDT-PERP",
            "--start", "2026-05-08", "--end", "2026-05-08", "--mode", "screening", "--ticks", "--json", *extra]  # fmt: skip


@pytest.fixture
def writable_home(proxy_home: Home, tmp_path: Path) -> Path:
    shutil.copytree(proxy_home.root, tmp_path / "home")
    return tmp_path / "home"


@pytest.mark.parametrize(
    "strategy",
    [["--strategy", "ema_cross", "--timeframe", "1m", "--param", "fast=5", "--param", "slow=30"],
     ["--strategy", "ema_cross.yaml", "--param", "ema_fast.period=5", "--param", "ema_slow.period=30"],
     ["--strategy", "ema_cross", "--timeframe", "1m", "--param", "fast=5", "--param", "slow=30", "--sizing", "atr",
      "--risk", "seed_default"]],
    ids=["python", "dsl", "python-sizing-risk"],
)  # fmt: skip
def test_cli_runs_a_strategy_on_ticks_and_stores_it_like_a_bar_run(writable_home: Path, cli, strategy) -> None:
    code, out = cli(tick_run(writable_home, *strategy))
    assert code == 0, out
    summary = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert summary["ticks"] == {"trades": 105_280, "quotes": 0, "quotes_free": ["BTCUSDT"]}
    assert summary["bars_processed"] == 105_280
    assert QUOTES_FREE in summary["warnings"]
    assert summary["metrics"]["fills"] > 4
    assert (summary["risk"] is not None) == ("--risk" in strategy)  # the gate's breakers follow the tick bars
    bundle = writable_home / "runs" / summary["run_id"]
    assert {"fills.csv", "trades.csv", "equity.parquet", "events.jsonl", "positions.csv"} <= {
        p.name for p in bundle.iterdir()
    }
    with StateManager(Home(writable_home).db_path) as db:
        row = db.find("backtest_runs", run_hash=summary["run_id"])[0]
    assert row["status"] == "completed"


def test_cli_without_ticks_names_the_ingest_command(home: Home, cli) -> None:
    code, out = cli(tick_run(home.root, "--strategy", "ema_cross"))
    assert code == 2
    assert "no trade ticks for BTCUSDT between 2026-05-08 and 2026-05-08" in " ".join(out.split())
    assert "vq data ingest --symbols BTCUSDT --datasets aggTrades,bookTicker --start 2026-05-08 --end 2026-05-08" in (
        " ".join(out.split())
    )


def test_coin_m_symbols_are_refused(proxy_home: Home) -> None:
    plan = plan_run(BacktestConfig(strategy="ema_cross", symbols=("BTCUSD_PERP",), timeframe="1m", start=PROXY_DAY,
                                   end=PROXY_DAY))  # fmt: skip
    with pytest.raises(UserError, match=r"BTCUSD_PERP is a COIN-M inverse contract: .* linear USDT-margined .* proxy"):
        load_tick_data(proxy_home.catalog, plan, InstrumentSpecs())


def test_slices_of_one_load_equal_loads_of_the_window(proxy_home: Home) -> None:
    plan = plan_run(BacktestConfig(strategy="ema_cross", symbols=("BTCUSDT",), timeframe="1m", start=PROXY_DAY,
                                   end=PROXY_DAY))  # fmt: skip
    whole = load_tick_data(proxy_home.catalog, plan, InstrumentSpecs())
    start = plan.period.start_ns + 6 * HOUR
    cut = slice_tick_data(whole, start, start + 2 * HOUR)
    loaded = load_tick_data(proxy_home.catalog, plan, InstrumentSpecs(), start, start + 2 * HOUR)
    assert [t.trade_id for t in cut.trades["BTCUSDT"]] == [t.trade_id for t in loaded.trades["BTCUSDT"]]
    assert cut.digest == f"{whole.digest}:{start}:{start + 2 * HOUR}"
    assert cut.quotes_free == ["BTCUSDT"]
    with pytest.raises(UserError, match=r"no trade ticks for BTCUSDT in \["):
        slice_tick_data(whole, plan.period.end_ns, plan.period.end_ns + HOUR)


def test_leverage_above_the_maximum_is_refused_before_the_run() -> None:
    from vibe_quant.errors import ConfigError

    with pytest.raises(ConfigError, match="leverage 60 for FILUSDT exceeds its maximum"):
        run_ticks(steady(1, 100), {}, leverage=60)
