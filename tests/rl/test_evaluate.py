"""A trained policy end to end on real data: train, judge it inside NautilusTrader (the same fills and
equity as the environment), register, promote by the rules, resume, run it by name as a strategy, and
the CLI's answers to bad input. FILUSDT 1m, August 2023."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.conftest import linked_home
from vibe_quant.errors import UserError
from vibe_quant.rl import registry
from vibe_quant.rl.env import EnvConfig
from vibe_quant.rl.promotion import promote
from vibe_quant.rl.service import Market, evaluate_run, register_run, train_run
from vibe_quant.rl.train import parse_train_config
from vibe_quant.strategy.registry import find_strategy

MARKET = Market("FILUSDT", "1m", "screening", 3.0)


@pytest.fixture(scope="module")
def trained(aug_2023_catalog: Path, tmp_path_factory):
    home = linked_home(tmp_path_factory.mktemp("rl") / "home", aug_2023_catalog)
    config = parse_train_config(
        {"algo": "ppo", "total_timesteps": 512, "seed": 3, "ppo": {"n_steps": 256, "batch_size": 64}}
    )
    run = train_run(home, MARKET, dt.date(2023, 8, 1), dt.date(2023, 8, 3), EnvConfig(), config)
    return home, run, config


def test_a_trained_policy_trades_the_same_inside_nautilus(trained) -> None:
    home, run, _ = trained
    report = evaluate_run(home, run.run_id, dt.date(2023, 8, 4), dt.date(2023, 8, 5))
    parity = report["parity"]
    assert parity["identical"], parity["differences"]
    assert parity["fills_nautilus"] == parity["fills_kernel"] > 10  # it traded: parity over no fills proves nothing
    assert parity["max_equity_rel_diff"] <= 1e-6
    stored = json.loads((run.path / "evaluation.json").read_text())
    assert stored["metrics"] == report["metrics"]
    assert report["engine"] == "nautilus"
    for key in (
        "net_return",
        "max_drawdown",
        "sharpe",
        "sortino",
        "turnover",
        "cvar",
        "n_trades",
        "largest_trade_share",
    ):
        assert key in report["metrics"]
    assert report["metrics"]["n_trades"] > 0
    assert report["metrics"]["turnover"] > 0


def test_register_promote_resume_and_run_by_name(trained, cli) -> None:
    home, run, config = trained
    if run.evaluation is None:
        evaluate_run(home, run.run_id, dt.date(2023, 8, 4), dt.date(2023, 8, 5))
    record = register_run(home, run.run_id, stage="staging")
    assert record.stage == "staging"
    assert registry.get(home, record.model_id[:8]).model_id == record.model_id
    assert (registry.artifact_path(home, record) / "model.zip").read_bytes() == (run.path / "model.zip").read_bytes()
    result = promote(home, record.model_id)
    # no champion yet: only the sanity checks apply, and one window is not "stable across windows"
    assert not result.decision.promote
    assert "window_stability" in {c.rule for c in result.decision.failed}  # one window, not a walk-forward
    assert {c.rule for c in result.decision.checks} >= {
        "net_return_gain",
        "max_drawdown",
        "turnover",
        "single_trade_dominance",
        "positive_net_return",
    }
    assert registry.get(home, record.model_id).stage == "staging"
    assert registry.decisions(home, record.model_id)[-1].reasons
    # the model runs by name as a strategy (vq backtest run --strategy rl:MODEL, paper trading)
    ref = find_strategy(f"rl:{record.model_id[:10]}", home.db_path)
    assert ref.kind == "rl"
    assert ref.document["policy"] == "model"
    assert Path(ref.document["source"]).is_dir()
    code, text = cli(["--home", str(home.root), "backtest", "run", "--strategy", f"rl:{record.model_id[:8]}",
                      "--symbols", "FILUSDT-PERP", "--timeframe", "1m", "--start", "2023-08-04", "--end", "2023-08-04",
                      "--leverage", "3"])  # fmt: skip
    assert code == 0, text
    assert "bundle:" in text
    # deployed to paper by name: a TradingNode replays a day with the model deciding inside it
    code, text = cli(["--home", str(home.root), "paper", "start", "--strategy", f"rl:{record.model_id}", "--symbols",
                      "FILUSDT-PERP", "--timeframe", "1m", "--start", "2023-08-04", "--end", "2023-08-04", "--leverage",
                      "3", "--json"])  # fmt: skip
    assert code == 0, text
    session = json.loads(text.strip().splitlines()[-1])
    assert session["fills"] > 0
    # resume: the same model continues for more steps into a new run
    more = train_run(home, MARKET, dt.date(2023, 8, 1), dt.date(2023, 8, 3), EnvConfig(), config, resume=run.run_id)
    assert more.run_id != run.run_id
    assert more.meta["resumed_from"] == run.run_id
    code, text = cli(["--home", str(home.root), "rl", "list", "--json"])
    assert code == 0
    listed = json.loads(text)
    assert {m["model_id"] for m in listed["models"]} == {record.model_id}
    assert {r["run_id"] for r in listed["runs"]} == {run.run_id, more.run_id}


def test_bad_requests_name_the_problem(trained, cli) -> None:
    home, run, config = trained
    code, text = cli(
        ["--home", str(home.root), "rl", "evaluate", "nosuchrun", "--start", "2023-08-04", "--end", "2023-08-05"]
    )
    assert code != 0
    assert "no training run 'nosuchrun'" in text
    code, text = cli(["--home", str(home.root), "rl", "train", "--symbol", "FILUSDT", "--start", "2023-08-01", "--end",
                      "2023-08-02", "--algo", "sac", "--action", "discrete", "--timesteps", "10"])  # fmt: skip
    assert code != 0
    assert "needs a continuous (Box) action space" in text
    code, text = cli(["--home", str(home.root), "rl", "train", "--symbol", "FILUSDT", "--start", "2023-08-03", "--end",
                      "2023-08-01"])  # fmt: skip
    assert code != 0
    assert "before --start" in text
    more = train_run(home, MARKET, dt.date(2023, 8, 1), dt.date(2023, 8, 2), EnvConfig(), config)
    with pytest.raises(UserError, match=r"is not evaluated: vq rl evaluate"):
        register_run(home, more.run_id)
    sac = parse_train_config({"algo": "sac", "total_timesteps": 10})
    with pytest.raises(UserError, match="its algo is 'ppo'"):
        train_run(home, MARKET, dt.date(2023, 8, 1), dt.date(2023, 8, 3), EnvConfig(action_space="continuous"), sac,
                  resume=run.run_id)  # fmt: skip
