"""Prices on an instrument's tick grid."""

from __future__ import annotations

import math


def round_adverse(price: float, tick: float, side: int) -> float:
    """Round `price` to the tick grid against the order: up for buys, down for sells."""
    steps = price / tick
    steps = math.ceil(steps - 1e-9) if side > 0 else math.floor(steps + 1e-9)
    return steps * tick
