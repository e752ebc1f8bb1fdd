"""The RL Training and Model Registry pages under AppTest on a hand-written home: one training run folder
(run.json, the three CSVs, evaluation.json with identical parity) and three registered models of BTCUSDT 5m
(a champion, a staged model that beats it on nothing, a candidate). The training page lists the run and
draws its stored curves, shows its evaluation and launches ``vq rl train`` / ``vq rl register``; the
registry page compares a model with its champion, shows every check of a rejected promotion and leaves
the stages as they were; empty homes say what to run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.dashboard.test_results_pages import button, figure_titled, figures, frame_with, kill_active_jobs, values
from vibe_quant.home import Home
from vibe_quant.jobs import list_jobs
from vibe_quant.rl import promotion
from vibe_quant.rl.registry import (
    EvaluationReport,
    Metrics,
    ModelMeta,
    decisions,
    get,
    list_models,
    register,
    set_stage,
)
from vibe_quant.rl.runs import runs_dir

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
RUN_ID = "a1b2c3d4e5f60718"
METRICS = {"net_return": 0.12, "max_drawdown": 0.08, "sharpe": 1.4, "sortino": 2.1, "turnover": 80.0, "cvar": 0.02,
           "n_trades": 42, "largest_trade_share": 0.2, "window_returns": [0.04, 0.03, -0.01]}  # fmt: skip
RUN = {"run_id": RUN_ID, "created_at": "2026-05-01T10:00:00Z", "symbol": "BTCUSDT", "timeframe": "5m",
       "start": "2024-01-01", "end": "2024-03-01", "algo": "ppo", "timesteps": 20000, "seed": 7,
       "env": {"window": 32, "action_space": "discrete", "levels": 4, "fraction": 0.5, "risk_lambda": 0.1,
               "turnover_kappa": 0.001, "episode_bars": 2048},
       "venue": {"mode": "screening", "leverage": 2.0}, "training_data_hash": "e" * 64, "feature_version": "feat-3"}  # fmt: skip
EVALUATION = {"start": "2024-03-01", "end": "2024-04-01", "metrics": METRICS,
              "parity": {"identical": True, "fills_kernel": 42, "fills_nautilus": 42, "max_equity_rel_diff": 0.0,
                         "actions_agree": True},
              "equity": [[1709251200000000000 + i * 300_000_000_000, 10_000.0 + 10 * i] for i in range(50)]}  # fmt: skip
EPISODES = """episode,env,timesteps,return,length,final_equity,n_trades,pnl,fees,funding,risk_penalty,turnover_penalty,start_ts,end_ts
0,0,2048,-1.5,2048,9800.0,30,-200.0,12.0,1.0,0.1,0.2,1,2
1,0,4096,0.5,2048,10050.0,25,50.0,10.0,1.0,0.1,0.2,3,4
2,0,6144,1.25,2048,10125.0,20,125.0,8.0,1.0,0.1,0.2,5,6
"""
TRAINING = """timesteps,n_updates,entropy_loss,ent_coef,exploration_rate,value_loss,policy_loss,share_flat,share_long,share_short,steps
2048,10,-1.09,,,0.52,-0.01,0.34,0.33,0.33,2048
4096,20,-0.95,,,0.31,-0.02,0.5,0.3,0.2,2048
"""
REGIMES = """regime,vol_from,vol_to,steps,reward_sum,reward_mean,time_in_position
low,-inf,0.001,2000,1.5,0.00075,0.4
mid,0.001,0.002,2100,-0.5,-0.00024,0.55
high,0.002,inf,2044,0.25,0.00012,0.7
"""


def _meta(name: str, **metrics: object) -> ModelMeta:
    return ModelMeta(name=name, algo="ppo", symbol="BTCUSDT", timeframe="5m", training_data_hash="e" * 64,
                     feature_version="feat-3", hyperparameters={"gamma": 0.999}, env_config={"window": 32},
                     evaluation=EvaluationReport(Metrics(**{**METRICS, **metrics})))  # fmt: skip


@pytest.fixture
def rl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Home, dict[str, str]]:
    """A home with the training run and three models: champion, staging (worse than the champion), candidate."""
    home = Home(tmp_path / "home")
    run = runs_dir(home) / RUN_ID
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps(RUN))
    (run / "evaluation.json").write_text(json.dumps(EVALUATION))
    (run / "config.json").write_text(json.dumps({"algo": "ppo", "total_timesteps": 20000, "seed": 7}))
    (run / "model.zip").write_bytes(b"PK policy")
    for name, text in (("episodes", EPISODES), ("training", TRAINING), ("regimes", REGIMES)):
        (run / f"{name}.csv").write_text(text)
    artifact = tmp_path / "policy.zip"
    ids = {}
    for name, metrics in (
        ("champ", {}),
        ("worse", {"net_return": 0.10, "max_drawdown": 0.12}),
        ("fresh", {"sharpe": 2.0}),
    ):
        artifact.write_bytes(f"PK {name}".encode())
        ids[name] = register(home, {"policy.zip": artifact}, _meta(name, **metrics), now=T0).model_id
    assert promotion.promote(home, ids["champ"], now=T0).decision.promote
    set_stage(home, ids["worse"], "staging", "ready", now=T0)
    monkeypatch.setenv("VQ_HOME", str(home.root))
    return home, ids


def test_the_training_page_lists_the_run_and_draws_its_stored_curves(rl_home, page) -> None:
    at = page("rl_training")
    runs = frame_with(at, "parity")
    assert runs["id"].tolist() == [RUN_ID]
    assert runs[["symbol", "timeframe", "period", "algo", "timesteps"]].iloc[0].tolist() == [
        "BTCUSDT", "5m", "2024-01-01..2024-03-01", "ppo", 20000]  # fmt: skip
    assert runs["evaluated"].tolist() == [True]
    assert runs["net return"].tolist() == [0.12]
    assert runs["parity"].tolist() == ["identical"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["feature version"] == "feat-3"
    assert metrics["venue"] == "screening x2.0"
    assert metrics["net return"] == "12.00%"
    assert metrics["max drawdown"] == "8.00%"
    assert metrics["trades"] == "42"
    assert frame_with(at, "setting").set_index("setting").loc["action_space", "value"] == "discrete"
    assert any(s.value.startswith("parity: identical. fills: kernel 42, NautilusTrader 42") for s in at.success)
    titles = [f["layout"]["title"]["text"] for f in figures(at)]
    assert titles == ["Episodic return", "Final equity per episode (USDT)", "Policy entropy", "Value loss",
                      "Action shares", "Evaluation equity (USDT)"]  # fmt: skip
    assert list(values(figure_titled(at, "Episodic return")["data"][0]["y"])) == [-1.5, 0.5, 1.25]
    assert list(values(figure_titled(at, "Final equity")["data"][0]["y"])) == [9800.0, 10050.0, 10125.0]
    entropy = figure_titled(at, "Policy entropy")["data"]
    assert [t["name"] for t in entropy] == ["entropy"]  # PPO logs no ent_coef nor exploration rate
    assert list(values(entropy[0]["y"])) == [1.09, 0.95]
    assert [t["name"] for t in figure_titled(at, "Action shares")["data"]] == ["flat", "long", "short"]
    assert values(figure_titled(at, "Evaluation equity")["data"][0]["y"])[-1] == 10_490.0
    assert frame_with(at, "time_in_position")["regime"].tolist() == ["low", "mid", "high"]
    assert any(b.label == "Register to staging" for b in at.button)


def test_register_and_resume_launch_the_rl_jobs(rl_home, page) -> None:
    home, _ = rl_home
    at = page("rl_training")
    try:
        button(at, "Register to staging").click().run()
        assert not at.exception
        button(at, "Resume training").click().run()
        jobs = list_jobs(home)
        assert [j.job_type for j in jobs] == ["rl train", "rl register"]
        assert list(jobs[1].command) == ["rl", "register", RUN_ID, "--stage", "staging"]
        assert list(jobs[0].command) == [
            "rl", "train", "--symbol", "BTCUSDT", "--timeframe", "5m", "--start", "2024-01-01", "--end", "2024-03-01",
            "--algo", "ppo", "--timesteps", "20000", "--seed", "7", "--action", "discrete", "--mode", "screening",
            "--leverage", "2", "--window", "32", "--episode-bars", "2048", "--fraction", "0.5", "--resume", RUN_ID]  # fmt: skip
    finally:
        kill_active_jobs(home)


def test_registering_is_offered_only_for_identical_parity(rl_home, page) -> None:
    home, _ = rl_home
    path = runs_dir(home) / RUN_ID / "evaluation.json"
    path.write_text(json.dumps({**EVALUATION, "parity": {**EVALUATION["parity"], "identical": False}}))
    at = page("rl_training")
    assert not any(b.label == "Register to staging" for b in at.button)
    assert any(e.value.startswith("parity: differs") for e in at.error)
    assert frame_with(at, "parity")["parity"].tolist() == ["differs"]


def test_the_launch_form_refuses_bad_settings_and_starts_vq_rl_train(tmp_path, monkeypatch, page) -> None:
    home = Home(tmp_path / "home")
    monkeypatch.setenv("VQ_HOME", str(home.root))
    at = page("rl_training")
    assert "No training run yet" in at.info[0].value
    at.text_input(key="rl_symbol").input("ETHUSDT")
    at.date_input(key="rl_start").set_value(dt.date(2024, 1, 1))
    at.date_input(key="rl_end").set_value(dt.date(2024, 2, 1))
    at.selectbox(key="rl_algo").set_value("sac")
    button(at, "Launch training").click().run()
    assert at.error[0].value == "**not launched**: sac takes a continuous action space, not discrete"
    assert list_jobs(home) == []
    at.radio(key="rl_action").set_value("continuous")
    at.number_input(key="rl_timesteps").set_value(5000)
    at.number_input(key="rl_seed").set_value(3)
    at.selectbox(key="rl_mode").set_value("validation")
    button(at, "Launch training").click().run()
    assert not at.exception
    jobs = list_jobs(home)
    try:
        assert len(jobs) == 1
        assert jobs[0].job_type == "rl train"
        assert list(jobs[0].command) == [
            "rl", "train", "--symbol", "ETHUSDT", "--timeframe", "5m", "--start", "2024-01-01", "--end", "2024-02-01",
            "--algo", "sac", "--timesteps", "5000", "--seed", "3", "--action", "continuous", "--mode", "validation",
            "--leverage", "1"]  # fmt: skip
        assert at.success[0].value.startswith(f"job {jobs[0].id} started: vq rl train --symbol ETHUSDT")
    finally:
        kill_active_jobs(home)


def test_the_registry_compares_a_model_with_its_champion(rl_home, page) -> None:
    _home, ids = rl_home
    at = page("model_registry")
    table = frame_with(at, "feature version")
    assert table["stage"].tolist() == ["champion", "staging", "candidate"]  # grouped by stage
    assert table["id"].tolist() == [ids["champ"], ids["worse"], ids["fresh"]]
    at.selectbox(key="registry_model").set_value(ids["worse"]).run()
    compare = frame_with(at, "delta").set_index("metric")
    assert compare.loc["net_return", "model"] == pytest.approx(0.10)
    assert compare.loc["net_return", "champion"] == pytest.approx(0.12)
    assert compare.loc["net_return", "delta"] == pytest.approx(-0.02)
    assert compare.loc["max_drawdown", "delta"] == pytest.approx(0.04)
    assert not compare.loc["max_drawdown", "better"]
    assert f"champion `{ids['champ']}`" in " ".join(c.value for c in at.caption)
    staged = frame_with(at, "threshold")
    assert staged.to_dict("records") == [{"rule": "manual", "passed": True, "value": None, "threshold": None,
                                          "message": "ready"}]  # fmt: skip
    at.multiselect(key="registry_stages").set_value(["candidate"]).run()
    assert frame_with(at, "feature version")["id"].tolist() == [ids["fresh"]]


def test_a_failing_promotion_shows_the_failed_checks_and_changes_no_stage(rl_home, page) -> None:
    home, ids = rl_home
    at = page("model_registry")
    at.selectbox(key="registry_model").set_value(ids["worse"]).run()
    button(at, "Promote").click().run()
    assert not at.exception
    assert (
        at.error[0].value
        == f"model {ids['worse']} not promoted: failed net_return_gain, max_drawdown. Stages unchanged."
    )
    outcome = frame_with(at, "message").set_index("rule")
    assert not outcome.loc["net_return_gain", "passed"]
    assert outcome.loc["net_return_gain", "value"] == pytest.approx(-0.02)
    assert outcome.loc["net_return_gain", "threshold"] == pytest.approx(0.05)
    assert outcome.loc["max_drawdown", "threshold"] == pytest.approx(0.088)
    assert outcome.loc["turnover", "passed"]
    assert {m.model_id: m.stage for m in list_models(home)} == {ids["champ"]: "champion", ids["worse"]: "staging",
                                                                ids["fresh"]: "candidate"}  # fmt: skip
    assert [d.decision for d in decisions(home, ids["worse"])] == ["staged", "rejected"]
    assert any("**rejected** at" in m.value for m in at.markdown)


def test_retiring_asks_a_reason_and_a_confirmation(rl_home, page) -> None:
    home, ids = rl_home
    at = page("model_registry")
    at.selectbox(key="registry_model").set_value(ids["fresh"]).run()
    button(at, "Retire").click().run()
    assert get(home, ids["fresh"]).stage == "candidate"  # one click arms, never retires
    button(at, "Yes, retire").click().run()
    assert at.error[0].value == "give a reason to retire the model"
    assert get(home, ids["fresh"]).stage == "candidate"
    at.text_input(key=f"registry_reason_{ids['fresh']}").input("overfit to January").run()
    button(at, "Retire").click().run()
    button(at, "Yes, retire").click().run()
    assert not at.exception
    assert get(home, ids["fresh"]).stage == "retired"
    assert decisions(home, ids["fresh"])[-1].reasons[0].message == "overfit to January"


def test_an_empty_home_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page) -> None:
    monkeypatch.setenv("VQ_HOME", str(tmp_path / "home"))
    at = page("model_registry")
    assert at.info[0].value.startswith("No models yet: train one with `vq rl train`")
    at = page("rl_training")
    assert "No training run yet" in at.info[0].value


def test_the_champion_deploys_to_paper_as_a_job(rl_home, page) -> None:
    home, ids = rl_home
    at = page("model_registry")
    at.selectbox(key="registry_model").set_value(ids["champ"]).run()
    try:
        at.button(key=next(b.key for b in at.button if "FormSubmitter:registry-deploy" in str(b.key))).click().run()
        assert not at.exception
        (job,) = list_jobs(home)
        assert job.job_type == "paper start"
        expected = ["paper", "start", "--strategy", f"rl:{ids['champ']}", "--symbols", "BTCUSDT-PERP"]
        assert list(job.command[:6]) == expected
        assert job.command[-1] == "--detach"
    finally:
        kill_active_jobs(home)
    at.selectbox(key="registry_model").set_value(ids["fresh"]).run()  # a candidate is not offered
    assert not any("registry-deploy" in str(b.key) for b in at.button)
