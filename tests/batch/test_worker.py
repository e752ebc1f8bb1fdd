"""Where a batch point runs (docs/specs.md#where-the-kernel-runs): a DSL strategy on the perp kernel,
a Python strategy and a run with the risk gate on NautilusTrader with the kernel's reason in the
point's warnings; ``engine="nautilus"`` runs everything on NautilusTrader with the same metrics."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest

from tests.conftest import linked_home
from vibe_quant.backtest.config import parse_config
from vibe_quant.batch.worker import PointWorker, WorkerSpec
from vibe_quant.strategy.registry import find_strategy

START, END = dt.date(2023, 8, 1), dt.date(2023, 8, 31)
SIZING = {"method": "fixed_fractional", "risk_per_trade": 0.01, "max_position_pct": 0.10, "max_leverage": 5}


@pytest.fixture(scope="module")
def home(aug_2023_catalog: Path, tmp_path_factory: pytest.TempPathFactory):
    return linked_home(tmp_path_factory.mktemp("worker") / "home", aug_2023_catalog)


def run_points(home, strategy: str, points: list[dict], engine: str = "sim", **extra) -> list[dict]:
    ref = find_strategy(strategy)
    base = parse_config({"strategy": ref.name, "kind": ref.kind, "document": ref.document, "symbols": ["FILUSDT"],
                         "timeframe": "5m", "start": str(START), "end": str(END), "mode": "screening", **extra})  # fmt: skip
    worker = PointWorker(WorkerSpec(str(home.root), None, msgspec.to_builtins(base), engine=engine))
    try:
        return [worker.run(i, params) for i, params in enumerate(points)]
    finally:
        worker.close()


def engine_warnings(result: dict) -> list[str]:
    return [w for w in result["warnings"] if w.startswith("engine sim:")]


def test_a_dsl_strategy_runs_on_the_kernel_and_nautilus_gives_the_same_metrics(home) -> None:
    points = [{"rsi.period": 7}, {"rsi.period": 14}]
    sim = run_points(home, "rsi_mean_reversion_mtf", points)
    nautilus = run_points(home, "rsi_mean_reversion_mtf", points, engine="nautilus")
    assert [r["error"] for r in sim + nautilus] == [None] * 4
    assert [r["engine"] for r in sim] == ["sim", "sim"]
    assert [r["engine"] for r in nautilus] == ["nautilus", "nautilus"]
    assert not any(engine_warnings(r) for r in sim + nautilus)
    assert all(0 < r["bars_replayed"] <= r["bars"] for r in sim)
    assert sim[0]["metrics"]["total_trades"] > 0
    assert [r["metrics"] for r in sim] == [r["metrics"] for r in nautilus]


@pytest.mark.parametrize(
    ("strategy", "extra", "reason"),
    [("ema_cross", {}, "the kernel runs DSL strategies"),
     ("rsi_mean_reversion_mtf", {"sizing": SIZING, "leverage": 5.0}, "the risk gate (--sizing/--risk")],
    ids=["python-strategy", "sizing"],
)  # fmt: skip
def test_a_plan_the_kernel_refuses_runs_on_nautilus_and_says_why(home, strategy, extra, reason) -> None:
    params = {"fast": 10} if strategy == "ema_cross" else {"rsi.period": 14}
    results = run_points(home, strategy, [params, params], **extra)
    for r in results:
        assert r["error"] is None
        assert r["engine"] == "nautilus"
        [warning] = engine_warnings(r)  # once per point
        assert warning.startswith(f"engine sim: {reason}")
        assert warning.endswith("; ran on NautilusTrader")
    assert results[0]["metrics"] == results[1]["metrics"]
    assert results[0]["metrics"]["total_trades"] > 0
