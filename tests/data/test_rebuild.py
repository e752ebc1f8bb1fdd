"""``rebuild --from-archive``: byte-identical replay, corruption detection, re-encoding."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tests.conftest import MIRROR
from tests.data.test_ingest import FIL_1M, FIL_4H, data_files, fil, snapshot
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.data.rebuild import rebuild_from_archive
from vibe_quant.errors import DataFileError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager


def build_incrementally(home: Home, specs: InstrumentSpecs) -> None:
    run_ingest(home, fil(dt.date(2023, 8, 10), dt.date(2023, 8, 20)), specs)  # a clipped monthly file
    run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 10, 1)), specs)  # fills the rest + September
    run_ingest(
        home,
        IngestRequest(str(MIRROR), ("BTCUSDT",), ("fundingRate",), dt.date(2026, 4, 1), dt.date(2026, 5, 1)),
        specs,
    )


def test_rebuild_is_byte_identical_after_incremental_ingests(home: Home, specs: InstrumentSpecs) -> None:
    build_incrementally(home, specs)
    before = data_files(home)
    report = rebuild_from_archive(home, specs)
    assert report.byte_identical, (report.changed, report.added, report.removed)
    assert report.identical == len(before) > 20
    assert report.units == 4  # Aug 10-20, then Aug whole (writes the rest), Sep, BTC funding
    assert data_files(home) == before
    assert len(ParquetDataCatalog(str(home.catalog)).bars([FIL_1M])) == (31 + 30) * 1440
    assert not list(home.root.glob("catalog.*"))  # no leftover rebuild/old directories


def test_corrupt_archive_file_fails_and_keeps_the_catalog(home: Home, specs: InstrumentSpecs) -> None:
    run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)
    before = snapshot(home)
    with StateManager(home.db_path) as db:
        path = home.archive / db.find("raw_files")[0]["archive_path"]
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match="raw archive file is corrupt"):
        rebuild_from_archive(home, specs)
    after = snapshot(home)
    assert {k: v for k, v in after.items() if k.startswith("catalog/")} == {
        k: v for k, v in before.items() if k.startswith("catalog/")
    }


def test_rebuild_reencodes_with_a_new_spec(home: Home, specs: InstrumentSpecs, tmp_path: Path) -> None:
    run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)
    old_bars = [str(b) for b in ParquetDataCatalog(str(home.catalog)).bars([FIL_4H])]
    custom = tmp_path / "specs.yaml"
    entry = 'FILUSDT: {base: FIL, tick_size: "0.001", step_size: "0.1"'
    custom.write_text(Path(specs.path).read_text().replace(entry, entry.replace('"0.001"', '"0.0001"')))
    new_specs = InstrumentSpecs(custom)
    report = rebuild_from_archive(home, new_specs)
    assert report.changed
    assert not report.byte_identical
    bars = ParquetDataCatalog(str(home.catalog)).bars([FIL_4H])
    assert bars[0].open.precision == 4
    assert [b.open.as_decimal() for b in bars] == [Decimal(s.split(",")[1]) for s in old_bars]  # same values
    with StateManager(home.db_path) as db:
        assert db.find("instruments")[0]["price_precision"] == 4
    run_ingest(home, fil(dt.date(2023, 9, 1), dt.date(2023, 10, 1)), new_specs)  # no precision conflict now
