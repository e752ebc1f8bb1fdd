"""Tick datasets (aggTrades, trades, bookTicker) -> TradeTick / QuoteTick catalog files.

Checked against hand-built NautilusTrader objects and ``ParquetDataCatalog.write_data``'s own
encoding, real goldens (a COIN-M aggTrades day, a USD-M bookTicker sample), the per-dataset
manifest statistics, chunked output files, ordering and duplicate rules, user errors through the
``vq`` CLI, determinism, rebuild from the raw lake and the raw lake itself.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import logging
import random
import shutil
import stat
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import InstrumentId, TradeId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog

import vibe_quant.data.ticks as ticks
from tests.conftest import MIRROR, PROJECT, SHARED_DATA
from tests.data.test_ingest import db_counts, snapshot
from vibe_quant.data.catalog import data_dir, interval_filename, parse_interval_filename
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.data.rebuild import rebuild_from_archive
from vibe_quant.errors import DataFileError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager

FIXTURES = PROJECT / "tests" / "fixtures" / "binance"
UM_AGG = FIXTURES / "data" / "futures" / "um" / "daily" / "aggTrades" / "BTCUSDT"
AGG_DAY1 = UM_AGG / "BTCUSDT-aggTrades-2024-03-01.csv"  # header
AGG_DAY2 = UM_AGG / "BTCUSDT-aggTrades-2024-03-02.csv"  # headerless
SPOT_AGG = FIXTURES / "data" / "spot" / "daily" / "aggTrades" / "BTCUSDT" / "BTCUSDT-aggTrades-2024-03-01.csv"
CM_DAY = MIRROR / "data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip"
BOOK_SAMPLE = SHARED_DATA / "samples" / "BTCUSDT-bookTicker-2023-10-02-short.csv"
BOOK_NAME = "BTCUSDT-bookTicker-2023-10-02.csv"  # the official name of that day's file

UM_IID, CM_IID, SPOT_IID = "BTCUSDT-PERP.BINANCE", "BTCUSD-PERP.BINANCE", "BTCUSDT.BINANCE"
AGG_HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
NS_PER_MS = 1_000_000
DAY_NS = 86_400 * 10**9
CM_DAY_START_NS = 1_778_198_400_000_000_000  # 2026-05-08T00:00Z
BOOK_DAY_START_NS = 1_696_204_800_000_000_000  # 2023-10-02T00:00Z
DAY2_MS = 1_709_337_600_000  # 2024-03-02T00:00Z
SYNTH_ID = 2_055_187_654  # first agg id of the 2024-03-02 fixture


# -- helpers ------------------------------------------------------------------------------------


def exact(text: str, precision: int) -> str:
    """`text` written with `precision` decimals; fails (never rounds) if that would change it."""
    value = Decimal(text)
    fixed = value.quantize(Decimal(1).scaleb(-precision))
    assert fixed == value, f"{text} does not fit precision {precision}"
    return str(fixed)


def data_rows(path: Path) -> list[list[str]]:
    """CSV rows of `path` (a .csv or a one-member .zip) without the header row if there is one."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            text = zf.read(zf.namelist()[0]).decode()
    else:
        text = path.read_text()
    rows = list(csv.reader(io.StringIO(text)))
    return rows[1:] if not rows[0][0][:1].isdigit() else rows


def hand_trades(rows: list[list[str]], iid: str, pp: int, sp: int, ts_scale: int = NS_PER_MS) -> list[TradeTick]:
    """TradeTicks built by hand from aggTrades rows (id, price, qty, first, last, time, maker[, best])."""
    instrument = InstrumentId.from_str(iid)
    out = []
    for r in rows:
        ts = int(r[5]) * ts_scale
        side = AggressorSide.SELLER if r[6].lower() == "true" else AggressorSide.BUYER
        out.append(
            TradeTick(
                instrument,
                Price.from_str(exact(r[1], pp)),
                Quantity.from_str(exact(r[2], sp)),
                side,
                TradeId(r[0]),
                ts,
                ts,
            )
        )
    return out


def hand_quotes(rows: list[list[str]], iid: str, pp: int, sp: int) -> list[QuoteTick]:
    """QuoteTicks built by hand from bookTicker rows, stamped at event_time (else transaction_time)."""
    instrument = InstrumentId.from_str(iid)
    out = []
    for r in rows:
        ts = int(r[6] or r[5]) * NS_PER_MS
        out.append(
            QuoteTick(
                instrument,
                Price.from_str(exact(r[1], pp)),
                Price.from_str(exact(r[3], pp)),
                Quantity.from_str(exact(r[2], sp)),
                Quantity.from_str(exact(r[4], sp)),
                ts,
                ts,
            )
        )
    return out


def trade_fields(t: TradeTick) -> tuple:
    # Field tuples, not ``==``: NautilusTrader's tick equality is not reliable across objects.
    return (
        t.instrument_id.value,
        str(t.price),
        t.price.precision,
        str(t.size),
        t.size.precision,
        int(t.aggressor_side),
        t.trade_id.value,
        t.ts_event,
        t.ts_init,
    )


