"""The interfaces a strategy depends on, whatever engine runs it.

A vibe-quant strategy is a NautilusTrader ``Strategy`` that also needs a few things
NautilusTrader does not give it: the account in our terms (equity, free margin, the position
limit at a leverage, each instrument's rules and funding schedule), a sink for structured events,
the risk gate its entries pass, and, in a backtest that precomputed them, the recorded indicator
series. :class:`StrategyPorts` carries them. Whoever builds the strategy passes them to its
constructor (the backtest runner does, from its simulated venue); a strategy built from an
``ImportableStrategyConfig`` by a paper or live ``TradingNode`` gets none and resolves them itself
when it starts, from NautilusTrader's cache and portfolio (:func:`resolve_ports`). Nothing is set
on a strategy from outside after it was built.
"""

from __future__ import annotations

import importlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from vibe_quant.errors import ConfigError

if TYPE_CHECKING:
    from nautilus_trader.model.data import Bar

    from vibe_quant.strategy.account import AccountView

DEFAULT_PORTS = "vibe_quant.strategy.node:node_ports"


class EventSink(Protocol):
    """Where strategies write structured events (SIGNAL, ORDER, RISK_CHECK) and warnings."""

    reasons: dict[str, str]  # client order id -> why it was sent (entry, stop_loss, exit, ...)

    def event(self, ts_ns: int, kind: str, **fields) -> None: ...

    def warn(self, message: str) -> None: ...


class EntryGate(Protocol):
    """Sizing and risk checks every new position passes (``vibe_quant.risk.gate.RiskGate``)."""

    post_only_bars: int | None  # entries as post-only limits resting this many bars, or None

    def attach(self, leg) -> None:
        """Guard `leg` (a :class:`~vibe_quant.strategy.leg.Leg`; strategies attach theirs when built)."""

    def entry(self, leg, bar: Bar, direction: int, qty: float, price: float, stop: float | None) -> float:
        """The quantity to send (0: refused, the refusal logged)."""


class IndicatorSource(Protocol):
    """Indicator outputs recorded over every bar of a run (``vibe_quant.dsl.table.IndicatorCache``)."""

    def for_instrument(self, instrument_id: str):
        """The instrument's recorded indicators, or None to compute them bar by bar."""


@dataclass
class EventLog:
    """An in-memory :class:`EventSink`; the newest `maxlen` events (all when None)."""

    maxlen: int | None = None
    events: list | deque = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.maxlen is not None:
            self.events = deque(self.events, maxlen=self.maxlen)

    def event(self, ts_ns: int, kind: str, **fields) -> None:
        """Append a structured event (SIGNAL, ORDER, FILL, POSITION_OPEN, ...)."""
        self.events.append({"ts": ts_ns, "type": kind, **fields})

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


@dataclass(frozen=True)
class StrategyPorts:
    """Everything a strategy needs beyond NautilusTrader, given at construction."""

    account: AccountView
    events: EventSink
    gate: EntryGate | None = None  # None: no --sizing/--risk, the strategy's own sizing
    indicators: IndicatorSource | None = None  # None: indicators computed bar by bar


def resolve_ports(strategy) -> StrategyPorts:
    """Build the ports of a strategy that was given none, when it starts.

    The strategy config's ``ports`` names a function ``module:function`` taking the strategy and
    returning its :class:`StrategyPorts`; by default the node's own account
    (:func:`vibe_quant.strategy.node.node_ports`: NautilusTrader's cache and portfolio).

    Raises
    ------
    ConfigError
        ``ports`` is not an importable ``module:function``.
    """
    path = getattr(strategy.config, "ports", None) or DEFAULT_PORTS
    module, _, name = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"strategy config ports={path!r}: not an importable module:function ({exc})") from None
    return factory(strategy)
