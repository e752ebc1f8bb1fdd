"""The ACB's daily factor table (docs/specs.md#dolphin-acb): the formulas on hand-made rows, funding
from the catalog and taker flow from the raw lake on real files, the past-only w750 threshold, the
CLI and its refusals."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import FUNDING_FILE, MIRROR, kline_zip
from vibe_quant.dolphin import acb
from vibe_quant.dolphin.acb import AcbConfig
from vibe_quant.dolphin.acb_build import FILE, build_acb_factors, kline_flows, read_acb_factors
from vibe_quant.errors import ConfigError, DataFileError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs

PERPS_1H = MIRROR.parent / "perps-1d-1h"
FIRST, LAST = dt.date(2026, 3, 28), dt.date(2026, 5, 2)
NAN = math.nan


def boost(signals: float) -> float:
    return 1.0 + 0.5 * math.log1p(signals) if signals >= 1.0 else 1.0


def row_signals(funding=NAN, dvol=NAN, fng=NAN, taker=NAN, config: AcbConfig | None = None) -> float:
    config = config or AcbConfig()
    return float(acb.signals(*(np.array([v]) for v in (funding, dvol, fng, taker)), config)[0])


# -- formulas --------------------------------------------------------------------------------------


def test_the_hand_made_row_gives_the_boost_with_and_without_fng() -> None:
    config = AcbConfig()
    s = row_signals(-0.0002, 60.0, 30.0, 0.85)
    assert s == 2.5
    assert acb.base_boost(np.array([s]), config)[0] == pytest.approx(1.0 + 0.5 * math.log1p(2.5), abs=1e-12)
    assert acb.base_boost(np.array([s]), config)[0] == pytest.approx(1.626381, abs=1e-6)
    # fng unconfirmed: alone it counts nothing; without it the row is 2.0
    assert row_signals(fng=30.0) == 0.0
    assert row_signals(fng=10.0) == 0.0
    s = row_signals(-0.0002, 60.0, NAN, 0.85)
    assert s == 2.0
    assert acb.base_boost(np.array([s]), config)[0] == pytest.approx(1.549306, abs=1e-6)
    # "none" counts fng alone
    assert row_signals(fng=30.0, config=AcbConfig(fng_confirmation="none")) == 0.5
    assert row_signals(fng=10.0, config=AcbConfig(fng_confirmation="none")) == 1.0
    # a mild other factor (0.5) confirms fng
    assert row_signals(funding=-0.00005, fng=10.0) == 1.5


@pytest.mark.parametrize(
    ("factor", "value", "weight"),
    [
        ("funding", -0.0002, 1.0), ("funding", -0.0001, 0.5), ("funding", -0.00005, 0.5), ("funding", 0.0, 0.0),
        ("funding", 0.0001, 0.0),
        ("dvol", 90.0, 1.0), ("dvol", 80.0, 0.5), ("dvol", 60.0, 0.5), ("dvol", 55.0, 0.0), ("dvol", 40.0, 0.0),
        ("fng", 10.0, 1.0), ("fng", 25.0, 0.5), ("fng", 39.0, 0.5), ("fng", 40.0, 0.0),
        ("taker", 0.79, 1.0), ("taker", 0.80, 0.5), ("taker", 0.85, 0.5), ("taker", 0.90, 0.0), ("taker", 1.1, 0.0),
        ("funding", NAN, 0.0), ("dvol", NAN, 0.0), ("fng", NAN, 0.0), ("taker", NAN, 0.0),
    ],
)  # fmt: skip
def test_factor_thresholds_at_their_boundaries(factor: str, value: float, weight: float) -> None:
    fn = {"funding": acb.funding_weight, "dvol": acb.dvol_weight, "fng": acb.fng_weight, "taker": acb.taker_weight}
    assert fn[factor](np.array([value]), AcbConfig())[0] == weight


def test_base_boost_goldens() -> None:
    signals = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0])
    expected = [1.0, 1.0, 1.346574, 1.458145, 1.549306, 1.626381, 1.693147, 1.804719]
    np.testing.assert_allclose(acb.base_boost(signals, AcbConfig()), expected, atol=1e-6)
    np.testing.assert_allclose(acb.base_boost(signals, AcbConfig()), [boost(s) for s in signals], rtol=1e-15)


def test_config_refuses_inconsistent_thresholds() -> None:
    with pytest.raises(ConfigError, match="funding thresholds"):
        AcbConfig(funding_very=0.001)
    with pytest.raises(ConfigError, match="w750_threshold_mode 'full'"):
        AcbConfig(w750_threshold_mode="full")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"beta_low 0\.9"):
        AcbConfig(beta_low=0.9)


# -- w750 ------------------------------------------------------------------------------------------


def test_past_threshold_never_uses_a_later_date() -> None:
    rng = np.random.default_rng(7)
    w = rng.normal(0.0, 0.01, 40)
    w[[3, 17]] = np.nan
    config = AcbConfig()
    base = acb.w750_thresholds(w, config)
    assert np.isnan(base[:6]).all()
    assert np.isfinite(base[6:]).all()
    assert base[20] == np.percentile(w[:20][np.isfinite(w[:20])], 60)
    for k in (10, 25, 39):
        changed = w.copy()
        changed[k:] = rng.normal(5.0, 1.0, 40 - k)
        np.testing.assert_array_equal(acb.w750_thresholds(changed, config)[: k + 1], base[: k + 1])
    full = acb.w750_thresholds(w, AcbConfig(w750_threshold_mode="full_sample"))
    assert (full == np.percentile(w[np.isfinite(w)], 60)).all()


def test_beta_switches_at_the_threshold() -> None:
    config = AcbConfig()
    history = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    threshold = np.percentile(history, 60)  # 3.4
    for today, beta in ((threshold, 0.8), (np.nextafter(threshold, 0.0), 0.2), (9.0, 0.8), (NAN, 0.2)):
        w = np.append(history, today)
        t = acb.w750_thresholds(w, config)
        assert t[5] == threshold
        assert acb.betas(w, t, config)[5] == beta
        assert (acb.betas(w, t, config)[:5] == 0.2).all()  # no threshold yet


# -- user CSVs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("day,value\n2026-04-01,50\n", 1, "the header must be 'date,value'"),
        ("2026-04-01,50\n", 1, "the header must be 'date,value'"),
        ("", 1, "an empty file"),
        ("date,value\n2026-04-01,50\n2026-04-31,51\n", 3, "date '2026-04-31' is not a date"),
        ("date,value\n01/04/2026,50\n", 2, "date '01/04/2026' is not a date"),
        ("date,value\n20260401,50\n", 2, "date '20260401' is not a date"),
        ("date,value\n2026-04-01,fifty\n", 2, "value 'fifty' is not a finite number"),
        ("date,value\n2026-04-01,nan\n", 2, "value 'nan' is not a finite number"),
        ("date,value\n2026-04-01,1e999\n", 2, "value '1e999' is not a finite number"),
        ("date,value\n2026-04-01,50\n2026-04-02,51\n2026-04-01,52\n", 4, "date 2026-04-01 is given twice (first on line 2)"),
        ("date,value\n2026-04-01,50,1\n", 2, "3 fields"),
        ("date,value\n2026-04-01,50\n\n2026-04-02,51\n", 3, "empty line"),
    ],
)  # fmt: skip
def test_a_malformed_user_csv_names_its_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(DataFileError) as info:
        acb.parse_daily_values(text.encode(), "dvol.csv")
    assert info.value.line == line
    assert problem in info.value.problem
    assert str(info.value).startswith(f"dvol.csv, line {line}: ")


def test_a_user_csv_parses() -> None:
    data = "\ufeffdate,value\n2026-04-01,52.5\n2026-04-03, -1e-3 \n\n".encode()
    assert acb.parse_daily_values(data, "x.csv") == {dt.date(2026, 4, 1): 52.5, dt.date(2026, 4, 3): -0.001}


# -- taker flow ------------------------------------------------------------------------------------


def _fil_csv() -> bytes:
    with zipfile.ZipFile(kline_zip("FILUSDT", "2026-04")) as zf:
        return zf.read(zf.namelist()[0])


def test_kline_flows_reads_headerless_microsecond_files_alike() -> None:
    data = _fil_csv()
    ms = kline_flows(data, "fil.csv")
    lines = data.decode().splitlines()[1:]
    micro = "\n".join(f"{int(r.split(',')[0]) * 1000},{r.split(',', 1)[1]}" for r in lines).encode()
    us = kline_flows(micro, "fil-us.csv")
    for a, b in zip(ms, us, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(ms[0]) == 30 * 1440


def test_daily_taker_needs_every_bar_of_the_previous_day() -> None:
    day = dt.date(2026, 4, 2)
    start = acb.epoch_day(day - dt.timedelta(days=1)) * acb.MS_PER_DAY
    open_ms = start + 60_000 * np.arange(1440)
    volume, buy = np.full(1440, 10.0), np.full(1440, 4.0)
    ratio = acb.daily_taker(open_ms, volume, buy, [day, day + dt.timedelta(days=1)], "buy_sell_ratio")
    assert ratio[0] == pytest.approx(4.0 / 6.0, rel=1e-15)
    assert np.isnan(ratio[1])
    assert acb.daily_taker(open_ms, volume, buy, [day], "buy_share")[0] == pytest.approx(0.4, rel=1e-15)
    assert np.isnan(acb.daily_taker(open_ms[1:], volume[1:], buy[1:], [day], "buy_sell_ratio")[0])


# -- on real data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acb_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """Three 1h perps imported from CSV, BTCUSDT funding and FILUSDT 1m klines of 2026-04, and scans
    (windows 5, 10) of 2026-03-28..2026-05-02 in the default 1h directory. Read only: copy the scans."""
    from vibe_quant.data.csv_import import run_import
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.dolphin.build import build_scans
    from vibe_quant.dolphin.config import ScanConfig

    specs = InstrumentSpecs()
    home = Home(tmp_path_factory.mktemp("acb") / "home").ensure()
    april = (dt.date(2026, 4, 1), dt.date(2026, 5, 1))
    run_ingest(home, IngestRequest(str(MIRROR), ("BTCUSDT",), ("fundingRate",), *april), specs)
    run_ingest(home, IngestRequest(str(MIRROR), ("FILUSDT",), ("klines",), *april), specs)
    run_import(home, [PERPS_1H / f"{base}_USDT_1h.csv" for base in ("AAVE", "ALGO", "ATOM")], specs)
    build_scans(home, specs, ScanConfig(windows=(5, 10)), FIRST, LAST)
    return home


def scans_copy(home: Home, tmp_path: Path) -> Path:
    return Path(shutil.copytree(home.root / "dolphin" / "scans" / "1h", tmp_path / "scans"))


def test_funding_is_the_midnight_settlement(acb_home: Home, tmp_path: Path) -> None:
    report = build_acb_factors(acb_home, InstrumentSpecs(), AcbConfig(), scans_copy(acb_home, tmp_path))
    t = report.table.to_pydict()
    present = [d for d, p in zip(t["date"], t["funding_btc_present"], strict=True) if p]
    assert present == [dt.date(2026, 4, 1) + dt.timedelta(days=k) for k in range(30)]
    with zipfile.ZipFile(FUNDING_FILE) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read(zf.namelist()[0]).decode())))
    # 2026-04-02's settlement is stamped 00:00:00.003: within the slack
    day = dt.date(2026, 4, 2)
    settled = [r for r in rows if int(r["calc_time"]) // acb.MS_PER_DAY == acb.epoch_day(day)
               and int(r["calc_time"]) % acb.MS_PER_DAY < 1000]  # fmt: skip
    assert [r["calc_time"] for r in settled] == ["1775088000003"]
    assert t["funding_btc"][t["date"].index(day)] == float(settled[0]["last_funding_rate"])
    assert all(math.isnan(v) for v, p in zip(t["funding_btc"], t["funding_btc_present"], strict=True) if not p)
    assert report.notes
    assert "taker is absent on every date" in report.notes[0]
    assert "vq data ingest --symbols BTCUSDT --datasets klines" in report.notes[0]


def test_taker_is_the_previous_day_ratio_from_the_raw_lake(acb_home: Home, tmp_path: Path) -> None:
    config = AcbConfig(taker_symbol="FILUSDT")
    report = build_acb_factors(acb_home, InstrumentSpecs(), config, scans_copy(acb_home, tmp_path))
    t = report.table.to_pydict()
    present = [d for d, p in zip(t["date"], t["taker_present"], strict=True) if p]
    assert present == [dt.date(2026, 4, 2) + dt.timedelta(days=k) for k in range(30)]
    frame = pd.read_csv(io.BytesIO(_fil_csv()))
    day = dt.date(2026, 4, 15)
    previous = frame[frame.open_time // acb.MS_PER_DAY == acb.epoch_day(day) - 1]
    assert len(previous) == 1440
    expected = previous.taker_buy_volume.sum() / (previous.volume - previous.taker_buy_volume).sum()
    assert t["taker"][t["date"].index(day)] == pytest.approx(expected, rel=1e-12)
    assert report.metadata["inputs"]["taker"]["raw_files"][0]["archive_path"].endswith("FILUSDT-1m-2026-04.zip")


def same(a: pa.Table, b: pa.Table) -> None:
    pd.testing.assert_frame_equal(a.to_pandas(), b.to_pandas(), check_exact=True)  # NaN equals NaN here


def test_rows_never_depend_on_later_scans(acb_home: Home, tmp_path: Path) -> None:
    directory = scans_copy(acb_home, tmp_path)
    before = build_acb_factors(acb_home, InstrumentSpecs(), AcbConfig(), directory).table
    full = build_acb_factors(acb_home, InstrumentSpecs(), AcbConfig(w750_threshold_mode="full_sample"), directory)
    # the last row's w750 comes from the second-to-last day file: make it huge
    path = directory / f"{LAST - dt.timedelta(days=1)}.parquet"
    table = pq.read_table(path)
    column = table.column_names.index("v10_lambda_max_velocity")
    table = table.set_column(column, "v10_lambda_max_velocity", pa.array(np.full(table.num_rows, 1.0)))
    pq.write_table(table, path)
    after = build_acb_factors(acb_home, InstrumentSpecs(), AcbConfig(), directory).table
    n = before.num_rows
    same(after.slice(0, n - 1), before.slice(0, n - 1))
    assert after.column("w750_vel")[n - 1].as_py() == 1.0
    assert after.column("beta")[n - 1].as_py() == 0.8
    assert not before.column("look_ahead").to_pylist()[0]
    # full_sample: every row says look_ahead, and the later file moves earlier thresholds
    assert full.table.column("look_ahead").to_pylist() == [True] * n
    assert full.metadata["look_ahead"] is True
    moved = build_acb_factors(acb_home, InstrumentSpecs(), AcbConfig(w750_threshold_mode="full_sample"), directory)
    assert moved.table.column("w750_threshold")[0].as_py() != full.table.column("w750_threshold")[0].as_py()
    # a sub-range keeps the whole directory as history: its rows equal the full table's
    part = build_acb_factors(acb_home, InstrumentSpecs(), AcbConfig(), directory, dt.date(2026, 4, 20), LAST).table
    same(part, after.slice(n - part.num_rows))


# -- CLI -------------------------------------------------------------------------------------------


def test_cli_build_and_show(cli, acb_home: Home, tmp_path: Path) -> None:
    directory = scans_copy(acb_home, tmp_path)
    dvol = tmp_path / "dvol.csv"
    dvol.write_text("date,value\n2026-04-13,60\n2026-04-14,85\n")
    home = ["--home", str(acb_home.root)]
    code, output = cli([*home, "dolphin", "acb-factors", "build", "--scans", str(directory), "--dvol", str(dvol),
                        "--taker-symbol", "FILUSDT", "--json"])  # fmt: skip
    assert code == 0, output
    payload = json.loads(output)
    assert payload["path"] == str(directory / FILE)
    meta = payload["metadata"]
    assert meta["look_ahead"] is False
    assert meta["config"]["taker_symbol"] == "FILUSDT"
    assert meta["inputs"]["dvol"]["sha256"] == hashlib.sha256(dvol.read_bytes()).hexdigest()
    assert meta["present"] == {"funding_btc": 30, "dvol_btc": 2, "fng": 0, "taker": 30, "w750": 35}
    table, stored = read_acb_factors(directory)
    assert stored == meta
    assert table.num_rows == 36
    row = table.to_pylist()[table.column("date").to_pylist().index(dt.date(2026, 4, 13))]
    # funding -0.000002 (0.5) + dvol 60 (0.5) + taker 0.8919 (0.5)
    assert row["signals"] == 1.5
    assert row["base_boost"] == pytest.approx(boost(1.5), rel=1e-15)

    code, output = cli([*home, "dolphin", "acb-factors", "show", "--scans", str(directory)])
    assert code == 0, output
    assert "2026-04-13" in output
    assert "1.458145" in output
    assert "dates present (of 36): funding_btc 30  dvol_btc 2  fng 0  taker 30  w750 35" in output
    code, output = cli([*home, "dolphin", "acb-factors", "show", "--scans", str(directory), "--date", "2026-04-14"])
    assert code == 0
    assert "2026-04-14" in output
    assert "2026-04-13" not in output

    code, output = cli([*home, "dolphin", "acb-factors", "build", "--scans", str(directory),
                        "--w750-threshold", "full_sample"])  # fmt: skip
    assert code == 0, output
    assert "WARNING: --w750-threshold full_sample" in output
    assert read_acb_factors(directory)[1]["look_ahead"] is True


def test_cli_refusals_write_nothing(cli, acb_home: Home, tmp_path: Path) -> None:
    directory = scans_copy(acb_home, tmp_path)
    bad = tmp_path / "dvol.csv"
    bad.write_text("date,value\n2026-04-01,50\n2026-04-02,high\n")
    home = ["--home", str(acb_home.root), "dolphin", "acb-factors"]
    code, output = cli([*home, "build", "--scans", str(directory), "--dvol", str(bad)])
    assert code == 2
    assert f"{bad}, line 3: value 'high' is not a finite number" in output
    assert not (directory / FILE).exists()

    code, output = cli([*home, "build", "--scans", str(directory), "--start", "2026-03-01"])
    assert code == 2
    assert "--start 2026-03-01 is outside the scans" in output
    assert "2026-03-28..2026-05-02" in output
    code, output = cli([*home, "build", "--scans", str(tmp_path / "none")])
    assert code == 2
    assert "no scans" in output
    code, output = cli([*home, "build", "--scans", str(directory), "--w750-threshold", "full"])
    assert code == 2
    assert "--w750-threshold" in output
    code, output = cli([*home, "show", "--scans", str(directory)])
    assert code == 2
    assert "no ACB factors" in output
    assert not (directory / FILE).exists()
    assert sorted(p.name for p in directory.iterdir() if not p.name.endswith(".parquet")) == ["manifest.json"]
