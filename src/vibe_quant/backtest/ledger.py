"""The cost ledger: trades and their costs from the recorded fills, funding and liquidations.

A trade runs from a flat position back to flat. Its PnL splits exactly::

    net_pnl = gross_pnl - (entry_fee + exit_fee) - funding_fees - slippage_cost

* ``gross_pnl``: PnL at the reference prices the model filled from (next open, stop trigger,
  limit price, liquidation price);
* ``slippage_cost``: what the fills lost against those references (``side * qty * (fill - ref)``);
* fees: commissions; a liquidation's clearance fee (the rest of the isolated margin) is part of
  its exit fee;
* ``funding_fees``: settlements while the trade was open (> 0 paid, < 0 received).

Pure functions over the recorder's lists; no engine objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vibe_quant.backtest.recorder import FillRecord, FundingRecord, LiquidationRecord

QTY_DECIMALS = 10
QTY_EPS = 10.0**-QTY_DECIMALS


@dataclass
class Trade:
    """One round trip, with every column of the ``trades`` table (docs/specs.md#trades-table)."""

    symbol: str
    direction: str  # LONG / SHORT
    leverage: float
    entry_ns: int
    exit_ns: int | None
    entry_price: float
    exit_price: float | None
    quantity: float
    entry_fee: float
    exit_fee: float
    funding_fees: float
    slippage_cost: float
    gross_pnl: float | None
    net_pnl: float | None
    roi_percent: float | None
    exit_reason: str | None
    fills: int

    @property
    def is_closed(self) -> bool:
        return self.exit_ns is not None


class _Open:
    def __init__(self, symbol: str, direction: int, leverage: float):
        self.symbol, self.direction, self.leverage = symbol, direction, leverage
        self.qty = 0.0
        self.max_qty = 0.0
        self.entry_qty = self.entry_value = self.entry_fee = 0.0
        self.exit_qty = self.exit_value = self.exit_fee = 0.0
        self.cash = self.ref_cash = 0.0
        self.entry_ns = None
        self.exit_ns = None
        self.reason = None
        self.fills = 0

    def add(self, f: FillRecord, qty: float, fee: float) -> None:
        signed = f.side * qty
        self.cash -= signed * f.price
        self.ref_cash -= signed * f.reference_price
        self.fills += 1
        if f.side == self.direction:
            if self.entry_ns is None:
                self.entry_ns = f.economic_ns
            self.entry_qty += qty
            self.entry_value += qty * f.price
            self.entry_fee += fee
        else:
            self.exit_qty += qty
            self.exit_value += qty * f.price
            self.exit_fee += fee
            self.exit_ns = f.economic_ns
            self.reason = f.reason
        # Quantities carry at most a few decimals; rounding keeps float sums from missing flat.
        self.qty = round(self.qty + signed, QTY_DECIMALS)
        self.max_qty = max(self.max_qty, abs(self.qty))

    def trade(self, funding: float, extra_exit_fee: float, closed: bool) -> Trade:
        entry_price = self.entry_value / self.entry_qty
        slippage = self.ref_cash - self.cash
        fees = self.entry_fee + self.exit_fee + extra_exit_fee
        gross = self.ref_cash if closed else None
        net = gross - fees - funding - slippage if closed else None
        margin = self.max_qty * entry_price / self.leverage
        return Trade(
            symbol=self.symbol, direction="LONG" if self.direction > 0 else "SHORT", leverage=self.leverage,
            entry_ns=self.entry_ns, exit_ns=self.exit_ns if closed else None, entry_price=entry_price,
            exit_price=self.exit_value / self.exit_qty if closed and self.exit_qty else None,
            quantity=self.max_qty, entry_fee=self.entry_fee, exit_fee=self.exit_fee + extra_exit_fee,
            funding_fees=funding, slippage_cost=slippage, gross_pnl=gross, net_pnl=net,
            roi_percent=net / margin * 100.0 if closed and margin > 0 else None,
            exit_reason=self.reason if closed else None, fills=self.fills,
        )  # fmt: skip


def build_trades(
    fills: Sequence[FillRecord],
    funding: Sequence[FundingRecord],
    liquidations: Sequence[LiquidationRecord],
    leverage_of: dict[str, float],
) -> list[Trade]:
    """Reconstruct round trips per symbol from chronological fills.

    A fill that reverses the position (which our strategies avoid by closing first) is split
    into a closing part and an opening part, its fee pro rata.
    """
    trades: list[Trade] = []
    current: dict[str, _Open] = {}
    seq: dict[str, int] = {}
    index: dict[tuple[str, int], int] = {}  # (symbol, round trip number) -> position in trades
    clearance = {(liq.instrument, liq.ts_ns): liq.clearance_fee for liq in liquidations}
    for f in fills:
        remaining, fee_left = f.qty, f.fee
        while remaining > QTY_EPS:
            pos = current.get(f.instrument)
            if pos is None:
                pos = current[f.instrument] = _Open(f.instrument, f.side, leverage_of.get(f.instrument, 1.0))
                seq[f.instrument] = seq.get(f.instrument, 0) + 1
            qty = remaining if f.side == pos.direction else min(remaining, abs(pos.qty))
            fee = fee_left * qty / remaining
            pos.add(f, qty, fee)
            remaining = round(remaining - qty, QTY_DECIMALS)
            fee_left -= fee
            if pos.qty == 0:
                extra = clearance.get((f.instrument, f.ts_ns), 0.0) if f.reason == "liquidation" else 0.0
                index[(f.instrument, seq[f.instrument])] = len(trades)
                trades.append(pos.trade(0.0, extra, closed=True))
                del current[f.instrument]
    for symbol, pos in current.items():
        index[(symbol, seq[symbol])] = len(trades)
        trades.append(pos.trade(0.0, 0.0, closed=False))
    for rec in funding:  # the venue numbered round trips the same way
        t = trades[index[(rec.instrument, rec.trade_seq)]]
        t.funding_fees += rec.amount
        if t.is_closed:
            t.net_pnl -= rec.amount
            margin = t.quantity * t.entry_price / t.leverage
            t.roi_percent = t.net_pnl / margin * 100.0 if margin > 0 else None
    return trades


def cost_summary(trades: Sequence[Trade], fills: Sequence[FillRecord], funding: Sequence[FundingRecord],
                 liquidations: Sequence[LiquidationRecord]) -> dict[str, float]:  # fmt: skip
    """Run-level costs: fees (incl. clearance), funding, slippage filled vs estimated, gross PnL."""
    closed = [t for t in trades if t.is_closed]
    return {
        "gross_pnl": sum(t.gross_pnl for t in closed),
        "total_fees": sum(f.fee for f in fills) + sum(liq.clearance_fee for liq in liquidations),
        "total_funding": sum(r.amount for r in funding),
        "total_slippage": sum(f.side * f.qty * (f.price - f.reference_price) for f in fills),
        "total_slippage_estimated": sum(f.qty * f.slippage_estimated for f in fills),
        "liquidations": len(liquidations),
        "fills": len(fills),
    }
