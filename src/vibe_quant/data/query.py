"""DuckDB over the catalog: ``vq data sql "SELECT ..."`` and :func:`connect_catalog`.

Views:

* ``bars``: bar_type, instrument_id, timeframe (1m..4h), open_time/close_time (TIMESTAMP,
  UTC), ts_event (ns), open/high/low/close/volume as exact ``DECIMAL(38,16)``;
* ``funding``: instrument_id, funding_time (TIMESTAMP), ts_event (ns), rate (DECIMAL),
  funding_interval_hours;
* ``instruments``, ``raw_files``, ``ingest_units``: the state database's tables.

Prices are stored by NautilusTrader as little-endian i128 blobs (value * 10**16). The
``nt_decimal`` macro (:data:`MACROS`) decodes them in plain SQL, so the same definitions can
be pasted into any DuckDB shell.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

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

_TIMEFRAME = """CASE regexp_extract(filename, '-([0-9]+-(MINUTE|HOUR))-LAST', 1)
    WHEN '1-MINUTE' THEN '1m' WHEN '5-MINUTE' THEN '5m' WHEN '15-MINUTE' THEN '15m'
    WHEN '1-HOUR' THEN '1h' WHEN '4-HOUR' THEN '4h'
    ELSE regexp_extract(filename, '-([0-9]+-(MINUTE|HOUR))-LAST', 1) END"""
_STEP_MS = """CASE regexp_extract(filename, '-([0-9]+)-(MINUTE|HOUR)-LAST', 2)
    WHEN 'HOUR' THEN 3600000 ELSE 60000 END * regexp_extract(filename, '-([0-9]+)-(MINUTE|HOUR)-LAST', 1)::BIGINT"""


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
        return sorted(r[0] for r in self.con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall())


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
                    regexp_extract(filename, '/bar/(.+)-[0-9]+-(MINUTE|HOUR)-LAST-[A-Z]+/', 1) AS instrument_id,
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
        if home.db_path.exists():
            import pandas as pd

            with sqlite3.connect(f"file:{home.db_path}?mode=ro", uri=True) as db:
                for table in ("instruments", "raw_files", "ingest_units"):
                    frame = pd.read_sql_query(f"SELECT * FROM {table}", db)
                    con.register(f"_{table}", frame)
                    con.execute(f"CREATE VIEW {table} AS SELECT * FROM _{table}")
        yield CatalogQuery(con)
    finally:
        con.close()
