"""The strategy document (docs/specs.md#strategy-document) as frozen msgspec structs, and its JSON Schema.

The structs check shapes and types; :mod:`vibe_quant.dsl.loader` checks meaning (names,
timeframes, look-ahead) and maps every error to its line in the YAML file.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from vibe_quant.dsl.indicators import indicator_registry

NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Number = int | float
SweepValue = int | float | str | bool


def _indicator_struct() -> type:
    # One struct for every indicator type: the union of all registered parameter names (each
    # optional); which ones a type accepts is checked by the loader, with a did-you-mean.
    names = sorted({name for d in indicator_registry for name in d.params})
    fields: list[tuple] = [
        ("type", str),
        ("timeframe", str | None, None),
        ("source", str | None, None),
        *((name, Number | None, None) for name in names),
    ]
    return msgspec.defstruct("Indicator", fields, frozen=True, forbid_unknown_fields=True, kw_only=True)


Indicator = _indicator_struct()


class Conditions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    long: list[str] = []
    short: list[str] = []


class Toggle(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    enabled: bool = False


class Sizing(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The strategy's default position size (the risk stage's sizing modules can replace it).

    ``exposure``: notional = `fraction` x equity. ``fixed_fractional``: lose `risk_per_trade`
    of equity if the stop fills at its price (needs a stop-loss). Both are capped at
    `max_leverage` x equity (if set), at `max_margin_fraction` of equity as initial margin, and
    at Binance's largest position for the run's leverage.
    """

    method: Literal["exposure", "fixed_fractional"] = "exposure"
    fraction: Positive = 1.0
    risk_per_trade: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.02
    max_leverage: Positive | None = None
    max_margin_fraction: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None


class PositionManagement(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    scale_in: Toggle = Toggle()
    partial_exit: Toggle = Toggle()
    sizing: Sizing = Sizing()


class Session(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    start: str
    end: str
    timezone: str = "UTC"


class FundingAvoidance(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    enabled: bool = False
    minutes_before: NonNegInt = 5
    minutes_after: NonNegInt = 5


class TimeFilters(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    allowed_sessions: list[Session] = []
    blocked_days: list[str] = []
    avoid_around_funding: FundingAvoidance = FundingAvoidance()


class StopLoss(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    type: Literal["fixed_pct", "atr_fixed", "atr_trailing"]
    percent: Positive | None = None
    atr_multiplier: Positive | None = None
    indicator: str | None = None


class TakeProfit(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    type: Literal["fixed_pct", "atr_fixed", "risk_reward"]
    percent: Positive | None = None
    atr_multiplier: Positive | None = None
    indicator: str | None = None
    ratio: Positive | None = None  # risk_reward: target distance = ratio x stop distance


class ParameterSchema(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    type: Literal["integer", "float", "boolean", "string", "session_list"]
    min: Number | None = None
    max: Number | None = None
    step: Number | None = None
    default: Any = None
    description: str = ""
    options: list[SweepValue] | None = None


class StrategyDoc(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A whole strategy file."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")]
    description: str = ""
    version: Annotated[int, msgspec.Meta(ge=1)] = 1
    timeframe: str
    additional_timeframes: list[str] = []
    indicators: dict[str, Indicator] = {}  # type: ignore[valid-type]
    entry_conditions: Conditions
    exit_conditions: Conditions = Conditions()
    position_management: PositionManagement = PositionManagement()
    time_filters: TimeFilters = TimeFilters()
    stop_loss: StopLoss | None = None
    take_profit: TakeProfit | None = None
    sweep: dict[str, list[SweepValue]] = {}
    # Relations between parameters a sweep point must satisfy, e.g. "ema_fast.period < ema_slow.period".
    sweep_constraints: list[str] = []
    parameters_schema: dict[str, ParameterSchema] = {}


def json_schema() -> dict:
    """The JSON Schema of a strategy file (for editors and form generation)."""
    schema = msgspec.json.schema(StrategyDoc)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "vibe-quant strategy"
    defs = schema.get("$defs", {})
    if "Indicator" in defs:
        ind = defs["Indicator"]
        ind["properties"]["type"]["enum"] = sorted(indicator_registry.all_names())
        ind["description"] = "One indicator. Parameters per type: " + "; ".join(
            f"{d.name}({', '.join(d.params) or '-'}) -> {', '.join(o for o in d.outputs if o not in d.lookahead)}"
            for d in indicator_registry
        )
    return schema
