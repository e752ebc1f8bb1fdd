"""One resolved run plan: a backtest's configuration parsed and checked once, in frozen parts.

:class:`~vibe_quant.backtest.config.BacktestConfig` is what a user writes (CLI flags, YAML) and
what the state database stores. :func:`plan_run` turns it, once, into a :class:`RunPlan`:

* **what to trade**: the strategy bound by its kind (``strategy/registry.py``), which builds the
  run's NautilusTrader strategies and names the code the run id hashes;
* **the simulated venue's rules** (:class:`VenueRules`): mode, fees, latency, leverage, balance,
  fill-model knobs;
* **the data period** (:class:`Period`): UTC days, the end inclusive;
* **sizing and risk**.

Everything downstream (data loading, the engine session, the run id, persistence) takes the plan
and never re-parses or asks which kind of strategy it runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import msgspec

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.data.bars import NS_PER_MS, TIMEFRAME_BY_LABEL
from vibe_quant.data.files import utc_ms
from vibe_quant.errors import ConfigError
from vibe_quant.risk.config import RiskConfig, SizingConfig
from vibe_quant.strategy.registry import BoundStrategy, bind


class VenueRules(msgspec.Struct, frozen=True, kw_only=True):
    """The simulated venue of a run (all mode defaults resolved; see ``config.py``)."""

    mode: str
    latency: str
    latency_ns: tuple[int, int, int, int]
    starting_balance: float
    leverage: float
    leverages: dict[str, float]
    maker_fee: float | None
    taker_fee: float | None
    spread_ticks: float
    impact: float
    vol_window: int
    prob_fill_on_limit: float
    prob_slippage: float
    seed: int

    def leverage_for(self, symbol: str) -> float:
        return self.leverages.get(symbol, self.leverage)


@dataclass(frozen=True)
class Period:
    """UTC days `start`..`end` (inclusive): bars closing in (start_ns, end_ns]."""

    start: dt.date
    end: dt.date

    @property
    def start_ns(self) -> int:
        return utc_ms(self.start) * NS_PER_MS

    @property
    def end_ns(self) -> int:
        """Midnight after the last day (exclusive bound of the run's time, inclusive of its last close)."""
        return utc_ms(self.end + dt.timedelta(days=1)) * NS_PER_MS


_VENUE_FIELDS = tuple(f for f in VenueRules.__struct_fields__)


@dataclass(frozen=True)
class RunPlan:
    """A backtest, resolved: build with :func:`plan_run`."""

    config: BacktestConfig  # resolved (mode defaults filled in): what is stored and hashed
    strategy: BoundStrategy
    venue: VenueRules
    period: Period
    sizing: SizingConfig | None
    risk: RiskConfig | None

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.config.symbols

    @property
    def timeframe(self) -> str:
        return self.config.timeframe

    @property
    def bar_ns(self) -> int:
        return TIMEFRAME_BY_LABEL[self.config.timeframe].step_ms * NS_PER_MS

    @property
    def engine_key(self) -> tuple:
        """What an engine is built from (market, period, venue): plans with the same key can share
        one engine and differ only in the strategy's parameters, sizing and risk."""
        return (self.symbols, self.timeframe, self.period, self.venue)

    def with_params(self, params: dict) -> RunPlan:
        """The same plan with other strategy parameters (checked again)."""
        return plan_run(msgspec.structs.replace(self.config, params=params))

    def with_period(self, start: dt.date, end: dt.date) -> RunPlan:
        """The same plan on a sub-period (walk-forward windows)."""
        return plan_run(msgspec.structs.replace(self.config, start=start, end=end))


def plan_run(config: BacktestConfig) -> RunPlan:
    """Resolve `config` into a :class:`RunPlan`, checking the strategy before any engine or row exists.

    Raises
    ------
    ConfigError
        Unknown strategy or parameter (with a did-you-mean), a value of the wrong type, parameters
        the strategy rejects, or a sizing method the strategy cannot use.
    """
    cfg = config.resolved()
    bound = bind(cfg.strategy_spec())
    if cfg.sizing is not None and cfg.sizing.method == "fixed_fractional" and bound.has_stop_loss is False:
        raise ConfigError(
            f"fixed_fractional sizing needs a stop-loss: strategy {cfg.strategy} has none "
            "(add stop_loss: to it, or use --sizing atr or kelly)"
        )
    venue = VenueRules(**{name: getattr(cfg, name) for name in _VENUE_FIELDS})
    return RunPlan(cfg, bound, venue, Period(cfg.start, cfg.end), cfg.sizing, cfg.risk)


def plan_market(config: BacktestConfig) -> RunPlan:
    """The market, period and venue of `config` with no strategy bound: what an environment trading its
    own actions (``vibe_quant.rl.env``) is built from."""
    cfg = config.resolved()
    venue = VenueRules(**{name: getattr(cfg, name) for name in _VENUE_FIELDS})
    return RunPlan(cfg, None, venue, Period(cfg.start, cfg.end), None, None)
