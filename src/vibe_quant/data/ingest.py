"""``vq data ingest``: source files -> raw lake -> NautilusTrader catalog, all or nothing.

Per file (in parallel): fetch (download + checksum, or read from disk), parse and validate in
memory, store the original bytes in the raw lake, stage the catalog unit. Then, in one state
database transaction: index the raw files and units, and move the staged catalog files into
place. Any error before the move leaves the catalog and the database as they were; files
already stored in the raw lake are valid, content-addressed copies and make a retry cheaper.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from vibe_quant import code_version
from vibe_quant.data.archive import RawLake
from vibe_quant.data.bars import NS_PER_MS
from vibe_quant.data.catalog import StagedCatalog
from vibe_quant.data.files import DATASETS, FUNDING, KLINES, MARKET, VENUE, utc_ms
from vibe_quant.data.parse import FundingRates, Klines, parse_funding_csv, parse_klines_csv, read_member
from vibe_quant.data.sources import Fetched, HttpSource, LocalSource, Planned, open_source
from vibe_quant.data.units import UnitResult, write_funding_unit, write_klines_unit
from vibe_quant.errors import ConfigError, DataFileError, UserError, VibeQuantError, did_you_mean
from vibe_quant.home import Home
from vibe_quant.instruments.factory import crypto_perpetual
from vibe_quant.instruments.specs import InstrumentSpec, InstrumentSpecs, normalize_symbol
from vibe_quant.lock import home_lock
from vibe_quant.progress import Progress
from vibe_quant.staging import StagingArea, clean_stale_staging
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)

INSTRUMENT_KIND = "crypto_perpetual"
WORKERS = 4  # downloads overlap; parsing/writing release the GIL in pyarrow/numpy


@dataclass(frozen=True)
class IngestRequest:
    """A validated ingest request. ``end`` is exclusive; None dates mean "everything found"."""

    source: str
    symbols: tuple[str, ...] | None
    datasets: tuple[str, ...] = DATASETS
    start: dt.date | None = None
    end: dt.date | None = None


@dataclass(frozen=True)
class RawFileRecord:
    """One ``raw_files`` row."""

    sha256: str
    dataset: str
    symbol: str
    interval: str | None
    period_kind: str
    period_start_ns: int
    period_end_ns: int
    original_name: str
    source: str
    archive_path: str
    size_bytes: int
    rows: int
    first_ts_ns: int | None
    last_ts_ns: int | None


@dataclass
class ProcessedUnit:
    raws: list[RawFileRecord]
    result: UnitResult


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


def parse_source(dataset: str, raw: bytes, name: str, spec: InstrumentSpec) -> Klines | FundingRates:
    """Parse one source file's bytes (zip or CSV) for `dataset` at `spec`'s precisions."""
    data = read_member(raw, name)
    if dataset == KLINES:
        return parse_klines_csv(data, name, spec.price_precision, spec.size_precision)
    return parse_funding_csv(data, name)


def check_rows(
    parsed: Klines | FundingRates, name: str, spec: InstrumentSpec, start_ms: int | None, end_ms: int | None
) -> None:
    """Reject rows outside the file's own period and rows before the symbol's listing date."""
    times = parsed.open_time_ms if isinstance(parsed, Klines) else parsed.calc_time_ms
    if len(times) == 0:
        return
    lines = parsed.lines if isinstance(parsed, Klines) else None
    if start_ms is not None and end_ms is not None:
        outside = (times < start_ms) | (times >= end_ms)
        if outside.any():
            i = int(outside.argmax())
            raise DataFileError(
                name,
                f"row at {_iso(int(times[i]))} is outside the period the file name gives",
                line=int(lines[i]) if lines is not None else None,
                fix="rename the file to its real period",
            )
    if spec.listed is not None and int(times[0]) < utc_ms(spec.listed):
        raise DataFileError(
            name,
            f"data starts {_iso(int(times[0]))}, before {spec.symbol}'s listing on {spec.listed} (survivorship check)",
            line=int(lines[0]) if lines is not None else None,
            fix=f"check the file is really {spec.symbol} USD-M data, or correct `listed` in instrument_specs.yaml",
        )


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def raw_record(fetched: Fetched, archive_path: str, parsed: Klines | FundingRates, source: str) -> RawFileRecord:
    af = fetched.planned.file
    times = parsed.open_time_ms if isinstance(parsed, Klines) else parsed.calc_time_ms
    return RawFileRecord(
        sha256=fetched.sha256,
        dataset=af.dataset,
        symbol=af.symbol,
        interval="1m" if af.dataset == KLINES else None,
        period_kind=af.kind,
        period_start_ns=af.start_ms * NS_PER_MS,
        period_end_ns=af.end_ms * NS_PER_MS,
        original_name=af.name,
        source=source,
        archive_path=archive_path,
        size_bytes=len(fetched.data),
        rows=parsed.rows_in,
        first_ts_ns=int(times[0]) * NS_PER_MS if len(times) else None,
        last_ts_ns=int(times[-1]) * NS_PER_MS if len(times) else None,
    )


def write_unit(
    root: Path,
    staged: StagedCatalog,
    spec: InstrumentSpec,
    parsed: Klines | FundingRates,
    start_ms: int,
    end_ms: int,
    name: str,
) -> UnitResult:
    writer = write_klines_unit if isinstance(parsed, Klines) else write_funding_unit
    return writer(root, staged, spec, parsed, start_ms, end_ms, name)  # type: ignore[arg-type]


def stage_instruments(staged: StagedCatalog, specs: Sequence[InstrumentSpec]) -> None:
    """Stage the ``CryptoPerpetual`` of each spec (rewritten in place: same id, ts 0)."""
    for spec in specs:
        staged.write_objects([crypto_perpetual(spec)], INSTRUMENT_KIND, spec.nautilus_id, replace=True)


def check_instrument_precision(state: StateManager, spec: InstrumentSpec) -> None:
    """Refuse to mix precisions: bars already stored were encoded with the old spec."""
    rows = state.find("instruments", canonical_id=spec.canonical_id)
    if not rows:
        return
    old = rows[0]
    if (old["price_precision"], old["size_precision"]) != (spec.price_precision, spec.size_precision):
        raise ConfigError(
            f"instrument spec of {spec.symbol} changed since its data was ingested: price/size precision "
            f"{old['price_precision']}/{old['size_precision']} -> {spec.price_precision}/{spec.size_precision}; "
            "the catalog's bars use the old precision. Run `vq data rebuild --from-archive` to re-encode "
            "everything with the new spec, or restore the old spec"
        )


def upsert_instrument(state: StateManager, spec: InstrumentSpec) -> None:
    values = {
        "canonical_id": spec.canonical_id,
        "nautilus_id": spec.nautilus_id,
        "venue": spec.venue,
        "venue_symbol": spec.symbol,
        "contract": "PERP",
        "base_currency": spec.base,
        "quote_currency": spec.quote,
        "margin_currency": spec.quote,
        "tick_size": str(spec.tick_size),
        "step_size": str(spec.step_size),
        "price_precision": spec.price_precision,
        "size_precision": spec.size_precision,
        "contract_multiplier": "1",
        "min_notional": str(spec.min_notional),
        "maker_fee": str(spec.maker_fee),
        "taker_fee": str(spec.taker_fee),
        "margin_tiers": [
            {
                "floor": str(t.floor),
                "cap": str(t.cap),
                "max_leverage": t.max_leverage,
                "mmr": str(t.mmr),
                "maint_amount": str(a),
            }
            for t, a in zip(spec.margin_tiers, spec.maint_amounts, strict=True)
        ],
        "listed_date": spec.listed.isoformat() if spec.listed else None,
        "spec_version": spec.spec_version,
        "spec_sha256": spec.spec_sha256,
    }
    rows = state.find("instruments", canonical_id=spec.canonical_id)
    if rows:
        state.update("instruments", rows[0]["id"], values)
    else:
        state.insert("instruments", values)


def record_units(state: StateManager, run_id: int, processed: Sequence[ProcessedUnit]) -> None:
    """Insert raw files (once per sha256), units and their sources. Call inside a transaction."""
    for unit in processed:
        raw_ids = []
        for raw in unit.raws:
            existing = state.find("raw_files", sha256=raw.sha256)
            if existing:
                raw_ids.append(existing[0]["id"])
            else:
                values = dict(raw.__dict__)
                values["venue"], values["market"] = VENUE, MARKET
                values["downloaded_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                raw_ids.append(state.insert("raw_files", values))
        r = unit.result
        unit_id = state.insert(
            "ingest_units",
            {
                "run_id": run_id,
                "dataset": r.dataset,
                "symbol": r.symbol,
                "period_start_ns": r.start_ms * NS_PER_MS,
                "period_end_ns": r.end_ms * NS_PER_MS,
                "rows_in": r.rows_in,
                "rows_written": r.rows_written,
                "duplicates": r.duplicates,
            },
        )
        for ordinal, raw_id in enumerate(raw_ids):
            state.insert("unit_sources", {"unit_id": unit_id, "raw_file_id": raw_id, "ordinal": ordinal})


def commit_files(lake_staging: StagingArea, staged: StagedCatalog) -> None:
    """Move staged raw files, then catalog files, into place; undo the raw files if the catalog fails.

    Call inside the state transaction, last: if this raises, the transaction rolls back too.
    """
    moved = lake_staging.commit()
    try:
        staged.commit()
    except BaseException:
        for rel in moved:
            path = lake_staging.root / rel
            path.chmod(0o644)
            path.unlink(missing_ok=True)
        raise


def record_failure(
    state: StateManager,
    run_id: int,
    exc: BaseException,
    source: str,
    dataset: str | None = None,
    symbol: str | None = None,
) -> None:
    """Mark the run failed; remember user/venue errors in ``ingest_errors`` (counted in the manifest)."""
    finish_run(state, run_id, exc)
    if isinstance(exc, VibeQuantError):
        state.insert(
            "ingest_errors",
            {
                "run_id": run_id,
                "source": source,
                "message": str(exc)[:2000],
                "dataset": dataset,
                "symbol": symbol,
            },
        )


def start_run(state: StateManager, command: str, arguments: dict) -> int:
    return state.insert("ingest_runs", {"command": command, "arguments": arguments, "code_version": code_version()})


def finish_run(state: StateManager, run_id: int, error: BaseException | None) -> None:
    values = {
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": "failed" if error else "completed",
    }
    if error is not None:
        values["error_message"] = str(error)[:2000]
    state.update("ingest_runs", run_id, values)


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
    for ds in request.datasets:
        if ds not in DATASETS:
            raise UserError(f"unknown dataset {ds!r}; choose from {', '.join(DATASETS)}.{did_you_mean(ds, DATASETS)}")
    source = open_source(request.source)
    symbols = _symbols(request, source, specs)
    spec_of = {s: specs.get(s) for s in symbols}
    home.ensure()
    with home_lock(home.state_dir, "ingest"), StateManager(home.db_path) as state:
        clean_stale_staging(home.catalog)
        clean_stale_staging(home.archive)
        for spec in spec_of.values():
            check_instrument_precision(state, spec)
        run_id = start_run(
            state,
            "ingest",
            {
                "source": source.describe(),
                "symbols": list(symbols),
                "datasets": list(request.datasets),
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


def _symbols(request: IngestRequest, source: LocalSource | HttpSource, specs: InstrumentSpecs) -> tuple[str, ...]:
    if request.symbols:
        out = tuple(dict.fromkeys(normalize_symbol(s) for s in request.symbols))
        for s in out:
            specs.get(s)  # UnknownSymbolError with a did-you-mean
        return out
    if isinstance(source, HttpSource):
        raise UserError("--symbols is required when downloading (e.g. --symbols BTCUSDT,ETHUSDT)")
    found = set().union(*(source.symbols(ds) for ds in request.datasets))
    unknown = sorted(s for s in found if s not in specs)
    if unknown:
        log.warning("skipping %d symbol(s) with no instrument spec: %s", len(unknown), ", ".join(unknown))
    out = tuple(sorted(s for s in found if s in specs))
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
            items, missing = source.plan(ds, symbol, request.start, request.end)
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
        finally:
            if client is not None:
                client.close()
        processed.sort(key=lambda u: (u.result.dataset, u.result.symbol, u.result.start_ms))
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
        "SELECT r.sha256, u.dataset, u.symbol, u.period_start_ns, u.period_end_ns FROM ingest_units u "
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
    if (fetched.sha256, af.dataset, af.symbol, start_ms * NS_PER_MS, end_ms * NS_PER_MS) in done:
        return "done"
    spec = spec_of[af.symbol]
    name = planned.location
    parsed = parse_source(af.dataset, fetched.data, name, spec)
    check_rows(parsed, name, spec, af.start_ms, af.end_ms)
    rel = lake.relative_path(VENUE, MARKET, af.dataset, af.symbol, af.start, fetched.sha256, af.name)
    lake.stage(lake_staging, rel, fetched.data)
    result = write_unit(staged.root, staged, spec, parsed, start_ms, end_ms, name)
    return ProcessedUnit([raw_record(fetched, rel, parsed, planned.location)], result)
