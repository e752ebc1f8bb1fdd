"""One small real discovery run (FILUSDT 15m, August 2023) shared by the discovery tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import linked_home
from vibe_quant.discovery.config import DiscoveryConfig
from vibe_quant.screening.pareto import HardFilters

# The same run as `config()`, as `vq discover run` options.
ARGS = ["--symbols", "FILUSDT", "--timeframe", "15m", "--start", "2023-08-01", "--end", "2023-08-31",
        "--holdout-days", "7", "--population", "8", "--generations", "6", "--min-trades", "5", "--seed", "3",
        "--baselines", "4", "--finalists", "2", "--workers", "2"]  # fmt: skip


def config(seed: int = 3, generations: int = 6) -> DiscoveryConfig:
    return DiscoveryConfig(symbols=("FILUSDT",), timeframe="15m", start=dt.date(2023, 8, 1), end=dt.date(2023, 8, 31),
                           holdout_days=7, population=8, generations=generations, seed=seed,
                           filters=HardFilters(min_trades=5), guards={"baselines": 4, "finalists": 2})  # fmt: skip


@pytest.fixture(scope="session")
def finished(tmp_path_factory: pytest.TempPathFactory, aug_2023_catalog: Path):
    """One uninterrupted run, search and guard rails: (home, run id, DiscoveryResult). Read only."""
    from vibe_quant.discovery import service
    from vibe_quant.instruments.specs import InstrumentSpecs

    home = linked_home(tmp_path_factory.mktemp("disc") / "home", aug_2023_catalog)
    run_id = service.start(home, config(), InstrumentSpecs())
    result = service.run(home, run_id, workers=2)
    return home, run_id, result
