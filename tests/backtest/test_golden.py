"""Golden regressions on real data: the whole metrics dict (rtol 1e-9) and exact fill counts,
plus the account reconciliation every run must satisfy.

Goldens change only through scripts/regen_backtest_goldens.py, in a reviewed commit.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from tests.backtest.golden_cases import CASES, END, GOLDEN_DIR, START, golden_payload
from tests.conftest import MIRROR
from vibe_quant.backtest.engine import run_backtest
from vibe_quant.backtest.market_data import load_market_data
from vibe_quant.backtest.plan import plan_run
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs


@pytest.fixture(scope="module")
def golden_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = Home(tmp_path_factory.mktemp("golden") / "home").ensure()
    request = IngestRequest(str(MIRROR), ("FILUSDT", "NEARUSDT"), ("klines",), START, END + dt.timedelta(days=1))
    run_ingest(home, request, InstrumentSpecs())
    return home


@pytest.fixture(scope="module")
def runs(golden_home: Home) -> dict:
    specs = InstrumentSpecs()
    out = {}
    for name, cfg in CASES.items():
        data = load_market_data(golden_home.catalog, plan_run(cfg), specs)
        out[name] = (run_backtest(plan_run(cfg), data, run_id=name), data)
    return out


@pytest.fixture(scope="module")
def results(runs: dict) -> dict:
    return {name: result for name, (result, _data) in runs.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_golden(results: dict, name: str) -> None:
    golden = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    got = golden_payload(results[name])
    assert (got["fills"], got["trades"], got["exit_reasons"]) == (
        golden["fills"],
        golden["trades"],
        golden["exit_reasons"],
    )
    assert got["first_fill"] == golden["first_fill"]
    assert set(got["metrics"]) == set(golden["metrics"])
    for key, want in golden["metrics"].items():
        value = got["metrics"][key]
        if want is None:
            assert value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))), key
        else:
            assert value == pytest.approx(want, rel=1e-9, abs=1e-9), key


@pytest.mark.parametrize("name", list(CASES))
def test_account_reconciles_with_the_ledger(runs: dict, name: str) -> None:
    r, data = runs[name]
    closed = [t for t in r.trades if t.is_closed]
    open_ = [t for t in r.trades if not t.is_closed]
    # Every cent of the final equity is explained by the ledger: closed trades' net PnL, what
    # open trades already paid (entry fees, funding) and their PnL at the last close.
    last_close = {symbol: bars[-1].close.as_double() for symbol, bars in data.bars.items()}
    expected = r.config.starting_balance + sum(t.net_pnl for t in closed)
    for t in open_:
        side = 1 if t.direction == "LONG" else -1
        expected += side * t.quantity * (last_close[t.symbol] - t.entry_price) - t.entry_fee - t.funding_fees
    assert r.metrics["final_equity"] == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert r.metrics["net_pnl"] == pytest.approx(r.metrics["final_equity"] - r.config.starting_balance)
    assert r.equity[-1] == pytest.approx(r.metrics["final_equity"])
    for t in closed:
        assert t.net_pnl == pytest.approx(t.gross_pnl - t.entry_fee - t.exit_fee - t.funding_fees - t.slippage_cost)
        assert t.entry_fee >= 0
        assert t.exit_fee >= 0


def test_same_inputs_same_results(golden_home: Home, results: dict) -> None:
    name, cfg = next(iter(CASES.items()))
    again = run_backtest(
        plan_run(cfg), load_market_data(golden_home.catalog, plan_run(cfg), InstrumentSpecs()), run_id=name
    )
    assert golden_payload(again) == golden_payload(results[name])
    assert [(f.price, f.qty, f.ts_ns) for f in again.recorder.fills] == [
        (f.price, f.qty, f.ts_ns) for f in results[name].recorder.fills
    ]
