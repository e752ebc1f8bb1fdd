"""The survival stack: five sensors -> a risk multiplier Rm in [0, 1] -> a posture (docs/specs.md#dolphin-survival-stack).

Sensors (each in [0, 1]):

* Cat1, the kill switch: 0 when the feature store has no node or the heartbeat is older than 30 s.
* Cat2, structural: the MC-Forewarner status (OK 1.0, ORANGE 0.5, RED 0.1) decayed by
  ``exp(-max(0, staleness_h - 6) / 3)``.
* Cat3, microstructure: 0.5 when the order book is stale, else ``clamp(0.3 + 0.7 min(depth, fill), 0.3, 1)``.
* Cat4, environmental: 0.3 at a DVOL spike, recovering as ``0.3 + 0.7 (1 - exp(-t_min / 60))``.
* Cat5, capital: ``1 / (1 + exp(30 (drawdown - 0.12)))``.

``r_target = Cat1 x Cat5 x min(Cat2, Cat4) x Cat3``, halved when two or more of Cat2/Cat3/Cat4 are
below 0.8 (correlated collapse). Drops apply at once; recovery moves ``min(0.02 dt, 1)`` of the gap,
at most ``0.05 dt`` (dt in minutes). Postures: APEX >= 0.90, STALKER >= 0.75, TURTLE >= 0.50, else
HIBERNATE; a change needs 2 consecutive steps at a lower level, 5 at a higher one.

Decisions where the specification is silent: a sensor whose feed is not configured reads 1.0 (no
order-book engine must not hibernate the system forever); Cat4 with no spike seen reads 1.0; a Cat1
failure goes to HIBERNATE at once, bypassing the hysteresis; the first step takes the posture of its
Rm directly. Note what the tight thresholds imply: with every other sensor at 1.0, Cat5 alone gives
STALKER from a 4.68% drawdown, TURTLE from 8.34% and HIBERNATE above 12%, and MC ORANGE with fresh
data (Cat2 = 0.5) gives Rm 0.487: HIBERNATE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import msgspec

from vibe_quant.errors import ConfigError

POSTURES = ("HIBERNATE", "TURTLE", "STALKER", "APEX")  # lowest to highest
RANK = {p: i for i, p in enumerate(POSTURES)}


class SurvivalConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The stack's constants (the specification's values as defaults)."""

    heartbeat_max_s: float = 30.0
    mc_ok: float = 1.0
    mc_orange: float = 0.5
    mc_red: float = 0.1
    stale_grace_h: float = 6.0
    stale_tau_h: float = 3.0
    ob_stale: float = 0.5
    micro_floor: float = 0.3
    micro_span: float = 0.7
    env_floor: float = 0.3
    env_tau_min: float = 60.0
    capital_k: float = 30.0
    capital_mid: float = 0.12
    degraded_below: float = 0.8
    degraded_count: int = 2
    collapse_penalty: float = 0.5
    recovery_rate: float = 0.02  # share of the gap per minute
    recovery_cap: float = 0.05  # Rm per minute
    apex: float = 0.90
    stalker: float = 0.75
    turtle: float = 0.50
    hysteresis_down: int = 2
    hysteresis_up: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.turtle < self.stalker < self.apex <= 1:
            raise ConfigError(
                f"posture thresholds {self.turtle}/{self.stalker}/{self.apex}: need 0 < turtle < stalker < apex <= 1"
            )
        if self.hysteresis_down < 1 or self.hysteresis_up < 1:
            raise ConfigError("hysteresis_down and hysteresis_up must be >= 1 step")


@dataclass(frozen=True)
class Readings:
    """One watchdog cycle's inputs; None: that feed is not configured (its sensor reads 1.0)."""

    store_nodes: int = 1
    heartbeat_age_s: float = 0.0
    mc_status: str = "OK"
    staleness_h: float = 0.0
    ob_stale: bool | None = None
    depth_quality: float | None = None
    fill_probability: float | None = None
    dvol_spike: bool | None = None
    minutes_since_spike: float | None = None
    drawdown: float = 0.0


def cat1(store_nodes: int, heartbeat_age_s: float, cfg: SurvivalConfig) -> float:
    return 0.0 if store_nodes < 1 or heartbeat_age_s > cfg.heartbeat_max_s else 1.0


def cat2(mc_status: str, staleness_h: float, cfg: SurvivalConfig) -> float:
    base = {"OK": cfg.mc_ok, "ORANGE": cfg.mc_orange, "RED": cfg.mc_red}.get(mc_status)
    if base is None:
        raise ConfigError(f"mc_status {mc_status!r}: choose OK, ORANGE or RED")
    return base * math.exp(-max(0.0, staleness_h - cfg.stale_grace_h) / cfg.stale_tau_h)


