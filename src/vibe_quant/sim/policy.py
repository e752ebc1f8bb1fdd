"""A policy's target positions on the perp kernel: the decision :class:`~vibe_quant.rl.strategy.PolicyStrategy`
takes on NautilusTrader, as a kernel step (docs/specs.md#reinforcement-learning).

A policy names a *target level* each bar: a signed fraction of its full size (``-1``, ``0``, ``+1`` for the
discrete actions; multiples of ``1/levels`` for a continuous one). Full size is ``fraction * equity / close``
(capped by Binance's maximum position at the leverage). The level is acted on when it differs from the
level the current position was entered at (or from 0 when flat): flat closes the position (reason
``exit``); another level closes it first (reason ``signal``) and enters the new size, with the same
pre-trade checks as every strategy (step, maximum position, initial margin plus fee). A resize on the
same side goes through flat too: the venue books whole positions, as ``Leg.go(resize=True)`` does.
Nothing is decided while an order is on its way or before the strategy's first ready bar.

``policy_run_nb`` runs a whole period from an array of levels (evaluation, parity);
``policy_step_nb`` advances one bar at a time (the Gymnasium environment).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vibe_quant.sim.kernel import (
    C_NEQ,
    F_LEVEL,
    F_QTY,
    I_READY,
    N_STATUS,
    OK,
    P_MAXNOT,
    R_EXIT,
    S_CUR,
    S_INFLIGHT,
    V_FRACTION,
    W_BAL_UNITS,
    _go_flat,
    account_nb,
    after_decision_nb,
    close_run_nb,
    go_nb,
    new_state_nb,
    open_bar_nb,
)


@njit(cache=True)
def policy_decide_nb(s, i, b, t, level, boff, bc, sp_f, sp_i, vf, vi, sf, si, oi, of, qi, qf, mp, cnt):
    """``PolicyStrategy.on_bar``: move symbol `s` to target `level` at bar `b`'s close (see the module)."""
    if i < sp_i[s, I_READY] or si[s, S_INFLIGHT] != 0:
        return
    q = sf[s, F_QTY]
    side = 1 if q > 0 else (-1 if q < 0 else 0)
    current = sf[s, F_LEVEL] if side != 0 else 0.0
    if level == current:
        return
    sf[s, F_LEVEL] = level
    if level == 0.0:
        _go_flat(s, t, sf, si, oi, of, qi, qf, mp, cnt, vi, R_EXIT)
        return
    direction = 1 if level > 0 else -1
    c = bc[b]
    equity, used = account_nb(sf, si, boff, bc, cnt)
    want = min(abs(level) * equity * vf[V_FRACTION] / c, sp_f[s, P_MAXNOT] / c * 0.999 if c > 0 else 0.0)
    go_nb(s, t, side, direction, want, c, np.nan, np.nan, equity, used, sp_f, sf, si, oi, of, qi, qf, mp, cnt, vi)


@njit(cache=True)
def policy_run_nb(
    levels, seq_sym, seq_idx, boff, bts, bo, bh, bl, bc, bvol, bavg,
    foff, fts, frate, koff, kfloor, kcap, kmmr, kcum, sp_f, sp_i, vf, vi, seed,
    fi, ff, ri, rf, li, lf, eq_ts, eq,
):  # fmt: skip
    """Run a period with the target level ``levels[b]`` decided at each bar `b`'s close (bars concatenated
    per symbol, as the kernel's bar arrays); return the counters and the number of equity points."""
    sf, si, oi, of, qi, qf, mp, cnt, order_buf, clock = new_state_nb(boff.size - 1, foff, vi[W_BAL_UNITS])
    for m in range(seq_sym.size):
        open_bar_nb(m, seq_sym, seq_idx, boff, bts, bo, bh, bl, bc, bvol, bavg, foff, fts, frate, koff, kfloor, kcap,
                    kmmr, kcum, sp_f, sp_i, vf, vi, seed, sf, si, oi, of, qi, qf, mp, cnt, order_buf, clock, fi, ff, ri,
                    rf, li, lf, eq_ts, eq)  # fmt: skip
        if cnt[N_STATUS] != OK:
            return cnt, clock[C_NEQ]
        s = seq_sym[m]
        i = si[s, S_CUR]
        b = boff[s] + i
        t = bts[b]
        policy_decide_nb(s, i, b, t, levels[b], boff, bc, sp_f, sp_i, vf, vi, sf, si, oi, of, qi, qf, mp, cnt)
        after_decision_nb(t, boff, bo, bvol, bavg, koff, kfloor, kcap, kmmr, kcum, sp_f, sp_i, vf, vi, seed, sf, si, oi,
                          of, qi, qf, mp, cnt, fi, ff)  # fmt: skip
    return cnt, close_run_nb(boff, bc, sf, si, cnt, clock, eq_ts, eq)


