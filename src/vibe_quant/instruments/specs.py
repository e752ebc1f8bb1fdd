"""Load and check ``instrument_specs.yaml`` (the versioned, "assumed baseline" instrument specs).

The file is parsed once into frozen structs; nothing downstream sees a raw dict. Lookups of a
symbol with no spec raise :class:`~vibe_quant.errors.UnknownSymbolError` — a spec is never
guessed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from decimal import Decimal
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import msgspec

from vibe_quant.errors import ConfigError, UnknownSymbolError

PACKAGED_SPECS = "instrument_specs.yaml"

Precision = Annotated[int, msgspec.Meta(ge=0, le=16)]  # NautilusTrader's FIXED_PRECISION


class MarginTier(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One notional bracket of the maintenance-margin schedule (USDT)."""

    floor: Decimal
    cap: Decimal
    max_leverage: Annotated[int, msgspec.Meta(ge=1, le=200)]
    mmr: Decimal

    def __post_init__(self) -> None:
        if self.floor < 0:
            raise ValueError(f"floor must be >= 0, got {self.floor}")
        if not 0 < self.mmr < 1:
            raise ValueError(f"mmr must be in (0, 1), got {self.mmr}")


class Defaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    quote: str
    maker_fee: Decimal
    taker_fee: Decimal
    min_notional: Decimal
    margin_schedule: str

    def __post_init__(self) -> None:
        _check_positive(min_notional=self.min_notional)
        _check_fee(maker_fee=self.maker_fee, taker_fee=self.taker_fee)


class MarketDefaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Defaults of a spot or COIN-M section (no margin schedule of their own yet)."""

    quote: str
    maker_fee: Decimal
    taker_fee: Decimal
    min_notional: Decimal

    def __post_init__(self) -> None:
        _check_positive(min_notional=self.min_notional)
        _check_fee(maker_fee=self.maker_fee, taker_fee=self.taker_fee)


class MarketSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    defaults: MarketDefaults
    symbols: dict[str, dict[str, Any]]


class SymbolEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    base: str
    tick_size: Decimal
    step_size: Decimal
    source: str
    price_precision: Precision | None = None
    size_precision: Precision | None = None
    min_notional: Decimal | None = None
    maker_fee: Decimal | None = None
    taker_fee: Decimal | None = None
    margin_schedule: str | None = None
    listed: dt.date | None = None
    quote: str | None = None
    multiplier: Decimal | None = None  # COIN-M: USD per contract

    def __post_init__(self) -> None:
        _check_positive(
            tick_size=self.tick_size,
            step_size=self.step_size,
            min_notional=self.min_notional,
            multiplier=self.multiplier,
        )
        _check_fee(maker_fee=self.maker_fee, taker_fee=self.taker_fee)


def _check_positive(**values: Decimal | None) -> None:
    for name, value in values.items():
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")


def _check_fee(**values: Decimal | None) -> None:
    # Rebates make maker fees negative; anything beyond +-1% is a typo (a percent, not a rate).
    for name, value in values.items():
        if value is not None and not Decimal("-0.01") <= value <= Decimal("0.01"):
            raise ValueError(f"{name} must be a rate in [-0.01, 0.01] (0.0005 = 0.05%), got {value}")


class SpecsFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: str
    status: str
    venue: str
    market: str
    defaults: Defaults
    margin_schedules: dict[str, list[MarginTier]]
    symbols: dict[str, dict[str, Any]]  # converted one by one so errors can name the symbol
    spot: MarketSection | None = None
    coin_m: MarketSection | None = None


class InstrumentSpec(msgspec.Struct, frozen=True):
    """Everything needed to build one perpetual instrument, with defaults resolved.

    ``price_precision``/``size_precision`` are what bars and orders use; they equal the decimals
    of ``tick_size``/``step_size`` unless the file raises them for older, finer history.
    ``maint_amounts`` is Binance's cumulative maintenance amount per tier, derived so that the
    maintenance margin is continuous across tier boundaries.
    """

    symbol: str
    venue: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    price_precision: int
    size_precision: int
    min_notional: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    margin_schedule: str
    margin_tiers: tuple[MarginTier, ...]
    maint_amounts: tuple[Decimal, ...]
    listed: dt.date | None
    source: str
    spec_version: str
    spec_sha256: str
    market: str = "um"  # um (USD-M perpetual), cm (COIN-M inverse perpetual), spot
    multiplier: Decimal = Decimal(1)

    @property
    def nautilus_id(self) -> str:
        """NautilusTrader's Binance adapter ids: ``BTCUSDT-PERP``, ``BTCUSD-PERP`` (COIN-M ``BTCUSD_PERP``), ``BTCUSDT``."""
        if self.market == "spot":
            return f"{self.symbol}.{self.venue}"
        if self.market == "cm":
            return f"{self.symbol.replace('_PERP', '')}-PERP.{self.venue}"
        return f"{self.symbol}-PERP.{self.venue}"

    @property
    def contract(self) -> str:
        return {"um": "PERP", "cm": "INVERSE_PERP", "spot": "SPOT"}[self.market]

    @property
    def canonical_id(self) -> str:
        return f"{self.venue}:{self.symbol}:{self.contract}"

    @property
    def key(self) -> str:
        """Unique across markets: ``BTCUSDT`` (USD-M), ``spot:BTCUSDT``, ``cm:BTCUSD_PERP``."""
        return self.symbol if self.market == "um" else f"{self.market}:{self.symbol}"

    def tier_for(self, notional: Decimal) -> tuple[MarginTier, Decimal]:
        """Return the margin tier covering `notional` (USDT) and its maintenance amount."""
        for tier, amount in zip(self.margin_tiers, self.maint_amounts, strict=True):
            if notional < tier.cap:
                return tier, amount
        return self.margin_tiers[-1], self.maint_amounts[-1]


