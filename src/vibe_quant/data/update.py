"""``vq data update``: fetch klines newer than the catalog from the Binance REST API.

``GET /fapi/v1/klines`` pages (1500 klines each) are stored byte for byte in the raw lake
first, then parsed exactly like archive files and written as one catalog unit spanning
``[since, server minute)``. Only closed klines count: the span ends at the server clock's last
whole minute (``GET /fapi/v1/time``), so the still-open kline is never stored. Higher
timeframes are re-aggregated for every bucket the new minutes complete, using the 1m bars
already in the catalog for the bucket's start.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

import httpx

from vibe_quant.data.archive import RawLake, sha256_hex
from vibe_quant.data.bars import BASE_TIMEFRAME, MINUTE_MS, NS_PER_MS
from vibe_quant.data.catalog import StagedCatalog, intervals
from vibe_quant.data.files import KLINES, MARKET, VENUE, iso_ms, utc_ms
from vibe_quant.data.parse import Klines, combine_klines, parse_klines_json
from vibe_quant.data.records import (
    ProcessedUnit,
    RawFileRecord,
    check_instrument_precision,
    commit_files,
    finish_run,
    record_failure,
    record_units,
    stage_instruments,
    start_run,
    upsert_instrument,
)
from vibe_quant.data.units import BAR, UnitResult, check_rows, write_klines_unit
from vibe_quant.errors import UserError, VenueError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpec, InstrumentSpecs, normalize_symbol
from vibe_quant.lock import home_lock
from vibe_quant.progress import Progress
from vibe_quant.staging import StagingArea, clean_stale_staging
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)

DEFAULT_REST_URL = "https://fapi.binance.com"
PAGE_LIMIT = 1500  # Binance's maximum klines per request
WEIGHT_BUDGET = 2000  # of 2400/min: pause when a response reports more used weight
MAX_ATTEMPTS = 4


@dataclass
class UpdateReport:
    run_id: int | None
    symbol: str
    since_ms: int
    until_ms: int
    pages: int = 0
    result: UnitResult | None = None
    up_to_date: bool = False


def rest_page_name(symbol: str, start_ms: int, end_ms: int) -> str:
    return f"{symbol}-1m-rest-{start_ms}-{end_ms}.json"


def parse_since(text: str) -> dt.date | None:
    """``auto`` -> None (continue after the catalog's last 1m bar); else a ``YYYY-MM-DD`` date."""
    if text == "auto":
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--since {text!r}: use 'auto' or a date YYYY-MM-DD") from None


class RestClient:
    """Minimal Binance USD-M REST client for the two public endpoints ``update`` needs."""

    def __init__(self, base_url: str = DEFAULT_REST_URL, timeout_s: float = 30.0, backoff_s: float = 0.5):
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(timeout=timeout_s, headers={"User-Agent": "vibe-quant"})
        self.backoff_s = backoff_s

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, params: dict) -> httpx.Response:
        url = f"{self.base_url}{path}"
        delay = self.backoff_s
        last = ""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                resp = self.http.get(url, params=params)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    used = resp.headers.get("X-MBX-USED-WEIGHT-1M", "")
                    if used.isdigit() and int(used) > WEIGHT_BUDGET:
                        log.warning("REST weight %s/2400 used; pausing %.0fs", used, 60 - time.time() % 60)
                        time.sleep(60 - time.time() % 60)
                    return resp
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                if resp.status_code == 400:
                    raise UserError(f"{url} rejected the request ({last}); check the symbol")
                if resp.status_code in (418, 429):
                    retry_after = resp.headers.get("Retry-After", "")
                    delay = min(float(retry_after), 60.0) if retry_after.isdigit() else delay
                elif resp.status_code < 500:
                    raise VenueError(f"{url}: {last}")
            if attempt < MAX_ATTEMPTS:
                log.warning("%s failed (%s); retry %d/%d in %.1fs", url, last, attempt, MAX_ATTEMPTS - 1, delay)
                time.sleep(delay)
                delay *= 2
        raise VenueError(f"{url}: {last} after {MAX_ATTEMPTS} attempts; try again later")

    def server_time_ms(self) -> int:
        body = self._get("/fapi/v1/time", {}).json()
        if not isinstance(body, dict) or not isinstance(body.get("serverTime"), int):
            raise VenueError(f"{self.base_url}/fapi/v1/time: unexpected answer {str(body)[:200]}")
        return body["serverTime"]

    def klines_page(self, symbol: str, start_ms: int, end_ms: int) -> tuple[str, bytes]:
        params = {"symbol": symbol, "interval": "1m", "startTime": start_ms, "endTime": end_ms - 1, "limit": PAGE_LIMIT}
        resp = self._get("/fapi/v1/klines", params)
        return str(resp.url), resp.content


def last_covered_ms(home: Home, spec: InstrumentSpec) -> int | None:
    """Return the end (exclusive open time, ms) of the catalog's 1m coverage, or None."""
    spans = intervals(home.catalog, BAR, BASE_TIMEFRAME.bar_type(spec.nautilus_id))
    return max(b for _, b in spans) // NS_PER_MS if spans else None


