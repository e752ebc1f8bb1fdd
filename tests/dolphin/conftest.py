"""DOLPHIN fixtures: real hourly perpetuals imported once per session (read only)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs

PERPS = SHARED_DATA / "perps-1d-1h"
DELISTED = {"FTT", "RAY", "WAVES"}
# 60 scan days, plus the 751-bar warm-up (about 31 days) before them
FIRST_DAY, LAST_DAY = dt.date(2026, 1, 1), dt.date(2026, 3, 1)
HOURLY_ASSETS = 55


def covering(first_open: str, last_open: str, limit: int) -> list[Path]:
    """The first `limit` hourly files (by name) whose bars span first_open..last_open (MANIFEST.tsv)."""
    out = []
    with (PERPS / "MANIFEST.tsv").open() as f:
        for row in csv.DictReader(f, delimiter="\t"):
            name = Path(row["path"]).name
            base = name.split("_USDT_")[0]
            if not name.endswith("_USDT_1h.csv") or base in DELISTED or not base.isascii():
                continue
            if row["first_open_utc"] <= first_open and row["last_open_utc"] >= last_open:
                out.append(PERPS / name)
    return sorted(out)[:limit]


@pytest.fixture(scope="session")
def hourly_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A home whose catalog holds 55 real hourly perpetuals covering 2025-11-28..2026-03-02 (read only)."""
    from vibe_quant.data.csv_import import run_import

    home = Home(tmp_path_factory.mktemp("dolphin") / "home").ensure()
    paths = covering("2025-11-28 00:00", "2026-03-02 23:00", HOURLY_ASSETS)
    assert len(paths) == HOURLY_ASSETS
    run_import(home, paths, InstrumentSpecs())
    return home


CHAMPION = (dt.date(2025, 12, 31), dt.date(2026, 2, 25))


@pytest.fixture(scope="session")
def champion_scans(hourly_home: Home, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scans of the champion window (57 days) over the session's real hourly perpetuals (read only)."""
    from vibe_quant.dolphin.build import build_scans
    from vibe_quant.dolphin.config import ScanConfig

    out = tmp_path_factory.mktemp("champion") / "1h"
    build_scans(hourly_home, InstrumentSpecs(), ScanConfig(), *CHAMPION, out)
    return out