def decimals(value: Decimal) -> int:
    """Return the number of decimal places written in `value` (``Decimal("0.10")`` -> 2)."""
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _maint_amounts(tiers: list[MarginTier]) -> tuple[Decimal, ...]:
    amounts = [Decimal(0)]
    for prev, tier in itertools.pairwise(tiers):
        amounts.append(amounts[-1] + tier.floor * (tier.mmr - prev.mmr))
    return tuple(amounts)


class InstrumentSpecs:
    """All specs of one file, indexed by venue symbol (``BTCUSDT``).

    Parameters
    ----------
    path : str or Path, optional
        A specs YAML; default the packaged ``instrument_specs.yaml``.

    Raises
    ------
    ConfigError
        If the file is missing, is not valid YAML, has unknown/missing fields or breaks a
        cross-field rule (tier continuity, precision below the tick's decimals, ...).
    """

    def __init__(self, path: str | Path | None = None):
        if path is None:
            ref = resources.files("vibe_quant.instruments").joinpath(PACKAGED_SPECS)
            raw, self.path = ref.read_bytes(), str(ref)
        else:
            self.path = str(path)
            try:
                raw = Path(path).read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read instrument specs {path}: {exc.strerror}") from exc
        self.sha256 = hashlib.sha256(raw).hexdigest()
        try:
            self.file = msgspec.yaml.decode(raw, type=SpecsFile)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{self.path}: {exc}. Fix that field (see the file's header).") from exc
        except msgspec.DecodeError as exc:
            raise ConfigError(f"{self.path}: not valid YAML: {exc}") from exc
        self._check_schedules()
        d = self.file.defaults
        sections = {"um": ("symbols", d, self.file.symbols)}
        for key, name, section in (("spot", "spot", self.file.spot), ("cm", "coin_m", self.file.coin_m)):
            if section is not None:
                sections[key] = (f"{name}.symbols", section.defaults, section.symbols)
        # Resolve every symbol now: a broken entry fails the load, not a later lookup.
        self._markets: dict[str, dict[str, InstrumentSpec]] = {}
        for market, (where, defaults, symbols) in sections.items():
            specs = self._markets[market] = {}
            for symbol, raw_entry in symbols.items():
                try:
                    entry = msgspec.convert(raw_entry, SymbolEntry)
                except msgspec.ValidationError as exc:
                    found = str(exc).replace(" - at `$`", "").replace("`$.", f"`{where}.{symbol}.")
                    raise ConfigError(f"{self.path}: {where}.{symbol}: {found}. Fix that field.") from exc
                specs[symbol] = self._resolve(symbol, entry, market, defaults, f"{where}.{symbol}")
        self._specs = self._markets["um"]

    def _check_schedules(self) -> None:
        for name, tiers in self.file.margin_schedules.items():
            where = f"{self.path}: margin_schedules.{name}"
            if not tiers:
                raise ConfigError(f"{where} is empty")
            if tiers[0].floor != 0:
                raise ConfigError(f"{where}[0].floor is {tiers[0].floor}; the first tier starts at 0")
            for i, tier in enumerate(tiers):
                if tier.cap <= tier.floor:
                    raise ConfigError(f"{where}[{i}]: cap {tier.cap} <= floor {tier.floor}")
                if tier.mmr >= Decimal(1) / tier.max_leverage:
                    raise ConfigError(
                        f"{where}[{i}]: mmr {tier.mmr} >= initial margin 1/{tier.max_leverage}; "
                        "maintenance must be below initial margin"
                    )
                if i and tier.floor != tiers[i - 1].cap:
                    raise ConfigError(
                        f"{where}[{i}].floor {tier.floor} != previous cap {tiers[i - 1].cap}; tiers must be contiguous"
                    )
                if i and (tier.mmr <= tiers[i - 1].mmr or tier.max_leverage > tiers[i - 1].max_leverage):
                    raise ConfigError(f"{where}[{i}]: mmr must rise and max_leverage must not rise with notional")

    @property
    def version(self) -> str:
        return self.file.version

    @cached_property
    def symbols(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._specs

    def market(self, market: str) -> dict[str, InstrumentSpec]:
        """Return the specs of one market (``um``, ``cm``, ``spot``), empty if the file has none."""
        return self._markets.get(market, {})

    def get(self, symbol: str, market: str = "um") -> InstrumentSpec:
        """Return the resolved spec of venue symbol `symbol` (e.g. ``FILUSDT``) in `market`.

        Raises
        ------
        UnknownSymbolError
            If the file has no entry for `symbol` in that market (with a did-you-mean).
        """
        specs = self._markets.get(market, {})
        spec = specs.get(symbol)
        if spec is None:
            where = self.path if market == "um" else f"{self.path} ({'coin_m' if market == 'cm' else market} section)"
            raise UnknownSymbolError(symbol, specs, where)
        return spec

    def _resolve(
        self, symbol: str, entry: SymbolEntry, market: str = "um", d=None, where_key: str | None = None
    ) -> InstrumentSpec:
        d = d or self.file.defaults
        where = f"{self.path}: {where_key or 'symbols.' + symbol}"
        schedule = entry.margin_schedule or getattr(d, "margin_schedule", None) or self.file.defaults.margin_schedule
        if schedule not in self.file.margin_schedules:
            known = ", ".join(sorted(self.file.margin_schedules))
            raise ConfigError(f"{where}.margin_schedule {schedule!r} is not in margin_schedules ({known})")
        price_precision = _precision(entry.price_precision, entry.tick_size, f"{where}.price_precision")
        size_precision = _precision(entry.size_precision, entry.step_size, f"{where}.size_precision")
        tiers = self.file.margin_schedules[schedule]
        return InstrumentSpec(
            symbol=symbol,
            venue=self.file.venue,
            base=entry.base,
            quote=entry.quote or d.quote,
            tick_size=entry.tick_size,
            step_size=entry.step_size,
            price_precision=price_precision,
            size_precision=size_precision,
            min_notional=entry.min_notional or d.min_notional,
            maker_fee=d.maker_fee if entry.maker_fee is None else entry.maker_fee,
            taker_fee=d.taker_fee if entry.taker_fee is None else entry.taker_fee,
            margin_schedule=schedule,
            margin_tiers=tuple(tiers),
            maint_amounts=_maint_amounts(tiers),
            listed=entry.listed,
            source=entry.source,
            spec_version=self.file.version,
            spec_sha256=self.sha256,
            market=market,
            multiplier=entry.multiplier or Decimal(1),
        )


def _precision(explicit: int | None, increment: Decimal, where: str) -> int:
    implied = decimals(increment)
    if explicit is None:
        return implied
    if explicit < implied:
        raise ConfigError(f"{where} is {explicit} but the increment {increment} has {implied} decimals")
    return explicit


def normalize_symbol(text: str, market: str = "um") -> str:
    """Return the venue symbol in any accepted spelling.

    ``btcusdt``, ``BTCUSDT-PERP``, ``BTCUSDT-PERP.BINANCE`` and ``BINANCE:BTCUSDT:PERP`` all
    give ``BTCUSDT``; in COIN-M (`market` ``cm``) ``BTCUSD-PERP.BINANCE`` and ``btcusd`` give
    ``BTCUSD_PERP``.
    """
    if market == "cm":
        s = normalize_symbol(text)
        return s if s.endswith("_PERP") else f"{s}_PERP"
    s = text.strip()
    if s.count(":") == 2:
        s = s.split(":")[1]
    s = s.split(".", 1)[0]
    if s.upper().endswith("-PERP"):
        s = s[: -len("-PERP")]
    return s.upper() if s.isascii() else s
