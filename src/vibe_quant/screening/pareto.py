"""Hard filters and the Pareto front of a screening sweep (docs/specs.md#pareto-front). Pure functions.

Objectives, all maximised: Sharpe ratio, ``1 - max drawdown``, profit factor. A candidate is
on the front when no other candidate is at least as good in every objective and strictly
better in one; exact duplicates do not dominate each other, so both stay on the front.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import msgspec
import numpy as np

from vibe_quant.errors import ConfigError

OBJECTIVES = ("sharpe_ratio", "max_drawdown", "profit_factor")


class HardFilters(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Constraints applied before ranking (defaults: docs/specs.md#screening-hard-filters)."""

    min_trades: int = 50
    max_drawdown: float = 0.30  # strictly below
    min_profit_factor: float = 1.0  # strictly above

    def __post_init__(self) -> None:
        if self.min_trades < 0:
            raise ConfigError(f"min_trades must be >= 0, got {self.min_trades}")
        if not 0 < self.max_drawdown <= 1:
            raise ConfigError(f"max_drawdown is a fraction in (0, 1], got {self.max_drawdown} (30% is 0.30)")
        if self.min_profit_factor < 0:
            raise ConfigError(f"min_profit_factor must be >= 0, got {self.min_profit_factor}")


def rejection(metrics: Mapping[str, float | int | None], filters: HardFilters) -> str | None:
    """Why a candidate fails the hard filters (``None`` when it passes)."""
    trades = metrics.get("total_trades") or 0
    if trades < filters.min_trades:
        return f"trades {trades} < {filters.min_trades}"
    dd = metrics.get("max_drawdown")
    if dd is None or _nan(dd) or dd >= filters.max_drawdown:
        return f"max drawdown {_pct(dd)} >= {filters.max_drawdown:.0%}"
    pf = metrics.get("profit_factor")
    if pf is None or _nan(pf) or pf <= filters.min_profit_factor:
        return f"profit factor {'-' if pf is None or _nan(pf) else f'{pf:.2f}'} <= {filters.min_profit_factor:g}"
    sharpe = metrics.get("sharpe_ratio")
    if sharpe is None or _nan(sharpe):
        return "no Sharpe ratio (flat equity)"
    return None


def objective_matrix(rows: Sequence[Mapping[str, float | None]]) -> np.ndarray:
    """Rows of (Sharpe, 1 - MaxDD, PF), all to be maximised; missing values are -inf."""
    out = np.full((len(rows), 3), -np.inf)
    for i, m in enumerate(rows):
        for j, key in enumerate(OBJECTIVES):
            v = m.get(key)
            if v is None or _nan(v):
                continue
            out[i, j] = 1.0 - v if key == "max_drawdown" else v
    return out


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `points` (n, k), every column maximised.

    Row ``a`` dominates ``b`` when ``a >= b`` in every column and ``a > b`` in at least one.
    O(n^2 k) with numpy; screening populations are hundreds to a few thousand.
    """
    p = np.asarray(points, dtype=float)
    n = p.shape[0]
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        ge = np.all(p >= p[i], axis=1)
        gt = np.any(p > p[i], axis=1)
        if np.any(ge & gt):
            mask[i] = False
    return mask


def _nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _pct(v) -> str:
    return "-" if v is None or _nan(v) else f"{v:.1%}"
