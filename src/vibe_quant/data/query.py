"""DuckDB over the catalog: ``vq data sql "SELECT ..."`` and :func:`connect_catalog`.

Views:

* ``bars``: bar_type, instrument_id, timeframe (1m..4h), open_time/close_time (TIMESTAMP,
  UTC), ts_event (ns), open/high/low/close/volume as exact ``DECIMAL(38,16)``;
* ``funding``: instrument_id, funding_time (TIMESTAMP), ts_event (ns), rate (DECIMAL),
  funding_interval_hours;
* ``trades``: instrument_id, time (TIMESTAMP), ts_event, price, size (DECIMAL), aggressor_side
  (BUYER/SELLER), trade_id; ``quotes``: instrument_id, time, ts_event, bid_price, ask_price,
  bid_size, ask_size;
* ``metrics``, ``book_depth``, ``mark_price``, ``index_price``, ``premium_index``: the custom
  data (open interest, percent depth, mark/index/premium klines at close time), exact DECIMAL;
* the state database's tables (:data:`STATE_TABLES`): ``instruments``, ``raw_files``,
  ``ingest_units`` (the data stage) and ``backtest_runs``, ``backtest_results``, ``trades``,
  ``sweep_results`` (backtests and screening runs), e.g. ``SELECT count(*) FROM trades``. Each
  is also ``state.<table>``: where the catalog has trade ticks, ``trades`` is the tick view and
  the backtests' trades are ``state.trades``.

The state tables are copies read with Python's ``sqlite3`` when the connection opens (DuckDB's
sqlite extension is downloaded on first use, and ``vq`` must work offline), typed from the
tables' declared column types: INTEGER -> BIGINT, REAL -> DOUBLE, BOOLEAN -> BOOLEAN,
BLOB -> BLOB, TEXT and JSON -> VARCHAR (DuckDB's JSON functions read the JSON text, e.g.
``parameters->>'strategy'``).

Prices are stored by NautilusTrader as little-endian i128 blobs (value * 10**16). The
``nt_decimal`` macro (:data:`MACROS`) decodes them in plain SQL, so the same definitions can
be pasted into any DuckDB shell.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pyarrow as pa

from vibe_quant.errors import UserError
from vibe_quant.home import Home

_REVERSED_HEX = " || ".join(f"substr(hex(b), {31 - 2 * i}, 2)" for i in range(16))
MACROS = f"""
CREATE OR REPLACE MACRO nt_raw(b) AS ('0x' || {_REVERSED_HEX})::UHUGEINT;
-- two's complement without CASE: DuckDB evaluates both branches of a CASE on constants
CREATE OR REPLACE MACRO nt_i128(b) AS
    (nt_raw(b) & 170141183460469231731687303715884105727::UHUGEINT)::HUGEINT
    + (nt_raw(b) >> 127)::HUGEINT * (-170141183460469231731687303715884105727::HUGEINT - 1);
CREATE OR REPLACE MACRO nt_decimal(b) AS nt_i128(b)::DECIMAL(38, 0) * 0.0000000000000001::DECIMAL(38, 16);
"""

_SPEC = "-([0-9]+)-(MINUTE|HOUR|DAY)-LAST"
_TIMEFRAME = f"""regexp_extract(filename, '{_SPEC}', 1) || CASE regexp_extract(filename, '{_SPEC}', 2)
    WHEN 'MINUTE' THEN 'm' WHEN 'HOUR' THEN 'h' ELSE 'd' END"""
_STEP_MS = f"""CASE regexp_extract(filename, '{_SPEC}', 2)
    WHEN 'DAY' THEN 86400000 WHEN 'HOUR' THEN 3600000 ELSE 60000 END
    * regexp_extract(filename, '{_SPEC}', 1)::BIGINT"""
CUSTOM_VIEWS = {
    "metrics": "custom_binance_oi_metrics",
    "book_depth": "custom_binance_book_depth",
    "mark_price": "custom_binance_mark_price_bar",
    "index_price": "custom_binance_index_price_bar",
    "premium_index": "custom_binance_premium_index_bar",
}


# State database tables exposed as views (and as state.<table>), in this order.
STATE_TABLES = ("instruments", "raw_files", "ingest_units", "backtest_runs", "backtest_results", "trades",
                "sweep_results")  # fmt: skip
_ARROW_TYPES = {"INTEGER": pa.int64(), "REAL": pa.float64(), "BOOLEAN": pa.bool_(), "BLOB": pa.binary()}


def _state_table(db: sqlite3.Connection, table: str) -> pa.Table:
    """All of `table` as an Arrow table typed from its declared column types."""
    declared = [(row[1], (row[2] or "").upper()) for row in db.execute(f"PRAGMA table_info({table})")]
    rows = db.execute(f"SELECT * FROM {table}").fetchall()
    columns = {}
    for i, (name, kind) in enumerate(declared):
        values = [row[i] for row in rows]
        arrow_type = _ARROW_TYPES.get(kind, pa.string())
        if kind == "BOOLEAN":
            values = [None if v is None else bool(v) for v in values]
        try:
            columns[name] = pa.array(values, arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # SQLite does not enforce declared types: keep the text
            columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(columns)


class CatalogQuery:
    """A DuckDB connection with the catalog views registered."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def query_df(self, sql: str):
        """Run `sql` and return a pandas DataFrame.

        Raises
        ------
        UserError
            If DuckDB rejects the query (syntax, unknown column or view, ...).
        """
        try:
            return self.con.sql(sql).df()
        except duckdb.Error as exc:
            raise UserError(f"SQL failed: {exc}".replace("\n", " ")) from exc

    def tables(self) -> list[str]:
        """The views a query can name, sorted (``state.<table>`` copies and ``_`` helpers not listed)."""
        found = self.con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'")
        return sorted(name for (name,) in found.fetchall() if not name.startswith("_"))


