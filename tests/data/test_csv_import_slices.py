"""Spot klines (ms and µs days), the generic OHLCV CSV importer (``vq data import-csv``) on the real
``../shared/data/perps-1d-1h`` files, and time slices of ticks + custom data streamed into a
NautilusTrader ``BacktestEngine``.

Expected values come from the source files themselves (csv / zipfile), never from the code under test.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import hashlib
import itertools
import json
import shutil
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import CustomData, DataType, QuoteTick, TradeTick
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import ClientId, InstrumentId, Venue
from nautilus_trader.model.instruments import CurrencyPair
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tests.conftest import MIRROR, PROJECT, SHARED_DATA
from tests.data.test_derivs import db_counts
from tests.data.test_ingest import snapshot
from vibe_quant.data.custom import BinanceOiMetrics
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.data.rebuild import rebuild_from_archive
from vibe_quant.data.slices import Stream, add_streams, load_slice
from vibe_quant.home import Home
from vibe_quant.instruments.factory import instrument
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager

NS = 1_000_000_000
MS = 1_000_000
HOUR_NS = 3600 * NS
DAY_NS = 86400 * NS
PERPS = SHARED_DATA / "perps-1d-1h"
SPOT_KLINES = MIRROR / "data" / "spot" / "daily" / "klines" / "BTCUSDT"
FIXTURES = PROJECT / "tests" / "fixtures" / "binance"
UM_DAILY = FIXTURES / "data" / "futures" / "um" / "daily"
SPOT_1M = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
SPOT_1H = "BTCUSDT.BINANCE-1-HOUR-LAST-EXTERNAL"
SPOT_4H = "BTCUSDT.BINANCE-4-HOUR-LAST-EXTERNAL"
BTC_1D = "BTCUSDT-PERP.BINANCE-1-DAY-LAST-EXTERNAL"
FTT_1D = "FTTUSDT-PERP.BINANCE-1-DAY-LAST-EXTERNAL"
NEAR_1H = "NEARUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL"
IID = "BTCUSDT-PERP.BINANCE"


def utc_ns(text: str) -> int:
    """``2024-03-01`` or ``2024-03-01 01:00:00`` (UTC) in epoch ns."""
    fmt = "%Y-%m-%d %H:%M:%S" if " " in text else "%Y-%m-%d"
    return calendar.timegm(dt.datetime.strptime(text, fmt).timetuple()) * NS


def zip_rows(path: Path) -> list[list[str]]:
    with zipfile.ZipFile(path) as zf:
        [member] = zf.namelist()
        text = zf.read(member).decode()
    return [line.split(",") for line in text.splitlines() if line]


def csv_rows(path: Path) -> list[list[str]]:
    """Data rows of a perps-1d-1h file (header dropped)."""
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:6] == ["timestamp", "open", "high", "low", "close", "volume"]
    return rows[1:]


def ohlcv(bar) -> tuple[Decimal, ...]:
    return tuple(Decimal(str(x)) for x in (bar.open, bar.high, bar.low, bar.close, bar.volume))


def expected_ohlcv(row: list[str]) -> tuple[Decimal, ...]:
    return tuple(Decimal(x) for x in row[1:6])


def bars(home: Home, bar_type: str) -> list:
    return ParquetDataCatalog(str(home.catalog)).bars([bar_type])


# -- 1. spot klines: ms 1m days, then µs native 1h days ---------------------------------------------


def test_spot_klines_1m_then_native_1h_microsecond_days(home: Home, specs: InstrumentSpecs) -> None:
    report = run_ingest(
        home, IngestRequest(str(MIRROR), ("BTCUSDT",), ("klines",), market="spot", interval="1m"), specs
    )
    assert report.bars_written()["1m"] == 4320
    minute_rows = [r for d in ("01", "02", "03") for r in zip_rows(SPOT_KLINES / "1m" / f"BTCUSDT-1m-2020-01-{d}.zip")]
    assert len(minute_rows) == 4320
    minute = bars(home, SPOT_1M)
    assert len(minute) == 4320
    for bar, row in zip(minute, minute_rows, strict=True):
        assert bar.ts_event == bar.ts_init == int(row[0]) * MS + 60 * NS
        assert ohlcv(bar) == expected_ohlcv(row)
    assert Decimal(str(minute[0].open)) == Decimal("7195.24")
    assert minute[0].ts_init == utc_ns("2020-01-01 00:01:00")
    [inst] = ParquetDataCatalog(str(home.catalog)).instruments(instrument_ids=["BTCUSDT.BINANCE"])
    assert isinstance(inst, CurrencyPair)
    hour_from_1m = bars(home, SPOT_1H)
    assert len(hour_from_1m) == 72
    four_before = len(bars(home, SPOT_4H))

    report = run_ingest(
        home, IngestRequest(str(MIRROR), ("BTCUSDT",), ("klines",), market="spot", interval="1h"), specs
    )
    assert report.bars_written() == {"1h": 48}  # native 1h bars only, nothing aggregated or split
    assert {u.stats["time_unit"] for u in report.units} == {"us"}
    hour_rows = [r for d in ("08", "09") for r in zip_rows(SPOT_KLINES / "1h" / f"BTCUSDT-1h-2026-05-{d}.zip")]
    assert len(hour_rows) == 48
    assert int(hour_rows[0][0]) > 10**15  # the files really are in microseconds
    hours = bars(home, SPOT_1H)
    native = [b for b in hours if b.ts_init > utc_ns("2026-01-01")]
    assert hours[: len(hour_from_1m)] == hour_from_1m
    assert len(native) == 48
    assert len(hours) == 72 + 48
    for bar, row in zip(native, hour_rows, strict=True):
        assert bar.ts_event == bar.ts_init == int(row[0]) * 1000 + HOUR_NS  # µs open time -> ns close time
        assert bar.ts_init == (int(row[6]) + 1) * 1000
        assert ohlcv(bar) == expected_ohlcv(row)
    assert native[0].ts_init == utc_ns("2026-05-08 01:00:00")
    assert Decimal(str(native[0].open)) == Decimal("80006.00")
    assert native[-1].ts_init == utc_ns("2026-05-10")
    minute_after = bars(home, SPOT_1M)
    assert len(minute_after) == 4320
    assert max(b.ts_init for b in minute_after) == utc_ns("2020-01-04")  # no 1m bars for the 1h days
    assert len(bars(home, SPOT_4H)) == four_before


# -- 2. generic OHLCV CSV import ---------------------------------------------------------------------


def vq(cli, home: Home, *args: str) -> tuple[int, str]:
    return cli(["--home", str(home.root), "data", *args])


def test_import_csv_btc_daily(home: Home, cli) -> None:
    source = PERPS / "BTC_USDT_1d.csv"
    rows = csv_rows(source)
    code, output = vq(cli, home, "import-csv", str(source))
    assert code == 0, output
    catalog = ParquetDataCatalog(str(home.catalog))
    daily = catalog.bars([BTC_1D])
    assert len(daily) == len(rows) == 2190
    assert daily[0].ts_init == int(rows[0][0]) * MS + DAY_NS == utc_ns("2020-06-01")
    for bar, row in zip(daily, rows, strict=True):
        assert bar.ts_event == bar.ts_init == int(row[0]) * MS + DAY_NS
        assert ohlcv(bar) == expected_ohlcv(row)
    assert [p.name for p in (home.catalog / "data" / "bar").iterdir()] == [BTC_1D]  # only the native timeframe
    with StateManager(home.db_path) as db:
        [raw] = db.find("raw_files")
    assert (raw["original_name"], raw["period_kind"], raw["interval"]) == ("BTC_USDT_1d.csv", "csv-import", "1d")
    assert (home.archive / raw["archive_path"]).read_bytes() == source.read_bytes()
    assert raw["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()

    before, counts = snapshot(home), db_counts(home)
    code, output = vq(cli, home, "import-csv", str(source))
    assert code == 0, output
    assert "already imported (no-op): BTC_USDT_1d.csv" in output
    assert snapshot(home) == before
    assert db_counts(home) == counts


def flat_tail_from_csv(rows: list[list[str]]) -> int:
    """Trailing bars with zero volume and open = high = low = close = the previous bar's close."""
    n = 0
    for i in range(len(rows) - 1, 0, -1):
        o, h, lo, c, v = (Decimal(x) for x in rows[i][1:6])
        if v != 0 or not (o == h == lo == c) or c != Decimal(rows[i - 1][4]):
            break
        n += 1
    return n


