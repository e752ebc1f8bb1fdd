"""Build NautilusTrader instruments from resolved specs."""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.identifiers import InstrumentId, Symbol
from nautilus_trader.model.instruments import CryptoPerpetual, CurrencyPair, Instrument
from nautilus_trader.model.objects import Currency, Money, Price, Quantity

from vibe_quant.instruments.specs import InstrumentSpec


def instrument(spec: InstrumentSpec, ts_init: int = 0) -> Instrument:
    """Return the NautilusTrader instrument of `spec`'s market (USD-M, COIN-M or spot)."""
    if spec.market == "spot":
        return currency_pair(spec, ts_init)
    if spec.market == "cm":
        return inverse_perpetual(spec, ts_init)
    return crypto_perpetual(spec, ts_init)


def _shared(spec: InstrumentSpec, ts_init: int) -> dict:
    """Constructor arguments every instrument kind takes from its spec."""
    return {
        "instrument_id": InstrumentId.from_str(spec.nautilus_id),
        "raw_symbol": Symbol(spec.symbol),
        "price_precision": spec.price_precision,
        "size_precision": spec.size_precision,
        "price_increment": Price(spec.tick_size, spec.price_precision),
        "size_increment": Quantity(spec.step_size, spec.size_precision),
        "min_quantity": Quantity(spec.step_size, spec.size_precision),
        "maker_fee": spec.maker_fee,
        "taker_fee": spec.taker_fee,
        "ts_event": ts_init,
        "ts_init": ts_init,
        "info": {"canonical_id": spec.canonical_id, "spec_version": spec.spec_version},
    }


def _currency(code: str) -> Currency:
    return USDT if code == "USDT" else Currency.from_str(code, strict=False)


def currency_pair(spec: InstrumentSpec, ts_init: int = 0) -> CurrencyPair:
    """Return the spot ``CurrencyPair`` for `spec` (``BTCUSDT.BINANCE``)."""
    quote = _currency(spec.quote)
    return CurrencyPair(
        **_shared(spec, ts_init),
        base_currency=_currency(spec.base),
        quote_currency=quote,
        min_notional=Money(spec.min_notional, quote),
        margin_init=Decimal(1),
        margin_maint=Decimal(1),
    )


def inverse_perpetual(spec: InstrumentSpec, ts_init: int = 0) -> CryptoPerpetual:
    """Return the COIN-M inverse ``CryptoPerpetual`` (``BTCUSD-PERP.BINANCE``): contracts of
    ``multiplier`` USD, margined and settled in the base coin."""
    base = _currency(spec.base)
    first = spec.margin_tiers[0]
    return CryptoPerpetual(
        **_shared(spec, ts_init),
        base_currency=base,
        quote_currency=_currency(spec.quote),
        settlement_currency=base,
        is_inverse=True,
        multiplier=Quantity(spec.multiplier, 0),
        margin_init=Decimal(1) / Decimal(first.max_leverage),
        margin_maint=first.mmr,
    )


def crypto_perpetual(spec: InstrumentSpec, ts_init: int = 0) -> CryptoPerpetual:
    """Return the linear USDT-margined ``CryptoPerpetual`` for `spec` (``BTCUSDT-PERP.BINANCE``).

    ``margin_init``/``margin_maint`` are the first tier's rates (1/max leverage, MMR); the full
    tier table stays in the spec for the liquidation model.

    Parameters
    ----------
    spec : InstrumentSpec
        A resolved spec from :class:`~vibe_quant.instruments.specs.InstrumentSpecs`.
    ts_init : int, default 0
        Event and init timestamp (ns). Zero keeps the instrument valid for any backtest start.
    """
    quote = USDT if spec.quote == "USDT" else Currency.from_str(spec.quote, strict=False)
    first = spec.margin_tiers[0]
    return CryptoPerpetual(
        **_shared(spec, ts_init),
        base_currency=Currency.from_str(spec.base, strict=False),
        quote_currency=quote,
        settlement_currency=quote,
        is_inverse=False,
        min_notional=Money(spec.min_notional, quote),
        margin_init=Decimal(1) / Decimal(first.max_leverage),
        margin_maint=first.mmr,
    )
