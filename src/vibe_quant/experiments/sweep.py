"""The latency x fee-tier sensitivity grid of an LPI experiment (``vq lpi sweep``,
``docs/specs.md#lpi-experiments``): one experiment and bundle per point, the ticks loaded once."""

from __future__ import annotations

from pathlib import Path

from vibe_quant.experiments.bundle import write_experiment_bundle
from vibe_quant.experiments.config import Experiment
from vibe_quant.experiments.runner import aggregate, load_data, run_experiment
from vibe_quant.home import Home
from vibe_quant.progress import Progress


def run_sweep(home: Home, experiment: Experiment, progress: Progress | None = None, specs=None) -> list[dict]:
    """The latency x fee-tier sensitivity grid (``experiment.sweep``): one experiment per point, each
    with its own bundle; returns one row per point (its id, latency, fees and aggregate metrics)."""
    exp = experiment.resolved()
    data = load_data(home, experiment, specs)
    rows = []
    points = [(lat, tier) for lat in exp.sweep.latency for tier in exp.sweep.fee_tier]
    task = progress.task(f"sweep {exp.name}", len(points)) if progress else None
    for latency, tier in points:
        point = experiment.variant(latency=latency, latency_ms=None, fee_tier=tier, maker_fee=None, taker_fee=None)
        result = run_experiment(home, point, data=data)
        write_experiment_bundle(home, result)
        agg = aggregate(result.folds)
        rows.append({"experiment_id": result.experiment_id, "latency": latency,
                     "latency_ms": result.experiment.execution.latency_ms, "fee_tier": tier,
                     "maker_fee": result.experiment.execution.maker_fee,
                     "taker_fee": result.experiment.execution.taker_fee, **{k: agg.get(k) for k in
                     ("pnl", "return", "worst_drawdown", "fills", "trades", "fees")},
                     "baseline_pnl": aggregate(result.baseline).get("pnl") if result.baseline else None})  # fmt: skip
        if progress:
            progress.advance(task)
    if progress:
        progress.finish(task)
    return rows


def write_sensitivity(home: Home, experiment: Experiment, rows: list[dict]) -> Path:
    """Write the sweep's grid as ``runs/<experiment_id>.sensitivity.csv`` (atomically); returns its path."""
    import pandas as pd

    from vibe_quant.staging import write_atomic

    home.runs.mkdir(parents=True, exist_ok=True)
    path = home.runs / f"{experiment.experiment_id}.sensitivity.csv"
    write_atomic(path, pd.DataFrame(rows).to_csv(index=False, lineterminator="\n"))
    return path
