"""Liquidation pressure research: the LPI feature engine (``docs/specs.md#liquidation-pressure-index``)
and the LPI strategies (``lpi.strategy``, ``lpi.decide``, the ``lpi`` kind; ``docs/specs.md#lpi-strategies``),
imported from their modules (they load NautilusTrader's trading classes)."""

from vibe_quant.lpi.features import (
    FeatureEngine,
    LpiInputs,
    SignalEngineProtocol,
    SignalSnapshot,
    compute,
    compute_reference,
)
from vibe_quant.lpi.params import SNAPSHOT_DTYPE, LpiParams

__all__ = [
    "SNAPSHOT_DTYPE",
    "FeatureEngine",
    "LpiInputs",
    "LpiParams",
    "SignalEngineProtocol",
    "SignalSnapshot",
    "compute",
    "compute_reference",
]
