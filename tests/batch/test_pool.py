"""``WorkerPool``: workers kept across batches give the results of fresh workers; a worker killed mid-batch loses
no point, and the next batch runs on a fresh pool."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import signal
from pathlib import Path

import msgspec
import pytest

from tests.conftest import linked_home
from vibe_quant.backtest.config import parse_config
from vibe_quant.batch.executors import WorkerPool, run_points
from vibe_quant.batch.worker import WorkerSpec
from vibe_quant.strategy.registry import find_strategy


@pytest.fixture(scope="module")
def spec(aug_2023_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> WorkerSpec:
    home = linked_home(tmp_path_factory.mktemp("pool") / "home", aug_2023_catalog)
    ref = find_strategy("ema_cross.yaml")
    base = parse_config({"strategy": ref.name, "kind": ref.kind, "document": ref.document, "symbols": ["FILUSDT"],
                         "timeframe": "5m", "start": str(dt.date(2023, 8, 1)), "end": str(dt.date(2023, 8, 31)),
                         "mode": "screening"})  # fmt: skip
    return WorkerSpec(str(home.root), None, msgspec.to_builtins(base))


def points(periods: list[int], start: int = 0) -> list[tuple]:
    return [(start + i, {"ema_fast.period": p}) for i, p in enumerate(periods)]


def by_index(results) -> dict[int, dict]:
    return {r["index"]: r["metrics"] for r in results}


@pytest.mark.heavy  # heavy (~20 s): a robustness case of the pool discovery keeps for a whole run
def test_batches_on_kept_workers_match_fresh_workers_and_survive_a_killed_worker(spec: WorkerSpec) -> None:
    fresh = by_index(run_points(points([5, 8, 10, 12, 15, 18]), spec, workers=2))
    with WorkerPool(spec, workers=2) as pool:
        first = by_index(pool.run(points([5, 8, 10])))
        second = []
        for result in pool.run(points([12, 15, 18], start=3)):
            if not second:
                os.kill(mp.active_children()[0].pid, signal.SIGKILL)  # a crash mid-batch
            second.append(result)
        third = by_index(pool.run(points([5], start=6)))  # a fresh pool after the broken one
    assert all(m is not None and m["total_trades"] > 0 for m in fresh.values())
    assert {**first, **by_index(second)} == fresh
    assert [r["error"] for r in second] == [None, None, None]
    assert third[6] == fresh[0]