def policy_vectors(plan, fraction: float):
    """The run's float and int parameter vectors and draw seed for a policy (no stop, no take-profit)."""
    from types import SimpleNamespace

    from vibe_quant.sim.inputs import venue_vectors

    nan = np.nan
    arrays = SimpleNamespace(vf=np.array([0.0, 0.0, 0.0, 0.0, fraction, nan, nan, nan, nan]),
                             flags={"sizing": 0, "tp": 0, "sl": False, "trail": False})  # fmt: skip
    return venue_vectors(plan, arrays)


def run_levels(plan, data, levels: np.ndarray, ready: int, fraction: float, market=None):
    """Run `plan`'s period on the kernel with the target level ``levels[i]`` at each bar `i`'s close (one
    symbol); return the ``BacktestResult`` the NautilusTrader path assembles for a ``PolicyStrategy``.

    Parameters
    ----------
    levels : ndarray, shape (n_bars,)
        Target levels per bar of the run (see the module).
    ready : int
        The first bar index a decision is taken on.
    fraction : float
        Full size as a fraction of equity (notional).
    market : Market, optional
        The run's market, when already built.
    """
    import time

    from vibe_quant.backtest.engine import assemble
    from vibe_quant.sim.inputs import Market
    from vibe_quant.sim.session import _Leverage, records

    t0 = time.perf_counter()
    mk = market if market is not None else Market.build(plan, data)
    if len(mk.symbols) != 1:
        raise ValueError("a policy trades one symbol")
    n = int(mk.bts.size)
    if levels.shape != (n,):
        raise ValueError(f"levels: {levels.shape[0]} values for {n} bars")
    vf, vi, seed = policy_vectors(plan, fraction)
    sp_i = np.array([[mk.keys[0], ready]], dtype=np.int64)
    cap = 3 * n + 16
    fi, ff = np.zeros((cap, 9), np.int64), np.zeros((cap, 5))
    li, lf = np.zeros((cap, 4), np.int64), np.zeros((cap, 5))
    ri, rf = np.zeros((mk.fts.size, 3), np.int64), np.zeros((mk.fts.size, 4))
    eq_ts, eq = np.zeros(mk.n_times, np.int64), np.zeros(mk.n_times)
    cnt, n_eq = policy_run_nb(
        np.asarray(levels, np.float64), mk.seq_sym, mk.seq_idx, mk.boff, mk.bts, mk.bo, mk.bh, mk.bl, mk.bc, mk.bvol,
        mk.bavg, mk.foff, mk.fts, mk.frate, mk.koff, mk.kfloor, mk.kcap, mk.kmmr, mk.kcum, mk.sp_f, sp_i, vf, vi,
        seed, fi, ff, ri, rf, li, lf, eq_ts, eq,
    )  # fmt: skip
    recorder = records(mk, cnt, fi, ff, ri, rf, li, lf)
    recorder.equity_ts, recorder.equity = eq_ts[:n_eq], eq[:n_eq]
    states = {symbol: _Leverage(symbol, mk.leverage_of[symbol]) for symbol in mk.symbols}
    result = assemble(plan, recorder, states, "", n, time.perf_counter() - t0)
    result.extra["engine"] = "sim"
    return result
