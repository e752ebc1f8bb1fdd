"""Pure kline/funding parsers on real Binance bytes, and a corpus of broken inputs cut from them.

Every input starts from real archive bytes (``../shared/data``); broken inputs alter a few real
lines in memory. Where a row is written by hand, a comment says so.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import FUNDING_FILE, MIRROR, kline_zip
from vibe_quant.data.parse import (
    KLINE_COLUMNS,
    FundingRates,
    Klines,
    combine_klines,
    parse_funding_csv,
    parse_klines_csv,
    parse_klines_json,
    read_member,
)
from vibe_quant.errors import EXIT_USER_ERROR, DataFileError, UserError

FIL_ZIP_NAME = "FILUSDT-1m-2023-08.zip"
FIL_CSV = "FILUSDT-1m-2023-08.csv"
FIL_PRICE, FIL_SIZE = 3, 1  # FILUSDT USD-M: tick 0.001, step 0.1
FIL_T0 = 1_690_848_000_000  # 2023-08-01 00:00 UTC
MINUTE = 60_000
SPOT_1H = MIRROR / "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-08.zip"
FUNDING_CSV = "BTCUSDT-fundingRate-2026-04.csv"
ARRAYS = ("open_time_ms", "open", "high", "low", "close", "volume")
CORRUPT = "the file is corrupt: download it again"
OHLC_RULE = "OHLC must satisfy low <= open,close <= high"
TRUNCATED = "the file is truncated or not a Binance file of this dataset"


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def fil_zip() -> bytes:
    return kline_zip("FILUSDT", "2023-08").read_bytes()


@pytest.fixture(scope="module")
def fil_csv(fil_zip: bytes) -> bytes:
    return read_member(fil_zip, FIL_ZIP_NAME)


@pytest.fixture(scope="module")
def fil_month(fil_csv: bytes) -> Klines:
    return parse_klines_csv(fil_csv, FIL_CSV, FIL_PRICE, FIL_SIZE)


@pytest.fixture(scope="module")
def fil_header(fil_csv: bytes) -> str:
    return fil_csv.decode().splitlines()[0]


@pytest.fixture(scope="module")
def fil_rows(fil_csv: bytes) -> list[str]:
    """All 44,640 real data rows of the month, without the header."""
    return fil_csv.decode().splitlines()[1:]


@pytest.fixture(scope="module")
def funding_csv() -> bytes:
    return read_member(FUNDING_FILE.read_bytes(), FUNDING_FILE.name)


@pytest.fixture(scope="module")
def funding_lines(funding_csv: bytes) -> list[str]:
    return funding_csv.decode().splitlines()


def csv_bytes(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def with_fields(row: str, **values: str) -> str:
    fields = row.split(",")
    for column, value in values.items():
        fields[KLINE_COLUMNS.index(column)] = value
    return ",".join(fields)


def to_micros(row: str) -> str:
    """The same kline as Binance's spot µs files would write it."""
    open_us = int(row.split(",", 1)[0]) * 1000
    return with_fields(row, open_time=str(open_us), close_time=str(open_us + 59_999_999))


def rest_json(rows: list[str]) -> list[list]:
    """Rows as ``GET /fapi/v1/klines`` returns them: times and count as ints, decimals as strings."""
    out = []
    for row in rows:
        f = row.split(",")
        out.append([int(f[0]), *f[1:6], int(f[6]), f[7], int(f[8]), f[9], f[10], f[11]])
    return out


def assert_same_klines(got: Klines, expected: Klines) -> None:
    for field in ARRAYS:
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field), err_msg=field)
        assert getattr(got, field).dtype == np.int64, field


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


# ---------------------------------------------------------------- DataFileError


def test_data_file_error_formats_path_line_problem_and_fix() -> None:
    err = DataFileError(Path("a/b.csv"), "bad thing", line=7, fix="do X")
    assert (err.path, err.line, err.problem, err.fix) == ("a/b.csv", 7, "bad thing", "do X")
    assert str(err) == "a/b.csv, line 7: bad thing. Fix: do X"
    assert isinstance(err, UserError)
    assert err.exit_code == EXIT_USER_ERROR == 2


def test_data_file_error_without_line_or_fix() -> None:
    err = DataFileError("x.zip", "broken")
    assert (err.line, err.fix) == (None, None)
    assert str(err) == "x.zip: broken"


# ---------------------------------------------------------------- read_member


def test_read_member_returns_the_single_csv_of_a_real_zip(fil_csv: bytes) -> None:
    assert fil_csv.startswith(b"open_time,open,high,low,close,volume,close_time,quote_volume,count,")
    assert fil_csv.count(b"\n") == 44_641
    assert read_member(fil_csv, FIL_CSV) is fil_csv  # a .csv name passes through untouched


def test_read_member_skips_directory_entries(fil_csv: bytes) -> None:
    data = zip_of({"FILUSDT/": b"", f"FILUSDT/{FIL_CSV}": fil_csv[:1000]})
    assert read_member(data, "NESTED.ZIP") == fil_csv[:1000]


