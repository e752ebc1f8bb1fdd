"""What a run records as it goes: fills with their reference prices, funding settlements,
liquidations, the marked-to-market equity curve and the structured event log.

One :class:`RunRecorder` is shared by the venue module, the fill model and the strategies of a
run. It only collects; :mod:`vibe_quant.backtest.ledger` turns it into trades and costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vibe_quant.strategy.ports import EventLog

# Order of events stamped with the same time: cause before effect.
_RANK = {"SIGNAL": 0, "RISK_CHECK": 1, "ORDER": 2, "ORDER_REJECTED": 3, "FUNDING": 3, "FILL": 4,
         "LIQUIDATION": 5, "POSITION_CLOSE": 6, "POSITION_OPEN": 7}  # fmt: skip


@dataclass
class FillRecord:
    """One execution as the venue produced it, plus what our model priced it from."""

    ts_ns: int  # event time (the bar close at which the exchange processed it)
    economic_ns: int  # when it happened economically (next open + latency for market orders)
    instrument: str
    order_id: str
    side: int  # +1 buy, -1 sell
    qty: float
    price: float
    fee: float  # commission in USDT (>= 0 is a cost)
    liquidity: str  # MAKER / TAKER
    order_type: str
    reason: str  # entry / signal / stop_loss / take_profit / liquidation / ...
    reference_price: float  # open (market), trigger (stop), limit (limit), liquidation price
    slippage_estimated: float  # model's expected adverse move per unit, price units
    position_id: str


@dataclass
class FundingRecord:
    ts_ns: int  # the settlement snapshot time
    instrument: str
    trade_seq: int  # 1 for the symbol's first round trip, 2 for the next, ...
    signed_qty: float
    mark: float
    rate: float
    amount: float  # paid by the account (> 0 a cost, < 0 received)


@dataclass
class LiquidationRecord:
    ts_ns: int
    instrument: str
    position_id: str
    side: int
    qty: float
    entry: float
    liquidation_price: float
    wallet: float  # isolated margin lost
    clearance_fee: float


@dataclass
class RunRecorder(EventLog):
    """Mutable collector for one run (not thread-safe; one engine per process): the strategies'
    event sink (``strategy/ports.py``) plus what the simulated venue records."""

    fills: list[FillRecord] = field(default_factory=list)
    funding: list[FundingRecord] = field(default_factory=list)
    liquidations: list[LiquidationRecord] = field(default_factory=list)
    equity_ts: list[int] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)
    exposure: object = None  # gross notional at each close (bundle runs only)
    margin: object = None  # isolated margin of the open positions at each close (bundle runs only)
    # Set by the fill model when it prices an order, read when the fill event arrives.
    pricing: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    # Forced prices for venue-generated orders (liquidations): client order id -> price.
    forced: dict[str, float] = field(default_factory=dict)

    def all_events(self) -> list[dict]:
        """Every event, FILLs included (built from the fill records), in time order."""
        fills = [
            {"ts": f.ts_ns, "type": "FILL", "instrument": f.instrument, "order_id": f.order_id, "side": f.side,
             "qty": f.qty, "price": f.price, "fee": f.fee, "liquidity": f.liquidity, "reason": f.reason,
             "reference_price": f.reference_price}
            for f in self.fills
        ]  # fmt: skip
        return sorted([*self.events, *fills], key=lambda e: (e["ts"], _RANK.get(e["type"], 9)))
