"""The perp kernel's safety net: a run's Pareto-front points, re-run on NautilusTrader, must give the
metrics the kernel stored (docs/specs.md#where-the-kernel-runs).

Screening calls :func:`check_front` once the front is marked; a later stage whose points run on
the kernel (genetic discovery) calls it on its own front.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

import msgspec

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.persist import clean, now_iso
from vibe_quant.batch.worker import POINT_METRICS
from vibe_quant.errors import EngineMismatch
from vibe_quant.home import Home
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)

RTOL = 1e-9  # relative tolerance, floored at an absolute 1e-9: summation order may differ, nothing else


def same_metric(a: float | None, b: float | None) -> bool:
    """Whether two metric values agree: both None, or ``|a - b| <= 1e-9 * max(1, |a|, |b|)``."""
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= RTOL * max(1.0, abs(a), abs(b))


def metric_differences(stored: Mapping, fresh: Mapping) -> list[tuple[str, float | None, float | None]]:
    """The metrics of ``POINT_METRICS`` on which `stored` and `fresh` disagree.

    Parameters
    ----------
    stored : Mapping
        A ``sweep_results.metrics`` dict (NaN and infinities already stored as None); a metric
        it lacks counts as None.
    fresh : Mapping
        A backtest's metrics (NaN and infinities are cleaned to None before comparing).

    Returns
    -------
    list of (metric, stored value, fresh value)
        Empty when every metric agrees (:func:`same_metric`).
    """
    out = []
    for key in POINT_METRICS:
        a, b = stored.get(key), clean(fresh.get(key))
        if not same_metric(a, b):
            out.append((key, a, b))
    return out


def check_front(home: Home, run_row: int, base: BacktestConfig, front: Sequence[Mapping],
                specs_path: str | None = None) -> int:  # fmt: skip
    """Re-run every point of `front` on NautilusTrader and compare its metrics with the stored ones.

    Each point is `base` with the row's ``parameters``, run on NautilusTrader (active replay) over
    `base`'s period: one engine for all the points, reset between them as the screening workers do
    (a reused engine gives a fresh engine's results, tests/screening/test_pipeline.py), with the
    market data loaded once from ``home.catalog``.

    Parameters
    ----------
    home : Home
        The data home (catalog and state database).
    run_row : int
        The ``backtest_runs`` id the points belong to (marked ``failed`` on a disagreement).
    base : BacktestConfig
        The run's base config (its points differ only in ``params``).
    front : sequence of Mapping
        ``sweep_results`` rows: ``id``, ``parameters`` and ``metrics`` are read.
    specs_path : str, optional
        The instrument specs file (default None: the bundled one).

    Returns
    -------
    int
        How many points were checked (all of `front`; 0 for an empty front).

    Raises
    ------
    EngineMismatch
        A metric differs (:func:`same_metric`) on any point; the run is marked ``failed`` first,
        with the same message: the point, the metric and both values.
    """
    if not front:
        return 0
    from vibe_quant.backtest.engine import EngineSession
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.instruments.specs import InstrumentSpecs

    plans = [plan_run(msgspec.structs.replace(base, params=row["parameters"])) for row in front]
    data = load_market_data(home.catalog, plans[0], InstrumentSpecs(specs_path))
    session = EngineSession(plans[0], data, replay="active")
    disagree = []
    try:
        for row, plan in zip(front, plans, strict=True):
            diffs = metric_differences(row["metrics"] or {}, session.run(plan, reports=False).metrics)
            if diffs:
                disagree.append((row, diffs))
    finally:
        session.dispose()
    if disagree:
        row, diffs = disagree[0]
        metric, kernel, nautilus = diffs[0]
        others = f" and {len(diffs) - 1} more metric(s)" if len(diffs) > 1 else ""
        points = f"; {len(disagree)} of {len(front)} front points disagree" if len(disagree) > 1 else ""
        message = (
            f"run {run_row}: kernel and NautilusTrader disagree on Pareto-front point {row['id']} "
            f"{json.dumps(row['parameters'], sort_keys=True)}: {metric} {kernel!r} (kernel) vs {nautilus!r} "
            f"(NautilusTrader){others}{points}; report this as a bug; rerun with --engine nautilus"
        )
        with StateManager(home.db_path) as state:
            state.update("backtest_runs", run_row, {"status": "failed", "completed_at": now_iso(),
                                                    "error_message": message})  # fmt: skip
        raise EngineMismatch(message)
    log.info("run %d: Pareto front re-checked on NautilusTrader: %d points identical", run_row, len(front))
    return len(front)
