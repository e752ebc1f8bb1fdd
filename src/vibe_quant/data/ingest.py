"""``vq data ingest``: source files -> raw lake -> NautilusTrader catalog, all or nothing.

Per file (in parallel): fetch (download + checksum, or read from disk), parse and validate in
memory, stage the original bytes for the raw lake and the catalog unit. Then, in one state
database transaction: index the raw files and units, and move the staged raw and catalog files
into place. Any error before that leaves the raw lake, the catalog and the database as they
were (only the failed run itself is logged in ``ingest_runs``/``ingest_errors``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from vibe_quant.data.archive import RawLake
from vibe_quant.data.bars import NS_PER_MS
from vibe_quant.data.catalog import StagedCatalog
from vibe_quant.data.files import (
    AGG_TRADES,
    DATASETS,
    FUNDING,
    INTERVAL_MINUTES,
    KLINE_DATASETS,
    MARKETS,
    TRADES,
    VENUE,
    utc_ms,
)
from vibe_quant.data.records import (
    ProcessedUnit,
    check_instrument_precision,
    commit_files,
    finish_run,
    raw_record,
    record_failure,
    record_units,
    stage_instruments,
    start_run,
    upsert_instrument,
)
from vibe_quant.data.sources import HttpSource, LocalSource, Planned, open_source
from vibe_quant.data.units import UnitResult, check_rows, parse_source, write_unit
from vibe_quant.errors import UserError, did_you_mean
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpec, InstrumentSpecs, normalize_symbol
from vibe_quant.lock import home_lock
from vibe_quant.progress import Progress
from vibe_quant.staging import StagingArea, clean_stale_staging
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)

WORKERS = 4  # downloads overlap; parsing/writing release the GIL in pyarrow/numpy


@dataclass(frozen=True)
class IngestRequest:
    """A validated ingest request. ``end`` is exclusive; None dates mean "everything found"."""

    source: str
    symbols: tuple[str, ...] | None
    datasets: tuple[str, ...] = ("klines", "fundingRate")
    start: dt.date | None = None
    end: dt.date | None = None
    market: str = "um"  # um (USD-M futures), cm (COIN-M futures), spot
    interval: str = "1m"  # for the kline-shaped datasets


@dataclass
class IngestReport:
    run_id: int
    units: list[UnitResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already ingested
    warnings: list[str] = field(default_factory=list)
    files: int = 0
    bytes_in: int = 0
    elapsed_s: float = 0.0
    failed: Planned | None = None  # the file whose error aborted the run

    def bars_written(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for unit in self.units:
            for label, n in unit.written.items():
                out[label] = out.get(label, 0) + n
        return out


def resolve_range(
    today: dt.date, years: float | None = None, start: dt.date | None = None, end: dt.date | None = None
) -> tuple[dt.date | None, dt.date | None]:
    """Turn CLI dates into ``[start, end)``: `end` is inclusive on the command line.

    ``--years N`` means the N years up to today. Days from today on are not complete in the
    archive yet, so the range stops at today (exclusive).

    Raises
    ------
    UserError
        For an end before the start, a start in the future, or ``--years`` with ``--start``.
    """
    if years is not None:
        if start is not None:
            raise UserError("give either --years or --start, not both")
        if not 0 < years <= 20:
            raise UserError(f"--years {years}: must be in (0, 20]")
        start = today - dt.timedelta(days=round(365.25 * years))
    if start is not None and start >= today:
        raise UserError(f"--start {start} is not in the past (today is {today} UTC)")
    stop = end + dt.timedelta(days=1) if end is not None else (today if start is not None else None)
    if start is not None and stop is not None and stop <= start:
        raise UserError(f"--end {end} is before --start {start}; swap them")
    if stop is not None and stop > today:
        stop = today
    return start, stop


def run_ingest(
    home: Home, request: IngestRequest, specs: InstrumentSpecs, progress: Progress | None = None
) -> IngestReport:
    """Ingest `request` into `home`; see the module docstring for the guarantees.

    Raises
    ------
    UserError
        Unknown symbol or dataset, bad source, malformed file (``DataFileError``), checksum
        mismatch, conflicting data. Nothing is committed.
    VenueError
        The archive kept failing (timeouts, 5xx) after bounded retries. Nothing is committed.
    """
    progress = progress or Progress()
    check_request(request)
    source = open_source(request.source, request.market)
    symbols = _symbols(request, source, specs)
    spec_of = {s: specs.get(s, request.market) for s in symbols}
    home.ensure()
    with home_lock(home.state_dir, "ingest"), StateManager(home.db_path) as state:
        clean_stale_staging(home.catalog)
        clean_stale_staging(home.archive)
        for spec in spec_of.values():
            check_instrument_precision(state, spec)
            check_trade_source(state, spec, request.datasets)
        run_id = start_run(
            state,
            "ingest",
            {
                "source": source.describe(),
                "symbols": list(symbols),
                "datasets": list(request.datasets),
                "market": request.market,
                "interval": request.interval,
                "start": str(request.start) if request.start else None,
                "end": str(request.end) if request.end else None,
            },
        )
        report = IngestReport(run_id)
        try:
            _ingest(home, request, source, spec_of, state, report, progress)
        except BaseException as exc:
            failed = report.failed
            if failed is None:
                record_failure(state, run_id, exc, source.describe())
            else:
                record_failure(state, run_id, exc, failed.location, failed.file.dataset, failed.file.symbol)
            raise
        finish_run(state, run_id, None)
    return report


def check_request(request: IngestRequest) -> None:
    """Refuse unknown markets, datasets a market does not publish and unsupported intervals."""
    if request.market not in MARKETS:
        raise UserError(f"--market {request.market!r}: choose um (USD-M futures), cm (COIN-M futures) or spot")
    offered = MARKETS[request.market].datasets
    for ds in request.datasets:
        if ds not in DATASETS:
            raise UserError(f"unknown dataset {ds!r}; choose from {', '.join(DATASETS)}.{did_you_mean(ds, DATASETS)}")
        if ds not in offered:
            raise UserError(
                f"dataset {ds!r} does not exist for --market {request.market}; it offers {', '.join(offered)}"
            )
    if AGG_TRADES in request.datasets and TRADES in request.datasets:
        raise UserError(
            "aggTrades and trades both become the instrument's TradeTick stream; ingest one of them "
            "(aggTrades is the usual choice: one print per taker order at one price)"
        )
    if request.interval not in INTERVAL_MINUTES:
        raise UserError(
            f"--interval {request.interval!r}: choose one of {', '.join(INTERVAL_MINUTES)}"
            f"{did_you_mean(request.interval, INTERVAL_MINUTES)}"
        )


def check_trade_source(state: StateManager, spec: InstrumentSpec, datasets: tuple[str, ...]) -> None:
    """One TradeTick stream per instrument: refuse trades when aggTrades were ingested, and back."""
    for new, other in ((AGG_TRADES, TRADES), (TRADES, AGG_TRADES)):
        if new in datasets and state.find(
            "ingest_units", market=MARKETS[spec.market].name, dataset=other, symbol=spec.symbol
        ):
            raise UserError(
                f"{spec.nautilus_id} already has TradeTick data from {other}; {new} would make a second, "
                f"different trade stream. Keep {other}, or start a fresh $VQ_HOME for {new}"
            )


def _symbols(request: IngestRequest, source: LocalSource | HttpSource, specs: InstrumentSpecs) -> tuple[str, ...]:
    market = request.market
    if request.symbols:
        out = tuple(dict.fromkeys(normalize_symbol(s, market) for s in request.symbols))
        for s in out:
            specs.get(s, market)  # UnknownSymbolError with a did-you-mean
        return out
    if isinstance(source, HttpSource):
        raise UserError("--symbols is required when downloading (e.g. --symbols BTCUSDT,ETHUSDT)")
    found = set().union(*(source.symbols(ds, request.interval) for ds in request.datasets))
    known = specs.market(market)
    unknown = sorted(s for s in found if s not in known)
    if unknown:
        log.warning("skipping %d symbol(s) with no instrument spec: %s", len(unknown), ", ".join(unknown))
    out = tuple(sorted(s for s in found if s in known))
    if not out:
        raise UserError(f"no files with official Binance names for a known symbol under {source.describe()}")
    return out


def _ingest(
    home: Home,
    request: IngestRequest,
    source,
    spec_of: dict[str, InstrumentSpec],
    state: StateManager,
    report: IngestReport,
    progress: Progress,
) -> None:
    t0 = time.perf_counter()
    plan: list[Planned] = []
    for symbol in spec_of:
        for ds in request.datasets:
            interval = request.interval if ds in KLINE_DATASETS else None
            items, missing = source.plan(ds, symbol, request.start, request.end, interval)
            plan.extend(items)
            for message in missing:
                message += "; backtests cannot charge funding there" if ds == FUNDING else ""
                if request.start is not None:
                    _warn(report, message)
                else:  # "everything found": holes are expected and reported as gaps
                    log.info(message)
    if not plan:
        _warn(report, "nothing to ingest for this request")
        return
    log.info("ingest run %d: %d file(s) planned from %s", report.run_id, len(plan), source.describe())
    done = _done_units(state)
    lake = RawLake(home.archive)
    stored = _stored_lookup(state, lake)
    staged = StagedCatalog(home.catalog)
    lake_staging = StagingArea(home.archive)
    task = progress.task(f"ingest from {source.describe()}", len(plan))
    processed: list[ProcessedUnit] = []
    try:
        client = source.client() if isinstance(source, HttpSource) else None
        try:
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                futures = {
                    pool.submit(_process, p, source, client, stored, lake, lake_staging, staged, spec_of, done): p
                    for p in plan
                }
                pending = set(futures)
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for fut in finished:
                        planned = futures[fut]
                        exc = fut.exception()
                        if exc is not None:
                            for other in pending:
                                other.cancel()
                            report.failed = planned
                            raise exc
                        outcome = fut.result()
                        progress.advance(task, description=f"ingest {planned.file.name}")
                        if outcome == "missing":
                            _warn(report, f"{planned.location}: not found (404), skipped")
                        elif outcome == "done":
                            report.skipped.append(planned.file.name)
                        else:
                            processed.append(outcome)
                            report.bytes_in += outcome.raws[0].size_bytes
                            log.info(
                                "parsed %s: %d rows, %s",
                                planned.location,
                                outcome.result.rows_in,
                                outcome.result.written,
                            )
        finally:
            if client is not None:
                client.close()
        processed.sort(key=lambda u: (u.result.dataset, u.result.interval or "", u.result.symbol, u.result.start_ms))
        touched = sorted({u.result.symbol for u in processed})
        stage_instruments(staged, [spec_of[s] for s in touched])
        with state.transaction():
            record_units(state, report.run_id, processed)
            for s in touched:
                upsert_instrument(state, spec_of[s])
            commit_files(lake_staging, staged)
    finally:
        staged.abort()
        lake_staging.abort()
    progress.finish(task)
    log.info(
        "ingest run %d committed: %d file(s), %d already ingested", report.run_id, len(processed), len(report.skipped)
    )
    report.units = [u.result for u in processed]
    report.files = len(processed)
    report.elapsed_s = time.perf_counter() - t0
    if processed:
        from vibe_quant.data.validate import write_artifacts

        report.warnings.extend(write_artifacts(home, state))


def _warn(report: IngestReport, message: str) -> None:
    log.warning(message)
    report.warnings.append(message)


def _done_units(state: StateManager) -> set[tuple]:
    rows = state.conn.execute(
        "SELECT r.sha256, u.market, u.dataset, u.symbol, u.period_start_ns, u.period_end_ns FROM ingest_units u "
        "JOIN unit_sources s ON s.unit_id = u.id JOIN raw_files r ON r.id = s.raw_file_id"
    ).fetchall()
    return {tuple(row) for row in rows}


def _stored_lookup(state: StateManager, lake: RawLake) -> Callable[[str], bytes | None]:
    # sqlite3 connections are bound to their thread: snapshot the index for the workers.
    index = dict(state.conn.execute("SELECT sha256, archive_path FROM raw_files").fetchall())
    return lambda sha: lake.read(index[sha], sha) if sha in index else None


def _process(
    planned: Planned,
    source,
    client,
    stored,
    lake: RawLake,
    lake_staging: StagingArea,
    staged: StagedCatalog,
    spec_of: dict[str, InstrumentSpec],
    done: set[tuple],
) -> ProcessedUnit | str:
    af = planned.file
    fetched = source.fetch(planned, client, stored)
    if fetched is None:
        return "missing"
    start_ms, end_ms = utc_ms(planned.clip_start), utc_ms(planned.clip_end)
    if (fetched.sha256, af.market_name, af.dataset, af.symbol, start_ms * NS_PER_MS, end_ms * NS_PER_MS) in done:
        return "done"
    spec = spec_of[af.symbol]
    name = planned.location
    parsed = parse_source(af.dataset, fetched.data, name, spec, af.interval)
    check_rows(parsed, name, spec, af.start_ms, af.end_ms)
    rel = lake.relative_path(VENUE, af.market_name, af.dataset, af.symbol, af.start, fetched.sha256, af.name)
    lake.stage(lake_staging, rel, fetched.data)
    result = write_unit(
        staged.root, staged, spec, parsed, start_ms, end_ms, name, (af.start_ms, af.end_ms), af.interval
    )
    return ProcessedUnit([raw_record(fetched, rel, parsed, planned.location, result)], result)
