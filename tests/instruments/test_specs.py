"""Instrument specs: the packaged YAML, its cross-field rules, symbol spellings and the real data."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.objects import Money

from tests.conftest import SHARED_DATA, UM_KLINES, kline_zip
from vibe_quant.data.parse import parse_klines_csv, read_member
from vibe_quant.errors import ConfigError, DataFileError, UnknownSymbolError, UserError
from vibe_quant.instruments.factory import crypto_perpetual
from vibe_quant.instruments.specs import InstrumentSpec, InstrumentSpecs, decimals, normalize_symbol

PERPS = SHARED_DATA / "perps-1d-1h"
PACKAGED_TEXT = resources.files("vibe_quant.instruments").joinpath("instrument_specs.yaml").read_text("utf-8")
MAJORS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT")


def data_symbols() -> list[str]:
    """Every USD-M symbol with real data in ../shared/data."""
    found = {p.name.rsplit("_USDT_", 1)[0] + "USDT" for p in PERPS.glob("*_USDT_1[dh].csv")}
    found |= {p.name for p in UM_KLINES.iterdir() if p.is_dir()}
    return sorted(found)


KLINE_ZIPS = sorted(UM_KLINES.glob("*/1m/*.zip"))


# -- the packaged file ------------------------------------------------------------------------


def test_packaged_file_loads_and_is_marked_assumed_baseline(specs: InstrumentSpecs) -> None:
    assert specs.file.status == "assumed baseline"
    assert "STATUS: ASSUMED BASELINE" in PACKAGED_TEXT
    assert specs.version == "2026.11.1"
    assert (specs.file.venue, specs.file.market) == ("BINANCE", "futures-um")
    assert specs.path.endswith("instrument_specs.yaml")
    assert len(specs.sha256) == 64
    assert specs.symbols == sorted(specs.symbols)


def test_packaged_file_has_the_majors(specs: InstrumentSpecs) -> None:
    for symbol in MAJORS:
        assert symbol in specs
        assert specs.get(symbol).symbol == symbol


def test_every_symbol_with_real_data_has_a_spec(specs: InstrumentSpecs) -> None:
    symbols = data_symbols()
    assert len(symbols) == 156  # 156 perps-1d-1h bases; the kline folders are among them
    assert {"FILUSDT", "NEARUSDT", "ALGOUSDT", "AVAXUSDT", "LINKUSDT"} <= set(symbols)
    assert [s for s in symbols if s not in specs] == []


def test_every_symbol_builds_a_crypto_perpetual(specs: InstrumentSpecs) -> None:
    for symbol in specs.symbols:
        spec = specs.get(symbol)
        instrument = crypto_perpetual(spec)
        assert isinstance(instrument, CryptoPerpetual)
        assert instrument.id == InstrumentId.from_str(f"{symbol}-PERP.BINANCE"), symbol
        assert instrument.raw_symbol.value == symbol
        assert instrument.price_precision == spec.price_precision, symbol
        assert instrument.size_precision == spec.size_precision, symbol
        assert instrument.price_increment.as_decimal() == spec.tick_size, symbol
        assert instrument.size_increment.as_decimal() == spec.step_size, symbol
        assert instrument.quote_currency == USDT
        assert instrument.settlement_currency == USDT
        assert not instrument.is_inverse
        assert instrument.info["canonical_id"] == f"BINANCE:{symbol}:PERP"


def test_btcusdt_spec_values(specs: InstrumentSpecs) -> None:
    spec = specs.get("BTCUSDT")
    assert isinstance(spec, InstrumentSpec)
    assert (spec.base, spec.quote, spec.venue) == ("BTC", "USDT", "BINANCE")
    assert spec.tick_size == Decimal("0.10")
    assert spec.price_precision == 2
    assert spec.step_size == Decimal("0.001")
    assert spec.size_precision == 3
    assert spec.min_notional == Decimal(100)
    assert (spec.maker_fee, spec.taker_fee) == (Decimal("0.0002"), Decimal("0.0005"))
    assert spec.margin_schedule == "btc"
    assert spec.listed == dt.date(2019, 9, 1)
    assert spec.canonical_id == "BINANCE:BTCUSDT:PERP"
    assert spec.nautilus_id == "BTCUSDT-PERP.BINANCE"
    assert (spec.spec_version, spec.spec_sha256) == (specs.version, specs.sha256)


def test_btcusdt_instrument_values(specs: InstrumentSpecs) -> None:
    instrument = crypto_perpetual(specs.get("BTCUSDT"))
    assert str(instrument.price_increment) == "0.10"
    assert str(instrument.size_increment) == "0.001"
    assert instrument.min_quantity.as_decimal() == Decimal("0.001")
    assert instrument.min_notional == Money(100, USDT)
    assert instrument.margin_init == Decimal("0.008")  # 1 / 125x
    assert instrument.margin_maint == Decimal("0.004")
    assert (instrument.maker_fee, instrument.taker_fee) == (Decimal("0.0002"), Decimal("0.0005"))
    assert (instrument.ts_event, instrument.ts_init) == (0, 0)


def test_defaults_fill_what_a_symbol_leaves_out(specs: InstrumentSpecs) -> None:
    fil = specs.get("FILUSDT")
    assert (fil.min_notional, fil.margin_schedule) == (Decimal(5), "alt")
    assert (fil.price_precision, fil.size_precision) == (3, 1)
    sol = specs.get("SOLUSDT")  # precision raised above the tick for older, finer history
    assert (sol.tick_size, sol.price_precision, sol.step_size, sol.size_precision) == (
        Decimal("0.01"),
        4,
        Decimal(1),
        2,
    )


def test_btcusdt_maintenance_amounts_match_binance_cum(specs: InstrumentSpecs) -> None:
    spec = specs.get("BTCUSDT")
    # Binance leverageBracket "cum" for BTCUSDT, first five brackets.
    assert spec.maint_amounts[:5] == (Decimal(0), Decimal(50), Decimal(2550), Decimal(122550), Decimal(1372550))
    assert len(spec.maint_amounts) == len(spec.margin_tiers) == 10


def test_maintenance_margin_is_continuous_at_every_tier_boundary(specs: InstrumentSpecs) -> None:
    for name in specs.file.margin_schedules:
        symbol = next(s for s in specs.symbols if specs.get(s).margin_schedule == name)
        spec = specs.get(symbol)
        pairs = list(zip(spec.margin_tiers, spec.maint_amounts, strict=True))
        for (prev, prev_amount), (tier, amount) in itertools.pairwise(pairs):
            n = tier.floor
            assert n * prev.mmr - prev_amount == n * tier.mmr - amount, (name, n)


def test_tier_for_picks_the_bracket_of_a_notional(specs: InstrumentSpecs) -> None:
    spec = specs.get("BTCUSDT")
    tiers = spec.margin_tiers
    tier, amount = spec.tier_for(Decimal(60000))
    assert tier is tiers[1]
    assert (tier.floor, tier.cap, tier.max_leverage, tier.mmr, amount) == (
        Decimal(50000),
        Decimal(500000),
        100,
        Decimal("0.005"),
        Decimal(50),
    )
    assert spec.tier_for(Decimal(0))[0] is tiers[0]
    assert spec.tier_for(Decimal("49999.99"))[0] is tiers[0]
    assert spec.tier_for(Decimal(50000))[0] is tiers[1]  # floor inclusive, cap exclusive
    assert spec.tier_for(Decimal(10) ** 12) == (tiers[-1], spec.maint_amounts[-1])


@pytest.mark.parametrize(
    ("value", "places"),
    [("0.10", 2), ("0.001", 3), ("1", 0), ("10", 0), ("0.0000001", 7), ("1E+1", 0), ("5.000", 3)],
)
def test_decimals_counts_written_places(value: str, places: int) -> None:
    assert decimals(Decimal(value)) == places


# -- symbols ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["BTCUSDT", "btcusdt", " BTCUSDT ", "BTCUSDT-PERP", "btcusdt-perp", "BTCUSDT-PERP.BINANCE", "BINANCE:BTCUSDT:PERP"],
)
def test_normalize_symbol_accepts_every_spelling(text: str) -> None:
    assert normalize_symbol(text) == "BTCUSDT"


def test_normalize_symbol_keeps_non_ascii_symbols(specs: InstrumentSpecs) -> None:
    assert normalize_symbol("币安人生USDT-PERP.BINANCE") == "币安人生USDT"
    assert "币安人生USDT" in specs


def test_unknown_symbol_is_a_user_error_with_a_suggestion(specs: InstrumentSpecs) -> None:
    with pytest.raises(UnknownSymbolError) as excinfo:
        specs.get("BTCUSDX")
    assert isinstance(excinfo.value, UserError)
    assert excinfo.value.symbol == "BTCUSDX"
    message = str(excinfo.value)
    assert message.startswith(f"unknown symbol 'BTCUSDX': no spec in {specs.path}. Did you mean BTCUSDT")
    assert "vibe-quant never guesses a spec" in message


def test_unknown_symbol_without_a_close_match_has_no_suggestion(specs: InstrumentSpecs) -> None:
    with pytest.raises(UnknownSymbolError) as excinfo:
        specs.get("QQQQQQQQQQQQQQQ")
    assert "Did you mean" not in str(excinfo.value)
    assert "QQQQQQQQQQQQQQQ" not in specs


# -- a corpus of broken spec files ------------------------------------------------------------

FIL_LINE = '  FILUSDT: {base: FIL, tick_size: "0.001", step_size: "0.1", listed: 2020-10-16, source: derived}'
BTC_TIER0 = '    - {floor: "0", cap: "50000", max_leverage: 125, mmr: "0.004"}'
BTC_TIER2 = '    - {floor: "500000", cap: "8000000", max_leverage: 50, mmr: "0.01"}'


def altered(tmp_path: Path, old: str, new: str) -> Path:
    assert PACKAGED_TEXT.count(old) == 1, old
    path = tmp_path / "instrument_specs.yaml"
    path.write_text(PACKAGED_TEXT.replace(old, new), encoding="utf-8")
    return path


def fil(**changes: str) -> str:
    line = FIL_LINE
    for old, new in changes.items():
        line = line.replace(old, new)
    return line


# (id, old text, new text, expected message after "<path>: ")
LOAD_TIME_CORPUS = [
    (
        "unknown-key-in-symbol",
        FIL_LINE,
        fil(derived='derived, tick: "0.001"'),
        "symbols.FILUSDT: Object contains unknown field `tick`. Fix that field.",
    ),
    (
        "negative-tick-size",
        FIL_LINE,
        fil(**{'tick_size: "0.001"': 'tick_size: "-0.001"'}),
        "symbols.FILUSDT: tick_size must be > 0, got -0.001. Fix that field.",
    ),
    (
        "zero-step-size",
        FIL_LINE,
        fil(**{'step_size: "0.1"': 'step_size: "0"'}),
        "symbols.FILUSDT: step_size must be > 0, got 0. Fix that field.",
    ),
    (
        "fee-as-percent-in-symbol",
        FIL_LINE,
        fil(derived='derived, taker_fee: "0.05"'),
        "symbols.FILUSDT: taker_fee must be a rate in [-0.01, 0.01] (0.0005 = 0.05%), got 0.05. Fix that field.",
    ),
    (
        "fee-as-percent-in-defaults",
        '  maker_fee: "0.0002"   # VIP0 USD-M maker',
        '  maker_fee: "0.02"',
        "maker_fee must be a rate in [-0.01, 0.01] (0.0005 = 0.05%), got 0.02 - at `$.defaults`. "
        "Fix that field (see the file's header).",
    ),
    (
        "non-contiguous-tiers",
        BTC_TIER2,
        BTC_TIER2.replace('floor: "500000"', 'floor: "600000"'),
        "margin_schedules.btc[2].floor 600000 != previous cap 500000; tiers must be contiguous",
    ),
    (
        "mmr-equal-to-initial-margin",
        BTC_TIER0,
        BTC_TIER0.replace('mmr: "0.004"', 'mmr: "0.008"'),
        "margin_schedules.btc[0]: mmr 0.008 >= initial margin 1/125; maintenance must be below initial margin",
    ),
    (
        "first-floor-not-zero",
        BTC_TIER0,
        BTC_TIER0.replace('floor: "0"', 'floor: "1"'),
        "margin_schedules.btc[0].floor is 1; the first tier starts at 0",
    ),
    (
        "cap-below-floor",
        BTC_TIER0,
        BTC_TIER0.replace('cap: "50000"', 'cap: "0"'),
        "margin_schedules.btc[0]: cap 0 <= floor 0",
    ),
    (
        "mmr-falls-with-notional",
        BTC_TIER2,
        BTC_TIER2.replace('mmr: "0.01"', 'mmr: "0.0045"'),
        "margin_schedules.btc[2]: mmr must rise and max_leverage must not rise with notional",
    ),
    (
        "status-missing",
        "status: assumed baseline\n",
        "",
        "Object missing required field `status`. Fix that field (see the file's header).",
    ),
]

# Rules checked when a symbol is resolved (``get``) rather than when the file is read.
SYMBOL_CORPUS = [
    (
        "price-precision-below-tick",
        fil(step_size="price_precision: 2, step_size"),
        "symbols.FILUSDT.price_precision is 2 but the increment 0.001 has 3 decimals",
    ),
    (
        "unknown-margin-schedule",
        fil(derived="derived, margin_schedule: altt"),
        "symbols.FILUSDT.margin_schedule 'altt' is not in margin_schedules (alt, btc, large_cap)",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "message"), [c[1:] for c in LOAD_TIME_CORPUS], ids=[c[0] for c in LOAD_TIME_CORPUS]
)
def test_broken_specs_file_is_rejected_on_load(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = altered(tmp_path, old, new)
    with pytest.raises(ConfigError) as excinfo:
        InstrumentSpecs(path)
    assert excinfo.type is ConfigError
    assert str(excinfo.value) == f"{path}: {message}"


@pytest.mark.parametrize(("new", "message"), [c[1:] for c in SYMBOL_CORPUS], ids=[c[0] for c in SYMBOL_CORPUS])
def test_broken_symbol_entry_is_rejected_on_load(tmp_path: Path, new: str, message: str) -> None:
    path = altered(tmp_path, FIL_LINE, new)
    with pytest.raises(ConfigError) as excinfo:
        InstrumentSpecs(path)
    assert str(excinfo.value) == f"{path}: {message}"


def test_broken_symbol_entry_message_names_the_symbol(tmp_path: Path) -> None:
    path = altered(tmp_path, FIL_LINE, fil(**{'tick_size: "0.001"': 'tick_size: "-0.001"'}))
    with pytest.raises(ConfigError, match="FILUSDT"):
        InstrumentSpecs(path)


def test_specs_file_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "instrument_specs.yaml"
    path.write_text("version: [2026\nsymbols: {", encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        InstrumentSpecs(path)
    assert excinfo.type is ConfigError
    assert str(excinfo.value).startswith(f"{path}: not valid YAML: ")


def test_specs_file_that_is_yaml_but_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "instrument_specs.yaml"
    path.write_text("- BTCUSDT\n- ETHUSDT\n", encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        InstrumentSpecs(path)
    assert str(excinfo.value) == f"{path}: Expected `object`, got `array`. Fix that field (see the file's header)."


def test_missing_specs_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "instrument_specs.yaml"
    with pytest.raises(ConfigError) as excinfo:
        InstrumentSpecs(path)
    assert excinfo.type is ConfigError
    assert str(excinfo.value) == f"cannot read instrument specs {path}: No such file or directory"


def test_unaltered_copy_loads_like_the_packaged_file(tmp_path: Path, specs: InstrumentSpecs) -> None:
    path = altered(tmp_path, FIL_LINE, FIL_LINE)
    copy = InstrumentSpecs(path)
    assert copy.sha256 == specs.sha256
    assert copy.get("FILUSDT") == specs.get("FILUSDT")


# -- the real data fits the specs -------------------------------------------------------------


def test_every_monthly_kline_zip_parses_at_its_spec_precision(specs: InstrumentSpecs) -> None:
    assert len(KLINE_ZIPS) == 49
    rows = 0
    for path in KLINE_ZIPS:
        spec = specs.get(path.parent.parent.name)
        klines = parse_klines_csv(
            read_member(path.read_bytes(), path.name), path.name, spec.price_precision, spec.size_precision
        )
        assert klines.duplicates == 0, path.name
        assert len(klines) % 1440 == 0, path.name  # complete days
        rows += len(klines)
    assert rows == 2_082_240


def test_a_precision_below_the_data_is_an_error_not_rounding(specs: InstrumentSpecs) -> None:
    path = kline_zip("FILUSDT", "2023-08")
    spec = specs.get("FILUSDT")
    with pytest.raises(DataFileError) as excinfo:
        parse_klines_csv(
            read_member(path.read_bytes(), path.name), path.name, spec.price_precision - 1, spec.size_precision
        )
    assert str(excinfo.value).startswith(
        "FILUSDT-1m-2023-08.zip, line 2: column 'open': '4.255' has more decimals than the price precision 2 allows"
    )


def test_perps_1d_1h_files_fit_their_spec_precision(specs: InstrumentSpecs) -> None:
    files = sorted(PERPS.glob("*_USDT_1[dh].csv"))
    assert len(files) == 298  # 156 daily + 142 hourly
    as_text = pacsv.ConvertOptions(column_types={c: pa.string() for c in ("open", "high", "low", "close", "volume")})
    too_fine = []
    for path in files:
        spec = specs.get(path.name.rsplit("_USDT_", 1)[0] + "USDT")
        table = pacsv.read_csv(path, convert_options=as_text)
        for column, precision in [(c, spec.price_precision) for c in ("open", "high", "low", "close")] + [
            ("volume", spec.size_precision)
        ]:
            values = table[column]
            assert pc.all(pc.match_substring_regex(values, r"^[0-9]+(\.[0-9]+)?$")).as_py(), (path.name, column)
            places = pc.utf8_length(pc.replace_substring_regex(values, r"^[0-9]*\.?|0+$", ""))
            if pc.max(places).as_py() > precision:
                too_fine.append((path.name, column, pc.max(places).as_py(), precision))
    assert too_fine == []


def test_no_perps_file_starts_before_its_listing_date(specs: InstrumentSpecs) -> None:
    with (PERPS / "MANIFEST.tsv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["first_open_utc"]]
    assert len(rows) == 298
    early = []
    for row in rows:
        name = row["path"].rsplit("/", 1)[1]
        spec = specs.get(name.rsplit("_USDT_", 1)[0] + "USDT")
        first = dt.date.fromisoformat(row["first_open_utc"][:10])
        if spec.listed is None or first < spec.listed:
            early.append((name, first, spec.listed))
    assert early == []
