"""The overfitting filters as pure functions over daily-return arrays (no I/O, no engine).

Each per-candidate filter returns a :class:`Verdict`; the run-level ones (PBO, CPCV) judge the
sweep's selection procedure and return one verdict that applies to every candidate. Sharpe
ratios reported here are annualised (daily returns, 365 days); DSR and PBO work on per-period
(daily) Sharpe ratios as their papers define them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vibe_quant.overfitting.config import CPCV, PBO, DeflatedSharpe, PurgedKFold, WalkForward
from vibe_quant.overfitting.splits import cpcv_groups, cpcv_paths, cpcv_splits, purged_kfold
from vibe_quant.stats.pbo import cscv
from vibe_quant.stats.performance import DAYS_PER_YEAR, sharpe_ratio
from vibe_quant.stats.sharpe import deflated_sharpe_ratio, expected_max_sharpe, return_moments


@dataclass
class Verdict:
    passed: bool
    reason: str | None = None  # why it failed (None when it passed)
    figures: dict = field(default_factory=dict)


def _annual_sharpe(r: np.ndarray) -> float:
    """Annualised Sharpe; a flat series (no trading) scores 0 rather than nan."""
    value = sharpe_ratio(r, DAYS_PER_YEAR)
    return 0.0 if math.isnan(value) and np.allclose(r, 0.0) else value


def _fmt(x: float) -> str:
    return "nan" if x is None or math.isnan(x) else f"{x:.3f}"


# -- Deflated Sharpe ratio (per candidate) --------------------------------------------------------


@dataclass(frozen=True)
class TrialSharpes:
    """Per-period Sharpe ratios of every trial of the sweep (the multiple-testing population)."""

    n_trials: int
    variance: float
    mean: float

    @classmethod
    def of(cls, returns: list[np.ndarray]) -> TrialSharpes:
        srs = np.array([return_moments(r)[0] for r in returns])
        finite = srs[np.isfinite(srs)]
        variance = float(finite.var(ddof=1)) if finite.size > 1 else 0.0
        return cls(len(returns), variance, float(finite.mean()) if finite.size else 0.0)


def deflated_sharpe(returns: np.ndarray, trials: TrialSharpes, cfg: DeflatedSharpe) -> Verdict:
    """DSR of one candidate against the best Sharpe `trials.n_trials` skill-less trials would show.

    The null hypothesis is SR = 0 for every trial (``sr_mean`` 0, Bailey & Lopez de Prado 2014);
    the cross-trial variance is the sweep's.
    """
    sr, skew, kurt, n = return_moments(returns)
    sr0 = expected_max_sharpe(trials.n_trials, trials.variance)
    dsr = deflated_sharpe_ratio(sr, trials.n_trials, trials.variance, n, skew, kurt)
    figures = {"dsr": dsr, "sr_per_period": sr, "sr0_per_period": sr0, "skew": skew, "kurtosis": kurt,
               "n_obs": n, "n_trials": trials.n_trials, "sr_variance": trials.variance}  # fmt: skip
    if math.isnan(dsr):
        return Verdict(False, "DSR undefined (flat or too short return series)", figures)
    if dsr <= cfg.confidence_threshold:
        return Verdict(False, f"DSR {dsr:.3f} <= {cfg.confidence_threshold:g} ({trials.n_trials} trials)", figures)
    return Verdict(True, None, figures)


# -- Purged K-fold (per candidate) ---------------------------------------------------------------


def purged_kfold_filter(returns: np.ndarray, cfg: PurgedKFold, purge: int, embargo: int) -> Verdict:
    """Annualised Sharpe of the candidate on each test fold (OOS) and on its purged, embargoed
    training set (IS); passes when the OOS mean is above and the spread below the thresholds."""
    r = np.asarray(returns, dtype=float)
    oos, ins = [], []
    for train, test in purged_kfold(r.size, cfg.n_splits, purge, embargo):
        oos.append(_annual_sharpe(r[test]))
        ins.append(_annual_sharpe(r[train]))
    oos_a = np.array(oos)
    mean = float(np.nanmean(oos_a)) if np.isfinite(oos_a).any() else math.nan
    std = float(np.nanstd(oos_a, ddof=1)) if np.isfinite(oos_a).sum() > 1 else math.nan
    figures = {"mean_oos_sharpe": mean, "std_oos_sharpe": std, "oos_sharpe": oos, "is_sharpe": ins,
               "purge_days": purge, "embargo_days": embargo, "n_splits": cfg.n_splits}  # fmt: skip
    if not mean > cfg.min_mean_sharpe:
        return Verdict(False, f"mean OOS Sharpe {_fmt(mean)} <= {cfg.min_mean_sharpe:g}", figures)
    if not std < cfg.max_sharpe_std:
        return Verdict(False, f"OOS Sharpe std {_fmt(std)} >= {cfg.max_sharpe_std:g}", figures)
    return Verdict(True, None, figures)


# -- Walk-forward (per candidate, from window runs) ----------------------------------------------


@dataclass(frozen=True)
class WindowResult:
    """One candidate on one window: daily returns of a run from train start to test end."""

    returns: np.ndarray
    train_days: int

    @property
    def is_returns(self) -> np.ndarray:
        return self.returns[: self.train_days]

    @property
    def oos_returns(self) -> np.ndarray:
        return self.returns[self.train_days :]

    @staticmethod
    def _total(r: np.ndarray) -> float:
        return float(np.prod(1.0 + r) - 1.0)

    @property
    def is_return(self) -> float:
        return self._total(self.is_returns)

    @property
    def oos_return(self) -> float:
        return self._total(self.oos_returns)

    @property
    def is_annual(self) -> float:
        """Linear annualisation (return x 365 / days): comparable across train and test lengths
        without compounding a short window's return into an extreme figure."""
        return self.is_return * DAYS_PER_YEAR / max(self.is_returns.size, 1)

    @property
    def oos_annual(self) -> float:
        return self.oos_return * DAYS_PER_YEAR / max(self.oos_returns.size, 1)


