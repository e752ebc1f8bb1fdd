"""DuckDB over the catalog: the views decode prices exactly as NautilusTrader does."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from nautilus_trader.model.data import BarType
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tests.conftest import FUNDING_FILE, MIRROR, kline_zip
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.data.parse import read_member
from vibe_quant.data.query import MACROS, STATE_TABLES, connect_catalog
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs

AUG_2023_MINUTES = 31 * 1440
TIMEFRAMES = [("1m", "1-MINUTE", 1), ("5m", "5-MINUTE", 5), ("15m", "15-MINUTE", 15), ("1h", "1-HOUR", 60), ("4h", "4-HOUR", 240)]  # fmt: skip


@pytest.fixture
def fil_home(home: Home, specs: InstrumentSpecs) -> Home:
    """FILUSDT 1m klines of 2023-08 (real archive file), ingested."""
    request = IngestRequest(
        source=str(MIRROR), symbols=("FILUSDT",), start=dt.date(2023, 8, 1), end=dt.date(2023, 9, 1)
    )
    report = run_ingest(home, request, specs)
    assert report.bars_written()["1m"] == AUG_2023_MINUTES
    return home


@pytest.fixture
def funding_home(home: Home, specs: InstrumentSpecs) -> Home:
    """BTCUSDT funding rates of 2026-04 (real archive file), ingested."""
    request = IngestRequest(
        source=str(MIRROR),
        symbols=("BTCUSDT",),
        datasets=("fundingRate",),
        start=dt.date(2026, 4, 1),
        end=dt.date(2026, 5, 1),
    )
    report = run_ingest(home, request, specs)
    assert report.bars_written() == {"funding": 90}
    return home


def rows(home: Home, sql: str) -> list[tuple]:
    """Fetch through DuckDB directly: ``query_df`` goes through pandas, which turns DECIMAL into float."""
    with connect_catalog(home) as q:
        return q.con.sql(sql).fetchall()


def ns_to_datetime(ns: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ns // 1000)


# -- bars -------------------------------------------------------------------------------------


def test_views_and_column_types(fil_home: Home) -> None:
    with connect_catalog(fil_home) as q:
        assert [v for v in q.tables() if not v.startswith("_")] == [
            "backtest_results", "backtest_runs", "bars", "ingest_units", "instruments", "raw_files", "sweep_results",
            "trades",
        ]  # fmt: skip
        described = {name: kind for name, kind, *_ in q.con.sql("DESCRIBE bars").fetchall()}
    assert described == {
        "bar_type": "VARCHAR",
        "instrument_id": "VARCHAR",
        "timeframe": "VARCHAR",
        "open_time": "TIMESTAMP",
        "close_time": "TIMESTAMP",
        "ts_event": "UBIGINT",
        "open": "DECIMAL(38,16)",
        "high": "DECIMAL(38,16)",
        "low": "DECIMAL(38,16)",
        "close": "DECIMAL(38,16)",
        "volume": "DECIMAL(38,16)",
    }


def test_first_1m_row_is_the_first_raw_line(fil_home: Home) -> None:
    # Raw line 2 of FILUSDT-1m-2023-08.csv: 1690848000000,4.255,4.256,4.252,4.252,25259.1,1690848059999,...
    first = rows(
        fil_home,
        "SELECT bar_type, instrument_id, open_time, close_time, ts_event, open, high, low, close, volume "
        "FROM bars WHERE timeframe = '1m' ORDER BY ts_event LIMIT 1",
    )
    assert first == [
        (
            "FILUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL",
            "FILUSDT-PERP.BINANCE",
            dt.datetime(2023, 8, 1, 0, 0),
            dt.datetime(2023, 8, 1, 0, 1),
            1_690_848_060_000_000_000,
            Decimal("4.255"),
            Decimal("4.256"),
            Decimal("4.252"),
            Decimal("4.252"),
            Decimal("25259.1"),
        )
    ]
    assert isinstance(first[0][5], Decimal)


def test_bar_counts_per_timeframe(fil_home: Home) -> None:
    counts = dict(rows(fil_home, "SELECT timeframe, count(*) FROM bars GROUP BY 1"))
    assert counts == {label: AUG_2023_MINUTES // minutes for label, _, minutes in TIMEFRAMES}


def test_every_1m_bar_equals_the_raw_csv(fil_home: Home) -> None:
    path = kline_zip("FILUSDT", "2023-08")
    reader = csv.reader(io.StringIO(read_member(path.read_bytes(), path.name).decode()))
    next(reader)
    raw = [
        (
            dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=int(r[0])),
            dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=int(r[6]) + 1),
            *(Decimal(v) for v in r[1:6]),
        )
        for r in reader
    ]
    got = rows(
        fil_home,
        "SELECT open_time, close_time, open, high, low, close, volume FROM bars WHERE timeframe = '1m' ORDER BY ts_event",
    )
    assert len(raw) == AUG_2023_MINUTES
    assert got == raw


@pytest.mark.parametrize(("label", "spec", "minutes"), TIMEFRAMES, ids=[t[0] for t in TIMEFRAMES])
def test_bars_view_decodes_exactly_like_nautilus(fil_home: Home, label: str, spec: str, minutes: int) -> None:
    bar_type = BarType.from_str(f"FILUSDT-PERP.BINANCE-{spec}-LAST-EXTERNAL")
    expected = [
        (
            str(bar_type),
            bar.ts_event,
            ns_to_datetime(bar.ts_event),
            ns_to_datetime(bar.ts_event) - dt.timedelta(minutes=minutes),
            bar.open.as_decimal(),
            bar.high.as_decimal(),
            bar.low.as_decimal(),
            bar.close.as_decimal(),
            bar.volume.as_decimal(),
        )
        for bar in ParquetDataCatalog(str(fil_home.catalog)).bars([str(bar_type)])
    ]
    got = rows(
        fil_home,
        "SELECT bar_type, ts_event, close_time, open_time, open, high, low, close, volume "
        f"FROM bars WHERE timeframe = '{label}' ORDER BY ts_event",
    )
    assert len(expected) == AUG_2023_MINUTES // minutes
    assert got == expected


def test_first_4h_bar(fil_home: Home) -> None:
    first = rows(
        fil_home,
        "SELECT open_time, close_time, open, high, low, close, volume FROM bars "
        "WHERE timeframe = '4h' ORDER BY ts_event LIMIT 1",
    )
    assert first == [
        (
            dt.datetime(2023, 8, 1, 0, 0),
            dt.datetime(2023, 8, 1, 4, 0),
            Decimal("4.255"),
            Decimal("4.284"),
            Decimal("4.064"),
            Decimal("4.188"),
            Decimal("9856881.5"),
        )
    ]


# -- the nt_decimal macros --------------------------------------------------------------------

RAW_VALUES = [
    -1,
    -123456789 * 10**8,
    -(42550 * 10**13),  # -4.255
    -(2**100),
    2**100,
    0,
    1,
    42550 * 10**13,  # 4.255
    10**16,
]


def blob(value: int) -> bytes:
    return value.to_bytes(16, "little", signed=True)


def scaled(value: int) -> Decimal:
    """``value * 10**-16`` exactly (``Decimal.scaleb`` would round to the 28-digit context)."""
    return Decimal(f"{value}E-16")


def test_nt_decimal_decodes_blobs_from_a_column() -> None:
    con = duckdb.connect()
    try:
        con.execute(MACROS)
        con.execute("CREATE TABLE t (i INTEGER, b BLOB)")
        con.executemany("INSERT INTO t VALUES (?, ?)", [(i, blob(v)) for i, v in enumerate(RAW_VALUES)])
        got = con.sql("SELECT nt_i128(b)::VARCHAR, nt_decimal(b) FROM t ORDER BY i").fetchall()
    finally:
        con.close()
    assert got == [(str(v), scaled(v)) for v in RAW_VALUES]
    assert got[1][1] == Decimal("-1.23456789")
    assert got[0][1] == Decimal("-1E-16")
    assert got[3][1] == Decimal("-126765060022822.9401496703205376")


@pytest.mark.parametrize("value", [-1, -123456789 * 10**8, -(42550 * 10**13), -(2**100), 2**100, 0, 1, 42550 * 10**13])
def test_nt_decimal_decodes_literal_blobs(value: int) -> None:
    con = duckdb.connect()
    try:
        con.execute(MACROS)
        literal = "'" + "".join(f"\\x{byte:02x}" for byte in blob(value)) + "'::BLOB"
        got = con.execute(f"SELECT nt_i128({literal})::VARCHAR, nt_decimal({literal})").fetchone()
    finally:
        con.close()
    assert got == (str(value), scaled(value))


# -- funding ----------------------------------------------------------------------------------


def test_funding_view_has_every_rate_exactly(funding_home: Home) -> None:
    got = rows(
        funding_home,
        "SELECT instrument_id, funding_time, ts_event, rate, funding_interval_hours FROM funding ORDER BY ts_event",
    )
    reader = csv.reader(io.StringIO(read_member(FUNDING_FILE.read_bytes(), FUNDING_FILE.name).decode()))
    assert next(reader) == ["calc_time", "funding_interval_hours", "last_funding_rate"]
    expected = [
        (
            "BTCUSDT-PERP.BINANCE",
            dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=int(ms)),
            int(ms) * 1_000_000,
            Decimal(rate),
            int(hours),
        )
        for ms, hours, rate in reader
    ]
    assert len(got) == 90
    assert got[0][1:4] == (dt.datetime(2026, 4, 1), 1_775_001_600_000_000_000, Decimal("-0.00003449"))
    assert got[0][3] == Decimal("-0.00003449")
    assert got[3][1] == dt.datetime(2026, 4, 2, 0, 0, 0, 3000)  # Binance stamped this one 3 ms late
    assert got == expected


def test_funding_view_absent_without_funding_data(fil_home: Home) -> None:
    with connect_catalog(fil_home) as q:
        assert "funding" not in q.tables()
        with pytest.raises(UserError, match=r"^SQL failed: Catalog Error: Table with name funding does not exist"):
            q.query_df("SELECT * FROM funding")


# -- state tables and errors ------------------------------------------------------------------


def test_state_tables_are_queryable(fil_home: Home) -> None:
    path = kline_zip("FILUSDT", "2023-08")
    assert rows(
        fil_home,
        "SELECT canonical_id, nautilus_id, venue_symbol, tick_size, step_size, price_precision, size_precision "
        "FROM instruments",
    ) == [("BINANCE:FILUSDT:PERP", "FILUSDT-PERP.BINANCE", "FILUSDT", "0.001", "0.1", 3, 1)]
    assert rows(fil_home, "SELECT sha256, dataset, symbol, original_name, size_bytes, rows FROM raw_files") == [
        (hashlib.sha256(path.read_bytes()).hexdigest(), "klines", "FILUSDT", path.name, path.stat().st_size, 44640)
    ]
    assert rows(fil_home, "SELECT dataset, symbol, rows_in, duplicates FROM ingest_units") == [
        ("klines", "FILUSDT", 44640, 0)
    ]
    joined = rows(
        fil_home,
        "SELECT i.venue_symbol, count(*) FROM bars b JOIN instruments i ON b.instrument_id = i.nautilus_id "
        "WHERE b.timeframe = '1h' GROUP BY 1",
    )
    assert joined == [("FILUSDT", 744)]


def state_rows(home: Home) -> dict[str, int]:
    """A screening run with one sweep point and a backtest run with results and two trades, stored."""
    from vibe_quant.state import StateManager

    with StateManager(home.db_path) as db:
        run = {"run_mode": "validation", "symbols": ["FILUSDT"], "timeframe": "15m", "start_date": "2023-08-01",
               "end_date": "2023-08-14", "parameters": {"strategy": "ema_cross", "params": {"fast": 10}}}  # fmt: skip
        backtest = db.insert("backtest_runs", {**run, "status": "completed", "run_hash": "ab" * 8})
        db.insert("backtest_results", {"run_id": backtest, "sharpe_ratio": 1.25, "total_trades": 2})
        for pnl, exit_time in ((10.5, "2023-08-02T00:00:00Z"), (-3.0, None)):
            db.insert("trades", {"run_id": backtest, "symbol": "FILUSDT", "direction": "LONG", "entry_time": "2023-08-01T00:15:00Z",
                                 "exit_time": exit_time, "entry_price": 4.1, "quantity": 100.0, "net_pnl": pnl})  # fmt: skip
        sweep = db.insert("backtest_runs", {**run, "run_mode": "screening", "sweep_spec": {"max_points": 0}})
        db.insert("sweep_results", {"run_id": sweep, "parameters": {"fast": 10}, "sharpe_ratio": 0.5, "total_trades": 7,
                                    "is_pareto_optimal": 1, "passed_hard_filters": 0, "daily_returns": b"\x00" * 8})  # fmt: skip
    return {"backtest": backtest, "sweep": sweep}


def test_backtest_and_screening_tables_are_queryable(home: Home) -> None:
    ids = state_rows(home)
    assert rows(home, "SELECT count(*) FROM trades") == [(2,)]
    assert rows(home, "SELECT count(*) FROM state.trades WHERE exit_time IS NULL") == [(1,)]
    assert rows(home, "SELECT r.id, r.run_hash, b.sharpe_ratio, b.total_trades, sum(t.net_pnl) FROM backtest_runs r "
                      "JOIN backtest_results b ON b.run_id = r.id JOIN trades t ON t.run_id = r.id GROUP BY ALL") == [
        (ids["backtest"], "ab" * 8, 1.25, 2, 7.5)
    ]  # fmt: skip
    # JSON columns are text that DuckDB's JSON functions read; booleans are booleans; NULL integers stay integers
    assert rows(home, "SELECT parameters->>'strategy', parameters->'params'->>'fast', symbols FROM backtest_runs "
                      "ORDER BY id") == [("ema_cross", "10", '["FILUSDT"]')] * 2  # fmt: skip
    assert rows(home, "SELECT run_id, parameters->>'fast', is_pareto_optimal, passed_hard_filters, daily_returns, "
                      "passed_pbo FROM sweep_results") == [(ids["sweep"], "10", True, False, b"\x00" * 8, None)]  # fmt: skip
    with connect_catalog(home) as q:
        types = {name: kind for name, kind, *_ in q.con.sql("DESCRIBE sweep_results").fetchall()}
        assert q.tables() == sorted(STATE_TABLES)  # no catalog data: the state tables only
    assert (types["id"], types["sharpe_ratio"], types["total_trades"], types["is_pareto_optimal"]) == (
        "BIGINT", "DOUBLE", "BIGINT", "BOOLEAN",
    )  # fmt: skip
    assert (types["parameters"], types["daily_returns"], types["point_key"]) == ("VARCHAR", "BLOB", "VARCHAR")


def test_trade_ticks_keep_the_trades_name_and_backtest_trades_are_state_trades(
    home: Home, specs: InstrumentSpecs
) -> None:
    from tests.data.test_ticks import FIXTURES

    report = run_ingest(home, IngestRequest(str(FIXTURES), ("BTCUSDT",), ("aggTrades",)), specs)
    assert report.bars_written() == {"trades": 40}
    state_rows(home)
    assert rows(home, "SELECT count(*), min(aggressor_side) FROM trades") == [(40, "BUYER")]  # the ticks
    assert rows(home, "SELECT count(*), sum(net_pnl) FROM state.trades") == [(2, 7.5)]  # the backtests'


def test_query_df_returns_a_frame(fil_home: Home) -> None:
    with connect_catalog(fil_home) as q:
        frame = q.query_df("SELECT timeframe, count(*) AS n FROM bars GROUP BY 1 ORDER BY n DESC")
    assert frame.to_dict("records")[:2] == [{"timeframe": "1m", "n": 44640}, {"timeframe": "5m", "n": 8928}]


@pytest.mark.parametrize(
    ("sql", "start"),
    [
        ("SELEC 1", 'SQL failed: Parser Error: syntax error at or near "SELEC"'),
        ("SELECT nope FROM bars", 'SQL failed: Binder Error: Referenced column "nope" not found'),
        ("SELECT * FROM quotes", "SQL failed: Catalog Error: Table with name quotes does not exist"),
    ],
    ids=["syntax", "unknown-column", "unknown-view"],
)
def test_bad_query_raises_user_error(fil_home: Home, sql: str, start: str) -> None:
    with connect_catalog(fil_home) as q:
        with pytest.raises(UserError) as excinfo:
            q.query_df(sql)
        assert excinfo.type is UserError
        assert str(excinfo.value).startswith(start)
        assert "\n" not in str(excinfo.value)
        assert q.query_df("SELECT 1 AS ok").to_dict("records") == [{"ok": 1}]  # the connection still works


def test_empty_home_has_no_bar_view(home: Home) -> None:
    with connect_catalog(home) as q:
        assert q.tables() == []
        with pytest.raises(UserError, match=r"^SQL failed: Catalog Error: Table with name bars does not exist"):
            q.query_df("SELECT * FROM bars")


def test_home_path_with_a_quote(tmp_path: Path, specs: InstrumentSpecs) -> None:
    home = Home(tmp_path / "o'neil" / "home").ensure()
    request = IngestRequest(
        source=str(MIRROR),
        symbols=("FILUSDT",),
        datasets=("klines",),
        start=dt.date(2023, 8, 1),
        end=dt.date(2023, 9, 1),
    )
    run_ingest(home, request, specs)
    assert rows(home, "SELECT count(*) FROM bars WHERE timeframe = '1m'") == [(44640,)]
