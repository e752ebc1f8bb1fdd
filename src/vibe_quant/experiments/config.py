"""``experiment.yaml``: what an LPI experiment runs, resolved once into the config that names it.

An experiment (``docs/specs.md#lpi-experiments``) is a strategy of the ``lpi`` kind run on the tick
data of the catalog with the signal parameters, execution toggles and ablations of one file, over
walk-forward folds, beside the EMA-cross baseline on the same ticks. :func:`load_experiment`
reads and checks the file (every error names the file and the key); :meth:`Experiment.resolved`
fills every default in, so two files that mean the same thing resolve to the same document and
the same :attr:`Experiment.experiment_id`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import msgspec

from vibe_quant.backtest.config import LATENCY_PRESETS
from vibe_quant.errors import ConfigError, did_you_mean
from vibe_quant.risk.config import _convert, _read_yaml, yaml_mapping

# Binance USD-M futures fee schedule (maker, taker) by VIP tier, no BNB discount
# (docs/specs.md#lpi-experiments); "custom" reads execution.maker_fee / taker_fee.
FEE_TIERS: dict[str, tuple[float, float]] = {
    "vip0": (0.0002, 0.0005),
    "vip1": (0.00016, 0.0004),
    "vip2": (0.00014, 0.00035),
    "vip3": (0.00012, 0.00032),
    "vip4": (0.0001, 0.0003),
    "vip5": (0.00008, 0.00027),
    "vip6": (0.00006, 0.00025),
    "vip7": (0.00004, 0.00022),
    "vip8": (0.00002, 0.0002),
    "vip9": (0.0, 0.00017),
}
STRATEGIES = ("lpi_reversion", "lpi_cascade")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_NS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86_400 * 10**9}


def duration_ns(text: str, where: str) -> int:
    """``"90m"``, ``"6h"``, ``"2d"``, ``"500ms"`` -> nanoseconds.

    Raises
    ------
    ConfigError
        Not a whole number followed by ms, s, m, h or d (names `where`).
    """
    match = _DURATION.match(str(text).strip())
    if match is None:
        raise ConfigError(f"{where}: {text!r} is not a duration; write e.g. 500ms, 30s, 15m, 6h or 2d")
    return int(match.group(1)) * _UNIT_NS[match.group(2)]


def parse_time(value: Any, where: str) -> dt.datetime:
    """A date (midnight UTC) or an ISO date-time (UTC when it has no offset)."""
    if isinstance(value, dt.datetime):
        out = value
    elif isinstance(value, dt.date):
        out = dt.datetime(value.year, value.month, value.day)
    else:
        try:
            out = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"{where}: {value!r} is not a date or ISO date-time (2024-03-01 or 2024-03-01T06:00)"
            ) from None
    if out.tzinfo is not None:
        out = out.astimezone(dt.UTC).replace(tzinfo=None)
    return out


def to_ns(t: dt.datetime) -> int:
    return int(t.replace(tzinfo=dt.UTC).timestamp()) * 10**9 + t.microsecond * 1000


class Execution(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Execution model toggles: maker-only entries, the latency penalty, the fee tier, the account."""

    maker_only: bool | None = None  # None: the strategy's own default (reversion: maker-first)
    latency: str = "co_located"  # a latency preset, or "custom" with latency_ms
    latency_ms: float | None = None
    fee_tier: str = "vip0"
    maker_fee: float | None = None  # fee_tier "custom"
    taker_fee: float | None = None
    leverage: float = 10.0
    starting_balance: float = 100_000.0
    prob_fill_on_limit: float = 0.5  # NautilusTrader's queue model: P(fill) when the price only touches


