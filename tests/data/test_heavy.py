"""Heavy end-to-end run over every USD-M file in ../shared/data (``uv run pytest -m heavy``)."""

from __future__ import annotations

import zipfile

import pytest

from tests.conftest import MIRROR, UM_KLINES
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.data.rebuild import rebuild_from_archive
from vibe_quant.data.validate import summarize, write_artifacts
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager


def rows_in(path) -> int:
    with zipfile.ZipFile(path) as zf:
        return zf.read(zf.namelist()[0]).count(b"\n") - 1  # minus the header line


@pytest.mark.heavy
def test_whole_mirror_ingests_deep_validates_and_rebuilds_identically(home: Home, specs: InstrumentSpecs) -> None:
    expected = {}
    for path in sorted(UM_KLINES.glob("*/1m/*.zip")):
        expected[path.parts[-3]] = expected.get(path.parts[-3], 0) + rows_in(path)
    report = run_ingest(home, IngestRequest(str(MIRROR), None), specs)
    assert report.bars_written()["1m"] == sum(expected.values())
    assert report.bars_written()["funding"] == 90
    with StateManager(home.db_path) as db:
        assert write_artifacts(home, db, deep=True) == []
        summary = summarize(home, db)
    for symbol, n in expected.items():
        assert summary["symbols"][symbol]["timeframes"]["1m"]["bars"] == n
        assert summary["symbols"][symbol]["timeframes"]["4h"]["bars"] == n // 240
    # 21 months in 14 contiguous runs: 2023-02, 04..06, 08..11, 2024-02, 04, 06, 09..11, 2025-02, 04, 06, 09, 2026-02, 04, 06
    assert summary["symbols"]["FILUSDT"]["gaps_1m"]["count"] == 13
    rebuilt = rebuild_from_archive(home, specs)
    assert rebuilt.byte_identical
    assert rebuilt.units == len(list(UM_KLINES.glob("*/1m/*.zip"))) + 1
