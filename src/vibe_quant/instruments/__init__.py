"""Instrument specs (``instrument_specs.yaml``) and the NautilusTrader instruments built from them."""

from vibe_quant.instruments.specs import InstrumentSpec, InstrumentSpecs, normalize_symbol

__all__ = ["InstrumentSpec", "InstrumentSpecs", "normalize_symbol"]
