"""Backtest configuration: one frozen, validated object per run, fully resolved before hashing.

Two venue presets (docs/specs.md#venue-presets):

* ``screening``: simple probabilistic fills (a market or stop fill slips one tick with
  probability ``prob_slippage``; a limit touched exactly fills with ``prob_fill_on_limit``),
  no latency, standard fees.
* ``validation``: the volume-based slippage model
  ``spread/2 + impact * volatility * sqrt(order_size / avg_volume)``, stops one tick worse than
  their trigger, a latency preset, fee tier overrides.

Both: BINANCE venue, NETTING, MARGIN account, isolated-margin liquidation, funding, market
orders filled at the next bar's open.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

import msgspec

from vibe_quant.data.bars import TIMEFRAME_BY_LABEL
from vibe_quant.errors import ConfigError, did_you_mean
from vibe_quant.risk.config import RiskConfig, SizingConfig

# (base, insert, update, cancel) latency in ns, docs/specs.md#latency-presets.
LATENCY_PRESETS: dict[str, tuple[int, int, int, int]] = {
    "none": (0, 0, 0, 0),
    "co_located": (1_000_000, 500_000, 500_000, 500_000),
    "domestic": (20_000_000, 10_000_000, 10_000_000, 10_000_000),
    "international": (100_000_000, 50_000_000, 50_000_000, 50_000_000),
    "retail": (200_000_000, 100_000_000, 100_000_000, 100_000_000),
}
MODES = ("screening", "validation")
MODE_DEFAULTS = {
    "screening": {"latency": "none", "prob_fill_on_limit": 0.8, "prob_slippage": 0.5},
    "validation": {"latency": "retail", "prob_fill_on_limit": 0.5, "prob_slippage": 0.0},
}

Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
ParamValue = int | float | str | bool


class BacktestConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything that determines a backtest's result (besides the data and the code).

    Dates are UTC days; `end` is inclusive. Fields left None take the mode's defaults in
    :meth:`resolved`.
    """

    strategy: str  # the strategy's name (a Python strategy's registry name, a DSL document's name)
    symbols: tuple[str, ...]
    timeframe: str
    start: dt.date
    end: dt.date
    params: dict[str, ParamValue] = {}
    kind: str = "python"  # strategy kind (vibe_quant.strategy.registry.KINDS)
    document: dict[str, Any] | None = None  # the kind's document, e.g. a DSL strategy's whole YAML
    mode: Literal["screening", "validation"] = "validation"
    latency: str | None = None
    latency_ns: tuple[int, int, int, int] | None = None  # custom (base, insert, update, cancel)
    starting_balance: Annotated[float, msgspec.Meta(gt=0)] = 100_000.0
    leverage: Annotated[float, msgspec.Meta(ge=1, le=125)] = 10.0
    leverages: dict[str, Annotated[float, msgspec.Meta(ge=1, le=125)]] = {}
    maker_fee: Annotated[float, msgspec.Meta(ge=-0.01, le=0.01)] | None = None
    taker_fee: Annotated[float, msgspec.Meta(ge=-0.01, le=0.01)] | None = None
    spread_ticks: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    impact: Annotated[float, msgspec.Meta(ge=0)] = 0.1
    vol_window: Annotated[int, msgspec.Meta(ge=2, le=10_000)] = 20
    prob_fill_on_limit: Fraction | None = None
    prob_slippage: Fraction | None = None
    seed: int = 42
    sizing: SizingConfig | None = None  # replaces the strategy's own sizing (vibe_quant.risk)
    risk: RiskConfig | None = None  # strategy- and portfolio-level circuit breakers

    def __post_init__(self) -> None:
        from vibe_quant.strategy.registry import KINDS

        if self.kind not in KINDS:
            raise ConfigError(f"kind {self.kind!r}: choose one of {', '.join(KINDS)}." + did_you_mean(self.kind, KINDS))
        if not self.symbols:
            raise ConfigError("symbols: give at least one symbol")
        if self.timeframe not in TIMEFRAME_BY_LABEL:
            raise ConfigError(
                f"timeframe {self.timeframe!r}: choose one of {', '.join(TIMEFRAME_BY_LABEL)}."
                + did_you_mean(self.timeframe, TIMEFRAME_BY_LABEL)
            )
        if self.end < self.start:
            raise ConfigError(f"end {self.end} is before start {self.start}")
        if self.latency is not None and self.latency != "custom" and self.latency not in LATENCY_PRESETS:
            raise ConfigError(
                f"latency {self.latency!r}: choose one of {', '.join([*LATENCY_PRESETS, 'custom'])}."
                + did_you_mean(self.latency, LATENCY_PRESETS)
            )
        if self.latency == "custom" and self.latency_ns is None:
            raise ConfigError("latency 'custom' needs latency_ns = (base, insert, update, cancel) nanoseconds")
        if self.latency_ns is not None and any(v < 0 for v in self.latency_ns):
            raise ConfigError(f"latency_ns must be >= 0, got {self.latency_ns}")
        unknown = set(self.leverages) - set(self.symbols)
        if unknown:
            raise ConfigError(f"leverages names symbols not in the run: {sorted(unknown)}")

    def resolved(self) -> BacktestConfig:
        """Return a copy with every mode default filled in (what gets hashed and saved)."""
        defaults = MODE_DEFAULTS[self.mode]
        latency = self.latency or defaults["latency"]
        latency_ns = self.latency_ns if latency == "custom" else LATENCY_PRESETS[latency]
        leverage, leverages = self.leverage, self.leverages
        cap = self.risk.portfolio_level.max_leverage if self.risk is not None else None
        if cap is not None:  # the risk config's ceiling on the venue leverage (live safety: 3x)
            leverage = min(leverage, cap)
            leverages = {symbol: min(value, cap) for symbol, value in leverages.items()}
        return msgspec.structs.replace(
            self,
            leverage=leverage,
            leverages=leverages,
            latency=latency,
            latency_ns=latency_ns,
            prob_fill_on_limit=defaults["prob_fill_on_limit"]
            if self.prob_fill_on_limit is None
            else self.prob_fill_on_limit,
            prob_slippage=defaults["prob_slippage"] if self.prob_slippage is None else self.prob_slippage,
        )

    @property
    def end_exclusive(self) -> dt.date:
        return self.end + dt.timedelta(days=1)

    def leverage_for(self, symbol: str) -> float:
        return self.leverages.get(symbol, self.leverage)

    def strategy_spec(self):
        """What this run trades, as the strategy registry takes it."""
        from vibe_quant.strategy.registry import StrategySpec

        return StrategySpec(kind=self.kind, name=self.strategy, document=self.document, params=dict(self.params),
                            symbols=self.symbols, timeframe=self.timeframe)  # fmt: skip

    def canonical_json(self) -> bytes:
        """Deterministic JSON of the resolved config (sorted keys) for hashing."""
        return json.dumps(msgspec.to_builtins(self.resolved()), sort_keys=True, separators=(",", ":")).encode()


def parse_config(data: dict) -> BacktestConfig:
    """Build a :class:`BacktestConfig` from plain data (YAML/JSON/CLI), with readable errors.

    Runs stored before strategy kinds existed carry a DSL document as ``dsl``: read as kind ``dsl``.
    """
    if data.get("dsl") is not None and "document" not in data:
        data = {**{k: v for k, v in data.items() if k != "dsl"}, "kind": "dsl", "document": data["dsl"]}
    elif "dsl" in data:
        data = {k: v for k, v in data.items() if k != "dsl"}
    try:
        return msgspec.convert(data, BacktestConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"backtest config: {exc}") from exc
