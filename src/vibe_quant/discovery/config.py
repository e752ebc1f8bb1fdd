"""A discovery run's configuration (stored whole in ``discovery_runs.config``; docs/specs.md#discovery-runs).

The period ``start..end`` is split once: the search sees ``start..train_end`` only; the last
``holdout_days`` are judged after the search, never during it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from vibe_quant.discovery.genome import TEMPLATES, Space
from vibe_quant.errors import ConfigError
from vibe_quant.screening.pareto import HardFilters

Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class GuardRails(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a finalist must pass after the search (defaults: docs/specs.md#discovery-guard-rails)."""

    finalists: Annotated[int, msgspec.Meta(ge=1, le=50)] = 5
    dsr_confidence: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] = 0.95
    wf_windows: Annotated[int, msgspec.Meta(ge=2, le=20)] = 4
    wf_min_efficiency: float = 0.5
    wf_min_profitable: Fraction = 0.5
    pbo_max: Fraction = 0.2
    pbo_splits: Annotated[int, msgspec.Meta(ge=2, le=16)] = 16
    baselines: Annotated[int, msgspec.Meta(ge=2, le=500)] = 32  # random genomes per finalist complexity
    baseline_quantile: Fraction = 0.5  # the finalist's held-out Sharpe must beat this quantile of theirs

    def __post_init__(self) -> None:
        if self.pbo_splits % 2:
            raise ConfigError(f"pbo_splits must be even (half the blocks in sample), got {self.pbo_splits}")


class DiscoveryConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    symbols: tuple[str, ...]
    timeframe: str
    start: dt.date
    end: dt.date  # inclusive; the held-out days are the last ones
    holdout_days: Annotated[int, msgspec.Meta(ge=1)] | None = None  # None: 30% of the period
    population: Annotated[int, msgspec.Meta(ge=8, le=4096)] = 64
    generations: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 20
    seed: int = 0
    indicators: tuple[str, ...] = tuple(TEMPLATES)
    higher_timeframes: tuple[str, ...] = ()
    max_genes: Annotated[int, msgspec.Meta(ge=1, le=5)] = 5
    crossover: Fraction = 0.7  # probability a pair of parents is crossed
    mutation: Fraction = 0.4  # probability an offspring is mutated (one operator)
    occam: Annotated[float, msgspec.Meta(ge=0.0)] = 0.1  # Sharpe taken off per gene beyond the first
    filters: HardFilters = HardFilters()
    mode: Literal["screening", "validation"] = "screening"
    leverage: Annotated[float, msgspec.Meta(ge=1, le=125)] = 5.0
    starting_balance: Annotated[float, msgspec.Meta(gt=0)] = 100_000.0
    guards: GuardRails = GuardRails()

    def __post_init__(self) -> None:
        from vibe_quant.data.bars import TIMEFRAME_BY_LABEL

        if self.population % 4:
            raise ConfigError(
                f"--population must be a multiple of 4 (NSGA-II's tournament pairs), got {self.population}"
            )
        for tf in (self.timeframe, *self.higher_timeframes):
            if tf not in TIMEFRAME_BY_LABEL:
                raise ConfigError(f"timeframe {tf!r}: choose one of {', '.join(TIMEFRAME_BY_LABEL)}")
        primary = TIMEFRAME_BY_LABEL[self.timeframe].step_ms
        for tf in self.higher_timeframes:
            step = TIMEFRAME_BY_LABEL[tf].step_ms
            if step <= primary or step % primary:
                raise ConfigError(f"--higher {tf}: must be a multiple of the run's timeframe {self.timeframe}")
        if not self.symbols:
            raise ConfigError("--symbols: give at least one symbol")
        days = (self.end - self.start).days + 1
        if days < 4:
            raise ConfigError(f"--start {self.start} .. --end {self.end}: {days} day(s); discovery needs a training "
                              "period and a held-out period (at least 4 days)")  # fmt: skip
        if self.holdout_days is not None and self.holdout_days > days - 3:
            raise ConfigError(f"--holdout-days {self.holdout_days} leaves {days - self.holdout_days} training day(s) "
                              f"of {days}; give fewer held-out days or a longer period")  # fmt: skip
        self.space  # noqa: B018 (checks the indicator pool)

    @property
    def space(self) -> Space:
        return Space(self.timeframe, tuple(i.upper() for i in self.indicators), tuple(self.higher_timeframes),
                     self.max_genes)  # fmt: skip

    @property
    def held_out(self) -> int:
        days = (self.end - self.start).days + 1
        return self.holdout_days if self.holdout_days is not None else max(1, round(days * 0.3))

    @property
    def train_end(self) -> dt.date:
        return self.end - dt.timedelta(days=self.held_out)

    @property
    def holdout_start(self) -> dt.date:
        return self.train_end + dt.timedelta(days=1)

    def backtest(self, document: dict, start: dt.date, end: dt.date):
        """The backtest config of `document` on ``start..end`` (the venue every evaluation uses)."""
        from vibe_quant.backtest.config import BacktestConfig

        return BacktestConfig(strategy=document["name"], kind="dsl", document=document, symbols=self.symbols,
                              timeframe=self.timeframe, start=start, end=end, mode=self.mode, leverage=self.leverage,
                              starting_balance=self.starting_balance)  # fmt: skip


def parse_discovery(data: dict) -> DiscoveryConfig:
    try:
        return msgspec.convert(data, DiscoveryConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"discovery config: {exc}") from exc
