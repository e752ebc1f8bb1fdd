"""Shared backtest fixtures: the linear proxy of the real COIN-M day, ingested once per session."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import MIRROR
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.data.proxy import proxy_path, write_linear_proxy
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs

CM_DAY = MIRROR / "data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip"
PROXY_DAY = dt.date(2026, 5, 8)


@pytest.fixture(scope="session")
def proxy_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A home whose catalog holds BTCUSDT trade ticks of 2026-05-08: the USD-M proxy of the COIN-M
    day (``data/proxy.py``), ingested with the real ingester. Read only (copy it to write)."""
    root = tmp_path_factory.mktemp("proxy")
    write_linear_proxy(CM_DAY, proxy_path(root / "src", "BTCUSDT", PROXY_DAY.isoformat()))
    home = Home(root / "home").ensure()
    request = IngestRequest(str(root / "src"), ("BTCUSDT",), ("aggTrades",), PROXY_DAY, PROXY_DAY + dt.timedelta(1))
    run_ingest(home, request, InstrumentSpecs())
    return home
