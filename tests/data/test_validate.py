"""Manifest, validation report, gap detection and the deep re-check on real data."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import MIRROR
from tests.data.test_ingest import FIL_4H, fil
from vibe_quant.cli import app, run
from vibe_quant.data.catalog import data_dir
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.data.validate import summarize, write_artifacts
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager


def test_gap_between_non_contiguous_months_is_reported_exactly(home: Home, specs: InstrumentSpecs) -> None:
    run_ingest(home, fil(dt.date(2023, 6, 1), dt.date(2023, 7, 1)), specs)
    run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)  # July is absent from the data
    manifest = json.loads((home.catalog / "manifest.json").read_text())
    gaps = manifest["symbols"]["FILUSDT"]["gaps_1m"]
    assert gaps["count"] == 1
    assert gaps["list"][0] == {
        "after": "2023-07-01T00:00:00Z",
        "before_open_of": "2023-08-01T00:00:00Z",
        "missing_bars": 31 * 1440,
    }
    report = (home.catalog / "validation_report.md").read_text()
    assert "after 2023-07-01T00:00:00Z: 44,640 bars missing" in report
    tf = manifest["symbols"]["FILUSDT"]["timeframes"]["1m"]
    assert (tf["bars"], tf["first_close"], tf["last_close"]) == (
        61 * 1440,
        "2023-06-01T00:01:00Z",
        "2023-09-01T00:00:00Z",
    )
    files = manifest["datasets"]["klines/FILUSDT"]["files"]
    assert [f["name"] for f in files] == ["FILUSDT-1m-2023-06.zip", "FILUSDT-1m-2023-08.zip"]
    assert manifest["datasets"]["klines/FILUSDT"]["duplicates"] == 0
    assert "nautilus_trader 1.221" in manifest["code_version"]


def test_funding_cadence_on_real_data(home: Home, specs: InstrumentSpecs) -> None:
    run_ingest(
        home,
        IngestRequest(str(MIRROR), ("BTCUSDT",), ("fundingRate",), dt.date(2026, 4, 1), dt.date(2026, 5, 1)),
        specs,
    )
    with StateManager(home.db_path) as db:
        funding = summarize(home, db)["symbols"]["BTCUSDT"]["funding"]
    assert funding["rows"] == 90
    assert funding["interval_hours"] == [8]
    assert funding["irregular_spacing"] == 0  # the 3 ms late stamp is within tolerance


def test_deep_check_passes_then_catches_a_tampered_file(home: Home, specs: InstrumentSpecs) -> None:
    run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)
    with StateManager(home.db_path) as db:
        assert write_artifacts(home, db, deep=True) == []
        s = summarize(home, db, deep=True)["symbols"]["FILUSDT"]
    assert s["ohlc_violations"] == 0
    assert set(s["aggregation_mismatches"].values()) == {0}
    assert run(app, ["--home", str(home.root), "data", "validate"]) == 0

    [path] = list(data_dir(home.catalog, "bar", FIL_4H).glob("*.parquet"))
    table = pq.read_table(path)
    raw = table.column("high").to_pylist()
    raw[3] = (int.from_bytes(raw[3], "little") + 10**16).to_bytes(16, "little")  # high + 1.0 on one 4h bar
    table = table.set_column(
        table.schema.get_field_index("high"), table.schema.field("high"), pa.array(raw, pa.binary(16))
    )
    pq.write_table(table, path)
    with StateManager(home.db_path) as db:
        warnings = write_artifacts(home, db, deep=True)
        s = summarize(home, db, deep=True)["symbols"]["FILUSDT"]
    assert warnings == ["FILUSDT: deep check failed (see validation_report.md)"]
    assert s["aggregation_mismatches"]["4h"] == 1
    assert run(app, ["--home", str(home.root), "data", "validate"]) == 2