def walk_forward_filter(windows: list[WindowResult], cfg: WalkForward) -> Verdict:
    """WF efficiency = mean(OOS annualised return) / mean(IS annualised return); share of
    profitable OOS windows; OOS Sharpe of the pooled test-window returns (docs/specs.md#walk-forward-analysis)."""
    is_ann = np.array([w.is_annual for w in windows])
    oos_ann = np.array([w.oos_annual for w in windows])
    profitable = float(np.mean([w.oos_return > 0 for w in windows]))
    mean_is = float(is_ann.mean())
    efficiency = float(oos_ann.mean() / mean_is) if mean_is > 0 else math.nan
    pooled = np.concatenate([w.oos_returns for w in windows])
    figures = {"efficiency": efficiency, "profitable_windows_pct": profitable, "oos_sharpe": _annual_sharpe(pooled),
               "mean_is_annual_return": mean_is, "mean_oos_annual_return": float(oos_ann.mean()),
               "is_returns": [w.is_return for w in windows], "oos_returns": [w.oos_return for w in windows],
               "windows": len(windows)}  # fmt: skip
    if mean_is <= 0:
        return Verdict(False, f"no in-sample profit (mean IS annualised return {mean_is:.1%})", figures)
    if not efficiency > cfg.min_efficiency:
        return Verdict(False, f"WF efficiency {_fmt(efficiency)} <= {cfg.min_efficiency:g}", figures)
    if not profitable > cfg.min_profitable_windows_pct:
        return Verdict(
            False, f"{profitable:.0%} of OOS windows profitable <= {cfg.min_profitable_windows_pct:.0%}", figures
        )
    return Verdict(True, None, figures)


def walk_forward_selection(per_candidate: dict[int, list[WindowResult]]) -> dict:
    """The walk-forward optimisation itself: in each window pick the candidate with the best IS
    Sharpe, score its test window. Returns its efficiency, profitable share and OOS Sharpe."""
    ids = list(per_candidate)
    n_windows = len(per_candidate[ids[0]])
    chosen, is_ann, oos_ann, oos_ret, pooled = [], [], [], [], []
    for w in range(n_windows):
        scores = [_annual_sharpe(per_candidate[i][w].is_returns) for i in ids]
        best = ids[int(np.argmax([s if not math.isnan(s) else -np.inf for s in scores]))]
        res = per_candidate[best][w]
        chosen.append(best)
        is_ann.append(res.is_annual)
        oos_ann.append(res.oos_annual)
        oos_ret.append(res.oos_return)
        pooled.append(res.oos_returns)
    mean_is = float(np.mean(is_ann))
    return {"chosen_per_window": chosen, "efficiency": float(np.mean(oos_ann) / mean_is) if mean_is > 0 else math.nan,
            "profitable_windows_pct": float(np.mean(np.array(oos_ret) > 0)),
            "oos_sharpe": _annual_sharpe(np.concatenate(pooled)), "oos_returns": oos_ret}  # fmt: skip


