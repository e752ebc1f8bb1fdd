"""Sizing and risk from the CLI on real FILUSDT bars (2023-08, ingested once): presets in SQLite,
``--sizing`` / ``--risk`` on ``vq backtest run`` and ``vq screen run``, the 15% drawdown halt that
stops an over-levered EMA cross and the report that says so, and the user errors (exit 2)."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from tests.backtest.test_cli_persist import vq
from tests.conftest import MIRROR
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager

CROSS = ["backtest", "run", "--strategy", "ema_cross", "--symbols", "FILUSDT-PERP", "--timeframe", "5m",
         "--start", "2023-08-01", "--end", "2023-08-31", "--param", "fast=20", "--param", "slow=100",
         "--param", "exposure=2"]  # fmt: skip
HALT_ONLY = """\
strategy_level:
  max_drawdown_scale_pct: null
  max_drawdown_halt_pct: 0.15
  max_daily_loss_pct: null
  max_consecutive_losses: null
portfolio_level:
  max_portfolio_drawdown_pct: null
  max_portfolio_daily_loss_pct: null
  max_total_exposure_pct: null
  max_correlated_exposure_pct: null
"""


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vibe_quant.data.ingest import IngestRequest, run_ingest

    home = Home(tmp_path_factory.mktemp("risk") / "home").ensure()
    run_ingest(home, IngestRequest(str(MIRROR), ("FILUSDT",), ("klines",), date(2023, 8, 1), date(2023, 9, 1)),
               InstrumentSpecs())  # fmt: skip
    return home.root


@pytest.fixture
def home(ingested: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(ingested, tmp_path / "home"))


def summary(code_out: tuple[int, str, str]) -> dict:
    code, stdout, stderr = code_out
    assert code == 0, stderr
    return json.loads(stdout)


def test_the_15_percent_drawdown_halt_stops_trading_on_real_data(home: Path, tmp_path: Path) -> None:
    free = summary(vq(["--home", str(home), *CROSS, "--json"]))
    assert free["metrics"]["max_drawdown"] > 0.20  # unguarded, this month costs more than 20%
    assert free["risk"] is None
    (tmp_path / "halt.yaml").write_text(HALT_ONLY)
    code, stdout, stderr = vq(["--home", str(home), *CROSS, "--risk", str(tmp_path / "halt.yaml")])
    assert code == 0, stderr
    assert "circuit breaker: EmaCross-001 drawdown_halt at 2023-08-14T15:00:00.000Z (15.09% >= 15.00%)" in stdout
    assert "trading halted for the rest of the run" in stdout
    assert "halted at the end of the run: EmaCross-001" in stdout
    run_id = stdout.split("run ", 1)[1].split(" ", 1)[0]
    guarded = json.loads((home / "runs" / run_id / "summary.json").read_text())
    (trip,) = guarded["risk"]["trips"]
    assert (trip["breaker"], trip["until"]) == ("drawdown_halt", None)
    # nothing trades after the halt: the last fill is the flattening one, at the next bar's open
    events = [json.loads(line) for line in (home / "runs" / run_id / "events.jsonl").read_text().splitlines()]
    fills = [e for e in events if e["type"] == "FILL"]
    assert fills[-1]["reason"] == "halt_drawdown_halt"
    assert fills[-1]["ts"] == trip["ts"] + 5 * 60 * 10**9
    breaker = [e for e in events if e["type"] == "CIRCUIT_BREAKER"]
    assert [b["breaker"] for b in breaker] == ["drawdown_halt"]
    assert guarded["metrics"]["max_drawdown"] < free["metrics"]["max_drawdown"]
    assert guarded["metrics"]["max_drawdown"] == pytest.approx(0.1516, abs=5e-4)  # the exit's slippage on top


def test_sizing_presets_attach_to_a_python_strategy_and_are_recorded(home: Path) -> None:
    out = summary(vq(["--home", str(home), *CROSS, "--sizing", "atr", "--risk", "seed_default", "--json"]))
    assert out["config"]["sizing"]["method"] == "atr"
    assert out["risk"]["decisions"]["entries_passed"] > 0
    breakers = {t["breaker"] for t in out["risk"]["trips"]}
    assert "consecutive_losses" in breakers  # this month's EMA cross loses 10 in a row (twice)
    with StateManager(Path(home) / "state" / "vibe_quant.db") as db:
        run = db.find("backtest_runs")[-1]
        sizing = db.get("sizing_configs", run["sizing_config_id"])
        risk = db.get("risk_configs", run["risk_config_id"])
    assert (sizing["name"], risk["name"]) == ("atr", "seed_default")


def test_live_safety_caps_leverage_and_position_on_real_data(home: Path) -> None:
    out = summary(vq(["--home", str(home), *CROSS, "--risk", "live_safety", "--json"]))
    assert out["config"]["leverage"] == 3.0
    assert (
        out["risk"]["decisions"]["limited_by_max_position_notional_pct"] == out["risk"]["decisions"]["entries_passed"]
    )
    events = [json.loads(line) for line in (home / "runs" / out["run_id"] / "events.jsonl").read_text().splitlines()]
    entries = [e for e in events if e["type"] == "ORDER" and e["reason"] == "entry"]
    assert entries
    assert {e["order_type"] for e in entries} == {"LIMIT"}
    checks = [e for e in events if e["type"] == "RISK_CHECK" and e.get("result") == "PASS"]
    assert max(c["notional"] / c["equity"] for c in checks) <= 0.10 + 1e-9
    fills = [e for e in events if e["type"] == "FILL" and e["reason"] == "entry"]
    assert {f["liquidity"] for f in fills} == {"MAKER"}


def test_presets_are_listed_shown_saved_and_used(home: Path, tmp_path: Path) -> None:
    code, stdout, _ = vq(["--home", str(home), "sizing", "list"])
    assert code == 0
    assert all(name in stdout for name in ("fixed_fractional", "kelly", "atr"))
    code, stdout, _ = vq(["--home", str(home), "risk", "show", "seed_default"])
    assert code == 0
    assert "max_drawdown_halt_pct: 0.15" in stdout
    (tmp_path / "mine.yaml").write_text(HALT_ONLY)
    code, stdout, _ = vq(["--home", str(home), "risk", "save", "halt15", str(tmp_path / "mine.yaml")])
    assert code == 0
    assert "saved risk preset 'halt15'" in stdout
    out = summary(vq(["--home", str(home), *CROSS, "--risk", "halt15", "--json"]))
    assert [t["breaker"] for t in out["risk"]["trips"]] == ["drawdown_halt"]
    # edited: a preset is editable, the next run uses the new values
    (tmp_path / "mine.yaml").write_text(HALT_ONLY.replace("0.15", "0.10"))
    assert vq(["--home", str(home), "risk", "save", "halt15", str(tmp_path / "mine.yaml")])[0] == 0
    out = summary(vq(["--home", str(home), *CROSS, "--risk", "halt15", "--json"]))
    assert out["risk"]["trips"][0]["limit"] == 0.10
    # referenced by runs: not deletable
    code, _, stderr = vq(["--home", str(home), "risk", "delete", "halt15"])
    assert code == 2
    assert "referenced by 2 backtest run(s)" in stderr


def test_screening_accepts_sizing_and_risk(home: Path) -> None:
    code, _stdout, stderr = vq(["--home", str(home), "-q", "screen", "run", "--strategy", "rsi_mean_reversion_mtf",
                               "--symbols", "FILUSDT-PERP", "--sweep", "rsi.period=14,21", "--max-points", "0",
                               "--param", "rsi_oversold_threshold=30", "--param", "rsi_overbought_threshold=70",
                               "--param", "ema_fast.period=20", "--param", "ema_trend_4h.period=30",
                               "--param", "stop_loss.atr_multiplier=2.0", "--param", "take_profit.percent=3.0",
                               "--workers", "1", "--sizing", "fixed_fractional", "--risk", "seed_default",
                               "--json"])  # fmt: skip
    assert code == 0, stderr
    with StateManager(Path(home) / "state" / "vibe_quant.db") as db:
        run = db.find("backtest_runs", run_mode="screening")[-1]
        rows = db.find("sweep_results", run_id=run["id"])
    assert run["parameters"]["sizing"]["method"] == "fixed_fractional"
    assert run["risk_config_id"] is not None
    assert len(rows) == 2
    assert all(r["error_message"] is None for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sizing", "kely"], "--sizing kely: no such preset; presets: fixed_fractional, kelly, atr"),
        (["--risk", "seed_defualt"], "Did you mean 'seed_default'?"),
        (["--risk", "nowhere/risk.yaml"], "--risk nowhere/risk.yaml: no such file"),
    ],
)
def test_bad_presets_are_clear_errors(home: Path, args: list[str], message: str) -> None:
    code, _, stderr = vq(["--home", str(home), *CROSS, *args])
    assert code == 2
    assert message in stderr
    with StateManager(Path(home) / "state" / "vibe_quant.db") as db:
        assert db.count("backtest_runs") == 0  # refused before any row exists


def test_a_bad_risk_file_names_the_file_and_key(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategy_level:\n  max_drawdown_halt: 0.15\n")
    code, _, stderr = vq(["--home", str(home), *CROSS, "--risk", str(bad)])
    assert code == 2
    assert f"{bad}: strategy_level" in stderr
    assert "max_drawdown_halt_pct" in stderr
    bad.write_text("strategy_level: {max_drawdown_halt_pct: 1.5}\n")
    code, _, stderr = vq(["--home", str(home), *CROSS, "--risk", str(bad)])
    assert code == 2
    assert "max_drawdown_halt_pct" in stderr
    bad.write_text("portfolio_level: [\n")
    code, _, stderr = vq(["--home", str(home), *CROSS, "--risk", str(bad)])
    assert code == 2
    assert f"{bad} line" in stderr


def test_fixed_fractional_on_a_dsl_strategy_without_a_stop_is_refused_before_running(home: Path, tmp_path) -> None:
    src = Path(__file__).parents[2] / "src" / "vibe_quant" / "dsl" / "strategies" / "ema_cross.yaml"
    text = src.read_text()
    assert "stop_loss" not in text  # the DSL EMA cross has no stop
    code, _, stderr = vq(["--home", str(home), "backtest", "run", "--strategy", str(src), "--symbols",
                          "FILUSDT-PERP", "--start", "2023-08-01", "--end", "2023-08-05", "--sizing",
                          "fixed_fractional"])  # fmt: skip
    assert code == 2
    assert "fixed_fractional sizing needs a stop-loss" in stderr
