"""Shared by the benchmarks: one measurement per spawned process (clean peak RSS, no warm caches),
the FILUSDT home they run on, and the funding schedule injected for it."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
from pathlib import Path

MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-vision"


def run_in_child(target, *args) -> dict:
    """Call ``target(queue, *args)`` in a spawned process and return what it puts on the queue.

    Raises
    ------
    RuntimeError
        If the child dies without a result (instead of waiting forever).
    """
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=target, args=(results, *args))
    proc.start()
    while True:
        try:
            result = results.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"{target.__name__} died with exit code {proc.exitcode}") from None
    proc.join()
    return result


def fil_home(tmp: str):
    """Ingest every FILUSDT kline month of ../shared/data into a new home under `tmp`."""
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    home = Home(Path(tmp)).ensure()
    run_ingest(home, IngestRequest(str(MIRROR), ("FILUSDT",), ("klines",)), InstrumentSpecs())
    return home


def fil_catalog(tmp: str, start, end) -> str:
    """Ingest FILUSDT klines of ../shared/data from `start` to `end` (inclusive days) into a new home under
    `tmp`; return the home's root."""
    import datetime as dt

    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    home = Home(Path(tmp)).ensure()
    run_ingest(home, IngestRequest(str(MIRROR), ("FILUSDT",), ("klines",), start, end + dt.timedelta(days=1)),
               InstrumentSpecs())  # fmt: skip
    return str(home.root)


def inject_funding(data) -> None:
    """FILUSDT has no funding file in the shared data: settle +0.01% every 8 hours to exercise funding."""
    from decimal import Decimal

    from nautilus_trader.model.data import FundingRateUpdate
    from nautilus_trader.model.identifiers import InstrumentId

    bars = data.bars["FILUSDT"]
    iid = InstrumentId.from_str("FILUSDT-PERP.BINANCE")
    eight_h = 8 * 3600 * 10**9
    first = bars[0].ts_event // eight_h * eight_h + eight_h
    data.funding["FILUSDT"] = [
        FundingRateUpdate(iid, Decimal("0.0001"), ts, ts, next_funding_ns=ts + eight_h)
        for ts in range(first, bars[-1].ts_event, eight_h)
    ]