def quote_fields(q: QuoteTick) -> tuple:
    return (
        q.instrument_id.value,
        str(q.bid_price),
        str(q.ask_price),
        str(q.bid_size),
        str(q.ask_size),
        q.bid_price.precision,
        q.bid_size.precision,
        q.ts_event,
        q.ts_init,
    )


def ingest(
    home: Home,
    source: Path | str,
    specs: InstrumentSpecs,
    symbol: str = "BTCUSDT",
    datasets: tuple[str, ...] = ("aggTrades",),
    market: str = "um",
    start: dt.date | None = None,
    end: dt.date | None = None,
):
    return run_ingest(home, IngestRequest(str(source), (symbol,), datasets, start, end, market=market), specs)


def manifest(home: Home) -> dict:
    return json.loads((home.catalog / "manifest.json").read_text())


def tick_files(home: Home, kind: str, iid: str) -> list[Path]:
    """The catalog files of one tick stream, in interval order."""
    directory = data_dir(home.catalog, kind, iid)
    return sorted(directory.glob("*.parquet"), key=lambda p: parse_interval_filename(p.name))


def read_stream(home: Home, kind: str, iid: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in tick_files(home, kind, iid)])


def catalog_trades(home: Home, iid: str) -> list[TradeTick]:
    return ParquetDataCatalog(str(home.catalog)).trade_ticks([iid])


