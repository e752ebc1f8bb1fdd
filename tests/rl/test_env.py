"""The RL environment: Gymnasium's checker, no look-ahead, the reward's money terms sum to the equity
change, and the environment, the kernel's policy run and NautilusTrader's ``PolicyStrategy`` give the same
fills and equity for the same actions (random levels here; a trained policy in test_evaluate.py).

Real data: FILUSDT 1m, August 2023 (``aug_2023_catalog``), with random funding heavy enough to matter.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from tests.sim.cases import random_funding
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.engine import run_backtest
from vibe_quant.backtest.market_data import load_market_data
from vibe_quant.backtest.plan import plan_market, plan_run
from vibe_quant.errors import ConfigError
from vibe_quant.rl.env import EnvConfig, EnvMarket, TradingEnv
from vibe_quant.rl.features import FeatureStream, feature_matrix
from vibe_quant.sim.compare import differences
from vibe_quant.sim.policy import run_levels

START, END = dt.date(2023, 8, 1), dt.date(2023, 8, 3)


def _config(mode="screening", leverage=5.0, document=None, end=END):
    return BacktestConfig(strategy="rl:test", kind="rl", document=document, symbols=("FILUSDT",), timeframe="1m",
                          start=START, end=end, mode=mode, leverage=leverage)  # fmt: skip


@pytest.fixture(scope="module")
def market(aug_2023_catalog: Path, specs):
    plan = plan_market(_config())
    data = random_funding(load_market_data(aug_2023_catalog, plan, specs), 5, 0.002)
    return plan, data


def _levels(n: int, seed: int, choices) -> np.ndarray:
    """Persistent random target levels: a new level on ~3% of the bars."""
    rng = np.random.default_rng(seed)
    out, cur = np.zeros(n), 0.0
    for i in range(n):
        if rng.random() < 0.03:
            cur = float(rng.choice(choices))
        out[i] = cur
    return out


def _step_levels(env: TradingEnv, levels: np.ndarray, continuous: bool) -> list[dict]:
    _, info = env.reset(seed=1)
    infos, m, done = [], info["bar"], False
    while not done:
        action = np.array([levels[m]], dtype=np.float32) if continuous else int({0.0: 0, 1.0: 1, -1.0: 2}[levels[m]])
        _obs, reward, terminated, truncated, info = env.step(action)
        info["reward"] = reward
        infos.append(info)
        m = info["bar"]
        done = terminated or truncated
    return infos


@pytest.mark.parametrize("space", ["discrete", "continuous"])
def test_gymnasium_env_checker_passes(market, space: str) -> None:
    plan, data = market
    em = EnvMarket(plan, data, EnvConfig(action_space=space, episode_bars=500))
    check_env(TradingEnv(em), skip_render_check=True)
    env = TradingEnv(em)
    assert env.observation_space.shape == (120 * 19 + 4,)
    assert env.reset(seed=3)[1]["bar"] == env.reset(seed=3)[1]["bar"]  # seeded episode starts
    assert {env.reset(seed=s)[1]["bar"] for s in range(8)} != {env.start}  # random starts with episode_bars
    full = TradingEnv(em, full_period=True)  # evaluation: one episode over the whole range
    assert full.reset(seed=3)[1]["bar"] == full.start
    assert full._span == full.end - full.start


@pytest.mark.parametrize(
    ("mode", "leverage", "space"), [("screening", 5.0, "discrete"), ("validation", 40.0, "continuous")]
)
def test_same_levels_same_fills_and_equity_env_kernel_nautilus(market, tmp_path: Path, mode, leverage, space) -> None:
    """Random target levels (resizes, reversals, exits; at 40x liquidations) give the same fills and
    equity in the environment, the kernel's policy run and NautilusTrader's PolicyStrategy."""
    _, data = market
    cfg = EnvConfig(action_space=space)
    plan = plan_market(_config(mode, leverage))
    n = len(data.bars["FILUSDT"])
    continuous = space == "continuous"
    levels = _levels(n, 11, [0.0, 1.0, -1.0, 0.5, -0.25, 0.75] if continuous else [0.0, 1.0, -1.0])
    np.save(tmp_path / "levels.npy", levels)
    doc = {"policy": "replay", "source": str(tmp_path / "levels.npy"), "action_space": space, "ready": cfg.ready}
    nt = run_backtest(plan_run(_config(mode, leverage, doc)), data)
    sim = run_levels(plan, data, levels, cfg.ready, cfg.fraction)
    assert not differences(nt, sim), differences(nt, sim)
    assert len(nt.recorder.fills) > 100
    assert nt.recorder.funding
    if leverage > 20:
        assert nt.recorder.liquidations  # the table's liquidation row is exercised
    env = TradingEnv(EnvMarket(plan, data, cfg))
    infos = _step_levels(env, levels, continuous)
    fills = env.fills()
    assert np.array_equal(fills, np.array([[f.ts_ns, f.side, f.qty, f.price, f.fee] for f in sim.recorder.fills]))
    eq_env = np.array([i["equity"] for i in infos])
    eq_sim = np.asarray(sim.equity)[env.start + 1 : env.start + 1 + eq_env.size]
    np.testing.assert_allclose(eq_env, eq_sim, rtol=1e-12)
    np.testing.assert_allclose(eq_env, np.asarray(nt.equity)[env.start + 1 : env.start + 1 + eq_env.size], rtol=1e-6)


def test_reward_money_terms_sum_to_the_equity_change_and_match_the_ledger(market) -> None:
    """Sum of (pnl - fees - funding) over an episode = final - initial equity; the fees and funding are the
    backtest ledger's; the reward is that change over the step's starting equity minus both penalties."""
    plan, data = market
    cfg = EnvConfig()
    n = len(data.bars["FILUSDT"])
    levels = _levels(n, 4, [0.0, 1.0, -1.0])
    env = TradingEnv(EnvMarket(plan, data, cfg))
    infos = _step_levels(env, levels, False)
    sim = run_levels(plan, data, levels, cfg.ready, cfg.fraction)
    pnl, fees, funding = (sum(i[k] for i in infos) for k in ("pnl", "fees", "funding"))
    start = env.market.starting_equity
    assert pnl - fees - funding == pytest.approx(infos[-1]["equity"] - start, rel=0, abs=1e-6)
    assert fees == pytest.approx(sum(f.fee for f in sim.recorder.fills), abs=1e-9)
    assert funding == pytest.approx(sum(f.amount for f in sim.recorder.funding), abs=1e-9)
    assert abs(funding) > 0
    assert fees > 0
    e0 = start
    for info in infos:
        money = (info["equity"] - e0) / e0
        assert info["reward"] == pytest.approx(money - info["risk_penalty"] - info["turnover_penalty"], abs=1e-15)
        e0 = info["equity"]
    held = [i for i in infos if i["position"] != 0]
    assert held
    assert all(i["risk_penalty"] == pytest.approx(0.1 * abs(i["position"]) * i["realized_vol"]) for i in held)
    moved = [(a, b) for a, b in itertools.pairwise(infos) if a["position"] != b["position"]]
    assert moved
    assert all(b["turnover_penalty"] == pytest.approx(0.01 * abs(b["position"] - a["position"])) for a, b in moved)


def test_no_look_ahead_altering_future_bars_changes_no_past_observation(market) -> None:
    plan, data = market
    mk = EnvMarket(plan, data, EnvConfig()).market
    base = feature_matrix(mk.bts, mk.bo, mk.bh, mk.bl, mk.bc, mk.books[0].volumes, mk.fts, mk.frate)
    rng = np.random.default_rng(0)
    for cut in (300, 1000, 2500):
        o, h, lo, c, v = (np.array(x, dtype=np.float64) for x in (mk.bo, mk.bh, mk.bl, mk.bc, mk.books[0].volumes))
        scale = rng.uniform(0.5, 2.0, size=o.size - cut)
        for x in (o, h, lo, c, v):
            x[cut:] *= scale
        rates = np.array(mk.frate)
        rates[mk.fts > mk.bts[cut - 1]] = 0.05  # funding settled later than the last kept close
        moved = feature_matrix(mk.bts, o, h, lo, c, v, mk.fts, rates)
        assert np.array_equal(moved[:cut], base[:cut])
        assert not np.array_equal(moved[cut:], base[cut:])
    # the environment's observation at bar i only reads rows <= i (and the account)
    env = TradingEnv(EnvMarket(plan, data, EnvConfig()))
    obs, info = env.reset()
    i = info["bar"]
    np.testing.assert_array_equal(obs[: 120 * 19].reshape(120, 19), base[i - 119 : i + 1].astype(np.float32))


def test_streaming_features_equal_the_batch_matrix_bit_for_bit(market) -> None:
    plan, data = market
    mk = EnvMarket(plan, data, EnvConfig()).market
    vols = np.asarray(mk.books[0].volumes, dtype=np.float64)
    batch = feature_matrix(mk.bts, mk.bo, mk.bh, mk.bl, mk.bc, vols, mk.fts, mk.frate)
    stream = FeatureStream(120)
    for k in range(mk.bts.size):
        row = stream.push(mk.bo[k], mk.bh[k], mk.bl[k], mk.bc[k], vols[k], mk.frate[mk.fts <= mk.bts[k]])
        assert np.array_equal(row, batch[k]), k
    assert np.array_equal(stream.window_rows(), batch[-120:])
    assert np.count_nonzero(batch[:, 12]) > 0  # funding features saw the settlements


def test_bad_environment_settings_are_refused_with_the_field(market) -> None:
    plan, data = market
    with pytest.raises(ConfigError, match=r"env\.action_space='box': choose discrete or continuous"):
        EnvConfig(action_space="box")
    with pytest.raises(ConfigError, match=r"env\.window=0"):
        EnvConfig(window=0)
    with pytest.raises(ConfigError, match="needs at least"):
        EnvMarket(plan, data, EnvConfig(window=5000))
    env = TradingEnv(EnvMarket(plan, data, EnvConfig()))
    env.reset()
    with pytest.raises(ConfigError, match="discrete action 7"):
        env.step(7)
