"""``PortfolioStrategy``: one NautilusTrader ``Strategy`` trading several perpetuals on one account.

Cross-sectional research (DOLPHIN, RL portfolios, relative momentum) needs one decision over many
instruments. Each instrument is a :class:`~vibe_quant.strategy.leg.Leg` with exactly the order
rules of a single-instrument ``PerpStrategy`` (brackets, margin and position-limit checks, one
order in flight per instrument, next-open fills; funding and liquidation are the venue's), so a
portfolio strategy whose decisions are per instrument trades exactly like one ``PerpStrategy`` per
instrument on the same account (tests/strategy/test_portfolio.py).

Subclasses implement ``setup()`` and ``on_bar(bar)``; ``self.leg_for(bar)`` gives the leg whose
bar arrived. With several instruments closing at the same time, NautilusTrader delivers their
bars one by one in the run's symbol order; a decision that needs the whole cross-section waits
for the last instrument's bar of that close (``self.legs[-1]``).
"""

from __future__ import annotations

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from vibe_quant.errors import ConfigError
from vibe_quant.strategy.leg import Leg
from vibe_quant.strategy.ports import StrategyPorts, resolve_ports


class PortfolioStrategyConfig(StrategyConfig, frozen=True, kw_only=True):
    """Instruments (and their bar types, same order) the strategy trades; subclasses add parameters."""

    instrument_ids: tuple[str, ...]
    bar_types: tuple[str, ...]
    ports: str | None = None


class PortfolioStrategy(Strategy):
    """Base class of multi-instrument strategies (see the module docstring)."""

    def __init__(self, config: PortfolioStrategyConfig, ports: StrategyPorts | None = None) -> None:
        super().__init__(config)
        if not config.instrument_ids or len(config.instrument_ids) != len(config.bar_types):
            raise ConfigError(
                f"{type(self).__name__}: give one bar type per instrument (got {len(config.instrument_ids)} "
                f"instruments, {len(config.bar_types)} bar types)"
            )
        self.ports = ports
        self.legs: list[Leg] = []
        for iid, bt in zip(config.instrument_ids, config.bar_types, strict=True):
            instrument_id = InstrumentId.from_str(iid)
            self.legs.append(Leg(self, instrument_id, BarType.from_str(bt), f"{self.id.value}:{instrument_id.symbol}"))
        self._by_instrument = {leg.instrument_id: leg for leg in self.legs}
        self._by_bar_type = {leg.bar_type: leg for leg in self.legs}
        if ports is not None and ports.gate is not None:
            for leg in self.legs:
                ports.gate.attach(leg)

    def on_start(self) -> None:
        if self.ports is None:
            self.ports = resolve_ports(self)
        for leg in self.legs:
            leg.start(self.ports)
        self.setup()
        for leg in self.legs:
            self.subscribe_bars(leg.bar_type)

    def setup(self) -> None:
        """Create and register indicators (override)."""

    @classmethod
    def check(cls, config: PortfolioStrategyConfig) -> None:
        """Reject impossible parameters before any engine starts (override; raise ConfigError)."""

    def release(self) -> None:
        for leg in self.legs:
            leg.release()
        self.ports = None

    def leg_for(self, bar: Bar) -> Leg:
        """The leg whose bar this is."""
        return self._by_bar_type[bar.bar_type]

    def equity(self) -> float:
        return self.ports.account.equity()

    # -- order events: routed to the instrument's leg ------------------------------------------

    def on_order_filled(self, event) -> None:
        self._by_instrument[event.instrument_id].done(event.client_order_id.value)

    on_order_canceled = on_order_denied = on_order_expired = on_order_filled

    def on_order_rejected(self, event) -> None:
        self._by_instrument[event.instrument_id].rejected(event)
