"""DOLPHIN orders vs engine: each engine trade against the position its orders produced
(docs/specs.md#dolphin-orders-vs-engine).

In ``orders`` mode the engine books every decision in its own ledger (``engine.trades``: the signal
row's close, its blend fee rates, its exit slip, no funding) while the perp core fills the orders
(the next bar's open, the venue's fees and slippage, funding, liquidation, quantities on the step).
:func:`compare` matches the two and splits each trade's PnL difference ``venue_net - engine_net``
into named parts (:data:`PARTS`) plus a residual that is ~0 when the match is one entry fill and one
exit fill per trade::

    diff = timing_entry + timing_exit + size + fees + slippage + funding + bonuses
           + liquidation + refused + unmatched_venue + residual

With ``d`` the direction, ``q`` the filled quantity, ``q_e = notional / P0`` the engine's quantity,
``P0``/``Pb`` the engine's entry and exit-bar prices, ``O1``/``O2`` the fills' reference prices (the
next opens, quantity-weighted over the fills):

* ``timing_entry = d q (P0 - O1)``, ``timing_exit = d q (O2 - Pb)``;
* ``size = d (q - q_e) (Pb - P0)`` (the quantity difference at the engine's price move);
* ``fees = engine fees - venue fees``; ``slippage = engine exit slip - venue slippage``;
* ``funding = -venue funding``; ``bonuses = -(refunds + edge) x notional`` (``seed`` profile only);
* a liquidated position: its exit-side timing, fee and slippage differences are ``liquidation``;
* an entry the leg refused (or floored to zero): no position, ``refused = -engine_net``;
* a venue round trip no engine trade explains: ``unmatched_venue = its net``.

A position still open when the run ends (the engine's ``END_OF_DATA``) is marked at the engine's
last price with no exit fee or slippage, as the run's equity marks it.

:func:`run_compare` runs an orders-mode backtest through :func:`~vibe_quant.backtest.service.execute`,
keeps the built :class:`~vibe_quant.dolphin.strategy.DolphinStrategy` and writes the comparison into
the run's bundle as ``dolphin_compare.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vibe_quant.backtest.ledger import Trade as VenueTrade
from vibe_quant.backtest.recorder import FillRecord, LiquidationRecord
from vibe_quant.dolphin.engine import Trade as EngineTrade
from vibe_quant.errors import ConfigError

PARTS = ("timing_entry", "timing_exit", "size", "fees", "slippage", "funding", "bonuses", "liquidation", "refused",
         "unmatched_venue")  # fmt: skip
FILE = "dolphin_compare.json"
MATCHED, LIQUIDATED, REFUSED, OPEN_AT_END = "matched", "liquidated", "refused", "open_at_end"


@dataclass
class TradeComparison:
    """One engine trade against its venue position (money in the account currency)."""

    trade_id: int
    asset: str
    direction: int
    status: str  # matched / liquidated / refused / open_at_end
    entry_ts: int  # the engine's signal close
    exit_ts: int
    engine_exit_reason: str
    venue_exit_reason: str | None
    engine_entry: float  # P0
    venue_entry_ref: float | None  # O1
    engine_exit_bar: float  # Pb
    venue_exit_ref: float | None  # O2
    engine_qty: float  # notional / P0
    venue_qty: float
    engine_notional: float
    venue_notional: float  # venue_qty x O1
    engine_net: float
    venue_net: float
    refusal: str | None = None  # the leg's check that refused the entry
    parts: dict[str, float] = field(default_factory=dict)
    residual: float = 0.0

    @property
    def diff(self) -> float:
        return self.venue_net - self.engine_net


@dataclass
class Comparison:
    """Every engine trade compared, the venue round trips nothing explains, and the totals."""

    trades: list[TradeComparison]
    unmatched_venue: list[dict]  # venue round trips (symbol, entry_ns, net) no engine trade produced
    engine_net: float
    venue_net: float
    parts: dict[str, float]
    residual: float
    counts: dict[str, int]

    @property
    def diff(self) -> float:
        return self.venue_net - self.engine_net

    def to_dict(self) -> dict:
        """Plain data (``dolphin_compare.json``)."""
        return {"engine_net": self.engine_net, "venue_net": self.venue_net, "diff": self.diff, "parts": self.parts,
                "residual": self.residual, "counts": self.counts, "unmatched_venue": self.unmatched_venue,
                "trades": [{**dataclasses.asdict(t), "diff": t.diff} for t in self.trades]}  # fmt: skip


def _refs(fills: Sequence[FillRecord]) -> tuple[float, float, float, float]:
    """(qty, qty-weighted reference price, fees, slippage cost) of `fills`."""
    qty = sum(f.qty for f in fills)
    ref = sum(f.qty * f.reference_price for f in fills) / qty if qty > 0 else math.nan
    return qty, ref, sum(f.fee for f in fills), sum(f.side * f.qty * (f.price - f.reference_price) for f in fills)


def _engine_parts(t: EngineTrade) -> tuple[float, float, float]:
    """(quantity, exit slip cost, bonuses) of an engine trade, from its ledger fields."""
    q = t.notional / t.entry_price
    slip = -t.direction * q * (t.exit_price - t.exit_bar_price)
    return q, slip, (t.pnl_pct_raw - t.price_return) * t.notional


def compare(engine_trades: Sequence[EngineTrade], venue_trades: Sequence[VenueTrade], fills: Sequence[FillRecord],
            liquidations: Sequence[LiquidationRecord], events: Sequence[dict], bar_ns: int) -> Comparison:  # fmt: skip
    """Match each engine trade to its venue round trip and split the PnL difference into :data:`PARTS`.

    Parameters
    ----------
    engine_trades : sequence of dolphin.engine.Trade
        The strategy engine's ledger (``DolphinStrategy.engine.trades``).
    venue_trades : sequence of backtest.ledger.Trade
        The run's round trips (``BacktestResult.trades``; funding included).
    fills, liquidations : sequences of the recorder's records
        The run's fills (``recorder.fills``) and liquidations (``recorder.liquidations``).
    events : sequence of dict
        The run's structured events (``recorder.events``): the legs' refusals (``RISK_CHECK``).
    bar_ns : int
        The bar step: an entry order sent at the close ``ts`` fills in ``(ts, ts + bar_ns]``.

    Returns
    -------
    Comparison

    Raises
    ------
    ConfigError
        `bar_ns` not positive.
    """
    if bar_ns <= 0:
        raise ConfigError(f"bar_ns must be a positive bar step in ns, got {bar_ns}")
    clearance = {liq.instrument: [] for liq in liquidations}
    for liq in liquidations:
        clearance[liq.instrument].append(liq)
    refusals = {(e["instrument"].split(".")[0].removesuffix("-PERP"), e["ts"]): e.get("check")
                for e in events if e.get("type") == "RISK_CHECK" and e.get("action") == "order refused"}  # fmt: skip
    by_symbol: dict[str, list[FillRecord]] = {}
    for f in fills:
        by_symbol.setdefault(f.instrument, []).append(f)
    used: set[int] = set()
    rows = []
    for t in engine_trades:
        k = next((i for i, v in enumerate(venue_trades) if i not in used and v.symbol == t.asset
                  and t.entry_ts < v.entry_ns <= t.entry_ts + bar_ns), None)  # fmt: skip
        if k is None:
            rows.append(_refused(t, refusals.get((t.asset, t.entry_ts), "no fill")))
            continue
        used.add(k)
        rows.append(_matched(t, venue_trades[k], by_symbol.get(t.asset, []), clearance.get(t.asset, [])))
    unmatched = [{"symbol": v.symbol, "entry_ns": v.entry_ns, "exit_ns": v.exit_ns, "net": v.net_pnl or 0.0}
                 for i, v in enumerate(venue_trades) if i not in used]  # fmt: skip
    parts = {p: math.fsum(r.parts.get(p, 0.0) for r in rows) for p in PARTS}
    parts["unmatched_venue"] = math.fsum(u["net"] for u in unmatched)
    engine_net = math.fsum(r.engine_net for r in rows)
    venue_net = math.fsum([*(r.venue_net for r in rows), parts["unmatched_venue"]])
    residual = (venue_net - engine_net) - math.fsum(parts.values())
    counts = {s: sum(r.status == s for r in rows) for s in (MATCHED, LIQUIDATED, REFUSED, OPEN_AT_END)}
    counts.update(engine_trades=len(rows), venue_trades=len(venue_trades), unmatched_venue=len(unmatched))
    return Comparison(rows, unmatched, engine_net, venue_net, parts, residual, counts)


def _refused(t: EngineTrade, check: str) -> TradeComparison:
    row = TradeComparison(
        trade_id=t.trade_id, asset=t.asset, direction=t.direction, status=REFUSED, entry_ts=t.entry_ts,
        exit_ts=t.exit_ts, engine_exit_reason=t.exit_reason, venue_exit_reason=None, engine_entry=t.entry_price,
        venue_entry_ref=None, engine_exit_bar=t.exit_bar_price, venue_exit_ref=None,
        engine_qty=t.notional / t.entry_price, venue_qty=0.0, engine_notional=t.notional, venue_notional=0.0,
        engine_net=t.net, venue_net=0.0, refusal=check,
    )  # fmt: skip
    row.parts = {"refused": -t.net}
    row.residual = row.diff - math.fsum(row.parts.values())
    return row


def _matched(t: EngineTrade, v: VenueTrade, fills: Sequence[FillRecord],
             liquidations: Sequence[LiquidationRecord]) -> TradeComparison:  # fmt: skip
    d = t.direction
    end = v.exit_ns if v.is_closed else None
    mine = [f for f in fills if f.economic_ns >= v.entry_ns and (end is None or f.economic_ns <= end)]
    q, o1, fee_in, slip_in = _refs([f for f in mine if f.side == d])
    qe, slip_e, bonuses = _engine_parts(t)
    p0, pb = t.entry_price, t.exit_bar_price
    if v.is_closed:
        _qx, o2, fee_out, slip_out = _refs([f for f in mine if f.side == -d])
        fee_out += sum(liq.clearance_fee for liq in liquidations if liq.ts_ns == next(
            (f.ts_ns for f in mine if f.side == -d and f.reason == "liquidation"), None))  # fmt: skip
        venue_net = v.net_pnl
        status = LIQUIDATED if v.exit_reason == "liquidation" else MATCHED
    else:  # open when the run ended: marked at the engine's last price, as the equity curve marks it
        o2, fee_out, slip_out = pb, 0.0, 0.0
        venue_net = d * q * (o2 - o1) - fee_in - slip_in - v.funding_fees
        status = OPEN_AT_END
    exit_side = {"timing_exit": d * q * (o2 - pb), "fees_exit": t.exit_fee - fee_out,
                 "slippage_exit": slip_e - slip_out}  # fmt: skip
    parts = {
        "timing_entry": d * q * (p0 - o1),
        "size": d * (q - qe) * (pb - p0),
        "fees": t.entry_fee - fee_in,
        "slippage": -slip_in,
        "funding": -v.funding_fees,
        "bonuses": -bonuses,
    }
    if status == LIQUIDATED:
        parts["liquidation"] = math.fsum(exit_side.values())
    else:
        parts["timing_exit"] = exit_side["timing_exit"]
        parts["fees"] += exit_side["fees_exit"]
        parts["slippage"] += exit_side["slippage_exit"]
    row = TradeComparison(
        trade_id=t.trade_id, asset=t.asset, direction=d, status=status, entry_ts=t.entry_ts, exit_ts=t.exit_ts,
        engine_exit_reason=t.exit_reason, venue_exit_reason=v.exit_reason, engine_entry=p0, venue_entry_ref=o1,
        engine_exit_bar=pb, venue_exit_ref=o2, engine_qty=qe, venue_qty=q, engine_notional=t.notional,
        venue_notional=q * o1, engine_net=t.net, venue_net=venue_net, parts=parts,
    )  # fmt: skip
    row.residual = row.diff - math.fsum(parts.values())
    return row


# -- an orders-mode run, compared --------------------------------------------------------------------


class _Keeping:
    """A bound strategy that keeps what its ``build`` returns (everything else is the bound strategy's)."""

    def __init__(self, bound) -> None:
        self._bound = bound
        self.built: list = []

    def __getattr__(self, name: str):
        return getattr(self._bound, name)

    def build(self, legs, ports) -> list:
        out = self._bound.build(legs, ports)
        self.built.extend(out)
        return out


def run_compare(home, plan, specs, progress=None) -> tuple[int, object, Path, Comparison]:
    """Run `plan` (a ``dolphin`` strategy in mode ``orders``) as ``vq backtest run`` does, compare its engine
    ledger with its fills and write ``dolphin_compare.json`` into the bundle.

    Returns ``(run_row, result, bundle, comparison)``.

    Raises
    ------
    ConfigError
        The plan's strategy is not a DOLPHIN strategy in mode ``orders``.
    UserError
        No data for a symbol in the period (from the backtest).
    """
    from vibe_quant.backtest.service import execute

    kind, mode = plan.config.kind, getattr(plan.strategy, "mode", None)
    if kind != "dolphin" or mode != "orders":
        raise ConfigError(f"strategy {plan.config.strategy!r} is a {kind} strategy"
                          f"{f' in mode {mode!r}' if mode else ''}: the comparison needs a DOLPHIN strategy in mode "
                          "'orders' (e.g. dolphin_champion)")  # fmt: skip
    keeping = _Keeping(plan.strategy)
    run_row, result, bundle = execute(home, dataclasses.replace(plan, strategy=keeping), specs, progress=progress)
    (strategy,) = keeping.built
    rec = result.recorder
    comparison = compare(strategy.engine.trades, result.trades, rec.fills, rec.liquidations, rec.events, plan.bar_ns)
    tmp = bundle / f".{FILE}.tmp"
    tmp.write_text(json.dumps(comparison.to_dict(), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, bundle / FILE)
    return run_row, result, bundle, comparison