def test_read_member_truncated_zip(fil_zip: bytes) -> None:
    with pytest.raises(DataFileError) as exc:
        read_member(fil_zip[: len(fil_zip) // 2], FIL_ZIP_NAME)
    assert exc.value.line is None
    assert str(exc.value) == (
        f"{FIL_ZIP_NAME}: not a readable zip (File is not a zip file); the file is truncated or corrupt. "
        "Fix: delete it and download it again"
    )


def test_read_member_bad_crc(fil_zip: bytes) -> None:
    damaged = bytearray(fil_zip)
    damaged[len(fil_zip) // 2] ^= 0xFF  # one flipped byte in the deflate stream
    with pytest.raises(DataFileError) as exc:
        read_member(bytes(damaged), FIL_ZIP_NAME)
    assert exc.value.problem == (
        f"not a readable zip (Bad CRC-32 for file '{FIL_CSV}'); the file is truncated or corrupt"
    )


def test_read_member_corrupt_deflate_stream(fil_zip: bytes) -> None:
    damaged = bytearray(fil_zip)
    damaged[1000] ^= 0xFF
    with pytest.raises(DataFileError) as exc:
        read_member(bytes(damaged), FIL_ZIP_NAME)
    assert "the file is truncated or corrupt" in exc.value.problem


def test_read_member_zip_with_two_members(fil_csv: bytes) -> None:
    data = zip_of({FIL_CSV: fil_csv[:500], "FILUSDT-1m-2023-09.csv": fil_csv[:500]})
    with pytest.raises(DataFileError) as exc:
        read_member(data, "two.zip")
    assert exc.value.line is None
    assert (
        str(exc.value)
        == "two.zip: zip holds 2 files ['FILUSDT-1m-2023-08.csv', 'FILUSDT-1m-2023-09.csv'], expected one CSV"
    )


def test_read_member_empty_zip() -> None:
    with pytest.raises(DataFileError) as exc:
        read_member(zip_of({}), "empty.zip")
    assert str(exc.value) == "empty.zip: zip holds 0 files [], expected one CSV"


# ---------------------------------------------------------------- parse_klines_csv: real data


def test_golden_fil_month(fil_month: Klines) -> None:
    k = fil_month
    assert len(k) == 44_640 == 31 * 1440
    assert k.rows_in == 44_640
    assert k.duplicates == 0
    assert k.time_unit == "ms"
    assert int(k.open_time_ms[0]) == FIL_T0
    assert int(k.open_time_ms[-1]) == 1_693_526_340_000  # 2023-08-31 23:59
    assert (np.diff(k.open_time_ms) == MINUTE).all()
    # real first row: 1690848000000,4.255,4.256,4.252,4.252,25259.1,...
    assert [int(getattr(k, f)[0]) for f in ARRAYS[1:]] == [4255, 4256, 4252, 4252, 252_591]
    # real last row: 1693526340000,3.211,3.214,3.211,3.214,11078.0,...
    assert [int(getattr(k, f)[-1]) for f in ARRAYS[1:]] == [3211, 3214, 3211, 3214, 110_780]
    assert k.lines.tolist() == list(range(2, 44_642))  # header is line 1
    for field in (*ARRAYS, "lines"):
        assert getattr(k, field).dtype == np.int64, field


def test_golden_fil_month_matches_decimal_oracle(fil_rows: list[str], fil_month: Klines) -> None:
    rng = np.random.default_rng(20230801)
    for i in rng.choice(len(fil_rows), 300, replace=False).tolist():
        f = fil_rows[i].split(",")
        expected = [int(f[0])] + [int(Decimal(v).scaleb(FIL_PRICE)) for v in f[1:5]]
        expected.append(int(Decimal(f[5]).scaleb(FIL_SIZE)))
        assert [int(getattr(fil_month, a)[i]) for a in ARRAYS] == expected
        assert int(fil_month.lines[i]) == i + 2


def test_headerless_equals_header(fil_rows: list[str], fil_month: Klines) -> None:
    headerless = parse_klines_csv(csv_bytes(fil_rows), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert_same_klines(headerless, fil_month)
    assert headerless.lines.tolist() == list(range(1, 44_641))
    assert (headerless.rows_in, headerless.duplicates, headerless.time_unit) == (44_640, 0, "ms")


def test_microsecond_timestamps_equal_milliseconds(fil_header: str, fil_rows: list[str], fil_month: Klines) -> None:
    micros = parse_klines_csv(csv_bytes([fil_header, *map(to_micros, fil_rows)]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert micros.time_unit == "us"
    assert_same_klines(micros, fil_month)
    np.testing.assert_array_equal(micros.lines, fil_month.lines)


def test_real_spot_microsecond_hourly_file() -> None:
    k = parse_klines_csv(read_member(SPOT_1H.read_bytes(), SPOT_1H.name), SPOT_1H.name, 8, 8, interval_ms=3_600_000)
    assert (len(k), k.rows_in, k.duplicates, k.time_unit) == (24, 24, 0, "us")
    assert int(k.open_time_ms[0]) == 1_778_198_400_000  # 2026-05-08 00:00 UTC
    assert (np.diff(k.open_time_ms) == 3_600_000).all()
    # real first row: 1778198400000000,80006.00000000,80142.84000000,79729.72000000,79831.99000000,958.06006000,...
    assert [int(getattr(k, f)[0]) for f in ARRAYS[1:]] == [
        8_000_600_000_000,
        8_014_284_000_000,
        7_972_972_000_000,
        7_983_199_000_000,
        95_806_006_000,
    ]
    assert k.lines.tolist() == list(range(1, 25))  # headerless


def test_real_spot_hourly_file_rejects_minute_interval() -> None:
    with pytest.raises(DataFileError) as exc:
        parse_klines_csv(read_member(SPOT_1H.read_bytes(), SPOT_1H.name), SPOT_1H.name, 8, 8)
    assert exc.value.line == 1
    assert str(exc.value) == (
        f"{SPOT_1H.name}, line 1: close_time 1778201999999999 - open_time 1778198400000000 is not one 60s interval. "
        "Fix: ingest files of the interval they are named for"
    )


def test_trailing_zero_beyond_precision_is_accepted(fil_header: str, fil_rows: list[str]) -> None:
    rows = fil_rows[:10]
    rows[3] = with_fields(rows[3], open="4.2560", volume="3359.70")  # real 4.256 / 3359.7 with a zero appended
    k = parse_klines_csv(csv_bytes([fil_header, *rows]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert (int(k.open[3]), int(k.volume[3])) == (4256, 33_597)


def test_header_only_file_is_empty(fil_header: str) -> None:
    k = parse_klines_csv(csv_bytes([fil_header]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert (len(k), k.rows_in, k.duplicates) == (0, 0, 0)


# ---------------------------------------------------------------- parse_klines_csv: broken corpus

# Each case edits the first 10 real FILUSDT rows; the header is line 1, so rows[3] is line 5.
# Real rows[3]: 1690848180000,4.256,4.256,4.254,4.256,3359.7,1690848239999,14296.9619,61,2343.5,9973.0889,0


def _edit(i: int, **values: str) -> Callable[[list[str]], list[str]]:
    def edit(rows: list[str]) -> list[str]:
        rows = list(rows)
        rows[i] = with_fields(rows[i], **values)
        return rows

    return edit


def _cut_fields(rows: list[str]) -> list[str]:
    return [*rows[:3], ",".join(rows[3].split(",")[:11]), *rows[4:]]


def _extra_field(rows: list[str]) -> list[str]:
    return [*rows[:3], rows[3] + ",0", *rows[4:]]


def _micros_row(rows: list[str]) -> list[str]:
    return [*rows[:3], to_micros(rows[3]), *rows[4:]]


def _conflicting_duplicate(rows: list[str]) -> list[str]:
    # rows[2] (line 4) again at line 7 with its volume 13441.4 changed to 13441.5
    return [*rows[:5], with_fields(rows[2], volume="13441.5"), *rows[5:]]


BROKEN_KLINES = [
    pytest.param(_edit(3, high="abc"), 5, "column 'high': 'abc' is not a number", id="non-numeric-high"),
    pytest.param(_edit(3, high="inf"), 5, "column 'high': 'inf' is not a finite number", id="infinite-high"),
    pytest.param(
        _edit(3, open_time="1690848180000.0"),
        5,
        "column 'open_time': '1690848180000.0' is not an integer",
        id="fractional-open-time",
    ),
    pytest.param(
        _cut_fields,
        5,
        "11 columns where 12 are expected "
        "('1690848180000,4.256,4.256,4.254,4.256,3359.7,1690848239999,14296.9619,61,2343.5,9973.0889'). "
        f"Fix: {TRUNCATED}",
        id="11-columns",
    ),
    pytest.param(
        _extra_field,
        5,
        "13 columns where 12 are expected "
        "('1690848180000,4.256,4.256,4.254,4.256,3359.7,1690848239999,14296.9619,61,2343.5,9973.0889,0,0'). "
        f"Fix: {TRUNCATED}",
        id="13-columns",
    ),
    pytest.param(_edit(3, high=""), 5, "empty 'high' field", id="empty-high"),
    pytest.param(_edit(3, open_time=""), 5, "empty 'open_time' field", id="empty-open-time"),
    pytest.param(
        _micros_row,
        5,
        "open_time 1690848180000000 is in microseconds but the file's first timestamp is in milliseconds; "
        "one file must use one unit. Fix: the file mixes sources: re-download it",
        id="micros-in-millis-file",
    ),
    pytest.param(
        _edit(3, open="4.2555"),
        5,
        "column 'open': '4.2555' has more decimals than the price precision 3 allows (vibe-quant never rounds); "
        "fix the instrument's tick/step in instrument_specs.yaml if the exchange really trades at that resolution",
        id="price-too-precise",
    ),
    pytest.param(
        _edit(3, volume="3359.75"),
        5,
        "column 'volume': '3359.75' has more decimals than the size precision 1 allows (vibe-quant never rounds); "
        "fix the instrument's tick/step in instrument_specs.yaml if the exchange really trades at that resolution",
        id="volume-too-precise",
    ),
    pytest.param(
        _edit(3, high="4.255"),
        5,
        f"high is below open or close (open=4.256, high=4.255, low=4.254, close=4.256, volume=3359.7); {OHLC_RULE}. "
        f"Fix: {CORRUPT}",
        id="high-below-close",
    ),
    pytest.param(
        _edit(3, low="4.257"),
        5,
        f"low is above open or close (open=4.256, high=4.256, low=4.257, close=4.256, volume=3359.7); {OHLC_RULE}. "
        f"Fix: {CORRUPT}",
        id="low-above-open",
    ),
    pytest.param(
        _edit(3, low="0"),
        5,
        f"low price is not positive (open=4.256, high=4.256, low=0.000, close=4.256, volume=3359.7); {OHLC_RULE}. "
        f"Fix: {CORRUPT}",
        id="zero-low",
    ),
    pytest.param(
        _edit(3, volume="-1.0"),
        5,
        f"volume is negative (open=4.256, high=4.256, low=4.254, close=4.256, volume=-1.0); {OHLC_RULE}. "
        f"Fix: {CORRUPT}",
        id="negative-volume",
    ),
    pytest.param(
        _edit(3, close_time="1690848239998"),
        5,
        "close_time 1690848239998 - open_time 1690848180000 is not one 60s interval. "
        "Fix: ingest files of the interval they are named for",
        id="wrong-interval",
    ),
    pytest.param(
        _edit(3, open_time="1690848180001", close_time="1690848240000"),
        5,
        "open_time 1690848180001 is not aligned to the interval",
        id="open-time-not-aligned",
    ),
    pytest.param(
        _edit(3, open_time="1199145600000", close_time="1199145659999"),  # 2008-01-01
        5,
        "open_time 1199145600000 is before 2009: not a Binance timestamp",
        id="before-2009",
    ),
    pytest.param(
        _conflicting_duplicate,
        7,
        "two different rows for open_time 1690848120000 (lines 4 and 7). "
        "Fix: the source is inconsistent; remove the wrong row or re-download",
        id="conflicting-duplicate",
    ),
]


@pytest.mark.parametrize(("edit", "line", "message"), BROKEN_KLINES)
def test_broken_kline_csv(
    fil_header: str, fil_rows: list[str], edit: Callable[[list[str]], list[str]], line: int, message: str
) -> None:
    data = csv_bytes([fil_header, *edit(fil_rows[:10])])
    with pytest.raises(DataFileError) as exc:
        parse_klines_csv(data, FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert exc.value.line == line
    assert exc.value.path == FIL_CSV
    assert str(exc.value) == f"{FIL_CSV}, line {line}: {message}"


def test_broken_rows_are_found_deep_in_the_real_month(fil_header: str, fil_rows: list[str]) -> None:
    rows = list(fil_rows)
    rows[30_000] = with_fields(rows[30_000], high="abc")
    with pytest.raises(DataFileError) as exc:
        parse_klines_csv(csv_bytes([fil_header, *rows]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert str(exc.value) == f"{FIL_CSV}, line 30002: column 'high': 'abc' is not a number"


def test_empty_line_in_the_middle_is_rejected_at_its_line(fil_header: str, fil_rows: list[str]) -> None:
    data = csv_bytes([fil_header, *fil_rows[:3], "", *fil_rows[3:10]])
    with pytest.raises(DataFileError) as exc:
        parse_klines_csv(data, FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert exc.value.line == 5
    assert str(exc.value).startswith(f"{FIL_CSV}, line 5: ")


def test_empty_line_in_the_middle_is_named_as_such(fil_header: str, fil_rows: list[str]) -> None:
    data = csv_bytes([fil_header, *fil_rows[:3], "", *fil_rows[3:10]])
    with pytest.raises(DataFileError) as exc:
        parse_klines_csv(data, FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert exc.value.line == 5
    assert exc.value.problem == "empty line"


def test_millis_row_in_real_spot_micros_file() -> None:
    lines = read_member(SPOT_1H.read_bytes(), SPOT_1H.name).decode().splitlines()
    open_us = int(lines[2].split(",", 1)[0])
    lines[2] = with_fields(lines[2], open_time=str(open_us // 1000), close_time=str(open_us // 1000 + 3_599_999))
    with pytest.raises(DataFileError) as exc:
        parse_klines_csv(csv_bytes(lines), SPOT_1H.name, 8, 8, interval_ms=3_600_000)
    assert exc.value.line == 3  # headerless: first row is line 1
    assert exc.value.problem == (
        "open_time 1778205600000 is in milliseconds but the file's first timestamp is in microseconds; "
        "one file must use one unit"
    )


def test_micros_not_whole_millisecond_in_real_spot_file() -> None:
    lines = read_member(SPOT_1H.read_bytes(), SPOT_1H.name).decode().splitlines()
    lines[1] = with_fields(lines[1], open_time="1778202000000001", close_time="1778205600000000")
    with pytest.raises(DataFileError) as exc:
        parse_klines_csv(csv_bytes(lines), SPOT_1H.name, 8, 8, interval_ms=3_600_000)
    assert str(exc.value) == f"{SPOT_1H.name}, line 2: open_time 1778202000000001 is not a whole-millisecond timestamp"


@pytest.mark.parametrize(
    ("close_time", "problem"),
    [
        (
            "1690848239999000",
            "close_time 1690848239999000 is in microseconds but the file's first timestamp is in milliseconds; "
            "one file must use one unit",
        ),
        ("1199145659999", "close_time 1199145659999 is before 2009: not a Binance timestamp"),
    ],
    ids=["micros-close-time", "close-time-before-2009"],
)
def test_close_time_errors_quote_the_file_value(
    fil_header: str, fil_rows: list[str], close_time: str, problem: str
) -> None:
    rows = _edit(3, close_time=close_time)(fil_rows[:10])
    with pytest.raises(DataFileError) as exc:
        parse_klines_csv(csv_bytes([fil_header, *rows]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert exc.value.line == 5
    assert exc.value.problem == problem


def test_nanosecond_first_row_is_blamed(fil_header: str, fil_rows: list[str]) -> None:
    rows = _edit(0, open_time=str(FIL_T0 * 1_000_000))(fil_rows[:10])
    with pytest.raises(DataFileError) as exc:
        parse_klines_csv(csv_bytes([fil_header, *rows]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert exc.value.line == 2
    assert "1690848000000000000" in exc.value.problem


def test_nan_price_is_not_called_empty(fil_header: str, fil_rows: list[str]) -> None:
    rows = _edit(3, high="NaN")(fil_rows[:10])
    with pytest.raises(DataFileError) as exc:
        parse_klines_csv(csv_bytes([fil_header, *rows]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert exc.value.line == 5
    assert exc.value.problem == "column 'high': 'NaN' is not a finite number"


def test_huge_price_is_a_data_file_error(fil_header: str, fil_rows: list[str]) -> None:
    rows = _edit(3, high="1e40")(fil_rows[:10])
    with pytest.raises(DataFileError) as exc:
        parse_klines_csv(csv_bytes([fil_header, *rows]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert exc.value.line == 5


# ---------------------------------------------------------------- duplicates and order


def test_exact_duplicate_is_dropped_and_counted(fil_header: str, fil_rows: list[str]) -> None:
    clean = parse_klines_csv(csv_bytes([fil_header, *fil_rows[:10]]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    rows = [*fil_rows[:5], fil_rows[2], *fil_rows[5:10]]  # real row of line 4 repeated at line 7
    k = parse_klines_csv(csv_bytes([fil_header, *rows]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert (len(k), k.rows_in, k.duplicates) == (10, 11, 1)
    assert_same_klines(k, clean)
    assert k.lines.tolist() == [2, 3, 4, 5, 6, 8, 9, 10, 11, 12]  # first occurrence kept, line 7 dropped


def test_unsorted_file_is_sorted_and_lines_map_back(fil_header: str, fil_rows: list[str]) -> None:
    rng = np.random.default_rng(7)
    perm = rng.permutation(500)
    shuffled = [fil_rows[i] for i in perm]
    k = parse_klines_csv(csv_bytes([fil_header, *shuffled]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    clean = parse_klines_csv(csv_bytes([fil_header, *fil_rows[:500]]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert_same_klines(k, clean)
    assert (k.rows_in, k.duplicates) == (500, 0)
    for t, line in zip(k.open_time_ms.tolist(), k.lines.tolist(), strict=True):
        assert int(shuffled[line - 2].split(",", 1)[0]) == t
    assert k.lines.tolist() == (np.argsort(perm) + 2).tolist()


def test_unsorted_duplicates_keep_the_earlier_line(fil_header: str, fil_rows: list[str]) -> None:
    rows = [fil_rows[4], fil_rows[0], fil_rows[4], fil_rows[1], fil_rows[0]]
    k = parse_klines_csv(csv_bytes([fil_header, *rows]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert (len(k), k.rows_in, k.duplicates) == (3, 5, 2)
    assert k.open_time_ms.tolist() == [FIL_T0, FIL_T0 + MINUTE, FIL_T0 + 4 * MINUTE]
    assert k.lines.tolist() == [3, 5, 2]


def test_klines_slice_time_is_half_open(fil_month: Klines) -> None:
    s = fil_month.slice_time(FIL_T0 + 10 * MINUTE, FIL_T0 + 20 * MINUTE)
    assert (len(s), s.rows_in, s.duplicates, s.time_unit) == (10, 10, 0, "ms")
    assert s.open_time_ms.tolist() == [FIL_T0 + i * MINUTE for i in range(10, 20)]
    assert s.lines.tolist() == list(range(12, 22))
    np.testing.assert_array_equal(s.close, fil_month.close[10:20])


# ---------------------------------------------------------------- parse_klines_json

JSON_NAME = "GET /fapi/v1/klines FILUSDT"


def test_json_equals_csv_on_real_rows(fil_header: str, fil_rows: list[str]) -> None:
    body = json.dumps(rest_json(fil_rows[:100])).encode()
    k = parse_klines_json(body, JSON_NAME, FIL_PRICE, FIL_SIZE)
    assert_same_klines(k, parse_klines_csv(csv_bytes([fil_header, *fil_rows[:100]]), FIL_CSV, FIL_PRICE, FIL_SIZE))
    assert k.lines.tolist() == list(range(1, 101))  # 1-based element index
    assert (k.rows_in, k.duplicates, k.time_unit) == (100, 0, "ms")


def test_json_empty_array() -> None:
    k = parse_klines_json(b"[]", JSON_NAME, FIL_PRICE, FIL_SIZE)
    assert (len(k), k.rows_in) == (0, 0)


def test_json_not_json(fil_rows: list[str]) -> None:
    body = json.dumps(rest_json(fil_rows[:100])).encode()
    with pytest.raises(DataFileError) as exc:
        parse_klines_json(body[: len(body) // 2], JSON_NAME, FIL_PRICE, FIL_SIZE)
    assert exc.value.line is None
    assert str(exc.value) == f"{JSON_NAME}: not valid JSON: Input data was truncated"


def test_json_not_an_array() -> None:
    body = b'{"code":-1121,"msg":"Invalid symbol."}'  # hand-written: Binance's documented error body
    with pytest.raises(DataFileError) as exc:
        parse_klines_json(body, JSON_NAME, FIL_PRICE, FIL_SIZE)
    assert exc.value.line is None
    assert str(exc.value) == (
        f"{JSON_NAME}: expected a JSON array of klines, got dict: {{'code': -1121, 'msg': 'Invalid symbol.'}}"
    )


def _json_edit(i: int, edit: Callable[[list], object]) -> Callable[[list[list]], list]:
    def apply(elements: list[list]) -> list:
        elements = [list(e) for e in elements]
        elements[i] = edit(elements[i])
        return elements

    return apply


def _set(idx: int, value: object) -> Callable[[list], list]:
    def edit(element: list) -> list:
        element[idx] = value
        return element

    return edit


BROKEN_JSON = [
    pytest.param(
        _json_edit(2, lambda e: e[:5]),
        3,
        "kline [1690848120000, '4.252', '4.256', '4.252', '4.256'] has the wrong shape (need 12 fields)",
        id="short-element",
    ),
    pytest.param(
        _json_edit(3, lambda e: "x"), 4, "kline 'x' has the wrong shape (need 12 fields)", id="element-not-array"
    ),
    pytest.param(
        _json_edit(3, _set(2, "4.2555")),
        4,
        "column 'high': '4.2555' has more decimals than the price precision 3 allows (vibe-quant never rounds); "
        "fix the instrument's tick/step in instrument_specs.yaml if the exchange really trades at that resolution",
        id="too-precise",
    ),
    pytest.param(_json_edit(3, _set(2, "abc")), 4, "column 'high': 'abc' is not a number", id="non-numeric"),
    pytest.param(
        _json_edit(3, _set(0, "1690848180000")),
        4,
        "open_time '1690848180000' is not an integer timestamp",
        id="string-open-time",
    ),
    pytest.param(
        _json_edit(4, _set(6, 1690848299998)),
        5,
        "close_time 1690848299998 - open_time 1690848240000 is not one 60s interval. "
        "Fix: ingest files of the interval they are named for",
        id="wrong-interval",
    ),
    pytest.param(
        _json_edit(1, _set(5, "-2476.0")),
        2,
        f"volume is negative (open=4.251, high=4.253, low=4.251, close=4.253, volume=-2476.0); {OHLC_RULE}. "
        f"Fix: {CORRUPT}",
        id="negative-volume",
    ),
]


@pytest.mark.parametrize(("edit", "line", "message"), BROKEN_JSON)
def test_broken_json(fil_rows: list[str], edit: Callable[[list[list]], list], line: int, message: str) -> None:
    body = json.dumps(edit(rest_json(fil_rows[:10]))).encode()
    with pytest.raises(DataFileError) as exc:
        parse_klines_json(body, JSON_NAME, FIL_PRICE, FIL_SIZE)
    assert exc.value.line == line
    assert str(exc.value) == f"{JSON_NAME}, line {line}: {message}"


def test_json_eleven_field_element_is_rejected(fil_rows: list[str]) -> None:
    elements = rest_json(fil_rows[:5])
    elements[2] = elements[2][:11]
    with pytest.raises(DataFileError) as exc:
        parse_klines_json(json.dumps(elements).encode(), JSON_NAME, FIL_PRICE, FIL_SIZE)
    assert exc.value.line == 3
    assert "wrong shape" in exc.value.problem


def test_json_accepts_what_the_csv_accepts(fil_header: str, fil_rows: list[str]) -> None:
    elements = rest_json(fil_rows[:5])
    elements[3][2] = " " + elements[3][2]
    csv_rows = [*fil_rows[:3], with_fields(fil_rows[3], high=" " + fil_rows[3].split(",")[2]), fil_rows[4]]
    expected = parse_klines_csv(csv_bytes([fil_header, *csv_rows]), FIL_CSV, FIL_PRICE, FIL_SIZE)
    assert_same_klines(parse_klines_json(json.dumps(elements).encode(), JSON_NAME, FIL_PRICE, FIL_SIZE), expected)


def test_json_huge_timestamp_is_a_data_file_error(fil_rows: list[str]) -> None:
    elements = rest_json(fil_rows[:5])
    elements[3][0] = 2**70
    with pytest.raises(DataFileError) as exc:
        parse_klines_json(json.dumps(elements).encode(), JSON_NAME, FIL_PRICE, FIL_SIZE)
    assert exc.value.line == 4


# ---------------------------------------------------------------- combine_klines


def _page(rows: list[str]) -> Klines:
    return parse_klines_json(json.dumps(rest_json(rows)).encode(), JSON_NAME, FIL_PRICE, FIL_SIZE)


def test_combine_overlapping_pages(fil_rows: list[str], fil_month: Klines) -> None:
    first, second = _page(fil_rows[:60]), _page(fil_rows[50:100])
    for parts in ([first, second], [second, first]):
        merged = combine_klines(parts)
        assert (len(merged), merged.rows_in, merged.duplicates) == (100, 110, 10)
        assert_same_klines(merged, fil_month.slice_time(FIL_T0, FIL_T0 + 100 * MINUTE))


def test_combine_counts_duplicates_inside_pages(fil_rows: list[str]) -> None:
    first = _page([*fil_rows[:10], fil_rows[3]])  # one repeat inside the page
    merged = combine_klines([first, _page(fil_rows[5:20])])
    assert (len(merged), merged.rows_in, merged.duplicates) == (20, 26, 6)
    assert (np.diff(merged.open_time_ms) == MINUTE).all()


def test_combine_conflicting_pages(fil_rows: list[str]) -> None:
    altered = [*fil_rows[50:55], with_fields(fil_rows[55], volume="1.0"), *fil_rows[56:100]]
    with pytest.raises(DataFileError) as exc:
        combine_klines([_page(fil_rows[:60]), _page(altered)])
    assert exc.value.line is None
    assert str(exc.value) == "REST pages: two different klines for open_time 1690851300000"


def test_combine_trivial_inputs(fil_rows: list[str]) -> None:
    page = _page(fil_rows[:10])
    assert combine_klines([page]) is page
    empty = combine_klines([])
    assert (len(empty), empty.rows_in, empty.duplicates, empty.time_unit) == (0, 0, 0, "ms")


# ---------------------------------------------------------------- parse_funding_csv


def test_golden_funding_month(funding_csv: bytes) -> None:
    f = parse_funding_csv(funding_csv, FUNDING_CSV)
    assert (len(f), f.rows_in, f.duplicates) == (90, 90, 0)
    assert int(f.calc_time_ms[0]) == 1_775_001_600_000
    assert f.rates[0] == Decimal("-0.00003449")
    assert str(f.rates[0]) == "-0.00003449"
    assert 1_775_088_000_003 in f.calc_time_ms.tolist()  # Binance stamped this settlement 3 ms late
    assert f.interval_hours.tolist() == [8] * 90
    assert (np.diff(f.calc_time_ms) > 0).all()
    assert f.calc_time_ms.dtype == f.interval_hours.dtype == np.int64


def test_funding_matches_csv_module_oracle(funding_csv: bytes) -> None:
    f = parse_funding_csv(funding_csv, FUNDING_CSV)
    rows = list(csv.reader(io.StringIO(funding_csv.decode())))[1:]
    expected = sorted((int(t), int(h), Decimal(r)) for t, h, r in rows)
    got = list(zip(f.calc_time_ms.tolist(), f.interval_hours.tolist(), f.rates, strict=True))
    assert got == expected
    assert [str(r) for r in f.rates] == [r for _, _, r in sorted(rows, key=lambda r: int(r[0]))]


def test_funding_headerless_and_unsorted(funding_lines: list[str], funding_csv: bytes) -> None:
    rng = np.random.default_rng(11)
    rows = funding_lines[1:]
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    f = parse_funding_csv(csv_bytes(shuffled), FUNDING_CSV)
    g = parse_funding_csv(funding_csv, FUNDING_CSV)
    np.testing.assert_array_equal(f.calc_time_ms, g.calc_time_ms)
    assert f.rates == g.rates


def test_funding_exact_duplicate_is_dropped(funding_lines: list[str]) -> None:
    f = parse_funding_csv(csv_bytes([*funding_lines[:4], funding_lines[2]]), FUNDING_CSV)
    assert (len(f), f.rows_in, f.duplicates) == (3, 4, 1)


def test_funding_slice_time_keeps_jittered_stamp_exact(funding_csv: bytes) -> None:
    f = parse_funding_csv(funding_csv, FUNDING_CSV)
    before = f.slice_time(1_775_001_600_000, 1_775_088_000_003)
    assert before.calc_time_ms.tolist() == [1_775_001_600_000, 1_775_030_400_000, 1_775_059_200_000]
    assert isinstance(before, FundingRates)
    assert (before.rows_in, before.duplicates) == (3, 0)
    assert f.slice_time(1_775_088_000_000, 1_775_088_000_004).rates == (Decimal("0.00003521"),)


# Real lines 2..3 of the file, then a hand-edited line 4 (or 5).
BROKEN_FUNDING = [
    pytest.param(["1775059200000,8,abc"], 4, "column 'last_funding_rate': 'abc' is not a number", id="rate-abc"),
    pytest.param(["1775059200000,8,"], 4, "column 'last_funding_rate': '' is not a number", id="rate-empty"),
    pytest.param(["1775059200000,0,0.00000577"], 4, "funding_interval_hours 0 is not in 1..24", id="interval-0"),
    pytest.param(["1775059200000,25,0.00000577"], 4, "funding_interval_hours 25 is not in 1..24", id="interval-25"),
    pytest.param(["abc,8,0.00000577"], 4, "column 'calc_time': 'abc' is not an integer", id="calc-time-abc"),
    pytest.param(
        ["1775059200000,8"],
        4,
        f"2 columns where 3 are expected ('1775059200000,8'). Fix: {TRUNCATED}",
        id="two-columns",
    ),
    pytest.param(
        ["1775059200000,8,0.00000577", "1775030400000,8,0.0001"],  # calc_time of line 3 with another rate
        5,
        "two different funding rows for calc_time 1775030400000. Fix: remove the wrong row or re-download",
        id="conflicting-duplicate",
    ),
    pytest.param(
        ["1199145600000,8,0.00000577"],
        4,
        "calc_time 1199145600000 is before 2009: not a Binance timestamp",
        id="before-2009",
    ),
]


@pytest.mark.parametrize(("extra", "line", "message"), BROKEN_FUNDING)
def test_broken_funding_csv(funding_lines: list[str], extra: list[str], line: int, message: str) -> None:
    with pytest.raises(DataFileError) as exc:
        parse_funding_csv(csv_bytes([*funding_lines[:3], *extra]), FUNDING_CSV)
    assert exc.value.line == line
    assert str(exc.value) == f"{FUNDING_CSV}, line {line}: {message}"


@pytest.mark.parametrize("row", [",8,0.00000577", "1775059200000,,0.00000577"], ids=["calc-time", "interval"])
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_funding_empty_integer_field_is_rejected(funding_lines: list[str], row: str) -> None:
    with pytest.raises(DataFileError) as exc:
        parse_funding_csv(csv_bytes([*funding_lines[:3], row]), FUNDING_CSV)
    assert exc.value.line == 4


def test_funding_huge_rate_is_a_data_file_error(funding_lines: list[str]) -> None:
    with pytest.raises(DataFileError) as exc:
        parse_funding_csv(csv_bytes([*funding_lines[:3], "1775059200000,8,1775059200000"]), FUNDING_CSV)
    assert exc.value.line == 4


# ---------------------------------------------------------------- exact decimals, never float

# Tail of the real first FIL row (quote_volume .. ignore); these columns are not parsed.
_TAIL = "107451.0165,208,5452.3,23199.1103,0"


def _decimal_string(precision: int) -> st.SearchStrategy[str]:
    integer = st.integers(0, 10 ** (18 - precision) - 1)
    fraction = st.text("0123456789", max_size=precision)
    return st.builds(lambda i, f: f"{i}.{f}" if f else str(i), integer, fraction)


@st.composite
def _price_volume_rows(draw: st.DrawFn) -> tuple[int, int, list[tuple[str, str]]]:
    p, q = draw(st.integers(0, 8)), draw(st.integers(0, 8))
    prices = _decimal_string(p).filter(lambda s: Decimal(s) > 0)
    rows = draw(st.lists(st.tuples(prices, _decimal_string(q)), min_size=1, max_size=30))
    return p, q, rows


def _hand_rows(values: list[tuple[str, str]]) -> list[str]:
    # Hand-written rows: consecutive real-looking minutes, O=H=L=C so any positive price is consistent.
    return [
        f"{FIL_T0 + i * MINUTE},{s},{s},{s},{s},{v},{FIL_T0 + (i + 1) * MINUTE - 1},{_TAIL}"
        for i, (s, v) in enumerate(values)
    ]


@settings(max_examples=150, deadline=None)
@given(_price_volume_rows())
@example((0, 0, [("9007199254740993", "9007199254740993")]))  # 2**53 + 1: a float would round it
@example((8, 8, [("92233720368.54775807", "0.00000001")]))  # int64 max mantissa
@example((3, 1, [("4.35", "0.3"), ("1.005", "0.1")]))  # classic binary-float traps
def test_mantissa_is_exact_decimal(case: tuple[int, int, list[tuple[str, str]]]) -> None:
    p, q, values = case
    rows = _hand_rows(values)
    k = parse_klines_csv(csv_bytes(rows), "property.csv", p, q)
    expected_prices = [int(Decimal(s) * 10**p) for s, _ in values]
    expected_volumes = [int(Decimal(v) * 10**q) for _, v in values]
    for field in ("open", "high", "low", "close"):
        assert getattr(k, field).tolist() == expected_prices, field
    assert k.volume.tolist() == expected_volumes
    j = parse_klines_json(json.dumps(rest_json(rows)).encode(), "property.json", p, q)
    assert_same_klines(j, k)


def test_mantissa_just_above_int64_is_rejected() -> None:
    rows = _hand_rows([("92233720368.54775808", "1")])
    with pytest.raises(DataFileError) as exc:
        parse_klines_csv(csv_bytes(rows), "big.csv", 8, 0)
    assert str(exc.value) == "big.csv, line 1: 'open' value 92233720368.54775808 is too large"
