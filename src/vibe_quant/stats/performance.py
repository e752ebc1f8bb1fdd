"""Performance statistics: pure functions over arrays (no I/O, no globals).

Every annualised figure takes ``periods_per_year`` explicitly; crypto trades 365 days a year,
so daily series use 365. Nothing here reads NautilusTrader's built-in statistics, which are
fee- and size-blind (see docs/nautilus.md#built-in-statistics).
"""

from __future__ import annotations

import math

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
