"""Judge a trained policy: on the kernel (fast) and inside NautilusTrader, with the parity check.

:func:`rollout` runs a policy through the environment (the kernel) over a period and returns the
target level it chose at every bar; :func:`evaluate` also runs the same policy as a
``PolicyStrategy`` inside the NautilusTrader backtest and compares the two ledgers fill by fill
(``vibe_quant.sim.compare.differences``: times, sides, prices, quantities, fees, funding, equity
within 1e-9 relative; the issue asks 1e-6). :func:`policy_metrics` computes the figures the
registry's promotion rules read, from our own ledger and equity curve.
"""

from __future__ import annotations

import numpy as np

from vibe_quant.rl.env import EnvConfig, EnvMarket, TradingEnv
from vibe_quant.stats.performance import daily_returns, max_drawdown, sharpe_ratio, sortino_ratio

NS_PER_DAY = 86_400_000_000_000


def rollout(policy, market: EnvMarket, start: int | None = None, end: int | None = None) -> tuple[np.ndarray, dict]:
    """Run `policy` (``predict(obs, deterministic=True)``) over the environment once.

    Returns the level decided at each bar of the market (0 before the first decision, shape (n_bars,))
    and totals of the step figures (reward, pnl, fees, funding, steps).
    """
    env = TradingEnv(market, start, end, full_period=True)
    obs, info = env.reset(seed=0)
    levels = np.zeros(market.n)
    m = info["bar"]
    totals = {"reward": 0.0, "pnl": 0.0, "fees": 0.0, "funding": 0.0, "steps": 0}
    done = False
    while not done:
        action, _ = policy.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
        levels[m] = env.levels_taken[-1]
        m = info["bar"]
        totals["reward"] += reward
        for k in ("pnl", "fees", "funding"):
            totals[k] += info[k]
        totals["steps"] += 1
        done = terminated or truncated
    return levels, totals


def policy_metrics(result, start_equity: float) -> dict:
    """Net return (after fees and funding), max drawdown, Sharpe and Sortino (daily, 365), annual turnover
    (traded notional / mean equity per year), CVaR 95% (mean of the worst 5% daily returns, as a loss),
    trades and the largest trade's share of the total absolute PnL."""
    eq_ts, eq = np.asarray(result.equity_ts), np.asarray(result.equity, dtype=np.float64)
    if eq.size == 0:
        return {"net_return": 0.0, "max_drawdown": 0.0, "sharpe": 0.0, "sortino": 0.0, "turnover": 0.0, "cvar": 0.0,
                "n_trades": 0, "largest_trade_share": 0.0, "window_returns": []}  # fmt: skip
    rets = daily_returns(eq_ts, eq, start_equity, int(eq_ts[0]))
    days = max((int(eq_ts[-1]) - int(eq_ts[0])) / NS_PER_DAY, 1e-9)
    notional = sum(abs(f.qty * f.price) for f in result.recorder.fills)
    turnover = notional / float(np.mean(eq)) * 365.0 / days if np.mean(eq) > 0 else 0.0
    worst = np.sort(rets)[: max(1, int(np.ceil(0.05 * rets.size)))] if rets.size else np.zeros(1)
    pnls = np.array([t.net_pnl for t in result.trades if t.exit_ns is not None], dtype=np.float64)
    total_abs = float(np.abs(pnls).sum())
    return {
        "net_return": float(eq[-1] / start_equity - 1.0),
        "max_drawdown": float(max_drawdown(np.concatenate([[start_equity], eq]))),
        "sharpe": float(sharpe_ratio(rets, 365.0)) if rets.size > 1 else 0.0,
        "sortino": float(sortino_ratio(rets, 365.0)) if rets.size > 1 else 0.0,
        "turnover": float(turnover),
        "cvar": float(-worst.mean()),
        "n_trades": len(result.trades),
        "largest_trade_share": float(np.abs(pnls).max() / total_abs) if total_abs > 0 else 0.0,
        "window_returns": [],
    }


def evaluate(policy, plan, data, env_config: EnvConfig, policy_plan=None, nautilus: bool = True) -> dict:
    """Evaluate `policy` on `plan`'s period: the kernel's result, and (with `nautilus`) NautilusTrader's
    result for `policy_plan` (an ``rl`` kind plan running the same policy) with the parity verdict.

    Returns a dict with ``metrics`` (of the NautilusTrader run when run, else the kernel's), ``kernel``
    metrics, ``parity`` and the ``equity`` curve ``[[ts_ns, equity], ...]``.
    """
    from vibe_quant.sim.compare import differences
    from vibe_quant.sim.policy import run_levels

    market = EnvMarket(plan, data, env_config)
    levels, totals = rollout(policy, market)
    sim = run_levels(plan, data, levels, env_config.ready, env_config.fraction, market=market.market)
    start_equity = market.starting_equity
    out = {"kernel": policy_metrics(sim, start_equity), "rollout": totals,
           "decisions": int(np.count_nonzero(np.diff(np.concatenate([[0.0], levels]))))}  # fmt: skip
    judged = sim
    if nautilus:
        from vibe_quant.backtest.engine import run_backtest

        nt = run_backtest(policy_plan, data)
        diffs = differences(nt, sim)
        eq_nt, eq_sim = np.asarray(nt.equity), np.asarray(sim.equity)
        rel = (
            float(np.max(np.abs(eq_nt - eq_sim) / np.abs(eq_nt))) if eq_nt.size == eq_sim.size and eq_nt.size else None
        )
        out["parity"] = {"identical": not diffs, "differences": diffs[:5], "fills_kernel": len(sim.recorder.fills),
                         "fills_nautilus": len(nt.recorder.fills), "max_equity_rel_diff": rel,
                         "nautilus_seconds": nt.elapsed_s, "kernel_seconds": sim.elapsed_s}  # fmt: skip
        judged = nt
    out["metrics"] = policy_metrics(judged, start_equity)
    step = max(1, len(judged.equity) // 2000)
    out["equity"] = [[int(t), float(e)] for t, e in zip(judged.equity_ts[::step], judged.equity[::step], strict=True)]
    out["engine"] = "nautilus" if nautilus else "sim"
    return out