def test_import_csv_cuts_the_flat_tail_of_a_delisted_contract(tmp_path: Path, cli) -> None:
    source = PERPS / "FTT_USDT_1d.csv"
    rows = csv_rows(source)
    tail = flat_tail_from_csv(rows)
    assert tail > 1000  # FTT kept printing flat bars for years after its delisting
    kept = rows[: len(rows) - tail]

    home = Home(tmp_path / "cut").ensure()
    code, output = vq(cli, home, "import-csv", str(source))
    assert code == 0, output
    assert f"FTT_USDT_1d.csv: cut {tail} trailing flat zero-volume bar(s)" in output.replace("\n", " ")
    daily = bars(home, FTT_1D)
    assert len(daily) == len(kept)
    assert daily[-1].ts_init == int(kept[-1][0]) * MS + DAY_NS
    assert ohlcv(daily[-1]) == expected_ohlcv(kept[-1])
    assert Decimal(kept[-1][5]) > 0  # the last bar kept really traded
    manifest = json.loads((home.catalog / "manifest.json").read_text())
    assert manifest["datasets"]["klines@1d/FTTUSDT"]["flat_tail_cut"] == tail

    keep = Home(tmp_path / "keep").ensure()
    code, output = vq(cli, keep, "import-csv", "--keep-flat-tail", str(source))
    assert code == 0, output
    assert "trailing flat" not in output
    daily = bars(keep, FTT_1D)
    assert len(daily) == len(rows)
    assert daily[-1].ts_init == int(rows[-1][0]) * MS + DAY_NS
    assert ohlcv(daily[-1]) == expected_ohlcv(rows[-1])
    assert Decimal(str(daily[-1].volume)) == 0