def cat3(ob_stale: bool | None, depth_quality: float | None, fill_probability: float | None,
         cfg: SurvivalConfig) -> float:  # fmt: skip
    if ob_stale is None:
        return 1.0  # no order-book feed configured
    if ob_stale:
        return cfg.ob_stale
    score = min(depth_quality or 0.0, fill_probability or 0.0)
    return min(1.0, max(cfg.micro_floor, cfg.micro_floor + cfg.micro_span * score))


def cat4(dvol_spike: bool | None, minutes_since_spike: float | None, cfg: SurvivalConfig) -> float:
    if dvol_spike is None or minutes_since_spike is None:
        return 1.0  # no DVOL feed configured, or no spike seen
    if dvol_spike and minutes_since_spike == 0:
        return cfg.env_floor
    return cfg.env_floor + (1.0 - cfg.env_floor) * (1.0 - math.exp(-minutes_since_spike / cfg.env_tau_min))


def cat5(drawdown: float, cfg: SurvivalConfig) -> float:
    return 1.0 / (1.0 + math.exp(cfg.capital_k * (drawdown - cfg.capital_mid)))


def sensors(r: Readings, cfg: SurvivalConfig) -> dict[str, float]:
    return {"cat1": cat1(r.store_nodes, r.heartbeat_age_s, cfg), "cat2": cat2(r.mc_status, r.staleness_h, cfg),
            "cat3": cat3(r.ob_stale, r.depth_quality, r.fill_probability, cfg),
            "cat4": cat4(r.dvol_spike, r.minutes_since_spike, cfg), "cat5": cat5(r.drawdown, cfg)}  # fmt: skip


def combine(s: dict[str, float], cfg: SurvivalConfig) -> float:
    """``Cat1 x Cat5 x min(Cat2, Cat4) x Cat3``, halved when two or more of Cat2/3/4 are degraded."""
    target = s["cat1"] * s["cat5"] * min(s["cat2"], s["cat4"]) * s["cat3"]
    degraded = sum(s[k] < cfg.degraded_below for k in ("cat2", "cat3", "cat4"))
    return target * cfg.collapse_penalty if degraded >= cfg.degraded_count else target


def recover(last: float, target: float, dt_min: float, cfg: SurvivalConfig) -> float:
    """Instant drop; a rise of ``min(rate x dt, 1)`` of the gap, at most ``cap x dt``."""
    if target < last:
        return target
    alpha = min(1.0, cfg.recovery_rate * dt_min)
    return last + min(alpha * (target - last), cfg.recovery_cap * dt_min)


def posture_of(rm: float, cfg: SurvivalConfig) -> str:
    if rm >= cfg.apex:
        return "APEX"
    if rm >= cfg.stalker:
        return "STALKER"
    if rm >= cfg.turtle:
        return "TURTLE"
    return "HIBERNATE"


@dataclass(frozen=True)
class Assessment:
    rm: float
    target: float
    level: str  # the posture Rm alone maps to
    posture: str  # after hysteresis
    sensors: dict[str, float]
    changed: bool

    def to_json(self) -> dict:
        return {"rm": self.rm, "target": self.target, "level": self.level, "posture": self.posture,
                "sensors": self.sensors}  # fmt: skip


@dataclass
class SurvivalStack:
    """Rm and the posture across watchdog cycles (the state: last Rm, posture, pending change count)."""

    cfg: SurvivalConfig = field(default_factory=SurvivalConfig)
    rm: float | None = None
    posture: str | None = None
    _pending: str | None = None
    _count: int = 0

    def step(self, readings: Readings, dt_min: float) -> Assessment:
        """One cycle `dt_min` minutes after the previous one."""
        cfg = self.cfg
        s = sensors(readings, cfg)
        target = combine(s, cfg)
        rm = target if self.rm is None else recover(self.rm, target, dt_min, cfg)
        level = posture_of(rm, cfg)
        before = self.posture
        if self.posture is None or s["cat1"] == 0.0:  # first cycle, or the kill switch: no hysteresis
            self.posture, self._pending, self._count = level, None, 0
        elif level == self.posture:
            self._pending, self._count = None, 0
        else:
            direction = "down" if RANK[level] < RANK[self.posture] else "up"
            same_way = self._pending is not None and (RANK[self._pending] < RANK[self.posture]) == (direction == "down")
            self._count = self._count + 1 if same_way else 1
            self._pending = level
            if self._count >= (cfg.hysteresis_down if direction == "down" else cfg.hysteresis_up):
                self.posture, self._pending, self._count = level, None, 0
        self.rm = rm
        return Assessment(rm, target, level, self.posture, s, self.posture != before)


def drawdown_thresholds(cfg: SurvivalConfig | None = None) -> dict[str, float]:
    """The drawdowns at which Cat5 alone (every other sensor 1.0) crosses each posture threshold."""
    cfg = cfg or SurvivalConfig()
    return {name: cfg.capital_mid + math.log(1.0 / level - 1.0) / cfg.capital_k
            for name, level in (("STALKER", cfg.apex), ("TURTLE", cfg.stalker), ("HIBERNATE", cfg.turtle))}  # fmt: skip
