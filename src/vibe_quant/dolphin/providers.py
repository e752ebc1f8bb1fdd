"""What the engine asks outside itself: the order book, the MC-Forewarner, the posture and the ACB.

Each is a small protocol with the default the specification falls back to when the service is
absent (docs/specs.md#dolphin-engine):

* :class:`NullOrderBook`: no order-book engine (OB-1..5 off, market multiplier 1.0, the legacy edge);
  :class:`FixtureOrderBook` gives fixed values per symbol (tests, what-ifs).
* :class:`OkAssessor`: the MC-Forewarner answers OK every day; :class:`ScheduledAssessor` answers
  per date (the gate's RED/ORANGE/OK rules are the engine's).
* :class:`PostureSchedule`: the survival stack's posture per date (APEX when not given).
* :class:`AcbSchedule`: each date's ``(boost, beta)`` and the sub-day updates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from vibe_quant.dolphin.engine_config import POSTURES
from vibe_quant.errors import ConfigError


class ObSignal(NamedTuple):
    imbalance_ma5: float  # 5-bar MA of bid/ask size imbalance, [-1, +1]
    imbalance_persistence: float  # fraction of the last N bars sustaining the sign
    withdrawal_velocity: float  # rate of depth decay (negative: the book thins)


class ObMacro(NamedTuple):
    cascade_count: int  # assets in a liquidation cascade
    regime_signal: int  # -1 calm/trending, 0 neutral, +1 withdrawal stress


class ObPlacement(NamedTuple):
    depth_quality: float  # book depth score, [0, 2+]; > 1 deep
    fill_probability: float  # probability of a maker fill at the entry price


class OrderBookProvider(Protocol):
    enabled: bool

    def signal(self, symbol: str, ts_ns: int) -> ObSignal: ...

    def macro(self, ts_ns: int) -> ObMacro: ...

    def placement(self, symbol: str, ts_ns: int) -> ObPlacement: ...

    def market_multiplier(self, ts_ns: int) -> float: ...


class NullOrderBook:
    """No order-book engine: the specification's degradation (neutral values, never consulted)."""

    enabled = False

    def signal(self, symbol: str, ts_ns: int) -> ObSignal:
        return ObSignal(0.0, 0.0, 0.0)

    def macro(self, ts_ns: int) -> ObMacro:
        return ObMacro(0, 0)

    def placement(self, symbol: str, ts_ns: int) -> ObPlacement:
        return ObPlacement(1.0, 1.0)

    def market_multiplier(self, ts_ns: int) -> float:
        return 1.0


@dataclass(frozen=True)
class FixtureOrderBook:
    """Fixed order-book readings: per symbol (``default`` for the rest), one macro state, one multiplier."""

    signals: Mapping[str, ObSignal] = field(default_factory=dict)
    placements: Mapping[str, ObPlacement] = field(default_factory=dict)
    macro_state: ObMacro = ObMacro(0, 0)  # noqa: RUF009 (an immutable tuple)
    multiplier: float = 1.0
    default_signal: ObSignal = ObSignal(0.0, 0.0, 0.0)  # noqa: RUF009 (an immutable tuple)
    default_placement: ObPlacement = ObPlacement(1.0, 1.0)  # noqa: RUF009 (an immutable tuple)
    enabled: bool = True

    def signal(self, symbol: str, ts_ns: int) -> ObSignal:
        return self.signals.get(symbol, self.default_signal)

    def macro(self, ts_ns: int) -> ObMacro:
        return self.macro_state

    def placement(self, symbol: str, ts_ns: int) -> ObPlacement:
        return self.placements.get(symbol, self.default_placement)

    def market_multiplier(self, ts_ns: int) -> float:
        return self.multiplier


class McReport(NamedTuple):
    catastrophic_probability: float
    envelope_score: float


class McAssessor(Protocol):
    def assess(self, config: dict, day: dt.date) -> McReport: ...


class OkAssessor:
    """No MC-Forewarner model: every day is OK (probability 0, envelope 0)."""

    def assess(self, config: dict, day: dt.date) -> McReport:
        return McReport(0.0, 0.0)


@dataclass(frozen=True)
class ScheduledAssessor:
    """MC reports per date (OK on dates not listed)."""

    reports: Mapping[dt.date, McReport]

    def assess(self, config: dict, day: dt.date) -> McReport:
        return self.reports.get(day, McReport(0.0, 0.0))


@dataclass(frozen=True)
class PostureSchedule:
    """The survival stack's posture per date; `default` (APEX) on the others."""

    by_date: Mapping[dt.date, str] = field(default_factory=dict)
    default: str = "APEX"

    def __post_init__(self) -> None:
        for value in (*self.by_date.values(), self.default):
            if value not in POSTURES:
                raise ConfigError(f"posture {value!r}: choose one of {', '.join(POSTURES)}")

    def __call__(self, day: dt.date) -> str:
        return self.by_date.get(day, self.default)


class AcbUpdate(NamedTuple):
    ts_ns: int  # applied at the first bar whose close is at or after it (the pending-flag pattern)
    boost: float
    beta: float


@dataclass(frozen=True)
class AcbSchedule:
    """Each date's ACB ``(boost, beta)`` (dates not listed: ``(1.0, 0.0)``, no ACB) and sub-day updates."""

    daily: Mapping[dt.date, tuple[float, float]] = field(default_factory=dict)
    updates: Sequence[AcbUpdate] = ()

    def __post_init__(self) -> None:
        if any(b.ts_ns > a.ts_ns for a, b in zip(self.updates[1:], self.updates[:-1], strict=False)):
            raise ConfigError("ACB updates must be sorted by time")

    def for_date(self, day: dt.date) -> tuple[float, float]:
        return self.daily.get(day, (1.0, 0.0))