def write_csv(folder: Path, name: str, rows: list[list[str]], header: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ([header] if header else []) + [",".join(r) for r in rows]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def synthetic_agg(n: int, per_ms: int = 3) -> list[list[str]]:
    """`n` made-up USD-M aggTrades rows on 2024-03-02, `per_ms` consecutive ids sharing one ms."""
    rows = []
    for i in range(n):
        ts = DAY2_MS + 1_000 + (i // per_ms) * 7
        price = f"{62_000 + (i * 37) % 500}.{i % 10}"
        qty = f"0.{(i * 13) % 997 + 1:03d}"
        first = 4_703_812_345 + 2 * i
        maker = "true" if i % 3 else "false"
        rows.append([str(SYNTH_ID + i), price, qty, str(first), str(first + 1), str(ts), maker])
    return rows


def sort_key(row: list[str]) -> tuple[int, int]:
    return int(row[5]), int(row[0])


def descents(rows: list[list[str]], key: Callable = sort_key) -> int:
    keys = [key(r) for r in rows]
    return sum(1 for a, b in itertools.pairwise(keys) if b < a)


def unit_stats(home: Home, **where) -> list[dict]:
    with StateManager(home.db_path) as db:
        units = db.find("ingest_units", order_by="period_start_ns", **where)
    return [u["stats"] if isinstance(u["stats"], dict) else json.loads(u["stats"]) for u in units]


def book_source(tmp_path: Path, rows: list[list[str]] | None = None) -> Path:
    """A source folder holding a bookTicker file under its official name (the real sample by default)."""
    folder = tmp_path / "book-src" / "BTCUSDT"
    folder.mkdir(parents=True)
    if rows is None:
        shutil.copy(BOOK_SAMPLE, folder / BOOK_NAME)
    else:
        header = BOOK_SAMPLE.read_text().splitlines()[0]
        write_csv(folder, BOOK_NAME, rows, header)
    return folder.parent


def no_staging_left(home: Home) -> bool:
    return not any(p.name == ".staging" for root in (home.catalog, home.archive) for p in root.rglob(".staging"))


# -- 1. encoding parity with NautilusTrader -------------------------------------------------------


def test_fixture_agg_trades_equal_hand_built_ticks_and_nautilus_encoding(
    home: Home, tmp_path: Path, specs: InstrumentSpecs
) -> None:
    spec = specs.get("BTCUSDT", "um")
    assert (spec.price_precision, spec.size_precision) == (2, 3)
    report = ingest(home, FIXTURES, specs)
    assert report.bars_written() == {"trades": 40}

    got = catalog_trades(home, UM_IID)
    want = hand_trades(data_rows(AGG_DAY1), UM_IID, 2, 3) + hand_trades(data_rows(AGG_DAY2), UM_IID, 2, 3)
    assert len(want) == 40
    assert [trade_fields(t) for t in got] == [trade_fields(t) for t in want]
    first = got[0]
    assert (str(first.price), str(first.size), first.aggressor_side, first.trade_id.value) == (
        "61150.10", "0.005", AggressorSide.SELLER, "2054000000",
    )  # fmt: skip
    assert first.ts_event == first.ts_init == 1709251200591 * NS_PER_MS

    # Our Parquet file for a day == NautilusTrader's own write_data output for the same ticks.
    for day, path in (("2024-03-01", AGG_DAY1), ("2024-03-02", AGG_DAY2)):
        reference = tmp_path / f"nautilus-{day}"
        ParquetDataCatalog(str(reference)).write_data(hand_trades(data_rows(path), UM_IID, 2, 3))
        [theirs_path] = (reference / "data" / "trade_tick").rglob("*.parquet")
        [ours_path] = [f for f in tick_files(home, "trade_tick", UM_IID) if f.name.startswith(day)]
        ours, theirs = pq.read_table(ours_path), pq.read_table(theirs_path)
        assert ours.schema.equals(theirs.schema, check_metadata=True), (ours.schema, theirs.schema)
        assert ours.schema.metadata == theirs.schema.metadata == {
            b"instrument_id": UM_IID.encode(), b"price_precision": b"2", b"size_precision": b"3",
        }  # fmt: skip
        assert ours.num_rows == theirs.num_rows == 20
        assert ours.equals(theirs)


# -- 2. real COIN-M day ---------------------------------------------------------------------------


def test_real_coin_m_agg_trades_day_golden(home: Home, specs: InstrumentSpecs) -> None:
    report = ingest(home, MIRROR, specs, symbol="BTCUSD_PERP", market="cm")
    assert report.bars_written() == {"trades": 105_280}
    got = catalog_trades(home, CM_IID)
    assert len(got) == 105_280
    first, last = got[0], got[-1]
    assert first.instrument_id.value == CM_IID
    # is_buyer_maker=false: the buyer crossed the spread
    assert (str(first.price), str(first.size), first.aggressor_side, first.trade_id.value) == (
        "79972.8", "542", AggressorSide.BUYER, "480537903",
    )  # fmt: skip
    assert first.ts_event == first.ts_init == 1_778_198_400_020_000_000
    assert CM_DAY_START_NS <= last.ts_event < CM_DAY_START_NS + DAY_NS
    assert (str(last.price), str(last.size), last.trade_id.value, last.ts_event) == (
        "80153.7", "32", "480643182", 1_778_284_799_655_000_000,
    )  # fmt: skip

    # Every tick equals its CSV row (precision 1 / 0, side from is_buyer_maker, exact ms -> ns).
    rows = data_rows(CM_DAY)
    assert len(rows) == 105_280
    want = [(r[0], exact(r[1], 1), exact(r[2], 0), 2 if r[6] == "true" else 1, int(r[5]) * NS_PER_MS) for r in rows]
    assert [(t.trade_id.value, str(t.price), str(t.size), int(t.aggressor_side), t.ts_event) for t in got] == want
    assert {int(t.aggressor_side) for t in got} == {1, 2}  # both sides occur in the real day

    m = manifest(home)
    d = m["datasets"]["aggTrades/cm:BTCUSD_PERP"]
    assert (d["rows_in"], d["rows_written"], d["duplicates"]) == (105_280, 105_280, 0)
    assert "out_of_order" not in d  # the real file is in (time, id) order
    assert (d["min_ts"], d["max_ts"]) == ("2026-05-08T00:00:00Z", "2026-05-08T23:59:59Z")
    assert [f["name"] for f in d["files"]] == ["BTCUSD_PERP-aggTrades-2026-05-08.zip"]
    assert m["symbols"]["cm:BTCUSD_PERP"]["instrument_id"] == CM_IID
    assert m["symbols"]["cm:BTCUSD_PERP"]["streams"]["trades"] == {
        "rows": 105_280, "files": 1, "first": "2026-05-08T00:00:00Z", "last": "2026-05-08T23:59:59Z",
    }  # fmt: skip


# -- 3-5. bookTicker ------------------------------------------------------------------------------


def test_book_ticker_sample_becomes_quote_ticks_at_event_time(
    home: Home, tmp_path: Path, specs: InstrumentSpecs
) -> None:
    report = ingest(home, book_source(tmp_path), specs, datasets=("bookTicker",))
    assert report.bars_written() == {"quotes": 9_999}
    rows = data_rows(BOOK_SAMPLE)
    assert len(rows) == 9_999
    got = ParquetDataCatalog(str(home.catalog)).quote_ticks([UM_IID])
    assert len(got) == 9_999
    assert got[0].ts_event == got[0].ts_init == int(rows[0][6]) * NS_PER_MS == 1_696_204_800_018 * NS_PER_MS
    assert got[-1].ts_event == int(rows[-1][6]) * NS_PER_MS
    assert got[-1].ts_event != int(rows[-1][5]) * NS_PER_MS  # event time, not transaction time
    assert (str(got[0].bid_price), str(got[0].bid_size), str(got[0].ask_price), str(got[0].ask_size)) == (
        "27981.30", "12.911", "27981.40", "7.258",
    )  # fmt: skip
    ordered = sorted(rows, key=lambda r: (int(r[6]), int(r[0])))
    assert [quote_fields(q) for q in got] == [quote_fields(q) for q in hand_quotes(ordered, UM_IID, 2, 3)]

    d = manifest(home)["datasets"]["bookTicker/BTCUSDT"]
    assert d["ts_source"] == {"event_time": 9_999}
    assert (d["rows_in"], d["rows_written"], d["duplicates"]) == (9_999, 9_999, 0)
    assert "crossed" not in d
    assert "out_of_order" not in d
    assert unit_stats(home, dataset="bookTicker")[0]["crossed"] == 0

    # Same bytes as NautilusTrader's own QuoteTick encoding.
    reference = tmp_path / "nautilus-quotes"
    ParquetDataCatalog(str(reference)).write_data(hand_quotes(ordered, UM_IID, 2, 3))
    [theirs_path] = (reference / "data" / "quote_tick").rglob("*.parquet")
    [ours_path] = tick_files(home, "quote_tick", UM_IID)
    ours, theirs = pq.read_table(ours_path), pq.read_table(theirs_path)
    assert ours.schema.equals(theirs.schema, check_metadata=True)
    assert ours.equals(theirs)


def test_book_ticker_falls_back_to_transaction_time(home: Home, tmp_path: Path, specs: InstrumentSpecs) -> None:
    rows = [list(r) for r in data_rows(BOOK_SAMPLE)[:12]]
    blanked = (2, 5, 11)
    for i in blanked:
        rows[i][6] = ""
    report = ingest(home, book_source(tmp_path, rows), specs, datasets=("bookTicker",))
    assert report.bars_written() == {"quotes": 12}
    got = ParquetDataCatalog(str(home.catalog)).quote_ticks([UM_IID])
    expected_ts = sorted(int(r[6] or r[5]) * NS_PER_MS for r in rows)
    assert [q.ts_event for q in got] == expected_ts
    for i in blanked:  # the transaction time of each blanked row is used, exactly
        assert int(rows[i][5]) * NS_PER_MS in {q.ts_event for q in got}
        assert int(data_rows(BOOK_SAMPLE)[i][6]) != int(rows[i][5])  # so the check above is not vacuous
    ordered = sorted(rows, key=lambda r: (int(r[6] or r[5]), int(r[0])))
    assert [quote_fields(q) for q in got] == [quote_fields(q) for q in hand_quotes(ordered, UM_IID, 2, 3)]
    d = manifest(home)["datasets"]["bookTicker/BTCUSDT"]
    assert d["ts_source"] == {"event_time": 9, "transaction_time": 3}
    assert unit_stats(home, dataset="bookTicker")[0]["ts_source"] == {"event_time": 9, "transaction_time": 3}


def test_book_ticker_row_without_any_time_is_rejected(home: Home, tmp_path: Path, specs: InstrumentSpecs) -> None:
    rows = [list(r) for r in data_rows(BOOK_SAMPLE)[:6]]
    rows[3][5] = rows[3][6] = ""
    with pytest.raises(DataFileError, match="both event_time and transaction_time are empty") as info:
        ingest(home, book_source(tmp_path, rows), specs, datasets=("bookTicker",))
    assert info.value.line == 5  # header + 4th data row
    assert info.value.path.endswith(BOOK_NAME)
    assert not data_dir(home.catalog, "quote_tick", UM_IID).exists()


def test_crossed_quotes_are_kept_and_counted(
    home: Home, tmp_path: Path, specs: InstrumentSpecs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    rows = [list(r) for r in data_rows(BOOK_SAMPLE)[:10]]
    for i in (3, 7):  # swap bid and ask: bid > ask
        rows[i][1], rows[i][3] = rows[i][3], rows[i][1]
        assert Decimal(rows[i][1]) > Decimal(rows[i][3])
    report = ingest(home, book_source(tmp_path, rows), specs, datasets=("bookTicker",))
    assert report.bars_written() == {"quotes": 10}
    got = ParquetDataCatalog(str(home.catalog)).quote_ticks([UM_IID])
    assert len(got) == 10
    crossed = [q for q in got if q.bid_price > q.ask_price]
    assert [(str(q.bid_price), str(q.ask_price)) for q in crossed] == [
        (exact(rows[i][1], 2), exact(rows[i][3], 2)) for i in (3, 7)
    ]
    d = manifest(home)["datasets"]["bookTicker/BTCUSDT"]
    assert d["crossed"] == 2
    assert d["rows_written"] == 10
    assert any("2 quote(s) with bid > ask" in r.getMessage() for r in caplog.records)


# -- 6-7. order and duplicates --------------------------------------------------------------------


def test_shuffled_rows_are_sorted_and_counted(
    home: Home, tmp_path: Path, specs: InstrumentSpecs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    rows = synthetic_agg(300)
    shuffled = list(rows)
    random.Random(7).shuffle(shuffled)
    n_descents = descents(shuffled)
    assert n_descents > 50
    name = "BTCUSDT-aggTrades-2024-03-02.csv"
    write_csv(tmp_path / "src", name, shuffled, AGG_HEADER)
    ingest(home, tmp_path / "src", specs)

    got = catalog_trades(home, UM_IID)
    keys = [(t.ts_event, int(t.trade_id.value)) for t in got]
    assert keys == sorted(keys)
    assert [trade_fields(t) for t in got] == [trade_fields(t) for t in hand_trades(rows, UM_IID, 2, 3)]
    d = manifest(home)["datasets"]["aggTrades/BTCUSDT"]
    assert d["out_of_order"] == n_descents
    assert d["rows_written"] == 300
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(name in w and f"{n_descents} row(s) out of (time, id) order" in w for w in warnings), warnings


SMALL_BLOCK = 1024  # ~16 aggTrades rows per streamed block: the duplicates land in other blocks


@pytest.mark.parametrize("block_bytes", [None, SMALL_BLOCK], ids=["one-block", "across-blocks"])
def test_identical_duplicates_are_dropped_and_counted(
    home: Home, tmp_path: Path, specs: InstrumentSpecs, monkeypatch: pytest.MonkeyPatch, block_bytes: int | None
) -> None:
    if block_bytes:
        monkeypatch.setattr(ticks, "BLOCK_BYTES", block_bytes)
    rows = synthetic_agg(120)
    with_dups = [*rows[:6], rows[5], *rows[6:60], rows[5], rows[40], *rows[60:]]
    write_csv(tmp_path / "src", "BTCUSDT-aggTrades-2024-03-02.csv", with_dups, AGG_HEADER)
    ingest(home, tmp_path / "src", specs)
    got = catalog_trades(home, UM_IID)
    assert [trade_fields(t) for t in got] == [trade_fields(t) for t in hand_trades(rows, UM_IID, 2, 3)]
    d = manifest(home)["datasets"]["aggTrades/BTCUSDT"]
    assert (d["rows_in"], d["rows_written"], d["duplicates"]) == (123, 120, 3)


@pytest.mark.parametrize("block_bytes", [None, SMALL_BLOCK], ids=["one-block", "across-blocks"])
def test_conflicting_rows_for_one_id_fail_naming_both_lines(
    tmp_path: Path, specs: InstrumentSpecs, monkeypatch: pytest.MonkeyPatch, block_bytes: int | None
) -> None:
    if block_bytes:
        monkeypatch.setattr(ticks, "BLOCK_BYTES", block_bytes)
    home = Home(tmp_path / "home").ensure()
    ingest(home, FIXTURES, specs, start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 2))  # a good day first
    before, counts = snapshot(home), db_counts(home)
    assert any("trade_tick" in k for k in before)

    rows = synthetic_agg(120)
    twin = list(rows[10])
    twin[1] = "61000.0"  # same agg id, another price
    bad = [*rows[:90], twin, *rows[90:]]  # header = line 1: rows[10] is line 12, the twin line 92
    name = "BTCUSDT-aggTrades-2024-03-02.csv"
    write_csv(tmp_path / "src", name, bad, AGG_HEADER)
    with pytest.raises(DataFileError, match=rf"two different rows for id {SYNTH_ID + 10} \(lines 12 and 92\)") as info:
        ingest(home, tmp_path / "src", specs)
    assert info.value.path.endswith(name)
    assert info.value.line == 92
    assert snapshot(home) == before  # neither the catalog nor the raw lake changed
    assert db_counts(home) == counts
    assert no_staging_left(home)


# -- 8. bad input through the CLI -----------------------------------------------------------------


def _mutate_line(lines: list[str], lineno: int, fn: Callable[[list[str]], list[str]]) -> None:
    lines[lineno - 1] = ",".join(fn(lines[lineno - 1].split(",")))


BAD_FILES = {
    "non-numeric-price": (lambda f: [f[0], "6115x.1", *f[2:]], ["line 5", "'6115x.1' is not a number"]),
    "too-many-decimals": (lambda f: [f[0], "61150.123", *f[2:]], ["line 5", "never rounds"]),
    "wrong-column-count": (lambda f: f[:6], ["line 5", "6 columns where 7 are expected"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_cli_bad_tick_file_exits_2_naming_file_and_line(tmp_path: Path, cli, case: str) -> None:
    mutate, expected = BAD_FILES[case]
    lines = AGG_DAY1.read_text().splitlines()
    _mutate_line(lines, 5, mutate)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / AGG_DAY1.name).write_text("\n".join(lines) + "\n")
    home = tmp_path / "home"
    args = ["--home", str(home), "-q", "data", "ingest", "--symbols", "BTCUSDT", "--datasets", "aggTrades"]
    code, out = cli([*args, "--source", str(tmp_path / "src")])
    assert code == 2, out
    assert "Traceback" not in out
    assert out.lstrip().startswith("error: ")
    assert AGG_DAY1.name in out
    for text in expected:
        assert text in out, out
    assert not data_dir(home / "catalog", "trade_tick", UM_IID).exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--datasets", "aggTrades,trades"], "aggTrades and trades both become"),
        (["--datasets", "metrics", "--market", "spot"], "dataset 'metrics' does not exist for --market spot"),
        (["--datasets", "aggTrades", "--market", "xx"], "--market 'xx': choose um"),
    ],
    ids=["aggTrades-and-trades", "spot-metrics", "unknown-market"],
)
def test_cli_bad_tick_requests_exit_2(tmp_path: Path, cli, extra: list[str], expected: str) -> None:
    home = tmp_path / "home"
    code, out = cli(["--home", str(home), "data", "ingest", "--symbols", "BTCUSDT", "--source", str(FIXTURES), *extra])
    assert code == 2, out
    assert "Traceback" not in out
    assert expected in out, out
    assert not (home / "catalog" / "data").exists()


def test_cli_trades_after_agg_trades_is_refused(tmp_path: Path, cli) -> None:
    home = tmp_path / "home"
    base = ["--home", str(home), "-q", "data", "ingest", "--symbols", "BTCUSDT", "--source", str(FIXTURES)]
    code, out = cli([*base, "--datasets", "aggTrades"])
    assert code == 0, out
    stored = sorted(p.name for p in data_dir(home / "catalog", "trade_tick", UM_IID).glob("*.parquet"))
    assert len(stored) == 2
    code, out = cli([*base, "--datasets", "trades"])
    assert code == 2, out
    assert f"{UM_IID} already has TradeTick data from aggTrades" in out, out
    assert sorted(p.name for p in data_dir(home / "catalog", "trade_tick", UM_IID).glob("*.parquet")) == stored


# -- 9-10. chunked files and cross-block disorder ------------------------------------------------


def _chunked_and_plain(tmp_path: Path, specs: InstrumentSpecs, monkeypatch: pytest.MonkeyPatch) -> tuple[Home, Home]:
    plain = Home(tmp_path / "plain").ensure()
    ingest(plain, MIRROR, specs, symbol="BTCUSD_PERP", market="cm")
    monkeypatch.setattr(ticks, "FILE_ROWS", 20_000)
    monkeypatch.setattr(ticks, "BLOCK_BYTES", 64 * 1024)
    chunked = Home(tmp_path / "chunked").ensure()
    ingest(chunked, MIRROR, specs, symbol="BTCUSD_PERP", market="cm")
    return chunked, plain


def test_chunked_files_hold_the_same_rows(tmp_path: Path, specs: InstrumentSpecs, monkeypatch) -> None:
    chunked, plain = _chunked_and_plain(tmp_path, specs, monkeypatch)
    files = tick_files(chunked, "trade_tick", CM_IID)
    assert 5 <= len(files) <= 6  # 105,280 rows in files of about 20,000
    tables = [pq.read_table(f) for f in files]
    assert parse_interval_filename(files[0].name)[0] == CM_DAY_START_NS  # together they cover the day
    assert parse_interval_filename(files[-1].name)[1] == CM_DAY_START_NS + DAY_NS - 1
    assert all(t.num_rows >= 20_000 for t in tables[:-1])
    previous_last = None
    for f, t in zip(files, tables, strict=True):
        lo, hi = parse_interval_filename(f.name)
        ts = t.column("ts_event").to_numpy()
        assert lo <= int(ts.min()), f.name
        assert int(ts.max()) <= hi, f.name
        assert (ts[1:] >= ts[:-1]).all()
        if previous_last is not None:
            assert int(ts[0]) > previous_last  # cut only between two different timestamps
        previous_last = int(ts[-1])
    [plain_file] = tick_files(plain, "trade_tick", CM_IID)
    assert pa.concat_tables(tables).equals(pq.read_table(plain_file))
    streams = manifest(chunked)["symbols"]["cm:BTCUSD_PERP"]["streams"]["trades"]
    assert (streams["rows"], streams["files"]) == (105_280, len(files))
    assert len(catalog_trades(chunked, CM_IID)) == 105_280


def test_chunked_file_intervals_are_disjoint_and_contiguous(
    tmp_path: Path, specs: InstrumentSpecs, monkeypatch
) -> None:
    chunked, _ = _chunked_and_plain(tmp_path, specs, monkeypatch)
    intervals = [parse_interval_filename(f.name) for f in tick_files(chunked, "trade_tick", CM_IID)]
    assert len(intervals) >= 3
    assert intervals[0][0] == CM_DAY_START_NS
    assert intervals[-1][1] == CM_DAY_START_NS + DAY_NS - 1
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert start == end + 1, intervals
    # NautilusTrader itself requires disjoint intervals (write_data asserts it on the next write).
    from nautilus_trader.model.data import TradeTick as NautilusTradeTick

    catalog = ParquetDataCatalog(str(chunked.catalog))
    assert catalog.get_intervals(NautilusTradeTick, CM_IID) == intervals


def test_disorder_across_blocks_restarts_with_a_whole_unit_sort(
    home: Home, tmp_path: Path, specs: InstrumentSpecs, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(ticks, "BLOCK_BYTES", SMALL_BLOCK)
    monkeypatch.setattr(ticks, "FILE_ROWS", 50)  # files are staged before the disorder shows up
    rows = synthetic_agg(300)
    late = [*rows[:10], *rows[15:], *rows[10:15]]  # the last rows belong near the start
    assert descents(late) == 1
    name = "BTCUSDT-aggTrades-2024-03-02.csv"
    write_csv(tmp_path / "src", name, late, AGG_HEADER)
    report = ingest(home, tmp_path / "src", specs)
    assert report.bars_written() == {"trades": 300}

    day = (DAY2_MS * NS_PER_MS, DAY2_MS * NS_PER_MS + DAY_NS - 1)
    files = tick_files(home, "trade_tick", UM_IID)
    assert [f.name for f in files] == [interval_filename(*day)]  # no leftover chunk of the first pass
    got = catalog_trades(home, UM_IID)
    assert [trade_fields(t) for t in got] == [trade_fields(t) for t in hand_trades(rows, UM_IID, 2, 3)]
    d = manifest(home)["datasets"]["aggTrades/BTCUSDT"]
    assert d["out_of_order"] == 1
    assert (d["rows_in"], d["rows_written"], d["duplicates"]) == (300, 300, 0)
    assert any(name in r.getMessage() and "out of order across blocks" in r.getMessage() for r in caplog.records)
    assert no_staging_left(home)


# -- 11-12. determinism and rebuild ---------------------------------------------------------------


def _data_digests(home: Home) -> dict[str, str]:
    base = home.catalog / "data"
    return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest() for p in base.rglob("*.parquet")}


def _comparable_manifest(home: Home) -> dict:
    m = copy.deepcopy(manifest(home))
    assert m.pop("catalog") == str(home.catalog)  # where the home is: differs by construction
    m.pop("generated_at")
    for entry in m["archive"]["by_dataset"].values():
        entry.pop("last_stored")  # download time
    return m


def test_ingest_order_does_not_change_the_catalog(tmp_path: Path, specs: InstrumentSpecs) -> None:
    one_run = Home(tmp_path / "a").ensure()
    ingest(one_run, FIXTURES, specs)
    reversed_runs = Home(tmp_path / "b").ensure()
    ingest(reversed_runs, FIXTURES, specs, start=dt.date(2024, 3, 2), end=dt.date(2024, 3, 3))
    ingest(reversed_runs, FIXTURES, specs, start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 2))
    digests = _data_digests(one_run)
    assert len([k for k in digests if k.startswith("trade_tick/")]) == 2
    assert _data_digests(reversed_runs) == digests
    a, b = _comparable_manifest(one_run), _comparable_manifest(reversed_runs)
    assert a == b
    assert [f["name"] for f in a["datasets"]["aggTrades/BTCUSDT"]["files"]] == [AGG_DAY1.name, AGG_DAY2.name]


@pytest.mark.parametrize("file_rows", [None, 20_000], ids=["default", "chunked"])
def test_rebuild_from_archive_is_byte_identical(
    home: Home, tmp_path: Path, specs: InstrumentSpecs, monkeypatch, file_rows: int | None
) -> None:
    if file_rows:
        monkeypatch.setattr(ticks, "FILE_ROWS", file_rows)
        monkeypatch.setattr(ticks, "BLOCK_BYTES", 64 * 1024)
    ingest(home, MIRROR, specs, symbol="BTCUSD_PERP", market="cm")
    ingest(home, book_source(tmp_path), specs, datasets=("bookTicker",))
    before = _data_digests(home)
    assert len([k for k in before if k.startswith(("trade_tick/", "quote_tick/"))]) >= 2
    report = rebuild_from_archive(home, specs)
    assert report.byte_identical, (report.changed, report.added, report.removed)
    assert report.units == 2
    assert report.identical == len(before)
    assert _data_digests(home) == before
    assert len(catalog_trades(home, CM_IID)) == 105_280


# -- 13. spot -------------------------------------------------------------------------------------


def test_spot_agg_trades_fixture(home: Home, specs: InstrumentSpecs) -> None:
    spec = specs.get("BTCUSDT", "spot")
    assert (spec.nautilus_id, spec.price_precision, spec.size_precision) == (SPOT_IID, 2, 8)
    report = ingest(home, FIXTURES, specs, market="spot")
    assert report.bars_written() == {"trades": 20}
    got = catalog_trades(home, SPOT_IID)
    rows = data_rows(SPOT_AGG)
    assert len(rows[0]) == 8
    assert rows[0][6] in ("True", "False")
    assert [trade_fields(t) for t in got] == [trade_fields(t) for t in hand_trades(rows, SPOT_IID, 2, 8)]
    assert (str(got[0].price), str(got[0].size), got[0].aggressor_side) == (
        "61157.06", "0.00425000", AggressorSide.BUYER,
    )  # fmt: skip
    assert {t.size.precision for t in got} == {8}
    assert not data_dir(home.catalog, "trade_tick", UM_IID).exists()  # the USD-M fixture was not picked up
    assert manifest(home)["datasets"]["aggTrades/spot:BTCUSDT"]["rows_written"] == 20
    assert unit_stats(home, dataset="aggTrades")[0]["time_unit"] == "ms"


def _spot_us_rows(n: int = 12) -> list[list[str]]:
    rows = []
    for i in range(n):
        ts_us = DAY2_MS * 1_000 + 123_457 + i * 1_001  # not whole milliseconds
        first = 3_456_800_000 + 2 * i
        maker = "True" if i % 2 else "False"
        price = f"{62_000 + i}.{i % 10}{(3 * i) % 10}000000"
        qty = f"0.00{i + 1:03d}000"
        rows.append([str(2_712_400_000 + i), price, qty, str(first), str(first + 1), str(ts_us), maker, "True"])
    return rows


def test_spot_microsecond_timestamps_are_exact(home: Home, tmp_path: Path, specs: InstrumentSpecs) -> None:
    rows = _spot_us_rows()
    assert all(len(r[5]) == 16 for r in rows)
    write_csv(tmp_path / "src", "BTCUSDT-aggTrades-2024-03-02.csv", rows)
    ingest(home, tmp_path / "src", specs, market="spot")
    got = catalog_trades(home, SPOT_IID)
    assert [t.ts_event for t in got] == [int(r[5]) * 1_000 for r in rows]
    assert got[0].ts_event == 1_709_337_600_123_457_000
    assert [trade_fields(t) for t in got] == [trade_fields(t) for t in hand_trades(rows, SPOT_IID, 2, 8, 1_000)]
    [stats] = unit_stats(home, dataset="aggTrades", market="spot")
    assert stats["time_unit"] == "us"


def test_mixed_time_units_in_one_file_are_rejected(home: Home, tmp_path: Path, specs: InstrumentSpecs) -> None:
    rows = _spot_us_rows(5)
    rows[3][5] = str(int(rows[3][5]) // 1_000)  # one row in milliseconds
    write_csv(tmp_path / "src", "BTCUSDT-aggTrades-2024-03-02.csv", rows)
    with pytest.raises(DataFileError, match="one file must use one unit") as info:
        ingest(home, tmp_path / "src", specs, market="spot")
    assert info.value.line == 4
    assert not data_dir(home.catalog, "trade_tick", SPOT_IID).exists()


# -- 14. raw lake ---------------------------------------------------------------------------------


def test_raw_lake_stores_source_bytes(home: Home, specs: InstrumentSpecs) -> None:
    ingest(home, MIRROR, specs, symbol="BTCUSD_PERP", market="cm")
    ingest(home, FIXTURES, specs, start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 2))
    for source, rel_dir in (
        (CM_DAY, "binance/futures-cm/aggTrades/BTCUSD_PERP/2026/05"),
        (AGG_DAY1, "binance/futures-um/aggTrades/BTCUSDT/2024/03"),
    ):
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        stored = home.archive / rel_dir / digest / source.name
        assert stored.is_file(), sorted(str(p) for p in home.archive.rglob("*") if p.is_file())
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest
        assert stat.S_IMODE(stored.stat().st_mode) == 0o444  # content addresses are never rewritten
        with StateManager(home.db_path) as db:
            [raw] = db.find("raw_files", sha256=digest)
        assert (raw["archive_path"], raw["original_name"], raw["source"]) == (
            f"{rel_dir}/{digest}/{source.name}", source.name, str(source),
        )  # fmt: skip
    published = CM_DAY.with_name(CM_DAY.name + ".CHECKSUM").read_text().split()[0]
    assert published == hashlib.sha256(CM_DAY.read_bytes()).hexdigest()
    assert len([p for p in home.archive.rglob("*") if p.is_file()]) == 2


# -- blank lines ----------------------------------------------------------------------------------


def _with_blank_line(rows: list[list[str]], blank_at: int) -> str:
    """A headered aggTrades CSV with an empty line at file line `blank_at`."""
    lines = [AGG_HEADER, *(",".join(r) for r in rows)]
    lines.insert(blank_at - 1, "")
    return "\n".join(lines) + "\n"


def test_blank_line_is_an_error_at_its_own_line(home: Home, tmp_path: Path, specs: InstrumentSpecs) -> None:
    """Like kline files, an empty line is rejected where it is (skipping it would shift every
    later line number in error messages)."""
    rows = synthetic_agg(20)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "BTCUSDT-aggTrades-2024-03-02.csv").write_text(_with_blank_line(rows, 4))
    with pytest.raises(DataFileError) as info:
        ingest(home, tmp_path / "src", specs)
    assert info.value.line == 4
    assert "empty" in str(info.value)
    assert catalog_trades(home, UM_IID) == []
