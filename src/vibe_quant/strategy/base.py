"""``PerpStrategy``: a NautilusTrader ``Strategy`` trading one perpetual with vibe-quant's order rules.

Subclasses implement ``setup()`` (indicators) and ``on_bar``; they trade through ``go`` and read
the account through ``position_qty``/``equity``/``free_margin``/``max_qty``. The order rules
(reversals through flat, brackets, pre-trade checks, one order in flight) live in
:class:`~vibe_quant.strategy.leg.Leg`; the account, event sink, risk gate and precomputed
indicators come from :class:`~vibe_quant.strategy.ports.StrategyPorts`, given to the constructor by
the backtest runner or resolved at start by a paper/live node (``strategy/ports.py``).
"""

from __future__ import annotations

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from vibe_quant.strategy.leg import Leg
from vibe_quant.strategy.ports import StrategyPorts, resolve_ports


class PerpStrategyConfig(StrategyConfig, frozen=True, kw_only=True):
    """Fields every single-instrument strategy needs; subclasses add their parameters.

    `ports` (``module:function``) builds the strategy's ports when it is started without any
    (by a node from an ``ImportableStrategyConfig``); default: the node's own account.
    """

    instrument_id: str
    bar_type: str
    ports: str | None = None


class PerpStrategy(Strategy):
    """Base class; subclasses implement ``setup()`` (indicators) and ``on_bar``."""

    def __init__(self, config: PerpStrategyConfig, ports: StrategyPorts | None = None) -> None:
        super().__init__(config)
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.bar_type = BarType.from_str(config.bar_type)
        self.ports = ports
        self.leg = Leg(self, self.instrument_id, self.bar_type, self.id.value)
        self.instrument = None
        self.book = None  # the instrument's InstrumentBook, once started
        if ports is not None and ports.gate is not None:
            ports.gate.attach(self.leg)

    # -- lifecycle ------------------------------------------------------------------------------

    def on_start(self) -> None:
        if self.ports is None:
            self.ports = resolve_ports(self)
        self.leg.start(self.ports)
        self.instrument, self.book = self.leg.instrument, self.leg.book
        self.setup()
        self.subscribe_bars(self.bar_type)

    def setup(self) -> None:
        """Create and register indicators (override)."""

    @classmethod
    def check(cls, config: PerpStrategyConfig) -> None:
        """Reject impossible parameters before any engine starts (override; raise ConfigError)."""

    def release(self) -> None:
        """Drop what the run lent the strategy (called after the run): NautilusTrader keeps finished
        strategies reachable, and a sweep must not keep every point's state alive."""
        self.leg.release()
        self.ports = self.book = None

    # -- state ----------------------------------------------------------------------------------

    @property
    def events(self):
        return self.ports.events

    @property
    def leverage(self) -> float:
        return self.book.leverage

    @property
    def stop_order_id(self) -> str | None:
        return self.leg.stop_order_id

    def position_qty(self) -> float:
        """Signed open quantity of this strategy's instrument (base units)."""
        return self.book.signed_qty

    def busy(self) -> bool:
        """True while a market order is on its way (fills at the next bar's open)."""
        return bool(self.leg.in_flight)

    def idle(self) -> bool:
        return self.leg.idle()

    def equity(self) -> float:
        return self.ports.account.equity()

    def free_margin(self) -> float:
        return self.leg.free_margin()

    def max_qty(self, price: float) -> float:
        return self.leg.max_qty(price)

    def floor_qty(self, qty: float) -> float:
        return self.leg.floor_qty(qty)

    # -- actions --------------------------------------------------------------------------------

    def signal(self, bar: Bar, direction: int, **info) -> None:
        self.leg.signal(bar, direction, **info)

    def go(self, bar: Bar, direction: int, qty: float, reason: str = "signal",
           stop: float | None = None, target: float | None = None) -> bool:  # fmt: skip
        """Move to `direction` (+1 long, -1 short, 0 flat); see :meth:`Leg.go`."""
        return self.leg.go(bar, direction, qty, reason, stop, target)

    def flatten(self, ts: int, reason: str) -> None:
        self.leg.flatten(ts, reason)

    # -- order events ---------------------------------------------------------------------------

    def on_order_filled(self, event: OrderFilled) -> None:
        self.leg.in_flight.discard(event.client_order_id.value)

    on_order_canceled = on_order_denied = on_order_expired = on_order_filled  # no longer on its way

    def on_order_rejected(self, event) -> None:
        self.leg.rejected(event)
