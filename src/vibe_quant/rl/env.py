"""The trading environment: one step is one bar on the perp kernel, with our costs (docs/specs.md#rl-environment).

:class:`EnvConfig` holds the environment's choices; :class:`EnvMarket` is one symbol's period as the
kernel reads it (bars, funding, margin brackets, venue rules and the feature matrix), built once and
shared by every environment copy; :class:`TradingEnv` is the Gymnasium environment.

A step takes the action chosen on bar ``t``'s close: the kernel's policy decision (``sim/policy.py``,
the decision ``PolicyStrategy`` takes on NautilusTrader), the commands due, then bar ``t+1``: funding
at its settlements, the fills at its open with the run's slippage model, liquidation, and the
observation on its close. The reward (docs/specs.md#rl-environment) is

``dEquity - fees - funding - lambda*|position|*realised_vol - kappa*|dposition|``

where ``dEquity - fees - funding`` is the equity change (``pnl`` below is the gross mark-to-market
change, ``pnl - fees - funding`` the net one) divided by the equity at the step's start, so every term
is a fraction of equity; ``position`` is the signed position as a fraction of full size after the step
and ``realised_vol`` bar ``t+1``'s realised volatility (20 bars, per bar).
"""

from __future__ import annotations

import gymnasium as gym
import msgspec
import numpy as np
from numba import njit, types
from numba.experimental import structref

from vibe_quant.errors import ConfigError
from vibe_quant.rl.actions import ACTION_SPACES, DISCRETE_LEVELS, to_level
from vibe_quant.rl.features import FEATURES, N_FEATURES, PORTFOLIO, WARMUP, feature_matrix
from vibe_quant.sim.kernel import (
    F_AVG,
    F_LEVEL,
    F_QTY,
    F_WALLET,
    FF_FEE,
    N_BAL,
    N_FILL,
    N_FUND,
    N_STATUS,
    OK,
    S_CUR,
    S_TRADE,
    W_BAL_UNITS,
    _equity,
    after_decision_nb,
    new_state_nb,
    open_bar_nb,
)
from vibe_quant.sim.policy import policy_decide_nb, policy_vectors

_RV = FEATURES.index("rv_20")
# out[*] of env_step_nb
O_EQUITY, O_PNL, O_FEES, O_FUNDING, O_POSITION, O_RV = range(6)


class EnvConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The environment's choices (the defaults of docs/specs.md#rl-environment).

    ``episode_bars`` None: an episode runs the whole period from the first ready bar; otherwise each
    reset starts at a random ready bar (the environment's seeded generator) and runs that many bars.
    """

    window: int = 120
    action_space: str = "discrete"  # discrete (0 flat, 1 long, 2 short) | continuous (target in [-1, 1])
    levels: int = 4  # continuous targets are rounded to multiples of 1/levels
    fraction: float = 1.0  # full size: this fraction of equity as notional
    risk_lambda: float = 0.1
    turnover_kappa: float = 0.01
    episode_bars: int | None = None

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ConfigError(f"env.window={self.window}: must be >= 1 (default 120)")
        if self.action_space not in ACTION_SPACES:
            raise ConfigError(f"env.action_space={self.action_space!r}: choose {' or '.join(ACTION_SPACES)}")
        if self.levels < 1:
            raise ConfigError(f"env.levels={self.levels}: must be >= 1")
        if not 0 < self.fraction <= 10:
            raise ConfigError(f"env.fraction={self.fraction}: must be in (0, 10] (notional as a fraction of equity)")
        if self.risk_lambda < 0 or self.turnover_kappa < 0:
            raise ConfigError("env.risk_lambda and env.turnover_kappa must be >= 0 (default 0.1 and 0.01)")
        if self.episode_bars is not None and self.episode_bars < 2:
            raise ConfigError(f"env.episode_bars={self.episode_bars}: must be >= 2 (or none for the whole period)")

    @property
    def ready(self) -> int:
        """The first bar index a decision is taken on: a full window of warmed-up feature rows."""
        return self.window + WARMUP - 1


class EnvMarket:
    """One symbol's period for the kernel plus its feature matrix (build once, share between env copies).

    Raises
    ------
    ConfigError
        Not one symbol, or fewer bars than the warm-up and window need.
    """

    def __init__(self, plan, data, config: EnvConfig):
        from vibe_quant.sim.inputs import Market

        if len(plan.symbols) != 1:
            raise ConfigError(f"an RL environment trades one symbol, got {', '.join(plan.symbols)}")
        self.plan, self.config = plan, config
        mk = Market.build(plan, data)
        self.market = mk
        self.n = int(mk.bts.size)
        if self.n < config.ready + 2:
            raise ConfigError(f"{plan.symbols[0]} {plan.timeframe}: {self.n} bars; the environment needs at least "
                              f"{config.ready + 2} (window {config.window} + warm-up {WARMUP} + 1 step): a longer period")  # fmt: skip
        volumes = np.asarray(mk.books[0].volumes, dtype=np.float64)  # (mk.bvol is the slippage model's volatility)
        self.features = feature_matrix(mk.bts, mk.bo, mk.bh, mk.bl, mk.bc, volumes, mk.fts, mk.frate)
        self.flat = np.ascontiguousarray(self.features, dtype=np.float32).reshape(-1)  # the observation's rows
        self.vf, self.vi, self.seed = policy_vectors(plan, config.fraction)
        self.sp_i = np.array([[mk.keys[0], config.ready]], dtype=np.int64)
        self.starting_equity = float(plan.venue.starting_balance)

    @property
    def symbol(self) -> str:
        return self.plan.symbols[0]


def feature_version() -> str:
    """Names and code of the features and of what feeds them (a model is only valid on the version it was
    trained with)."""
    import hashlib
    import inspect

    from vibe_quant.rl import features

    parts = [",".join(FEATURES), inspect.getsource(features.feature_step_nb.py_func),
             inspect.getsource(features.funding_features_nb.py_func), inspect.getsource(EnvMarket)]  # fmt: skip
    return "f1-" + hashlib.sha256("".join(parts).encode()).hexdigest()[:12]


@njit(cache=True)
def observe_nb(i, flat, n_feat, window, sf, si, bc, boff, bal_units, fraction, obs):
    """Write the observation of bar `i`'s close into `obs`: the window's rows (one contiguous block of the
    float32 feature rows `flat`, ``n_feat`` per bar), then the portfolio."""
    k = window * n_feat
    lo = (i - window + 1) * n_feat
    obs[:k] = flat[lo : lo + k]
    q = sf[0, F_QTY]
    c = bc[boff[0] + i]
    e = _equity(bal_units, sf, si, boff, bc)
    level = sf[0, F_LEVEL] if q != 0 else 0.0
    if e > 0:
        obs[k] = q * c / (e * fraction)
        obs[k + 1] = q * (c - sf[0, F_AVG]) / e
        obs[k + 2] = sf[0, F_WALLET] / e
    else:
        obs[k] = 0.0
        obs[k + 1] = 0.0
        obs[k + 2] = 0.0
    obs[k + 3] = level


@njit(cache=True)
def env_step_nb(
    m, level, seq_sym, seq_idx, boff, bts, bo, bh, bl, bc, bvol, bavg,
    foff, fts, frate, koff, kfloor, kcap, kmmr, kcum, sp_f, sp_i, vf, vi, seed,
    sf, si, oi, of, qi, qf, mp, cnt, order_buf, clock, fi, ff, ri, rf, li, lf, eq_ts, eq,
    feats, flat, window, fraction, obs, out,
):  # fmt: skip
    """Decide `level` on element `m`'s close, then open bar ``m + 1`` and observe its close; the step's
    figures go to `out` (``O_*``). Returns ``m + 1``."""
    s = seq_sym[m]
    i = si[s, S_CUR]
    b = boff[s] + i
    t = bts[b]
    e0 = _equity(cnt[N_BAL], sf, si, boff, bc)
    n_fill, n_fund = cnt[N_FILL], cnt[N_FUND]
    policy_decide_nb(s, i, b, t, level, boff, bc, sp_f, sp_i, vf, vi, sf, si, oi, of, qi, qf, mp, cnt)
    after_decision_nb(t, boff, bo, bvol, bavg, koff, kfloor, kcap, kmmr, kcum, sp_f, sp_i, vf, vi, seed, sf, si, oi, of,
                      qi, qf, mp, cnt, fi, ff)  # fmt: skip
    m += 1
    open_bar_nb(m, seq_sym, seq_idx, boff, bts, bo, bh, bl, bc, bvol, bavg, foff, fts, frate, koff, kfloor, kcap, kmmr,
                kcum, sp_f, sp_i, vf, vi, seed, sf, si, oi, of, qi, qf, mp, cnt, order_buf, clock, fi, ff, ri, rf, li, lf,
                eq_ts, eq)  # fmt: skip
    i1 = si[s, S_CUR]
    e1 = _equity(cnt[N_BAL], sf, si, boff, bc)
    fees = 0.0
    for k in range(n_fill, cnt[N_FILL]):
        fees += ff[k, FF_FEE]
    funding = 0.0
    for k in range(n_fund, cnt[N_FUND]):
        funding += rf[k, 3]
    q = sf[s, F_QTY]
    out[O_EQUITY] = e1
    out[O_FEES] = fees
    out[O_FUNDING] = funding
    out[O_PNL] = (e1 - e0) + fees + funding
    out[O_POSITION] = q * bc[boff[s] + i1] / (e1 * fraction) if e1 > 0 else 0.0
    out[O_RV] = feats[i1, _RV] / 100.0
    observe_nb(i1, flat, feats.shape[1], window, sf, si, bc, boff, cnt[N_BAL], fraction, obs)
    return m


_FIELDS = (
    "seq_sym", "seq_idx", "boff", "bts", "bo", "bh", "bl", "bc", "bvol", "bavg", "foff", "fts", "frate", "koff",
    "kfloor", "kcap", "kmmr", "kcum", "sp_f", "sp_i", "vf", "vi", "seed", "sf", "si", "oi", "of", "qi", "qf", "mp",
    "cnt", "order_buf", "clock", "fi", "ff", "ri", "rf", "li", "lf", "eq_ts", "eq", "feats", "flat", "window",
    "fraction", "obs", "out", "m",
)  # fmt: skip


@structref.register
class _CoreType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class _Core(structref.StructRefProxy):
    """The environment's arrays in one compiled struct: a step is one call with two arguments instead of fifty
    (numba checks every argument's type on each call from Python, ~50 ns each). A struct rather than a
    jitclass because functions taking it are cached on disk (a jitclass recompiles, with the kernel linked
    in, in every process)."""


structref.define_proxy(_Core, _CoreType, list(_FIELDS))


@njit(cache=True)
def core_new_nb(seq_sym, seq_idx, boff, bts, bo, bh, bl, bc, bvol, bavg, foff, fts, frate, koff, kfloor, kcap, kmmr,
                kcum, sp_f, sp_i, vf, vi, seed, fi, ff, ri, rf, li, lf, eq_ts, eq, feats, flat, window, fraction, obs,
                out):  # fmt: skip
    sf, si, oi, of, qi, qf, mp, cnt, order_buf, clock = new_state_nb(1, foff, vi[W_BAL_UNITS])
    return _Core(seq_sym, seq_idx, boff, bts, bo, bh, bl, bc, bvol, bavg, foff, fts, frate, koff, kfloor, kcap, kmmr,
                 kcum, sp_f, sp_i, vf, vi, seed, sf, si, oi, of, qi, qf, mp, cnt, order_buf, clock, fi, ff, ri, rf, li,
                 lf, eq_ts, eq, feats, flat, window, fraction, obs, out, 0)  # fmt: skip


@njit(cache=True)
def core_reset_nb(c, m0):
    """A new episode from element `m0`: a fresh account, the bar opened and observed."""
    c.sf, c.si, c.oi, c.of, c.qi, c.qf, c.mp, c.cnt, c.order_buf, c.clock = new_state_nb(1, c.foff, c.vi[W_BAL_UNITS])
    c.m = m0
    open_bar_nb(m0, c.seq_sym, c.seq_idx, c.boff, c.bts, c.bo, c.bh, c.bl, c.bc, c.bvol, c.bavg, c.foff, c.fts, c.frate,
                c.koff, c.kfloor, c.kcap, c.kmmr, c.kcum, c.sp_f, c.sp_i, c.vf, c.vi, c.seed, c.sf, c.si, c.oi, c.of,
                c.qi, c.qf, c.mp, c.cnt, c.order_buf, c.clock, c.fi, c.ff, c.ri, c.rf, c.li, c.lf, c.eq_ts, c.eq)  # fmt: skip
    observe_nb(m0, c.flat, c.feats.shape[1], c.window, c.sf, c.si, c.bc, c.boff, c.cnt[N_BAL], c.fraction, c.obs)


@njit(cache=True)
def core_step_nb(c, level):
    """One step (see :func:`env_step_nb`); returns the new element index, or -1 when the record arrays are full."""
    c.m = env_step_nb(
        c.m, level, c.seq_sym, c.seq_idx, c.boff, c.bts, c.bo, c.bh, c.bl, c.bc, c.bvol, c.bavg, c.foff, c.fts,
        c.frate, c.koff, c.kfloor, c.kcap, c.kmmr, c.kcum, c.sp_f, c.sp_i, c.vf, c.vi, c.seed, c.sf, c.si, c.oi, c.of,
        c.qi, c.qf, c.mp, c.cnt, c.order_buf, c.clock, c.fi, c.ff, c.ri, c.rf, c.li, c.lf, c.eq_ts, c.eq, c.feats,
        c.flat, c.window, c.fraction, c.obs, c.out,
    )  # fmt: skip
    return c.m if c.cnt[N_STATUS] == OK else -1


@njit(cache=True)
def core_records_nb(c):
    """(trades opened, the fill ints, the fill floats) of the episode so far."""
    n = c.cnt[N_FILL]
    return c.si[0, S_TRADE], c.fi[:n].copy(), c.ff[:n].copy()


class TradingEnv(gym.Env):
    """Gymnasium environment over one symbol's bars on the perp kernel (see the module).

    Parameters
    ----------
    market : EnvMarket
        The period, venue and features (shared between copies).
    start, end : int, optional
        Bar range of the episodes (default: the whole period from the first ready bar).
    full_period : bool, default False
        One episode over the whole range whatever ``EnvConfig.episode_bars`` says (evaluation).

    Observation: float32 vector of ``window * len(FEATURES)`` feature values (oldest row first) and the
    portfolio state ``(position, unrealized_pnl, margin_use, level)``. Action: ``Discrete(3)`` or
    ``Box(-1, 1, (1,))`` by ``EnvConfig.action_space``.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 (gymnasium's class attribute)

    def __init__(self, market: EnvMarket, start: int | None = None, end: int | None = None, full_period: bool = False):
        cfg = market.config
        self.market, self.config = market, cfg
        self.start = max(cfg.ready, start if start is not None else cfg.ready)
        self.end = min(market.n, end if end is not None else market.n)
        if self.end - self.start < 2:
            raise ConfigError(f"episode range {self.start}..{self.end}: needs at least 2 bars after the warm-up")
        n_obs = cfg.window * N_FEATURES + len(PORTFOLIO)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(n_obs,), dtype=np.float32)
        if cfg.action_space == "discrete":
            self.action_space = gym.spaces.Discrete(3)
        else:
            self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._episode_bars = None if full_period else cfg.episode_bars
        span = self.end - self.start if self._episode_bars is None else min(self._episode_bars, self.end - self.start)
        self._span = span
        cap = 3 * span + 16
        mk = market.market
        z = np.zeros
        obs, out = z(n_obs, np.float32), z(6)
        self._core = core_new_nb(
            mk.seq_sym, mk.seq_idx, mk.boff, mk.bts, mk.bo, mk.bh, mk.bl, mk.bc, mk.bvol, mk.bavg, mk.foff, mk.fts,
            mk.frate, mk.koff, mk.kfloor, mk.kcap, mk.kmmr, mk.kcum, mk.sp_f, market.sp_i, market.vf, market.vi,
            market.seed, z((cap, 9), np.int64), z((cap, 5)), z((mk.fts.size, 3), np.int64), z((mk.fts.size, 4)),
            z((cap, 4), np.int64), z((cap, 5)), z(span + 2, np.int64), z(span + 2), market.features, market.flat, cfg.window,
            cfg.fraction, obs, out,
        )  # fmt: skip
        self._obs, self._out = obs, out
        self._bts = mk.bts
        self._table = DISCRETE_LEVELS if cfg.action_space == "discrete" else None
        self._stop = 0
        self._pos = 0.0
        self._equity = market.starting_equity
        self.levels_taken: list[float] = []

    # -- gymnasium ----------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        span = self._span
        if self._episode_bars is None or span >= self.end - self.start:
            m0 = self.start
        else:
            m0 = int(self.np_random.integers(self.start, self.end - span + 1))
        self._stop = m0 + span - 1
        core_reset_nb(self._core, m0)
        self.levels_taken = []
        self._pos = 0.0
        self._equity = float(self.market.starting_equity)
        return self._obs.copy(), {"equity": self._equity, "ts": int(self._bts[m0]), "bar": m0}

    def step(self, action):
        cfg = self.config
        table = self._table
        if table is not None and isinstance(action, (int, np.integer)) and 0 <= action <= 2:
            level = table[action]
        else:
            level = to_level(action, cfg.action_space, cfg.levels)
        self.levels_taken.append(level)
        m = core_step_nb(self._core, level)
        if m < 0:
            raise RuntimeError("perp kernel: the environment's record arrays are full")
        out = self._out
        e0, e1 = self._equity, out[O_EQUITY]
        pos = out[O_POSITION]
        risk = cfg.risk_lambda * abs(pos) * out[O_RV]
        turnover = cfg.turnover_kappa * abs(pos - self._pos)
        reward = (e1 - e0) / e0 - risk - turnover if e0 > 0 else 0.0
        self._equity, self._pos = e1, pos
        terminated = not e1 > 0
        truncated = m >= self._stop
        info = {"equity": e1, "position": pos, "target": level, "fees": out[O_FEES], "funding": out[O_FUNDING],
                "pnl": out[O_PNL], "risk_penalty": risk, "turnover_penalty": turnover, "realized_vol": out[O_RV],
                "ts": int(self._bts[m]), "bar": m}  # fmt: skip
        if terminated or truncated:
            info["n_trades"] = int(core_records_nb(self._core)[0])
        return self._obs.copy(), float(reward), terminated, truncated, info

    # -- records ------------------------------------------------------------------------------------

    def fills(self) -> np.ndarray:
        """The episode's fills so far: (ts, side, qty, price, fee) rows."""
        _, fi, ff = core_records_nb(self._core)
        return np.column_stack([fi[:, 0], fi[:, 3], ff[:, 0], ff[:, 1], ff[:, 2]])
