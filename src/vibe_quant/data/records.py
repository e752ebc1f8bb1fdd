"""Bookkeeping shared by ``ingest``, ``update`` and ``rebuild``: the state-database rows that
index raw files, units, instruments and runs, and the final all-or-nothing commit of staged files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from vibe_quant import code_version
from vibe_quant.data.bars import NS_PER_MS
from vibe_quant.data.catalog import StagedCatalog
from vibe_quant.data.files import MARKET, MARKETS, VENUE
from vibe_quant.data.parse import FundingRates, Klines
from vibe_quant.data.sources import Fetched
from vibe_quant.data.units import UnitResult
from vibe_quant.errors import ConfigError, VibeQuantError
from vibe_quant.instruments.factory import instrument
from vibe_quant.instruments.specs import InstrumentSpec
from vibe_quant.staging import StagingArea
from vibe_quant.state import StateManager

INSTRUMENT_KINDS = {"um": "crypto_perpetual", "cm": "crypto_perpetual", "spot": "currency_pair"}


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
    market: str = MARKET


@dataclass
class ProcessedUnit:
    raws: list[RawFileRecord]
    result: UnitResult


def raw_record(fetched: Fetched, archive_path: str, parsed, source: str, result: UnitResult) -> RawFileRecord:
    """The ``raw_files`` row of one fetched file; rows and times from the parse, or for files
    parsed while streaming (ticks, custom data) from the unit's result."""
    af = fetched.planned.file
    if isinstance(parsed, (Klines, FundingRates)):
        times = parsed.open_time_ms if isinstance(parsed, Klines) else parsed.calc_time_ms
        rows = parsed.rows_in
        first = int(times[0]) * NS_PER_MS if len(times) else None
        last = int(times[-1]) * NS_PER_MS if len(times) else None
    else:
        rows, first, last = result.rows_in, result.first_ts_ns, result.last_ts_ns
    return RawFileRecord(
        sha256=fetched.sha256,
        dataset=af.dataset,
        symbol=af.symbol,
        interval=af.interval,
        period_kind=af.kind,
        period_start_ns=af.start_ms * NS_PER_MS,
        period_end_ns=af.end_ms * NS_PER_MS,
        original_name=af.name,
        source=source,
        archive_path=archive_path,
        size_bytes=len(fetched.data),
        rows=rows,
        first_ts_ns=first,
        last_ts_ns=last,
        market=MARKETS[af.market].name,
    )


def stage_instruments(staged: StagedCatalog, specs: Sequence[InstrumentSpec]) -> None:
    """Stage the instrument of each spec (rewritten in place: same id, ts 0)."""
    for spec in specs:
        staged.write_objects([instrument(spec)], INSTRUMENT_KINDS[spec.market], spec.nautilus_id, replace=True)


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
        "contract": spec.contract,
        "base_currency": spec.base,
        "quote_currency": spec.quote,
        "margin_currency": spec.base if spec.market == "cm" else spec.quote,
        "tick_size": str(spec.tick_size),
        "step_size": str(spec.step_size),
        "price_precision": spec.price_precision,
        "size_precision": spec.size_precision,
        "contract_multiplier": str(spec.multiplier),
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
                values["venue"] = VENUE
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
                "market": MARKETS[r.market].name if r.market in MARKETS else r.market,
                "interval": r.interval,
                "stats": r.stats or None,
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