# -- Run level: PBO and CPCV ---------------------------------------------------------------------


def pbo_filter(matrix: np.ndarray, cfg: PBO) -> Verdict:
    """CSCV over every trial of the sweep: is picking the best in-sample Sharpe overfit?"""
    res = cscv(matrix, cfg.n_splits)
    figures = {"pbo": res.pbo, "n_trials": res.n_trials, "n_splits": res.n_splits, "combinations": int(res.logits.size),
               "rows_used": res.rows_used, "degradation_slope": res.degradation_slope,
               "prob_oos_loss": res.prob_oos_loss}  # fmt: skip
    if not res.pbo < cfg.max_pbo:
        return Verdict(False, f"PBO {res.pbo:.2f} >= {cfg.max_pbo:g} (the sweep's best is overfit)", figures)
    return Verdict(True, None, figures)


def cpcv_filter(matrix: np.ndarray, cfg: CPCV, purge: int, embargo: int, ids: list[int]) -> Verdict:
    """Combinatorial purged CV of the selection (AFML ch. 12): in each split pick the trial with
    the best Sharpe on the purged training set, keep its returns on the test groups, stitch the
    k/N * C(N, k) paths and score each path's annualised Sharpe."""
    t = matrix.shape[0]
    splits = cpcv_splits(t, cfg.n_groups, cfg.n_test_groups, purge, embargo)
    groups = cpcv_groups(t, cfg.n_groups)
    picked = []
    for split in splits:
        train = matrix[split.train]
        sd = train.std(axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(sd > 1e-12, train.mean(axis=0) / sd, -np.inf)
        picked.append(int(np.argmax(score)))
    paths = cpcv_paths(cfg.n_groups, cfg.n_test_groups)
    path_sharpes = []
    for row in paths:
        series = np.concatenate([matrix[a:b, picked[s]] for (a, b), s in zip(groups, row, strict=True)])
        path_sharpes.append(_annual_sharpe(series))
    ps = np.array(path_sharpes)
    mean = float(np.nanmean(ps))
    std = float(np.nanstd(ps, ddof=1)) if ps.size > 1 else 0.0
    counts: dict[int, int] = {}
    for p in picked:
        counts[ids[p]] = counts.get(ids[p], 0) + 1
    figures = {"mean_path_sharpe": mean, "std_path_sharpe": std, "path_sharpes": path_sharpes,
               "splits": len(splits), "paths": int(paths.shape[0]), "selected": counts,
               "purge_days": purge, "embargo_days": embargo}  # fmt: skip
    if not mean > cfg.min_mean_sharpe:
        return Verdict(False, f"CPCV mean path Sharpe {_fmt(mean)} <= {cfg.min_mean_sharpe:g}", figures)
    if not std < cfg.max_sharpe_std:
        return Verdict(False, f"CPCV path Sharpe std {_fmt(std)} >= {cfg.max_sharpe_std:g}", figures)
    return Verdict(True, None, figures)


# -- Screening vs validation ---------------------------------------------------------------------


def execution_degradation(screening_sharpe: float | None, validation_sharpe: float | None,
                          max_degradation: float) -> tuple[float, bool]:  # fmt: skip
    """Relative Sharpe lost from screening to validation (full costs) and whether it makes the
    candidate "execution-sensitive" (docs/specs.md#screening-to-validation-consistency: more than `max_degradation`, 50%).

    A validation Sharpe that is undefined (no trade, flat equity) counts as fully degraded; a
    screening Sharpe <= 0 has nothing to lose (degradation nan, not flagged).
    """
    if screening_sharpe is None or math.isnan(screening_sharpe) or screening_sharpe <= 0:
        return math.nan, False
    if validation_sharpe is None or math.isnan(validation_sharpe):
        return math.nan, True
    degradation = 1.0 - validation_sharpe / screening_sharpe
    return float(degradation), degradation > max_degradation