def run_update(
    home: Home,
    symbol: str,
    since: dt.date | None,
    specs: InstrumentSpecs,
    rest_url: str = DEFAULT_REST_URL,
    progress: Progress | None = None,
) -> UpdateReport:
    """Append closed 1m klines after the catalog's last bar (or from `since`) up to now.

    Raises
    ------
    UserError
        Unknown symbol, no data to continue from with ``--since auto``, a bad REST answer.
    VenueError
        The REST API kept failing after bounded retries. Nothing is committed.
    """
    progress = progress or Progress()
    spec = specs.get(normalize_symbol(symbol))
    home.ensure()
    with home_lock(home.state_dir, "update"), StateManager(home.db_path) as state:
        clean_stale_staging(home.catalog)
        clean_stale_staging(home.archive)
        check_instrument_precision(state, spec)
        covered = last_covered_ms(home, spec)
        if since is None:
            if covered is None:
                raise UserError(
                    f"no 1m data for {spec.symbol} in {home.catalog} to continue from; "
                    "run `vq data ingest` first or pass --since YYYY-MM-DD"
                )
            since_ms = covered
        else:
            since_ms = utc_ms(since)
        client = RestClient(rest_url)
        try:
            until_ms = client.server_time_ms() // MINUTE_MS * MINUTE_MS
            report = UpdateReport(None, spec.symbol, since_ms, until_ms)
            if since is not None and since_ms > until_ms:
                raise UserError(
                    f"--since {since} is after the server's clock ({iso_ms(until_ms, seconds=False)}); pick an earlier date"
                )
            if until_ms <= since_ms:
                report.up_to_date = True
                return report
            report.run_id = start_run(state, "update", {"symbol": spec.symbol, "since": since_ms, "rest_url": rest_url})
            try:
                _update(home, spec, client, state, report, progress)
            except BaseException as exc:
                record_failure(state, report.run_id, exc, f"{rest_url} ({spec.symbol})")
                raise
            finish_run(state, report.run_id, None)
        finally:
            client.close()
    return report


def _update(
    home: Home, spec: InstrumentSpec, client: RestClient, state: StateManager, report: UpdateReport, progress: Progress
) -> None:
    since_ms, until_ms = report.since_ms, report.until_ms
    max_pages = -(-(until_ms - since_ms) // (PAGE_LIMIT * MINUTE_MS)) + 2  # bounded loop
    task = progress.task(f"update {spec.symbol} from REST", max_pages - 2)
    lake = RawLake(home.archive)
    pages: list[tuple[str, bytes, Klines, int, int]] = []
    cursor = since_ms
    while cursor < until_ms:
        if len(pages) >= max_pages:
            raise VenueError(f"REST pagination did not reach {until_ms} after {max_pages} pages; aborting")
        page_end = min(until_ms, cursor + PAGE_LIMIT * MINUTE_MS)
        url, body = client.klines_page(spec.symbol, cursor, page_end)
        klines = parse_klines_json(body, url, spec.price_precision, spec.size_precision)
        # A page may carry klines outside [cursor, page_end) (a server ignoring endTime sends the
        # still-open one): they are stored as served and the unit span drops them.
        check_rows(klines, url, spec, None, None)
        pages.append((url, body, klines, cursor, page_end))
        progress.advance(task)
        cursor = page_end
    progress.finish(task)
    raws = []
    lake_staging = StagingArea(home.archive)
    staged = StagedCatalog(home.catalog)
    for url, body, klines, start, end in pages:
        sha = sha256_hex(body)
        day = dt.datetime.fromtimestamp(start / 1000, dt.UTC).date()
        rel = lake.relative_path(VENUE, MARKET, KLINES, spec.symbol, day, sha, rest_page_name(spec.symbol, start, end))
        lake.stage(lake_staging, rel, body)
        times = klines.open_time_ms
        raws.append(
            RawFileRecord(
                sha256=sha,
                dataset=KLINES,
                symbol=spec.symbol,
                interval="1m",
                period_kind="rest",
                period_start_ns=start * NS_PER_MS,
                period_end_ns=end * NS_PER_MS,
                original_name=rest_page_name(spec.symbol, start, end),
                source=url,
                archive_path=rel,
                size_bytes=len(body),
                rows=klines.rows_in,
                first_ts_ns=int(times[0]) * NS_PER_MS if len(times) else None,
                last_ts_ns=int(times[-1]) * NS_PER_MS if len(times) else None,
            )
        )
    combined = combine_klines([p[2] for p in pages])
    try:
        result = write_klines_unit(
            home.catalog,
            staged,
            spec,
            combined,
            since_ms,
            until_ms,
            f"{client.base_url}/fapi/v1/klines ({spec.symbol})",
        )
        stage_instruments(staged, [spec])
        with state.transaction():
            record_units(state, report.run_id, [ProcessedUnit(raws, result)])
            upsert_instrument(state, spec)
            commit_files(lake_staging, staged)
    finally:
        staged.abort()
        lake_staging.abort()
    report.pages = len(pages)
    report.result = result
    from vibe_quant.data.validate import write_artifacts

    write_artifacts(home, state)