class Ablations(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Switches that remove one ingredient each (they change only what they name)."""

    depth_proxy: bool = True  # LD and EXH from percent depth where bookDepth exists (else the spread forms)
    oi_prior: bool = True  # the LEV regime filter (open interest + funding)
    quotes_free: bool = False  # ignore the quotes: the touch inferred from the trades (labelled)


class WalkForward(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Folds: train [t, t+train) warms the signal up, test [t+train+purge, t+train+test) is scored."""

    train: str
    test: str
    step: str | None = None  # default: the test length
    purge: str = "0s"


class Baseline(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The EMA-cross baseline run on the same ticks (bars aggregated from the trades)."""

    strategy: str = "ema_cross"
    timeframe: str = "1m"
    params: dict[str, int | float | str | bool] = {}


class Sweep(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The latency/fee sensitivity grid of ``vq lpi sweep`` (every combination)."""

    latency: list[str] = msgspec.field(default_factory=lambda: ["none", "co_located", "domestic", "retail"])
    fee_tier: list[str] = msgspec.field(default_factory=lambda: ["vip0", "vip4", "vip9"])


class Experiment(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One ``experiment.yaml`` (docs/specs.md#lpi-experiments)."""

    name: str
    instruments: list[str]
    start: str
    end: str
    strategy: Literal["lpi_reversion", "lpi_cascade"] = "lpi_reversion"
    timeframe: str = "1m"  # equity sampling and the baseline's bars
    signal: dict[str, Any] = {}  # LpiParams fields
    params: dict[str, Any] = {}  # the strategy's decision parameters
    execution: Execution = msgspec.field(default_factory=Execution)
    ablations: Ablations = msgspec.field(default_factory=Ablations)
    walk_forward: WalkForward | None = None
    baseline: Baseline | None = msgspec.field(default_factory=Baseline)
    sweep: Sweep = msgspec.field(default_factory=Sweep)
    seed: int = 42

    # -- checks and resolution --------------------------------------------------------------------

    def check(self, where: str) -> None:
        """Raise ConfigError (naming `where` and the key) on anything impossible."""
        from vibe_quant.data.bars import TIMEFRAME_BY_LABEL
        from vibe_quant.lpi.params import LpiParams

        if not self.instruments:
            raise ConfigError(f"{where}: instruments: give at least one symbol, e.g. [BTCUSDT]")
        start, end = self.period(where)
        if end <= start:
            raise ConfigError(f"{where}: end {self.end} is not after start {self.start}")
        if self.timeframe not in TIMEFRAME_BY_LABEL:
            raise ConfigError(f"{where}: timeframe {self.timeframe!r}: choose one of {', '.join(TIMEFRAME_BY_LABEL)}")
        known = set(LpiParams.__dataclass_fields__)
        for key in self.signal:
            if key not in known:
                raise ConfigError(f"{where}: signal.{key}: not a signal parameter; known: {', '.join(sorted(known))}."
                                  + did_you_mean(key, known))  # fmt: skip
        if "quotes_free" in self.signal:
            raise ConfigError(f"{where}: signal.quotes_free: set ablations.quotes_free instead")
        try:
            LpiParams(**self.signal)
        except TypeError as exc:
            raise ConfigError(f"{where}: signal: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"{where}: signal: {exc}") from None
        ex = self.execution
        if ex.latency != "custom" and ex.latency not in LATENCY_PRESETS:
            raise ConfigError(f"{where}: execution.latency {ex.latency!r}: choose one of "
                              f"{', '.join([*LATENCY_PRESETS, 'custom'])}." + did_you_mean(ex.latency, LATENCY_PRESETS))  # fmt: skip
        if ex.latency == "custom" and (ex.latency_ms is None or ex.latency_ms < 0):
            raise ConfigError(f"{where}: execution.latency custom needs execution.latency_ms >= 0")
        if ex.fee_tier != "custom" and ex.fee_tier not in FEE_TIERS:
            raise ConfigError(f"{where}: execution.fee_tier {ex.fee_tier!r}: choose one of "
                              f"{', '.join([*FEE_TIERS, 'custom'])}." + did_you_mean(ex.fee_tier, FEE_TIERS))  # fmt: skip
        if ex.fee_tier == "custom" and (ex.maker_fee is None or ex.taker_fee is None):
            raise ConfigError(f"{where}: execution.fee_tier custom needs execution.maker_fee and execution.taker_fee")
        if not 1 <= ex.leverage <= 125:
            raise ConfigError(f"{where}: execution.leverage {ex.leverage}: must be in 1..125")
        if ex.starting_balance <= 0:
            raise ConfigError(f"{where}: execution.starting_balance must be > 0")
        if not 0 <= ex.prob_fill_on_limit <= 1:
            raise ConfigError(f"{where}: execution.prob_fill_on_limit must be in [0, 1]")
        if self.walk_forward is not None:
            wf = self.walk_forward
            train = duration_ns(wf.train, f"{where}: walk_forward.train")
            test = duration_ns(wf.test, f"{where}: walk_forward.test")
            step = duration_ns(wf.step, f"{where}: walk_forward.step") if wf.step else test
            purge = duration_ns(wf.purge, f"{where}: walk_forward.purge")
            if min(train, test, step) <= 0:
                raise ConfigError(f"{where}: walk_forward: train, test and step must be > 0")
            if purge >= test:
                raise ConfigError(f"{where}: walk_forward.purge {wf.purge} leaves nothing of test {wf.test} to score")
            if train + test > to_ns(end) - to_ns(start):
                raise ConfigError(f"{where}: walk_forward: train + test ({wf.train} + {wf.test}) is longer than "
                                  f"the period {self.start}..{self.end}; shorten them or widen the period")  # fmt: skip
        for tier in self.sweep.fee_tier:
            if tier not in FEE_TIERS:
                raise ConfigError(f"{where}: sweep.fee_tier {tier!r}: choose from {', '.join(FEE_TIERS)}")
        for latency in self.sweep.latency:
            if latency not in LATENCY_PRESETS:
                raise ConfigError(f"{where}: sweep.latency {latency!r}: choose from {', '.join(LATENCY_PRESETS)}")

    def period(self, where: str = "experiment") -> tuple[dt.datetime, dt.datetime]:
        """(start, end) as naive UTC datetimes; a bare end date means the end of that day."""
        start = parse_time(self.start, f"{where}: start")
        end = parse_time(self.end, f"{where}: end")
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(self.end).strip()):
            end = end + dt.timedelta(days=1)
        return start, end

    def resolved(self) -> Experiment:
        """Every default written out: the signal's full parameter set, fees and latency as numbers."""
        import dataclasses

        from vibe_quant.lpi.params import LpiParams

        start, end = self.period()
        signal = dataclasses.asdict(LpiParams(**self.signal))
        signal.pop("quotes_free")
        ex = self.execution
        maker, taker = FEE_TIERS[ex.fee_tier] if ex.fee_tier != "custom" else (ex.maker_fee, ex.taker_fee)
        latency_ms = (LATENCY_PRESETS[ex.latency][0] + LATENCY_PRESETS[ex.latency][1]) / 1e6 if ex.latency != "custom" \
            else ex.latency_ms  # fmt: skip
        wf = self.walk_forward
        if wf is not None and wf.step is None:
            wf = msgspec.structs.replace(wf, step=wf.test)
        return msgspec.structs.replace(
            self, start=start.isoformat(), end=end.isoformat(), signal=dict(sorted(signal.items())),
            params=dict(sorted(self.params.items())), walk_forward=wf,
            execution=msgspec.structs.replace(ex, maker_fee=maker, taker_fee=taker, latency_ms=latency_ms),
        )  # fmt: skip

    def canonical(self) -> bytes:
        """The resolved document as canonical JSON (sorted keys): what the experiment id hashes."""
        return json.dumps(msgspec.to_builtins(self.resolved()), sort_keys=True, separators=(",", ":")).encode()

    @property
    def experiment_id(self) -> str:
        """``<name>-<12 hex>`` from the resolved config: the same experiment, the same id."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.name).strip("-")[:40] or "experiment"
        return f"{slug}-{hashlib.sha256(self.canonical()).hexdigest()[:12]}"

    def variant(self, **execution) -> Experiment:
        """The same experiment with some execution fields replaced (a sweep point)."""
        return msgspec.structs.replace(self, execution=msgspec.structs.replace(self.execution, **execution))


def experiment_from_data(data: dict, where: str) -> Experiment:
    """A mapping (the YAML document) -> a checked :class:`Experiment`.

    Raises
    ------
    ConfigError
        Unknown keys (with the known ones and a did-you-mean), wrong types, impossible values.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    for block, cls in (("execution", Execution), ("ablations", Ablations), ("walk_forward", WalkForward),
                       ("baseline", Baseline), ("sweep", Sweep)):  # fmt: skip
        if isinstance(data.get(block), dict):
            _convert(data[block], cls, f"{where}: {block}")  # names the block in the message
    for key in ("start", "end"):
        if isinstance(data.get(key), dt.date):
            data = {**data, key: data[key].isoformat()}
    exp = _convert(data, Experiment, where)
    exp.check(where)
    return exp


def experiment_from_text(text: str, where: str) -> Experiment:
    """``experiment.yaml``'s text -> a checked :class:`Experiment` (as :func:`experiment_from_data`).

    Raises
    ------
    ConfigError
        Not YAML (with the line), not a mapping, or what :func:`experiment_from_data` refuses.
    """
    return experiment_from_data(yaml_mapping(text, where), where)


def load_experiment(path: Path) -> Experiment:
    """Read and check ``experiment.yaml`` (see :func:`experiment_from_data`)."""
    from vibe_quant.errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path}: no such experiment file (an example: src/vibe_quant/experiments/examples/lpi_experiment.yaml)"
        )
    return experiment_from_data(_read_yaml(path), str(path))
