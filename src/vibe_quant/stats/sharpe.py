"""Overfitting statistics on Sharpe ratios (Bailey & Lopez de Prado): PSR, DSR, MinTRL and the
expected maximum Sharpe of skill-less trials. Pure functions over arrays (no I/O, no globals).

Sharpe ratios here are PER PERIOD (not annualised): mean / std of the return series at its own
frequency, as in the papers. Kurtosis is RAW (a normal distribution has 3).
"""

from __future__ import annotations

import math

import numpy as np

# The normal CDF and its inverse that scipy.stats.norm calls, without importing scipy.stats (~3 s here).
from scipy.special import ndtr, ndtri

EULER_GAMMA = 0.5772156649015329


def return_moments(returns: np.ndarray) -> tuple[float, float, float, int]:
    """Per-period Sharpe (ddof 1), skewness and raw kurtosis (population moments), and the count."""
    r = np.asarray(returns, dtype=float)
    # A constant series leaves float noise (~1e-18) in its deviation: that is zero volatility.
    if r.size < 3 or r.std() <= 1e-12 * max(abs(float(r.mean())), 1e-12):
        return math.nan, math.nan, math.nan, int(r.size)
    d = r - r.mean()
    m2, m3, m4 = np.mean(d**2), np.mean(d**3), np.mean(d**4)  # population moments, as scipy.stats.skew/kurtosis
    return float(r.mean() / r.std(ddof=1)), float(m3 / m2**1.5), float(m4 / m2**2), int(r.size)


def _sharpe_std_term(sr: float, skew: float, kurtosis: float) -> float:
    return 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr


def probabilistic_sharpe_ratio(sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float) -> float:
    """PSR: probability that the true Sharpe exceeds `sr_benchmark`, given `n_obs` returns with
    this skewness and raw kurtosis (Bailey & Lopez de Prado 2012)::

        PSR = Phi[(SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2)]

    Returns nan when undefined (fewer than 2 observations, nan inputs, a non-positive variance term).
    """
    if n_obs < 2 or any(math.isnan(x) for x in (sr, sr_benchmark, skew, kurtosis)):
        return math.nan
    term = _sharpe_std_term(sr, skew, kurtosis)
    if term <= 0:
        return math.nan
    return float(ndtr((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(term)))


def expected_max_sharpe(n_trials: int, sr_variance: float, sr_mean: float = 0.0) -> float:
    """SR0: the expected maximum of `n_trials` Sharpe estimates with this cross-trial variance
    when no strategy has skill (False Strategy Theorem, Bailey & Lopez de Prado 2014)::

        SR0 = mean + sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

    One trial has nothing to deflate: SR0 is the mean.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if sr_variance < 0:
        raise ValueError(f"sr_variance must be >= 0, got {sr_variance}")
    if n_trials == 1:
        return float(sr_mean)
    z = (1 - EULER_GAMMA) * ndtri(1 - 1 / n_trials) + EULER_GAMMA * ndtri(1 - 1 / (n_trials * math.e))
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
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if sr <= sr_benchmark:
        return math.inf
    return float(1 + _sharpe_std_term(sr, skew, kurtosis) * (ndtri(confidence) / (sr - sr_benchmark)) ** 2)
