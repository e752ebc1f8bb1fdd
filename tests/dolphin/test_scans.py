"""DOLPHIN scan tables: schema and closes, no look-ahead, byte-identical rebuilds, batch vs streaming on real
1h and 1m bars, lambda_max against power iteration and known spectra, and the refusals."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import MIRROR, kline_zip, linked_home
from tests.dolphin.conftest import FIRST_DAY, HOURLY_ASSETS, LAST_DAY
from vibe_quant.dolphin import store
from vibe_quant.dolphin.build import build_scans
from vibe_quant.dolphin.config import ScanConfig, meta_columns
from vibe_quant.dolphin.eigen import lambda_max_block, lambda_max_window, power_iteration
from vibe_quant.dolphin.scans import StreamingScanner, log_returns, scan_rows
from vibe_quant.dolphin.universe import Span, load_closes, select_universe
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs

SPECS = InstrumentSpecs()


@pytest.fixture(scope="module")
def hourly_closes(hourly_home: Home):
    span = Span(ScanConfig(), FIRST_DAY, LAST_DAY)
    universe = select_universe(hourly_home.catalog, SPECS, span)
    return load_closes(hourly_home.catalog, SPECS, universe.symbols, span)


@pytest.fixture(scope="module")
def built(hourly_home: Home, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scans of 2026-01-01..2026-01-04 built through the stage (files, manifest)."""
    out = tmp_path_factory.mktemp("scans") / "1h"
    build_scans(hourly_home, SPECS, ScanConfig(), FIRST_DAY, FIRST_DAY + dt.timedelta(days=3), out)
    return out


