"""Build NautilusTrader instruments from resolved specs."""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.identifiers import InstrumentId, Symbol
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.objects import Currency, Money, Price, Quantity

from vibe_quant.instruments.specs import InstrumentSpec


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
        instrument_id=InstrumentId.from_str(spec.nautilus_id),
        raw_symbol=Symbol(spec.symbol),
        base_currency=Currency.from_str(spec.base, strict=False),
        quote_currency=quote,
        settlement_currency=quote,
        is_inverse=False,
        price_precision=spec.price_precision,
        size_precision=spec.size_precision,
        price_increment=Price(spec.tick_size, spec.price_precision),
        size_increment=Quantity(spec.step_size, spec.size_precision),
        min_quantity=Quantity(spec.step_size, spec.size_precision),
        min_notional=Money(spec.min_notional, quote),
        margin_init=Decimal(1) / Decimal(first.max_leverage),
        margin_maint=first.mmr,
        maker_fee=spec.maker_fee,
        taker_fee=spec.taker_fee,
        ts_event=ts_init,
        ts_init=ts_init,
        info={"canonical_id": spec.canonical_id, "spec_version": spec.spec_version},
    )
