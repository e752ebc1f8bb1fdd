"""The NDAlphaEngine's parameters: one frozen config whose defaults are the champion's (docs/specs.md#dolphin-engine).

Every frozen parameter of the specification's champion table is a field here with the champion value
as its default; so is every constant its body text fixes (confidence, IRP gates, ARS weights, buckets,
Layer 7 multipliers, exit slips, OB multipliers, the sub-day ACB exit) and every choice we made where
it is silent (named ``*_min_trades``, ``irp_price_mode``, ``dc_fallback_symbol``...). The shipped
``dolphin_champion.yaml`` holds the champion values; a user's YAML sets any subset (unknown keys are
refused with a did-you-mean).

Two cost profiles (``profile``):

* ``honest`` (the default): the maker/taker blend fees and exit slips only.
* ``seed``: also the SmartPlacer refunds (+2 bp on a maker entry, +2 bp on a non-stop maker exit)
  and, without an order-book provider, the legacy random edge (+``ob_edge_bps`` on
  ``ob_confirm_rate`` of the trades): the specification's accounting, which no data here supports.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import msgspec
import yaml

from vibe_quant.errors import ConfigError, did_you_mean

CHAMPION_YAML = Path(__file__).with_name("dolphin_champion.yaml")
PROFILES = ("honest", "seed")
POSTURES = ("APEX", "STALKER", "TURTLE", "HIBERNATE")


class EngineConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything that decides the engine's trades besides the scan rows, the ACB table and the random draws."""

    # -- signal gate and confidence (Layer 1)
    direction: Literal[-1, 1] = -1  # -1 SHORT (the champion, "blue"), +1 LONG ("green")
    vel_div_threshold: float = -0.02
    vel_div_extreme: float = -0.05
    long_threshold: float = 0.01
    long_extreme: float = 0.04
    confidence_base: float = 0.50
    confidence_span: float = 0.40
    # -- direction confirmation (Layer 6)
    dc_enabled: bool = True
    dc_lookback_bars: int = 7
    dc_min_magnitude_bps: float = 0.75
    dc_skip_contradicts: bool = True
    dc_leverage_boost: float = 1.0  # leverage multiplier on CONFIRM (1.0: none, the champion)
    # -- IRP asset selection (Layer 2)
    use_asset_selection: bool = True
    irp_window: int = 50
    irp_price_mode: Literal["price_diff", "returns"] = "price_diff"
    min_irp_alignment: float = 0.45
    irp_max_noise: float = 500.0
    irp_max_latency: int = 20
    irp_min_alignment: float = 0.20
    irp_latency_fraction: float = 0.10
    irp_latency_default: int = 50
    irp_epsilon: float = 1e-6
    ars_efficiency_weight: float = 0.5
    ars_alignment_weight: float = 0.35
    ars_noise_weight: float = 0.15
    ars_noise_scale: float = 1000.0
    dc_fallback_symbol: str = "BTCUSDT"  # the asset traded when IRP is off
    # -- sizing (Layers 7-8)
    min_leverage: float = 0.5
    max_leverage: float = 5.0
    abs_max_leverage: float = 6.0
    leverage_convexity: float = 3.0
    fraction: float = 0.20
    min_fraction: float = 0.02
    sizer_confidence_extreme: float = 0.70
    sizer_confidence: float = 0.55
    sizer_confidence_norm: float = 0.95
    extreme_boost: float = 2.0
    bucket_window: int = 20  # the last N closed trades of a bucket give its win rate
    bucket_min_trades: int = 5  # fewer closed trades in a bucket: boost 1.0
    streak_window: int = 5
    streak_min_trades: int = 5  # fewer closed trades: streak multiplier 1.0
    trend_lag: int = 10  # vd_trend = history[-1] - history[-trend_lag]; shorter history: multiplier 1.0
    trend_deepening: float = -0.01
    trend_recovering: float = 0.01
    trend_deepening_mult: float = 1.3
    trend_recovering_mult: float = 0.7
    stalker_max_leverage: float = 2.0
    # -- exits
    fixed_tp_pct: float = 0.0095
    stop_pct: float = 1.0
    max_hold_bars: int = 120
    sl_slip: float = 0.0005
    tp_slip: float = 0.0002
    other_slip: float = 0.0002
    subday_exit_from: float = 1.25  # a sub-day ACB update from >= this ...
    subday_exit_to: float = 1.10  # ... to < this closes the open position
    # -- fees and the SmartPlacer
    maker_fee: float = 0.0002
    taker_fee: float = 0.0005
    sp_maker_entry_rate: float = 0.62
    sp_maker_exit_rate: float = 0.50
    sp_refund: float = 0.0002
    ob_edge_bps: float = 5.0
    ob_confirm_rate: float = 0.40
    # -- warm-up, ACB use, MC gate, histories, capital
    lookback: int = 100
    use_acb: bool = True
    mc_orange_scale: float = 0.5
    price_history_max: int = 500
    price_history_keep: int = 200
    vel_div_history: int = 200
    initial_capital: float = 10_000.0
    seed: int = 42
    profile: Literal["honest", "seed"] = "honest"

    def __post_init__(self) -> None:
        def need(ok: bool, field: str, what: str) -> None:
            if not ok:
                raise ConfigError(f"{field} {getattr(self, field)!r}: {what}")

        need(self.vel_div_extreme < self.vel_div_threshold < 0, "vel_div_threshold",
             "the SHORT gate must be negative and above vel_div_extreme")  # fmt: skip
        need(0 < self.long_threshold < self.long_extreme, "long_threshold", "must be positive and below long_extreme")
        need(0 < self.min_leverage <= self.max_leverage <= self.abs_max_leverage, "max_leverage",
             "needs 0 < min_leverage <= max_leverage <= abs_max_leverage")  # fmt: skip
        need(0 < self.min_fraction <= self.fraction <= 1, "fraction", "needs 0 < min_fraction <= fraction <= 1")
        need(self.fixed_tp_pct > 0, "fixed_tp_pct", "must be > 0")
        need(self.stop_pct > 0, "stop_pct", "must be > 0")
        for name in ("max_hold_bars", "lookback", "irp_window", "dc_lookback_bars", "bucket_window",
                     "streak_window", "trend_lag"):  # fmt: skip
            need(getattr(self, name) >= 1, name, "must be >= 1")
        need(self.irp_window >= 3, "irp_window", "needs at least 3 prices")
        need(self.price_history_keep >= max(self.irp_window, self.dc_lookback_bars + 1), "price_history_keep",
             "must hold the IRP window and the DC lookback")  # fmt: skip
        need(self.price_history_max >= self.price_history_keep, "price_history_max", "must be >= price_history_keep")
        need(self.vel_div_history >= self.trend_lag, "vel_div_history", "must be >= trend_lag")
        for name in ("sp_maker_entry_rate", "sp_maker_exit_rate", "ob_confirm_rate"):
            need(0.0 <= getattr(self, name) <= 1.0, name, "is a probability in [0, 1]")
        for name in ("maker_fee", "taker_fee", "sl_slip", "tp_slip", "other_slip", "sp_refund", "ob_edge_bps"):
            need(getattr(self, name) >= 0, name, "cannot be negative")
        need(self.initial_capital > 0, "initial_capital", "must be > 0")
        need(self.subday_exit_to <= self.subday_exit_from, "subday_exit_to", "must be <= subday_exit_from")
        need(0 < self.mc_orange_scale <= 1, "mc_orange_scale", "must be in (0, 1]")
        need(self.stalker_max_leverage >= self.min_leverage, "stalker_max_leverage", "must be >= min_leverage")
        need(bool(self.dc_fallback_symbol.strip()), "dc_fallback_symbol", "give a symbol")

    # -- derived constants
    @property
    def entry_fee_rate(self) -> float:
        """maker x maker-fill rate + taker x (1 - rate), rounded to 1e-12 (0.000314 for the champion)."""
        return round(self.maker_fee * self.sp_maker_entry_rate + self.taker_fee * (1 - self.sp_maker_entry_rate), 12)

    @property
    def exit_fee_rate(self) -> float:
        """The non-stop exit's blend (0.00035); a stop-loss exit pays ``taker_fee`` (0.0005)."""
        return round(self.maker_fee * self.sp_maker_exit_rate + self.taker_fee * (1 - self.sp_maker_exit_rate), 12)

    @property
    def refunds(self) -> bool:
        return self.profile == "seed"

    @property
    def legacy_edge(self) -> bool:
        return self.profile == "seed"

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(msgspec.to_builtins(self), sort_keys=True).encode()).hexdigest()[:16]


def engine_config(data: dict | None = None, source: str = "engine config", **overrides) -> EngineConfig:
    """Build an :class:`EngineConfig` from plain data (+ keyword overrides), naming `source` and the field on error.

    Raises
    ------
    ConfigError
        An unknown key (with a did-you-mean) or a value of the wrong type or out of range.
    """
    doc = {**(data or {}), **overrides}
    fields = EngineConfig.__struct_fields__
    unknown = sorted(set(doc) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}." + did_you_mean(unknown[0], fields))
    try:
        return msgspec.convert(doc, EngineConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_engine_config(path: str | Path | None = None, **overrides) -> EngineConfig:
    """Read a YAML engine config (a mapping, or a mapping under ``dolphin:``); None: the shipped champion.

    Raises
    ------
    ConfigError
        A missing file, invalid YAML, or a bad key or value (naming the file and the field).
    """
    path = CHAMPION_YAML if path is None else Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such DOLPHIN engine config (the champion is {CHAMPION_YAML.name})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if doc is None:
        doc = {}
    if isinstance(doc, dict) and "dolphin" in doc:
        doc = doc["dolphin"] or {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of engine parameters")
    return engine_config(doc, str(path), **{k: v for k, v in overrides.items() if v is not None})