def stream(config: ScanConfig, ts: np.ndarray, closes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scanner = StreamingScanner(config, closes.shape[1])
    rows = [r for t in range(len(ts)) if (r := scanner.push(int(ts[t]), closes[t])) is not None]
    return (np.array([r["ts"] for r in rows]), np.array([r["velocities"] for r in rows]),
            np.array([r["vel_div"] for r in rows]))  # fmt: skip


def test_day_files_have_the_schema_in_order_and_the_catalog_closes(built: Path, hourly_home: Home) -> None:
    from nautilus_trader.model.data import BarType
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    config = ScanConfig()
    manifest = json.loads((built / "manifest.json").read_text())
    assert sorted(manifest["days"]) == ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    assert manifest["n_assets"] == HOURLY_ASSETS
    assert manifest["definitions"]["windows"] == [50, 150, 300, 750]
    table = pq.read_table(built / "2026-01-02.parquet")
    symbols = manifest["universe"]
    assert table.column_names == [*meta_columns(config), *symbols]
    assert table.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert table.schema.field("scan_number").type == pa.int64()
    assert all(table.schema.field(c).type == pa.float64() for c in table.column_names[2:])
    assert json.loads(table.schema.metadata[b"dolphin"])["universe"] == symbols
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    assert table.num_rows == 24
    assert ts[0] == int(dt.datetime(2026, 1, 2, 1, tzinfo=dt.UTC).timestamp()) * 10**9
    assert np.all(np.diff(table.column("scan_number").to_numpy()) == 1)
    assert np.all(table.column("scan_number").to_numpy() == ts // 3_600_000_000_000)
    assert np.isnan(table.column("instability_50").to_numpy()).all()
    vel = [table.column(c).to_numpy() for c in config.velocity_columns]
    np.testing.assert_array_equal(table.column("vel_div").to_numpy(), vel[0] - vel[-1])
    catalog = ParquetDataCatalog(str(hourly_home.catalog))
    for symbol in (symbols[0], symbols[-1]):
        bar_type = BarType.from_str(config.tf.bar_type(SPECS.get(symbol).nautilus_id))
        bars = catalog.bars(bar_types=[str(bar_type)], start=int(ts[0]), end=int(ts[-1]))
        assert [b.ts_event for b in bars] == list(ts)
        assert [b.close.as_double() for b in bars] == table.column(symbol).to_pylist()


def test_no_look_ahead_and_rebuilds_are_byte_identical(built: Path, hourly_home: Home, tmp_path: Path) -> None:
    # the same days built as part of a longer range, and one day at a time, give the same bytes
    longer = tmp_path / "longer"
    build_scans(hourly_home, SPECS, ScanConfig(), FIRST_DAY, FIRST_DAY + dt.timedelta(days=9), longer,
                symbols=json.loads((built / "manifest.json").read_text())["universe"])  # fmt: skip
    single = tmp_path / "single"
    build_scans(
        hourly_home, SPECS, ScanConfig(), FIRST_DAY + dt.timedelta(days=2), FIRST_DAY + dt.timedelta(days=2), single
    )
    for day, path in store.day_files(built).items():
        assert (longer / path.name).read_bytes() == path.read_bytes(), day
    assert (single / "2026-01-03.parquet").read_bytes() == (built / "2026-01-03.parquet").read_bytes()
    # --force rebuilds in place to the same bytes; without it existing days are kept
    before = {p.name: p.read_bytes() for p in store.day_files(single).values()}
    report = build_scans(
        hourly_home, SPECS, ScanConfig(), FIRST_DAY + dt.timedelta(days=2), FIRST_DAY + dt.timedelta(days=3), single
    )
    assert report.kept == [FIRST_DAY + dt.timedelta(days=2)]
    assert len(report.built) == 1
    report = build_scans(
        hourly_home,
        SPECS,
        ScanConfig(),
        FIRST_DAY + dt.timedelta(days=2),
        FIRST_DAY + dt.timedelta(days=2),
        single,
        force=True,
    )
    assert report.built == [FIRST_DAY + dt.timedelta(days=2)]
    assert {n: (single / n).read_bytes() for n in before} == before
    # the closes the builder reads up to T are identical to those read up to T + k: rows <= T do not move
    config = ScanConfig()
    short = load_closes(hourly_home.catalog, SPECS, tuple(json.loads((built / "manifest.json").read_text())["universe"]),
                        Span(config, FIRST_DAY, FIRST_DAY + dt.timedelta(days=1)))  # fmt: skip
    a = scan_rows(config, short.ts, short.closes, config.warmup_rows, len(short.ts) - 1)
    cut = config.warmup_rows + 30  # a row in the middle of a day: the prefix is computed alone
    b = scan_rows(config, short.ts[: cut + 1], short.closes[: cut + 1], config.warmup_rows, cut)
    np.testing.assert_array_equal(a.velocities[: cut - config.warmup_rows + 1], b.velocities)


def test_a_parallel_build_writes_the_same_bytes(built: Path, hourly_home: Home, tmp_path: Path, monkeypatch) -> None:
    from vibe_quant.dolphin import build

    monkeypatch.setattr(build, "PARALLEL_MIN_ROWS", 0)
    report = build_scans(hourly_home, SPECS, ScanConfig(), FIRST_DAY, FIRST_DAY + dt.timedelta(days=3), tmp_path / "p",
                         workers=2)  # fmt: skip
    assert report.built == sorted(store.day_files(built))
    assert report.workers == 2
    for path in store.day_files(built).values():
        assert (tmp_path / "p" / path.name).read_bytes() == path.read_bytes()
    assert (tmp_path / "p" / "manifest.json").read_bytes() == (built / "manifest.json").read_bytes()


def test_batch_and_streaming_agree_on_60_days_of_real_hourly_bars(hourly_closes) -> None:
    config = ScanConfig()
    ts, closes = hourly_closes.ts, hourly_closes.closes
    assert closes.shape[1] >= 50
    assert (len(ts) - config.warmup_rows) // 24 == 60
    batch = scan_rows(config, ts, closes, config.warmup_rows, len(ts) - 1)
    sts, svel, sdiv = stream(config, ts, closes)
    np.testing.assert_array_equal(sts, batch.ts)
    assert np.abs(svel - batch.velocities).max() <= 1e-10
    assert np.abs(sdiv - batch.vel_div).max() <= 1e-10
    # the signal lives on the specification's scale: about 1-3% of rows below -0.02
    assert 0.005 < np.mean(batch.vel_div < -0.02) < 0.05


def test_batch_and_streaming_agree_on_real_one_minute_bars(tmp_path: Path) -> None:
    from vibe_quant.data.ingest import IngestRequest, run_ingest

    symbols = ("ALGOUSDT", "AVAXUSDT", "FILUSDT", "LINKUSDT", "NEARUSDT")
    assert all(kline_zip(s, "2026-02").is_file() for s in symbols)
    home = Home(tmp_path / "home").ensure()
    run_ingest(home, IngestRequest(str(MIRROR), symbols, ("klines",), dt.date(2026, 2, 1), dt.date(2026, 2, 4)), SPECS)
    config = ScanConfig(timeframe="1m")
    span = Span(config, dt.date(2026, 2, 2), dt.date(2026, 2, 3))
    closes = load_closes(home.catalog, SPECS, select_universe(home.catalog, SPECS, span).symbols, span)
    batch = scan_rows(config, closes.ts, closes.closes, config.warmup_rows, len(closes.ts) - 1)
    assert len(batch.ts) == 2 * 1440
    assert closes.closes.shape[1] == 5
    sts, svel, sdiv = stream(config, closes.ts, closes.closes)
    np.testing.assert_array_equal(sts, batch.ts)
    assert np.abs(svel - batch.velocities).max() <= 1e-10
    assert np.abs(sdiv - batch.vel_div).max() <= 1e-10


def corr_of(window: np.ndarray) -> np.ndarray:
    return np.corrcoef(window.T)


def test_lambda_max_matches_power_iteration_on_real_windows(hourly_closes) -> None:
    r = log_returns(hourly_closes.closes)
    n = r.shape[1]
    for t in (800, 1300, 2100):
        for w in (50, 150, 300, 750):
            expected = power_iteration(corr_of(r[t - w + 1 : t + 1])) / n
            assert abs(lambda_max_window(r[t - w + 1 : t + 1]) - expected) <= 1e-9
            assert abs(lambda_max_block(r, w, t - 3, t)[-1] - expected) <= 1e-9


def orthonormal_centred(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
    x = rng.standard_normal((rows, k))
    x -= x.mean(axis=0)
    q, _ = np.linalg.qr(x)
    return q


@pytest.mark.parametrize("w", [20, 60])
def test_known_spectra(w: int) -> None:
    rng = np.random.default_rng(7)
    # N identical return columns: every correlation is 1, lambda_max = N
    same = np.repeat(rng.standard_normal((w, 1)) * 0.01, 30, axis=1)
    assert lambda_max_window(same) == pytest.approx(1.0, abs=1e-12)
    padded = np.vstack([np.zeros((1, 30)), same])
    assert lambda_max_block(padded, w, w, w)[0] == pytest.approx(1.0, abs=1e-12)
    # two blocks (sizes 8 and 4, within-block correlation 0.6 and 0.3, none across): lambda_max = 1 + 7 * 0.6
    q = orthonormal_centred(rng, w, 14)
    cols = [np.sqrt(0.6) * q[:, 0] + np.sqrt(0.4) * q[:, 2 + j] for j in range(8)]
    cols += [np.sqrt(0.3) * q[:, 1] + np.sqrt(0.7) * q[:, 10 + j] for j in range(4)]
    x = np.column_stack(cols) * 0.02 + 0.001
    assert lambda_max_window(x) == pytest.approx((1 + 7 * 0.6) / 12, abs=1e-12)
    padded = np.vstack([np.zeros((1, 12)), x])
    assert lambda_max_block(padded, w, w, w)[0] == pytest.approx((1 + 7 * 0.6) / 12, abs=1e-12)


def test_a_flat_asset_enters_uncorrelated_in_both_builders() -> None:
    rng = np.random.default_rng(3)
    config = ScanConfig(windows=(5, 12))
    closes = np.exp(np.cumsum(rng.standard_normal((80, 4)) * 0.01, axis=0)) * 100
    closes[20:60, 2] = closes[20, 2]  # no trade for 40 bars
    ts = (np.arange(80, dtype=np.int64) + 500_000) * config.step_ns
    batch = scan_rows(config, ts, closes, config.warmup_rows, 79)
    _, svel, sdiv = stream(config, ts, closes)
    assert np.isfinite(batch.velocities).all()
    assert np.abs(svel - batch.velocities).max() <= 1e-12
    assert np.abs(sdiv - batch.vel_div).max() <= 1e-12
    r = log_returns(closes)
    flat = r[40:45]
    assert not flat[:, 2].any()
    assert lambda_max_window(flat) == pytest.approx(lambda_max_window(flat[:, [0, 1, 3]]) * 3 / 4, abs=1e-12)


def test_streaming_refuses_a_gap_and_a_missing_close() -> None:
    config = ScanConfig(windows=(5, 12))
    scanner = StreamingScanner(config, 2)
    scanner.push(10 * config.step_ns, np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="does not follow the previous bar"):
        scanner.push(12 * config.step_ns, np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="positive closes"):
        scanner.push(11 * config.step_ns, np.array([1.0, np.nan]))


def test_cli_builds_shows_and_refuses(cli, tmp_path: Path, hourly_home: Home) -> None:
    home = linked_home(tmp_path / "home", hourly_home.catalog)
    base = ["--home", str(home.root), "dolphin", "scans"]
    code, text = cli(
        [*base, "build", "--start", "2026-06-01", "--end", "2026-06-07"]
    )  # the last bars open at 09:00 or 10:00
    assert code == 2
    assert "2026-06-07 is incomplete: 11 of 24 rows" in text
    assert "--end 2026-06-06" in text
    assert not (home.root / "dolphin").exists()
    code, text = cli(
        [*base, "build", "--start", "2026-02-27", "--end", "2026-02-28", "--universe", "AAVEUSDT,NOPEUSDT"]
    )
    assert code == 2
    assert "NOPEUSDT" in text
    code, text = cli([*base, "build", "--start", "2026-02-27", "--end", "2026-02-28", "--windows", "50,20"])
    assert code == 2
    assert "--windows" in text
    assert "increasing" in text
    code, text = cli([*base, "build", "--start", "2026-02-27", "--end", "2026-02-28"])
    assert code == 0
    assert "built 2 day(s), 48 rows" in text
    assert "vel_div quantiles" in text
    code, text = cli([*base, "show", "2026-02-28"])
    assert code == 0
    assert "scans 2026-02-28 (24 rows" in text
    assert "rows below the signal thresholds" in text
    code, text = cli([*base, "show", "2026-03-05"])
    assert code == 2
    assert "no scans for 2026-03-05" in text
    assert "2026-02-27..2026-02-28" in text
    code, text = cli([*base, "summary", "--json"])
    assert code == 0
    assert json.loads(text)["n_assets"] == HOURLY_ASSETS
    code, text = cli(
        [*base, "build", "--start", "2026-02-26", "--end", "2026-02-26", "--universe", "AAVEUSDT,ALGOUSDT"]
    )
    assert code == 2
    assert "another universe" in text
    code, text = cli([*base, "build", "--start", "2026-02-26", "--end", "2026-02-26", "--windows", "50,150,300,700"])
    assert code == 2
    assert "other definitions" in text


def test_incomplete_last_day_is_refused_with_its_date_and_rows(tmp_path: Path) -> None:
    from vibe_quant.data.csv_import import run_import

    home = Home(tmp_path / "home").ensure()
    paths = [trimmed(tmp_path, b, "2026-06-05 09:00:00", 1200) for b in ("AAVE", "ALGO")]  # cut in mid-day
    run_import(home, paths, SPECS)
    with pytest.raises(UserError, match=r"2026-06-05 is incomplete: 10 of 24 rows .* pass --end 2026-06-04"):
        build_scans(home, SPECS, ScanConfig(windows=(5, 10)), dt.date(2026, 6, 1), dt.date(2026, 6, 5))
    assert not (home.root / "dolphin" / "scans" / "1h").exists()
    report = build_scans(home, SPECS, ScanConfig(windows=(5, 10)), dt.date(2026, 6, 1), dt.date(2026, 6, 4))
    assert [len(pq.read_table(p)) for p in store.day_files(report.directory).values()] == [24] * 4


def trimmed(tmp_path: Path, base: str, last: str, rows: int, keep_flat: bool = False) -> Path:
    """A real hourly file cut to its `rows` lines up to `last` (open time, ``YYYY-MM-DD HH:MM:SS``)."""
    src = Path(__file__).parents[2].parent / "shared" / "data" / "perps-1d-1h" / f"{base}_USDT_1h.csv"
    lines = src.read_text().splitlines(keepends=True)
    keep = [ln for ln in lines[1:] if ln.split(",")[6].strip() <= last]
    path = tmp_path / f"{base}_USDT_1h.csv"
    path.write_text(lines[0] + "".join(keep[-rows:]))
    return path


def test_a_delisted_contracts_flat_tail_never_enters(tmp_path: Path) -> None:
    from vibe_quant.data.csv_import import run_import

    home = Home(tmp_path / "home").ensure()
    paths = [trimmed(tmp_path, b, "2024-07-02 23:00:00", 200) for b in ("AAVE", "ALGO", "WAVES")]
    run_import(home, paths[:2], SPECS)
    run_import(home, paths[2:], SPECS, keep_flat_tail=True)  # WAVES prints flat zero-volume bars after 2024-06-11
    report = build_scans(home, SPECS, ScanConfig(windows=(5, 10)), dt.date(2024, 7, 1), dt.date(2024, 7, 2))
    assert report.symbols == ("AAVEUSDT", "ALGOUSDT")
    assert report.left_out == {"WAVESUSDT": "flat zero-volume tail (delisted?)"}
    assert json.loads((report.directory / "manifest.json").read_text())["left_out"] == report.left_out
