"""``vq data rebuild --from-archive``: recreate the catalog from the raw lake alone.

Every ingest unit recorded in the state database is replayed in its original order: its raw
files are read back from the lake (and their sha256 re-checked), parsed with the current code
and instrument specs, and written to a fresh catalog directory. Because the catalog is a pure
function of the units, the result is byte-identical to the incrementally built catalog unless
the code or the specs changed (which is what a rebuild is for). The new catalog replaces the
old one only when the whole replay succeeded.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vibe_quant.data.archive import RawLake
from vibe_quant.data.bars import NS_PER_MS
from vibe_quant.data.catalog import StagedCatalog
from vibe_quant.data.csv_import import CSV_IMPORT, parse_ohlcv_csv
from vibe_quant.data.files import KLINES, MARKETS
from vibe_quant.data.parse import combine_klines, parse_klines_json
from vibe_quant.data.records import stage_instruments, upsert_instrument
from vibe_quant.data.units import Parsed, check_rows, parse_source, write_unit
from vibe_quant.data.validate import MANIFEST, REPORT, write_artifacts
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.lock import home_lock
from vibe_quant.progress import Progress
from vibe_quant.staging import clean_stale_staging
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)


@dataclass
class RebuildReport:
    units: int = 0
    raw_files: int = 0
    identical: int = 0
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def byte_identical(self) -> bool:
        return not (self.changed or self.added or self.removed)


def _units(state: StateManager) -> list[dict]:
    units = state.find("ingest_units", order_by="id")
    sources = state.conn.execute(
        "SELECT s.unit_id, r.* FROM unit_sources s JOIN raw_files r ON r.id = s.raw_file_id ORDER BY s.unit_id, s.ordinal"
    ).fetchall()
    by_unit: dict[int, list[dict]] = {}
    for row in sources:
        by_unit.setdefault(row["unit_id"], []).append(dict(row))
    for unit in units:
        unit["raws"] = by_unit.get(unit["id"], [])
    return units


MARKET_KEY = {m.name: key for key, m in MARKETS.items()}


def parse_unit(lake: RawLake, unit: dict, spec) -> Parsed:
    """Read a unit's raw files back from the lake (verifying sha256) and parse them."""
    parts = []
    for raw in unit["raws"]:
        data = lake.read(raw["archive_path"], raw["sha256"])
        name = str(lake.root / raw["archive_path"])
        if raw["period_kind"] == "rest":  # pages may hold klines beyond their window (see update.py)
            parsed = parse_klines_json(data, name, spec.price_precision, spec.size_precision)
            check_rows(parsed, name, spec, None, None)
        elif raw["period_kind"] == CSV_IMPORT:
            parsed = parse_ohlcv_csv(data, name, spec, unit["interval"])
        else:
            parsed = parse_source(raw["dataset"], data, name, spec, raw["interval"])
            check_rows(parsed, name, spec, raw["period_start_ns"] // NS_PER_MS, raw["period_end_ns"] // NS_PER_MS)
        parts.append(parsed)
    if unit["dataset"] == KLINES:
        return combine_klines(parts)
    return parts[0]


def _bounded_map(pool: ThreadPoolExecutor, fn, items: list, ahead: int) -> Iterator:
    """``pool.map`` that parses at most `ahead` units before they are written (tick files are
    streamed from their raw bytes, so unbounded look-ahead would hold every file in memory)."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _key(unit: dict) -> tuple[str, str]:
    return MARKET_KEY.get(unit["market"], "um"), unit["symbol"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _data_files(root: Path) -> dict[str, Path]:
    base = root / "data"
    return {str(p.relative_to(root)): p for p in base.rglob("*.parquet")} if base.is_dir() else {}


def rebuild_from_archive(home: Home, specs: InstrumentSpecs, progress: Progress | None = None) -> RebuildReport:
    """Rebuild ``$VQ_HOME/catalog`` from the raw lake; see the module docstring.

    Raises
    ------
    DataFileError
        A raw file is missing or corrupt (sha256 mismatch), or no longer parses; the current
        catalog is left in place.
    """
    progress = progress or Progress()
    t0 = time.perf_counter()
    home.ensure()
    report = RebuildReport()
    with home_lock(home.state_dir, "rebuild"), StateManager(home.db_path) as state:
        clean_stale_staging(home.catalog)
        units = _units(state)
        lake = RawLake(home.archive)
        keys = sorted({(MARKET_KEY.get(u["market"], "um"), u["symbol"]) for u in units})
        spec_of = {k: specs.get(k[1], k[0]) for k in keys}
        new_root = home.root / f"catalog.rebuild-{uuid.uuid4().hex[:8]}"
        new_root.mkdir()
        try:
            task = progress.task("rebuild from archive", len(units))
            # Parsing is independent per unit; writing must follow the recorded order because a
            # unit's coverage depends on the units before it.
            with ThreadPoolExecutor(max_workers=2) as pool:
                parsed_iter = _bounded_map(pool, lambda u: parse_unit(lake, u, spec_of[_key(u)]), units, ahead=2)
                for unit, parsed in zip(units, parsed_iter, strict=True):
                    staged = StagedCatalog(new_root)
                    raw = unit["raws"][0]
                    try:
                        write_unit(
                            new_root,
                            staged,
                            spec_of[_key(unit)],
                            parsed,
                            unit["period_start_ns"] // NS_PER_MS,
                            unit["period_end_ns"] // NS_PER_MS,
                            f"unit {unit['id']}",
                            (raw["period_start_ns"] // NS_PER_MS, raw["period_end_ns"] // NS_PER_MS),
                            unit["interval"],
                        )
                        staged.commit()
                    finally:
                        staged.abort()
                    report.units += 1
                    report.raw_files += len(unit["raws"])
                    progress.advance(task)
            staged = StagedCatalog(new_root)
            try:
                stage_instruments(staged, list(spec_of.values()))
                staged.commit()
            finally:
                staged.abort()
            _compare(home.catalog, new_root, report)
            for name in (MANIFEST, REPORT):
                if (home.catalog / name).exists():
                    shutil.copy2(home.catalog / name, new_root / name)
            old = home.root / f"catalog.old-{uuid.uuid4().hex[:8]}"
            if home.catalog.exists():
                home.catalog.rename(old)
            new_root.rename(home.catalog)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(new_root, ignore_errors=True)
        with state.transaction():
            for spec in spec_of.values():
                upsert_instrument(state, spec)
        write_artifacts(home, state)
    report.elapsed_s = time.perf_counter() - t0
    return report


def _compare(old_root: Path, new_root: Path, report: RebuildReport) -> None:
    old, new = _data_files(old_root), _data_files(new_root)
    for rel in sorted(old.keys() | new.keys()):
        if rel not in new:
            report.removed.append(rel)
        elif rel not in old:
            report.added.append(rel)
        elif _digest(old[rel]) == _digest(new[rel]):
            report.identical += 1
        else:
            report.changed.append(rel)