def _bad_name(tmp: Path) -> list[str]:
    path = tmp / "btc daily.csv"
    shutil.copy(PERPS / "BTC_USDT_1d.csv", path)
    return [str(path)]


def _bad_close(tmp: Path) -> list[str]:
    lines = (PERPS / "BTC_USDT_1d.csv").read_text().splitlines()
    fields = lines[10].split(",")
    fields[4] = "abc"
    lines[10] = ",".join(fields)
    path = tmp / "BTC_USDT_1d.csv"
    path.write_text("\n".join(lines) + "\n")
    return [str(path)]


def _unknown_symbol(tmp: Path) -> list[str]:
    path = tmp / "XYZ_USDT_1d.csv"
    shutil.copy(PERPS / "BTC_USDT_1d.csv", path)
    return [str(path)]


def _symbol_with_two_files(tmp: Path) -> list[str]:
    return ["--symbol", "BTCUSDT", str(PERPS / "BTC_USDT_1d.csv"), str(PERPS / "ETH_USDT_1d.csv")]


IMPORT_ERRORS = {
    "unparseable-name": (_bad_name, "cannot tell the symbol and interval from the name"),
    "non-numeric-close": (_bad_close, "BTC_USDT_1d.csv, line 11: column 'close': 'abc' is not a number"),
    "unknown-symbol": (_unknown_symbol, "unknown symbol 'XYZUSDT'"),
    "symbol-with-two-files": (_symbol_with_two_files, "--symbol applies to one file"),
}


@pytest.mark.parametrize("case", list(IMPORT_ERRORS))
def test_import_csv_errors_exit_2_and_write_nothing(tmp_path: Path, home: Home, cli, case: str) -> None:
    make, message = IMPORT_ERRORS[case]
    args = make(tmp_path)
    code, output = vq(cli, home, "import-csv", *args)
    assert code == 2, output
    assert "Traceback" not in output
    assert message in output.replace("\n", ""), output
    assert not list(home.catalog.rglob("*.parquet"))
    assert not [p for p in home.archive.rglob("*") if p.is_file()]


def test_import_csv_unparseable_name_works_with_symbol_and_interval(tmp_path: Path, home: Home, cli) -> None:
    [path] = _bad_name(tmp_path)
    code, output = vq(cli, home, "import-csv", "--symbol", "BTCUSDT", "--interval", "1d", path)
    assert code == 0, output
    assert len(bars(home, BTC_1D)) == len(csv_rows(PERPS / "BTC_USDT_1d.csv"))


def test_import_csv_rejects_bars_before_the_listing_date(
    tmp_path: Path, home: Home, specs: InstrumentSpecs, cli
) -> None:
    assert str(specs.get("FTTUSDT").listed) == "2022-04-15"
    path = tmp_path / "FTT_USDT_1d.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume,datetime\n"
        "1609459200000,5.0,5.5,4.9,5.2,1000.0,2021-01-01\n"
        "1609545600000,5.2,5.6,5.0,5.3,1200.0,2021-01-02\n"
    )
    code, output = vq(cli, home, "import-csv", str(path))
    assert not list(home.catalog.rglob("*.parquet"))
    assert code == 2, output
    assert "listing" in output


