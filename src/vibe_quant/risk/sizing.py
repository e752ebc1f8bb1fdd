"""Position sizers (docs/specs.md#position-sizing): the formulas, then the caps every method shares.

Pure functions of numbers: the gate (:mod:`vibe_quant.risk.gate`) feeds them the run's equity,
prices, open positions and the strategy's closed trades, so they are tested on their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from vibe_quant.risk.config import SizingConfig


def fixed_fractional_qty(equity: float, risk_pct: float, stop_distance: float) -> float:
    """``(equity * risk_pct) / |entry - stop|``: lose `risk_pct` of equity if the stop fills."""
    return equity * risk_pct / stop_distance if stop_distance > 0 else 0.0


def kelly_fraction(win_rate: float, payoff_ratio: float, fraction: float) -> float:
    """``f* = (W - (1 - W) / R) * kelly_fraction`` (may be <= 0: no edge, no trade)."""
    if payoff_ratio <= 0:
        return -math.inf
    return (win_rate - (1.0 - win_rate) / payoff_ratio) * fraction


def kelly_inputs(returns: Sequence[float], cfg: SizingConfig) -> tuple[float, float, bool]:
    """(W, R, estimated) from the last `kelly_lookback` closed-trade returns; the priors while
    fewer than `kelly_min_trades` trades have closed. R = mean win / mean |loss| (a record with
    no loss yet uses the prior R; with no win, R is irrelevant as W = 0)."""
    recent = list(returns)[-cfg.kelly_lookback :]
    if len(recent) < cfg.kelly_min_trades:
        return cfg.win_rate, cfg.payoff_ratio, False
    wins = [r for r in recent if r > 0]
    losses = [-r for r in recent if r <= 0]
    win_rate = len(wins) / len(recent)
    mean_loss = sum(losses) / len(losses) if losses else 0.0
    if not wins or not mean_loss > 0:  # (a mean of tiny losses can underflow to 0)
        return win_rate, cfg.payoff_ratio, True
    return win_rate, (sum(wins) / len(wins)) / mean_loss, True


def atr(highs: Sequence[float], lows: Sequence[float], closes: Sequence[float], i: int, period: int) -> float | None:
    """Mean true range of bars ``i - period + 1 .. i`` (None before `period` bars with a previous
    close exist), as NautilusTrader's ``AverageTrueRange(period)`` (simple average) gives."""
    if i - period < 0:
        return None
    total = 0.0
    for k in range(i - period + 1, i + 1):
        h, lo, pc = highs[k], lows[k], closes[k - 1]
        total += max(h - lo, abs(h - pc), abs(lo - pc))
    return total / period


@dataclass
class SizeRequest:
    """What a sizer sees at an entry (prices in quote currency, quantities in base units)."""

    equity: float
    price: float  # the signal bar's close
    stop_distance: float | None  # |entry - stop| if the strategy sends a stop
    leverage: float  # the position's venue leverage
    step: float
    min_notional: float
    open_risk: float = 0.0  # heat of the other open positions (quote)
    atr: float | None = None
    trade_returns: Sequence[float] = ()
    scale: float = 1.0  # drawdown scaling from the strategy's risk module


@dataclass
class SizeDecision:
    qty: float  # a multiple of the step, 0 = do not send
    method_qty: float  # before caps and scaling
    limits: list[str] = field(default_factory=list)  # caps that bound the size, in order
    refused: str | None = None  # why nothing is sent
    info: dict = field(default_factory=dict)


def size(cfg: SizingConfig, req: SizeRequest) -> SizeDecision:
    """The entry quantity for `cfg`'s method, scaled, capped, floored to the step.

    Caps (the smallest wins): notional <= max_position_pct * equity, notional <= max_leverage *
    equity, risk of this entry <= max_portfolio_heat * equity - open risk (risk = stop distance x
    qty, or the isolated margin notional / leverage without a stop). Below one step or below the
    min notional the decision is 0 with the reason.
    """
    price, equity = req.price, req.equity
    info: dict = {"method": cfg.method}
    if equity <= 0 or price <= 0:
        return SizeDecision(0.0, 0.0, refused="no_equity", info=info)
    if cfg.method == "fixed_fractional":
        if req.stop_distance is None or not req.stop_distance > 0:
            return SizeDecision(0.0, 0.0, refused="no_stop_loss", info=info)
        qty = fixed_fractional_qty(equity, cfg.risk_per_trade, req.stop_distance)
    elif cfg.method == "atr":
        if req.atr is None or not req.atr > 0:
            return SizeDecision(0.0, 0.0, refused="atr_not_ready", info=info)
        info["atr"] = req.atr
        qty = equity * cfg.risk_per_trade / (req.atr * cfg.atr_multiplier)
    else:
        w, r, estimated = kelly_inputs(req.trade_returns, cfg)
        f = kelly_fraction(w, r, cfg.kelly_fraction)
        info.update(win_rate=w, payoff_ratio=r, kelly=f, estimated=estimated)
        if not f > 0:
            return SizeDecision(0.0, 0.0, refused="kelly_no_edge", info=info)
        # f* is the share of equity at risk: to the stop when there is one, else the notional.
        qty = equity * f / req.stop_distance if req.stop_distance else equity * f / price
    method_qty = qty
    limits = []
    if req.scale != 1.0:
        qty *= req.scale
        limits.append("drawdown_scale")
    caps = [
        ("max_position_pct", cfg.max_position_pct * equity / price),
        ("max_leverage", cfg.max_leverage * equity / price),
    ]
    unit_risk = req.stop_distance if req.stop_distance else price / max(req.leverage, 1.0)
    room = cfg.max_portfolio_heat * equity - req.open_risk
    caps.append(("max_portfolio_heat", max(room, 0.0) / unit_risk))
    for name, cap in caps:
        if cap < qty:
            qty = cap
            limits.append(name)
    stepped = math.floor(qty / req.step + 1e-9) * req.step if qty > 0 else 0.0
    stepped = round(stepped, 12)
    decision = SizeDecision(stepped, method_qty, limits, info=info)
    if stepped <= 0:
        decision.refused = "max_portfolio_heat" if limits and limits[-1] == "max_portfolio_heat" else "size_below_step"
    elif stepped * price < req.min_notional:
        decision.qty, decision.refused = 0.0, "below_min_notional"
    return decision
