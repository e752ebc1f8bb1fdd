"""Shared fixtures. Tests read real data from ../shared/data (beside the project root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"
MIRROR = SHARED_DATA / "binance-vision"
UM_KLINES = MIRROR / "data" / "futures" / "um" / "monthly" / "klines"
FUNDING_FILE = MIRROR / "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-04.zip"


def kline_zip(symbol: str, month: str) -> Path:
    """Return the real monthly 1m kline zip of `symbol` for `month` (``YYYY-MM``)."""
    return UM_KLINES / symbol / "1m" / f"{symbol}-1m-{month}.zip"


@pytest.fixture(scope="session")
def specs() -> InstrumentSpecs:
    return InstrumentSpecs()


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home").ensure()


@pytest.fixture(scope="session", autouse=True)
def _shared_data_present() -> None:
    if not (MIRROR / "data").is_dir():
        raise RuntimeError(f"real test data not found at {SHARED_DATA}: the tests need ../shared/data")