@pytest.mark.parametrize("case", ["keep-flat-tail-after-cut", "same-file-for-spot"])
def test_import_csv_reimport_with_other_options_is_not_a_noop(home: Home, cli, case: str) -> None:
    if case == "keep-flat-tail-after-cut":
        source, second, bar_type = PERPS / "FTT_USDT_1d.csv", ["--keep-flat-tail"], FTT_1D
    else:
        source, second, bar_type = (
            PERPS / "BTC_USDT_1d.csv",
            ["--market", "spot"],
            "BTCUSDT.BINANCE-1-DAY-LAST-EXTERNAL",
        )
    expected = len(csv_rows(source))  # every bar of the file, for the instrument of the second run
    code, output = vq(cli, home, "import-csv", str(source))
    assert code == 0, output
    code, output = vq(cli, home, "import-csv", *second, str(source))
    assert code == 0, output
    assert "already imported" not in output
    assert len(bars(home, bar_type)) == expected


def test_import_csv_hourly_then_rebuild_is_byte_identical(home: Home, specs: InstrumentSpecs, cli) -> None:
    near = PERPS / "NEAR_USDT_1h.csv"
    rows = csv_rows(near)
    for name in ("NEAR_USDT_1h.csv", "BTC_USDT_1d.csv", "FTT_USDT_1d.csv"):
        code, output = vq(cli, home, "import-csv", str(PERPS / name))
        assert code == 0, output
    hourly = bars(home, NEAR_1H)
    assert len(hourly) == len(rows) > 40_000
    for i in (0, 1, len(rows) // 2, len(rows) - 1):
        assert hourly[i].ts_init == int(rows[i][0]) * MS + HOUR_NS
        assert ohlcv(hourly[i]) == expected_ohlcv(rows[i])
    assert all(b.ts_init - a.ts_init == HOUR_NS for a, b in itertools.pairwise(hourly))  # no gaps in the file
    assert not (home.catalog / "data" / "bar" / "NEARUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL").exists()

    files = sorted((home.catalog / "data").rglob("*.parquet"))
    before = {f: f.read_bytes() for f in files}
    report = rebuild_from_archive(home, specs)
    assert report.units == 3
    assert report.byte_identical, (report.changed, report.added, report.removed)
    assert report.identical == len(files)
    assert {f: f.read_bytes() for f in sorted((home.catalog / "data").rglob("*.parquet"))} == before


# -- 3-5. slices of ticks and custom data ------------------------------------------------------------

DAY1_MS = 1709251200000  # 2024-03-01 00:00 UTC
BOOK_TICKER_HEADER = "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time"
AGG_HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
METRICS_HEADER = (
    "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
    "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio"
)
STREAMS = [
    Stream("trades", IID),
    Stream("quotes", IID),
    Stream("OiMetrics", IID),
    Stream("MarkPriceBar", IID),
]
SLICE_START = DAY1_MS * MS
SLICE_END = SLICE_START + 3 * DAY_NS - 1  # 2024-03-01 .. 2024-03-03 inclusive
RANK = {"quote": 0, "trade": 1}  # custom data ranks last (2)


def fixture_trade_times(day: str) -> list[int]:
    lines = (UM_DAILY / "aggTrades" / "BTCUSDT" / f"BTCUSDT-aggTrades-{day}.csv").read_text().splitlines()
    return [int(line.split(",")[5]) for line in lines if line[0].isdigit()]


def quote_times() -> list[int]:
    """bookTicker event times (ms): some equal to trade times, to metrics and mark-kline close times,
    and two in the second hour."""
    trades = fixture_trade_times("2024-03-01")
    return [
        DAY1_MS,  # = the 00:00 metrics row
        trades[0],
        trades[3],
        trades[11],
        DAY1_MS + 60_000,  # = the first mark kline's close
        DAY1_MS + 300_000,  # = a metrics row and a mark kline close
        DAY1_MS + 3_600_000 + 1_234,
        DAY1_MS + 4_500_000,  # 01:15, = a metrics row
    ]


def write_extra_source(root: Path) -> Path:
    """Hand-written files: a bookTicker day, plus one aggTrades and one metrics file for 2024-03-03 whose
    rows share timestamps (a trade and an OI row at the same instant)."""
    daily = root / "data" / "futures" / "um" / "daily"
    book = daily / "bookTicker" / "BTCUSDT" / "BTCUSDT-bookTicker-2024-03-01.csv"
    book.parent.mkdir(parents=True)
    lines = [BOOK_TICKER_HEADER]
    for i, event in enumerate(quote_times()):
        lines.append(f"{7_300_000_000 + 11 * i},61150.0,1.{i:03d},61150.1,2.500,{event - 3},{event}")
    book.write_text("\n".join(lines) + "\n")
    day3 = DAY1_MS + 2 * 86_400_000
    agg = daily / "aggTrades" / "BTCUSDT" / "BTCUSDT-aggTrades-2024-03-03.csv"
    agg.parent.mkdir(parents=True)
    agg.write_text(
        f"{AGG_HEADER}\n2056000000,62000.0,0.010,4705000000,4705000000,{day3},true\n"
        f"2056000001,62000.1,0.020,4705000001,4705000002,{day3 + 300_000},false\n"
    )
    metrics = daily / "metrics" / "BTCUSDT" / "BTCUSDT-metrics-2024-03-03.csv"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(
        f"{METRICS_HEADER}\n"
        "2024-03-03 00:00:00,BTCUSDT,84000.1230000000000000,5208007626.0000000000000000,1.4,1.7,1.41,0.9\n"
        "2024-03-03 00:05:00,BTCUSDT,84001.1230000000000000,5208069626.0000000000000000,1.401,1.701,1.411,0.901\n"
    )
    return root


@pytest.fixture(scope="module")
def slice_home(tmp_path_factory: pytest.TempPathFactory, specs: InstrumentSpecs) -> Home:
    tmp = tmp_path_factory.mktemp("slices")
    home = Home(tmp / "home").ensure()
    report = run_ingest(
        home, IngestRequest(str(FIXTURES), ("BTCUSDT",), ("aggTrades", "metrics", "markPriceKlines")), specs
    )
    assert report.bars_written() == {"trades": 40, "metrics": 48, "markPriceKlines": 60}
    extra = write_extra_source(tmp / "extra")
    report = run_ingest(home, IngestRequest(str(extra), ("BTCUSDT",), ("bookTicker", "aggTrades", "metrics")), specs)
    assert report.bars_written() == {"quotes": 8, "trades": 2, "metrics": 2}
    return home


def kind(obj) -> str:
    if isinstance(obj, QuoteTick):
        return "quote"
    if isinstance(obj, TradeTick):
        return "trade"
    assert isinstance(obj, CustomData), type(obj)
    return type(obj.data).__name__


def key(obj) -> tuple:
    """A comparable identity of one slice object (all fields through repr)."""
    return (kind(obj), obj.ts_init, repr(obj.data if isinstance(obj, CustomData) else obj))


def test_load_slice_merges_streams_in_engine_order(slice_home: Home) -> None:
    objs = load_slice(slice_home.catalog, STREAMS, SLICE_START, SLICE_END)
    counts: dict[str, int] = {}
    for o in objs:
        counts[kind(o)] = counts.get(kind(o), 0) + 1
    trades = fixture_trade_times("2024-03-01") + fixture_trade_times("2024-03-02")
    assert counts == {
        "trade": len(trades) + 2,
        "quote": len(quote_times()),
        "BinanceOiMetrics": 48 + 2,
        "BinanceMarkPriceBar": 60,
    }
    ts = [o.ts_init for o in objs]
    assert ts == sorted(ts)
    assert sorted(t.ts_init for t in objs if kind(t) == "trade") == sorted(
        ms * MS for ms in [*trades, DAY1_MS + 2 * 86_400_000, DAY1_MS + 2 * 86_400_000 + 300_000]
    )
    ties = set()
    for a, b in itertools.pairwise(objs):
        if a.ts_init == b.ts_init:
            ra, rb = RANK.get(kind(a), 2), RANK.get(kind(b), 2)
            assert ra <= rb, (kind(a), kind(b), a.ts_init)
            ties.add((ra, rb))
    assert {(0, 1), (0, 2), (1, 2)} <= ties  # every tie-break rule was exercised
    # within the trade stream the catalog order (ts, trade id) is kept
    trade_keys = [(o.ts_init, int(o.trade_id.value)) for o in objs if kind(o) == "trade"]
    assert trade_keys == sorted(trade_keys)


@pytest.mark.parametrize("hour", [0, 1, 24], ids=["03-01T00", "03-01T01", "03-02T00"])
def test_load_slice_of_one_hour_returns_only_that_hour(slice_home: Home, hour: int) -> None:
    full = load_slice(slice_home.catalog, STREAMS, SLICE_START, SLICE_END)
    lo = SLICE_START + hour * HOUR_NS
    hi = lo + HOUR_NS - 1
    part = load_slice(slice_home.catalog, STREAMS, lo, hi)
    assert part
    assert all(lo <= o.ts_init <= hi for o in part)
    assert [key(o) for o in part] == [key(o) for o in full if lo <= o.ts_init <= hi]
    assert len(part) < len(full)
    if hour == 1:
        assert {kind(o) for o in part} == {"quote", "BinanceOiMetrics"}  # trades and klines are in hour 0 only


def test_load_slice_window_size_does_not_change_the_result(slice_home: Home) -> None:
    default = load_slice(slice_home.catalog, STREAMS, SLICE_START, SLICE_END)
    ten_minutes = load_slice(slice_home.catalog, STREAMS, SLICE_START, SLICE_END, window_ns=600 * NS)
    assert len(default) == 160
    assert [key(o) for o in ten_minutes] == [key(o) for o in default]


def test_add_streams_feeds_a_backtest_engine(slice_home: Home, specs: InstrumentSpecs) -> None:
    iid = InstrumentId.from_str(IID)
    received: list[tuple[str, int]] = []

    class Recorder(Actor):
        def on_start(self) -> None:
            self.subscribe_trade_ticks(iid)
            self.subscribe_quote_ticks(iid)
            self.subscribe_data(DataType(BinanceOiMetrics), client_id=ClientId("BINANCE"))

        def on_trade_tick(self, tick: TradeTick) -> None:
            received.append(("trade", tick.ts_init))

        def on_quote_tick(self, tick: QuoteTick) -> None:
            received.append(("quote", tick.ts_init))

        def on_data(self, data) -> None:
            received.append((type(data).__name__, data.ts_init))

    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    try:
        engine.add_venue(Venue("BINANCE"), OmsType.NETTING, AccountType.MARGIN, [Money(1_000_000, USDT)], None)
        engine.add_instrument(instrument(specs.get("BTCUSDT")))
        engine.add_actor(Recorder())
        add_streams(engine, slice_home.catalog, STREAMS, SLICE_START, SLICE_END, window_ns=600 * NS)
        engine.run()
    finally:
        engine.dispose()
    wanted = {"trade", "quote", "BinanceOiMetrics"}
    expected = [(kind(o), o.ts_init) for o in load_slice(slice_home.catalog, STREAMS, SLICE_START, SLICE_END)]
    expected = [e for e in expected if e[0] in wanted]
    assert len(expected) == 42 + 8 + 50
    assert received == expected
    ts = [t for _, t in received]
    assert ts == sorted(ts)
    tied = [(a[0], b[0]) for a, b in itertools.pairwise(received) if a[1] == b[1]]
    assert ("quote", "trade") in tied
    assert ("trade", "quote") not in tied


def test_slice_reads_only_the_files_that_intersect(slice_home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = slice_home.catalog / "data" / "trade_tick" / IID
    day_files = sorted(p.name for p in folder.glob("*.parquet"))
    assert [n[:10] for n in day_files] == ["2024-03-01", "2024-03-02", "2024-03-03"]
    original = ParquetDataCatalog._query_files
    calls: list[tuple[type, list[str]]] = []

    def recording(self, data_cls, identifiers=None, start=None, end=None):
        paths = original(self, data_cls, identifiers, start, end)
        calls.append((data_cls, list(paths)))
        return paths

    monkeypatch.setattr(ParquetDataCatalog, "_query_files", recording)
    one_hour = load_slice(slice_home.catalog, [Stream("trades", IID)], SLICE_START, SLICE_START + HOUR_NS - 1)
    assert len(one_hour) == len(fixture_trade_times("2024-03-01"))
    touched = [Path(p) for _, paths in calls for p in paths]
    assert touched
    assert {p.parent.name for p in touched} == {IID}
    assert {p.name for p in touched} == {day_files[0]}  # never the 2024-03-02 / 03 files

    calls.clear()
    two_days = load_slice(slice_home.catalog, [Stream("trades", IID)], SLICE_START, SLICE_START + 2 * DAY_NS - 1)
    assert len(two_days) == len(fixture_trade_times("2024-03-01")) + len(fixture_trade_times("2024-03-02"))
    assert len(calls) == 48  # one query per hourly window
    for i, (_, paths) in enumerate(calls):
        day = "2024-03-01" if i < 24 else "2024-03-02"
        assert [Path(p).name[:10] for p in paths] == [day], (i, paths)
