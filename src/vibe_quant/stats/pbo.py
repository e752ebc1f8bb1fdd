"""The probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV;
Bailey, Borwein, Lopez de Prado & Zhu 2017). Pure functions over arrays."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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
    # the IS best's average rank among all trials out of sample (ties share their mean rank)
    pick = oos_sr[rows, best][:, None]
    rank = (oos_sr < pick).sum(axis=1) + ((oos_sr == pick).sum(axis=1) + 1) / 2
    omega = rank / (m.shape[1] + 1)
    logits = np.log(omega / (1 - omega))
    return CSCVResult(
        pbo=float(np.mean(logits <= 0)), logits=logits, is_sharpe=is_sr[rows, best], oos_sharpe=oos_sr[rows, best],
        n_splits=n_splits, n_trials=m.shape[1], rows_used=size * n_splits,
    )  # fmt: skip


def probability_of_backtest_overfitting(returns_matrix: np.ndarray, n_splits: int = 16) -> float:
    """PBO of selecting the best-Sharpe trial of `returns_matrix` (T x N); see :func:`cscv`."""
    return cscv(returns_matrix, n_splits).pbo