@contextmanager
def connect_catalog(home: Home) -> Iterator[CatalogQuery]:
    """Yield a :class:`CatalogQuery` over `home`'s catalog and state database."""
    con = duckdb.connect()

    def literal(path) -> str:  # a SQL string literal; a quote in a path must not end it
        return "'" + str(path).replace("'", "''") + "'"

    try:
        con.execute(MACROS)
        bars_glob = home.catalog / "data" / "bar" / "*" / "*.parquet"
        if any((home.catalog / "data" / "bar").glob("*/*.parquet")):
            con.execute(f"""
                CREATE VIEW bars AS SELECT
                    regexp_extract(filename, '/bar/([^/]+)/', 1) AS bar_type,
                    regexp_extract(filename, '/bar/(.+)-[0-9]+-(MINUTE|HOUR|DAY)-LAST-[A-Z]+/', 1) AS instrument_id,
                    {_TIMEFRAME} AS timeframe,
                    make_timestamp((ts_event // 1000)::BIGINT - ({_STEP_MS}) * 1000) AS open_time,
                    make_timestamp((ts_event // 1000)::BIGINT) AS close_time,
                    ts_event,
                    nt_decimal(open) AS open, nt_decimal(high) AS high, nt_decimal(low) AS low,
                    nt_decimal(close) AS close, nt_decimal(volume) AS volume
                FROM read_parquet({literal(bars_glob)}, filename = true)
            """)
        funding_dir = home.catalog / "data" / "funding_rate_update"
        if any(funding_dir.glob("*/*.parquet")):
            con.execute(f"""
                CREATE VIEW funding AS SELECT instrument_id::VARCHAR AS instrument_id,
                    make_timestamp((ts_event // 1000)::BIGINT) AS funding_time, ts_event, rate,
                    funding_interval_hours
                FROM read_parquet({literal(funding_dir / "*" / "*.parquet")})
            """)
        for view, kind, cols in (
            ("trades", "trade_tick", "nt_decimal(price) AS price, nt_decimal(size) AS size, "
             "CASE aggressor_side WHEN 1 THEN 'BUYER' WHEN 2 THEN 'SELLER' ELSE 'NONE' END AS aggressor_side, trade_id"),
            ("quotes", "quote_tick", "nt_decimal(bid_price) AS bid_price, nt_decimal(ask_price) AS ask_price, "
             "nt_decimal(bid_size) AS bid_size, nt_decimal(ask_size) AS ask_size"),
        ):  # fmt: skip
            if any((home.catalog / "data" / kind).glob("*/*.parquet")):
                con.execute(f"""
                    CREATE VIEW {view} AS SELECT
                        regexp_extract(filename, '/{kind}/([^/]+)/', 1) AS instrument_id,
                        make_timestamp((ts_event // 1000)::BIGINT) AS time, ts_event, {cols}
                    FROM read_parquet({literal(home.catalog / "data" / kind / "*" / "*.parquet")}, filename = true)
                """)
        for view, kind in CUSTOM_VIEWS.items():
            if any((home.catalog / "data" / kind).glob("*/*.parquet")):
                con.execute(f"""
                    CREATE VIEW {view} AS SELECT instrument_id::VARCHAR AS instrument_id,
                        make_timestamp((ts_event // 1000)::BIGINT) AS time, * EXCLUDE (instrument_id)
                    FROM read_parquet({literal(home.catalog / "data" / kind / "*" / "*.parquet")})
                """)
        if home.db_path.exists():
            con.execute("CREATE SCHEMA state")
            taken = set(CatalogQuery(con).tables())  # catalog views keep their names (trades: ticks)
            db = sqlite3.connect(f"file:{home.db_path}?mode=ro", uri=True)
            try:
                present = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                for table in STATE_TABLES:
                    if table not in present:
                        continue
                    con.register(f"_{table}", _state_table(db, table))
                    con.execute(f"CREATE VIEW state.{table} AS SELECT * FROM _{table}")
                    if table not in taken:
                        con.execute(f"CREATE VIEW {table} AS SELECT * FROM _{table}")
            finally:
                db.close()
        yield CatalogQuery(con)
    finally:
        con.close()
