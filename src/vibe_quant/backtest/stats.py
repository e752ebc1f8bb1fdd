"""Performance statistics: pure functions over arrays (no I/O, no globals).

Every annualised figure takes ``periods_per_year`` explicitly; crypto trades 365 days a year,
so daily series use 365. Nothing here reads NautilusTrader's built-in statistics, which are
fee- and size-blind (see NAUTILUS_FACTS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DAYS_PER_YEAR = 365
NS_PER_DAY = 86_400 * 1_000_000_000


def simple_returns(values: np.ndarray) -> np.ndarray:
    """Return ``values[i] / values[i-1] - 1`` (shape ``(n-1,)``); a step from <= 0 gives -1."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return np.empty(0)
    prev = v[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(prev > 0, v[1:] / prev - 1.0, -1.0)
    return r


def daily_closes(ts_ns: np.ndarray, equity: np.ndarray, start_equity: float, start_ns: int) -> np.ndarray:
    """Return the equity at the end of each UTC day from `start_ns`'s day, preceded by `start_equity`.

    Days without a sample carry the previous close forward, so every calendar day counts once.

    Parameters
    ----------
    ts_ns : ndarray, shape (n,)
        Sorted timestamps of `equity` (ns).
    equity : ndarray, shape (n,)
        Marked-to-market equity.
    start_equity : float
        Equity before the first sample (the starting balance).
    start_ns : int
        Start of the backtest (ns); days are counted from its UTC day.

    Returns
    -------
    ndarray, shape (days + 1,)
        ``days`` runs from the start day to the day of the last sample.
    """
    if len(ts_ns) == 0:
        return np.array([start_equity], dtype=float)
    # A sample stamped exactly at midnight closes the previous day.
    day = (np.asarray(ts_ns, dtype=np.int64) - 1) // NS_PER_DAY - start_ns // NS_PER_DAY
    day = np.maximum(day, 0)
    n = int(day[-1]) + 1
    last = np.flatnonzero(np.diff(day, append=day[-1] + 1))
    closes = np.full(n, np.nan)
    closes[day[last]] = np.asarray(equity, dtype=float)[last]
    filled = np.concatenate(([start_equity], closes))
    for i in range(1, filled.size):  # forward-fill days without samples
        if np.isnan(filled[i]):
            filled[i] = filled[i - 1]
    return filled


def sharpe_ratio(returns: np.ndarray, periods_per_year: float) -> float:
    """Annualised Sharpe ratio ``mean / std * sqrt(periods_per_year)`` (risk-free 0, ddof 1).

    Returns nan with fewer than two returns or zero volatility.
    """
    r = np.asarray(returns, dtype=float)
    if r.size < 2:
        return math.nan
    sd = r.std(ddof=1)
    mean = r.mean()
    # Constant returns leave float noise (~1e-17) in the deviation: that is zero volatility.
    if sd <= 1e-12 * max(abs(mean), 1e-12):
        return math.nan
    return float(mean / sd * math.sqrt(periods_per_year))


def sortino_ratio(returns: np.ndarray, periods_per_year: float) -> float:
    """Annualised Sortino ratio: mean over downside deviation ``sqrt(mean(min(r, 0)**2))``.

    Returns nan with fewer than two returns or no downside at all.
    """
    r = np.asarray(returns, dtype=float)
    if r.size < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    return math.nan if downside == 0 else float(r.mean() / downside * math.sqrt(periods_per_year))


def annual_volatility(returns: np.ndarray, periods_per_year: float) -> float:
    r = np.asarray(returns, dtype=float)
    return math.nan if r.size < 2 else float(r.std(ddof=1) * math.sqrt(periods_per_year))


def drawdown_series(equity: np.ndarray) -> np.ndarray:
    """Return the drawdown from the running peak at each point, in [0, 1] (equity floored at 0)."""
    e = np.maximum(np.asarray(equity, dtype=float), 0.0)
    if e.size == 0:
        return e
    peak = np.maximum.accumulate(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, 1.0 - e / peak, 0.0)
    return np.clip(dd, 0.0, 1.0)


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough loss as a fraction of the peak, in [0, 1]."""
    dd = drawdown_series(equity)
    return float(dd.max()) if dd.size else 0.0


def max_drawdown_duration_ns(ts_ns: np.ndarray, equity: np.ndarray) -> int:
    """Longest time from a peak until equity is back at it (or until the end), in ns."""
    e = np.asarray(equity, dtype=float)
    t = np.asarray(ts_ns, dtype=np.int64)
    if e.size == 0:
        return 0
    at_peak = e >= np.maximum.accumulate(e)
    last_peak = np.maximum.accumulate(np.where(at_peak, np.arange(e.size), 0))
    recovered = np.flatnonzero(at_peak[1:] & ~at_peak[:-1]) + 1  # back at the peak after a drawdown
    spans = [int(t[i] - t[last_peak[i - 1]]) for i in recovered]
    if not at_peak[-1]:
        spans.append(int(t[-1] - t[last_peak[-1]]))
    return max(spans, default=0)


def cagr(start_equity: float, end_equity: float, days: float) -> float:
    """Compound annual growth rate over `days` calendar days (365-day years); -1 if wiped out."""
    if start_equity <= 0 or days <= 0:
        return math.nan
    if end_equity <= 0:
        return -1.0
    return float((end_equity / start_equity) ** (DAYS_PER_YEAR / days) - 1.0)


def calmar_ratio(cagr_value: float, max_dd: float) -> float:
    return math.nan if max_dd <= 0 or math.isnan(cagr_value) else float(cagr_value / max_dd)


def longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of True values."""
    best = run = 0
    for f in np.asarray(flags, dtype=bool):
        run = run + 1 if f else 0
        best = max(best, run)
    return best


def trade_statistics(net_pnl: np.ndarray, durations_ns: np.ndarray) -> dict[str, float]:
    """Count, win rate, profit factor, averages, extremes, average duration and streaks.

    Parameters
    ----------
    net_pnl : ndarray, shape (n,)
        Net PnL of each closed trade (after fees, funding and slippage).
    durations_ns : ndarray, shape (n,)
        Holding time of each trade.
    """
    p = np.asarray(net_pnl, dtype=float)
    wins, losses = p[p > 0], p[p < 0]
    gross_win, gross_loss = float(wins.sum()), float(-losses.sum())
    return {
        "total_trades": int(p.size),
        "winning_trades": int(wins.size),
        "losing_trades": int(losses.size),
        "win_rate": float(wins.size / p.size) if p.size else math.nan,
        "profit_factor": (gross_win / gross_loss) if gross_loss > 0 else (math.inf if gross_win > 0 else math.nan),
        "avg_win": float(wins.mean()) if wins.size else math.nan,
        "avg_loss": float(losses.mean()) if losses.size else math.nan,
        "largest_win": float(wins.max()) if wins.size else math.nan,
        "largest_loss": float(losses.min()) if losses.size else math.nan,
        "avg_trade_duration_hours": float(np.mean(durations_ns) / 3.6e12) if p.size else math.nan,
        "max_consecutive_wins": longest_run(p > 0),
        "max_consecutive_losses": longest_run(p < 0),
    }


def performance(
    ts_ns: np.ndarray, equity: np.ndarray, start_equity: float, start_ns: int, end_ns: int
) -> dict[str, float]:
    """Return total return, CAGR, Sharpe, Sortino, Calmar, max drawdown (+ duration), volatility.

    Sharpe, Sortino and volatility use daily returns of the end-of-day equity (365 per year);
    drawdowns use every sample.
    """
    daily = daily_closes(ts_ns, equity, start_equity, start_ns)
    r = simple_returns(daily)
    end_equity = float(equity[-1]) if len(equity) else start_equity
    days = (end_ns - start_ns) / NS_PER_DAY
    mdd = max_drawdown(np.concatenate(([start_equity], np.asarray(equity, dtype=float))))
    growth = cagr(start_equity, end_equity, days)
    return {
        "total_return": end_equity / start_equity - 1.0,
        "cagr": growth,
        "sharpe_ratio": sharpe_ratio(r, DAYS_PER_YEAR),
        "sortino_ratio": sortino_ratio(r, DAYS_PER_YEAR),
        "calmar_ratio": calmar_ratio(growth, mdd),
        "max_drawdown": mdd,
        "max_drawdown_duration_days": max_drawdown_duration_ns(ts_ns, equity) / NS_PER_DAY,
        "volatility_annual": annual_volatility(r, DAYS_PER_YEAR),
    }


def daily_returns(ts_ns: np.ndarray, equity: np.ndarray, start_equity: float, start_ns: int) -> np.ndarray:
    """Simple returns of the end-of-day equity (one per calendar day of the run)."""
    return simple_returns(daily_closes(ts_ns, equity, start_equity, start_ns))


# -- Overfitting statistics (Bailey & Lopez de Prado) -------------------------------------------
#
# Sharpe ratios here are PER PERIOD (not annualised): mean / std of the return series at its own
# frequency, as in the papers. Kurtosis is RAW (a normal distribution has 3).

EULER_GAMMA = 0.5772156649015329


def return_moments(returns: np.ndarray) -> tuple[float, float, float, int]:
    """Per-period Sharpe (ddof 1), skewness and raw kurtosis (population moments), and the count."""
    from scipy import stats as sps

    r = np.asarray(returns, dtype=float)
    # A constant series leaves float noise (~1e-18) in its deviation: that is zero volatility.
    if r.size < 3 or r.std() <= 1e-12 * max(abs(float(r.mean())), 1e-12):
        return math.nan, math.nan, math.nan, int(r.size)
    return float(r.mean() / r.std(ddof=1)), float(sps.skew(r)), float(sps.kurtosis(r, fisher=False)), int(r.size)


def _sharpe_std_term(sr: float, skew: float, kurtosis: float) -> float:
    return 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr


def probabilistic_sharpe_ratio(sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float) -> float:
    """PSR: probability that the true Sharpe exceeds `sr_benchmark`, given `n_obs` returns with
    this skewness and raw kurtosis (Bailey & Lopez de Prado 2012)::

        PSR = Phi[(SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2)]

    Returns nan when undefined (fewer than 2 observations, nan inputs, a non-positive variance term).
    """
    from scipy.stats import norm

    if n_obs < 2 or any(math.isnan(x) for x in (sr, sr_benchmark, skew, kurtosis)):
        return math.nan
    term = _sharpe_std_term(sr, skew, kurtosis)
    if term <= 0:
        return math.nan
    return float(norm.cdf((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(term)))


def expected_max_sharpe(n_trials: int, sr_variance: float, sr_mean: float = 0.0) -> float:
    """SR0: the expected maximum of `n_trials` Sharpe estimates with this cross-trial variance
    when no strategy has skill (False Strategy Theorem, Bailey & Lopez de Prado 2014)::

        SR0 = mean + sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

    One trial has nothing to deflate: SR0 is the mean.
    """
    from scipy.stats import norm

    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if sr_variance < 0:
        raise ValueError(f"sr_variance must be >= 0, got {sr_variance}")
    if n_trials == 1:
        return float(sr_mean)
    z = (1 - EULER_GAMMA) * norm.ppf(1 - 1 / n_trials) + EULER_GAMMA * norm.ppf(1 - 1 / (n_trials * math.e))
    return float(sr_mean + math.sqrt(sr_variance) * z)


def deflated_sharpe_ratio(
    sr: float, n_trials: int, sr_variance: float, n_obs: int, skew: float, kurtosis: float, sr_mean: float = 0.0
) -> float:
    """DSR: the PSR of `sr` against SR0, the best Sharpe expected from `n_trials` skill-less trials."""
    return probabilistic_sharpe_ratio(sr, expected_max_sharpe(n_trials, sr_variance, sr_mean), n_obs, skew, kurtosis)


def min_track_record_length(
    sr: float, sr_benchmark: float, skew: float, kurtosis: float, confidence: float = 0.95
) -> float:
    """MinTRL: observations needed for PSR(`sr_benchmark`) to reach `confidence`::

        MinTRL = 1 + (1 - g3 SR + (g4 - 1)/4 SR^2) (Phi^-1(confidence) / (SR - SR*))^2

    Infinite when `sr` does not beat the benchmark.
    """
    from scipy.stats import norm

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if sr <= sr_benchmark:
        return math.inf
    return float(1 + _sharpe_std_term(sr, skew, kurtosis) * (norm.ppf(confidence) / (sr - sr_benchmark)) ** 2)


@dataclass(frozen=True)
class CSCVResult:
    """Combinatorially symmetric cross-validation of a trial matrix (Bailey, Borwein, Lopez de
    Prado & Zhu 2017). One entry per split (C(S, S/2) of them)."""

    pbo: float  # share of splits whose in-sample best ranks at or below the out-of-sample median
    logits: np.ndarray  # lambda = ln(w / (1 - w)), w = OOS rank of the IS best / (N + 1)
    is_sharpe: np.ndarray  # per-period Sharpe of the IS best, in sample
    oos_sharpe: np.ndarray  # ... and out of sample
    n_splits: int
    n_trials: int
    rows_used: int  # T rounded down to a multiple of the split count (the oldest rows dropped)

    @property
    def degradation_slope(self) -> float:
        """OLS slope of OOS on IS Sharpe over the splits (negative: the better IS, the worse OOS)."""
        if np.ptp(self.is_sharpe) == 0:
            return math.nan
        return float(np.polyfit(self.is_sharpe, self.oos_sharpe, 1)[0])

    @property
    def prob_oos_loss(self) -> float:
        """Share of splits whose IS best loses money out of sample (OOS Sharpe < 0)."""
        return float(np.mean(self.oos_sharpe < 0))


def cscv(returns_matrix: np.ndarray, n_splits: int = 16) -> CSCVResult:
    """Run CSCV on a (T observations x N trials) return matrix with `n_splits` blocks (even).

    Each split puts half of the blocks in sample and the other half out of sample; the trial
    with the best in-sample Sharpe is ranked among all trials out of sample (average ranks for
    ties, a flat trial ranks lowest). PBO is the share of splits with logit <= 0.

    Raises
    ------
    ValueError
        Fewer than 2 trials, an odd or too small `n_splits`, or fewer rows than 2 per block.
    """
    from itertools import combinations

    from scipy.stats import rankdata

    m = np.asarray(returns_matrix, dtype=float)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError(f"returns_matrix must be (observations, trials) with >= 2 trials, got shape {m.shape}")
    if n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even number >= 2, got {n_splits}")
    size = m.shape[0] // n_splits
    if size < 2:
        raise ValueError(f"{m.shape[0]} observations cannot fill {n_splits} blocks of >= 2 rows; lower n_splits")
    if not np.isfinite(m).all():
        raise ValueError("returns_matrix has nan or inf values")
    used = m[m.shape[0] - size * n_splits :]  # drop the oldest rows so blocks are equal
    blocks = used.reshape(n_splits, size, -1)
    sums, squares = blocks.sum(axis=1), (blocks**2).sum(axis=1)  # (S, N) each
    combos = np.array(list(combinations(range(n_splits), n_splits // 2)))
    in_sample = np.zeros((len(combos), n_splits))
    in_sample[np.arange(len(combos))[:, None], combos] = 1.0
    n = size * n_splits // 2

    def sharpe(mask: np.ndarray) -> np.ndarray:  # (K, N) per-period Sharpe over the chosen blocks
        s, q = mask @ sums, mask @ squares
        mean = s / n
        var = np.maximum((q - n * mean**2) / (n - 1), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = mean / np.sqrt(var)
        return np.where(var > 1e-24, out, -np.inf)  # a flat trial is the worst, never the pick

    is_sr, oos_sr = sharpe(in_sample), sharpe(1.0 - in_sample)
    best = np.argmax(is_sr, axis=1)
    rows = np.arange(len(combos))
    omega = rankdata(oos_sr, axis=1)[rows, best] / (m.shape[1] + 1)
    logits = np.log(omega / (1 - omega))
    return CSCVResult(
        pbo=float(np.mean(logits <= 0)), logits=logits, is_sharpe=is_sr[rows, best], oos_sharpe=oos_sr[rows, best],
        n_splits=n_splits, n_trials=m.shape[1], rows_used=size * n_splits,
    )  # fmt: skip


def probability_of_backtest_overfitting(returns_matrix: np.ndarray, n_splits: int = 16) -> float:
    """PBO of selecting the best-Sharpe trial of `returns_matrix` (T x N); see :func:`cscv`."""
    return cscv(returns_matrix, n_splits).pbo
