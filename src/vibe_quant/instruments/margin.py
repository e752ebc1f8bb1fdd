"""Isolated-margin arithmetic for USD-M perpetuals (pure functions, floats in USDT).

Binance's maintenance margin for a position of notional ``N`` in bracket ``i`` is
``N * mmr_i - cum_i`` (``cum`` makes it continuous across brackets). An isolated position is
liquidated when its margin balance ``WB + side * qty * (mark - entry)`` falls to the
maintenance margin. Solving for the mark gives Binance's liquidation price (one position, no
other isolated positions on the symbol)::

    LP = (WB + cum - side * qty * entry) / (qty * mmr - side * qty)

For a position opened with initial margin ``WB = qty * entry / leverage`` and ``cum = 0`` this
is ``entry * (1 - 1/leverage) / (1 - mmr)``, whose first-order expansion is the spec's
``entry * (1 - 1/leverage + mmr)`` for longs (docs/specs.md#isolated-margin-liquidation); ``tests/backtest/test_margin.py`` checks both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Bracket:
    """One maintenance-margin bracket: notional ``[floor, cap)``, rate and cumulative amount."""

    floor: float
    cap: float
    max_leverage: int
    mmr: float
    cum: float


def brackets_from_spec(spec) -> tuple[Bracket, ...]:
    """Convert an :class:`~vibe_quant.instruments.specs.InstrumentSpec`'s tiers to floats."""
    return tuple(
        Bracket(float(t.floor), float(t.cap), t.max_leverage, float(t.mmr), float(cum))
        for t, cum in zip(spec.margin_tiers, spec.maint_amounts, strict=True)
    )


def bracket_for(notional: float, brackets: Sequence[Bracket]) -> Bracket:
    """Return the bracket whose ``[floor, cap)`` holds `notional` (the last one beyond)."""
    for b in brackets:
        if notional < b.cap:
            return b
    return brackets[-1]


def maintenance_margin(notional: float, brackets: Sequence[Bracket]) -> float:
    """Return Binance's maintenance margin ``notional * mmr - cum`` for `notional` (>= 0)."""
    b = bracket_for(abs(notional), brackets)
    return abs(notional) * b.mmr - b.cum


def liquidation_price(side: int, qty: float, entry: float, wallet: float, brackets: Sequence[Bracket]) -> float:
    """Return the isolated-margin liquidation price (0 when the position cannot be liquidated).

    Parameters
    ----------
    side : int
        +1 long, -1 short.
    qty : float
        Position size in base units (> 0).
    entry : float
        Average entry price (> 0).
    wallet : float
        Isolated margin balance ``WB`` (initial margin plus anything added), USDT.
    brackets : sequence of Bracket
        The symbol's maintenance-margin schedule.

    Returns
    -------
    float
        The mark price at which the position is liquidated; for a long it lies in
        ``[0, entry)``, for a short above `entry`. A long whose margin covers the whole notional
        (leverage 1 and low maintenance) returns 0: it cannot be liquidated.
    """
    if qty <= 0 or entry <= 0:
        raise ValueError(f"liquidation_price needs qty > 0 and entry > 0, got qty={qty}, entry={entry}")
    # The bracket depends on the notional at the liquidation price itself: try each bracket and
    # keep the one whose range contains qty * LP. The formula is continuous across brackets, so
    # a root on a boundary belongs to both; the tolerance keeps float rounding from missing it.
    fallback = 0.0
    for b in brackets:
        denominator = qty * b.mmr - side * qty
        if denominator == 0:
            continue
        lp = max((wallet + b.cum - side * qty * entry) / denominator, 0.0)
        notional = qty * lp
        tol = 1e-9 * max(b.cap, 1.0)
        if b.floor - tol <= notional < b.cap + tol:
            return lp
        fallback = lp
    return fallback


def initial_margin(notional: float, leverage: float) -> float:
    """Return the initial margin ``|notional| / leverage``."""
    if leverage <= 0:
        raise ValueError(f"leverage must be > 0, got {leverage}")
    return abs(notional) / leverage


def max_leverage_for(notional: float, brackets: Sequence[Bracket]) -> int:
    """Return the maximum leverage Binance allows for a position of `notional`."""
    return bracket_for(abs(notional), brackets).max_leverage


def max_notional_at(leverage: float, brackets: Sequence[Bracket]) -> float:
    """Return the largest position notional Binance accepts at `leverage` (0 if none).

    Brackets lower the maximum leverage as notional grows: a position may only reach the cap
    of the last bracket whose ``max_leverage`` is still >= `leverage`.
    """
    allowed = [b.cap for b in brackets if b.max_leverage >= leverage]
    return max(allowed) if allowed else 0.0
