"""A batch worker: loads the run's market data once and reuses one engine for every point.

The same :class:`PointWorker` runs inside a process-pool worker and inside a Ray actor, so the
two executors compute identical metrics. A point's result is a plain dict (picklable, small):
its index, parameters, metrics, daily returns, run time, error and the worker's peak RSS.

A point may name a sub-period of the run (walk-forward windows): the worker slices the data it
already holds and keeps one engine for the latest period, so submit points period by period.
A point may also bring its own strategy document (strategy discovery: every genome is a DSL
document of its own); it runs on the same market, period and venue, so the engine is kept.

``WorkerSpec.engine`` says where points run (docs/specs.md#where-the-kernel-runs): ``sim`` runs a
point on the compiled perp kernel when the kernel accepts its plan and on NautilusTrader
otherwise (the point's warnings say why); ``nautilus`` runs every point on NautilusTrader. Each
result records the engine that ran it.
"""

from __future__ import annotations

import datetime as dt
import logging
import resource
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from vibe_quant.errors import VibeQuantError

log = logging.getLogger(__name__)

# Metrics kept per point: sweep_results columns plus what the later stages read.
POINT_METRICS = (
    "total_return", "cagr", "sharpe_ratio", "sortino_ratio", "calmar_ratio", "max_drawdown",
    "max_drawdown_duration_days", "volatility_annual", "total_trades", "winning_trades", "losing_trades",
    "win_rate", "profit_factor", "avg_trade_duration_hours", "total_fees", "total_funding", "total_slippage",
    "gross_pnl", "net_pnl", "final_equity", "liquidations", "fills",
)  # fmt: skip


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to start (picklable): the data home, the specs file and the base run."""

    home: str
    specs: str | None
    base: dict  # BacktestConfig as plain data (a point sets its parameters, maybe its period)
    reuse_engine: bool = True
    replay: str = "active"  # EngineSession replay: active (screening's fast path) or full
    engine: str = "sim"  # sim: the perp kernel where it can run the plan, else NautilusTrader; nautilus: always NT


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 1024 / 1024


class PointWorker:
    """Runs grid points of one screening run in this process (on the kernel or NautilusTrader: ``spec.engine``)."""

    def __init__(self, spec: WorkerSpec):
        from vibe_quant.backtest.config import parse_config
        from vibe_quant.backtest.market_data import load_market_data
        from vibe_quant.backtest.plan import plan_run
        from vibe_quant.instruments.specs import InstrumentSpecs

        self.spec = spec
        self.base = plan_run(parse_config(spec.base))
        make_runner = getattr(self.base.strategy, "runner", None)  # a kind with an engine of its own
        self.runner = make_runner(Path(spec.home)) if make_runner is not None else None
        self.data = (None if self.runner is not None
                     else load_market_data(Path(spec.home) / "catalog", self.base, InstrumentSpecs(spec.specs)))  # fmt: skip
        self.session = None
        self.session_engine: str | None = None  # "sim" (a SimSession) or "nautilus" (an EngineSession)
        self.period: tuple[str, str] | None = None  # the session's sub-period (None: the whole run)
        self.period_data = self.data

    def run(
        self, index: int, params: dict, period: tuple[str, str] | None = None, document: dict | None = None
    ) -> dict:
        """Run one point (on `period` = (start, end) ISO dates inside the run's, when given; with `document`
        in place of the base run's strategy document, when given)."""
        from vibe_quant.backtest.engine import EngineSession, run_backtest
        from vibe_quant.backtest.market_data import slice_market_data
        from vibe_quant.backtest.plan import plan_run
        from vibe_quant.sim import SimSession, refusal, run_sim
        from vibe_quant.stats.performance import daily_returns

        t0 = time.perf_counter()
        out = {"index": index, "params": params, "period": period, "metrics": None, "returns": None,
               "warnings": [], "error": None, "engine": None}  # fmt: skip
        try:
            config = msgspec.structs.replace(self.base.config, params=params)
            if document is not None:
                config = msgspec.structs.replace(config, strategy=document["name"], document=document)
            if period is not None:
                config = msgspec.structs.replace(
                    config, start=dt.date.fromisoformat(period[0]), end=dt.date.fromisoformat(period[1])
                )
            plan = plan_run(config)
            if self.runner is not None:
                out.update(self.runner.run(plan))
                out["metrics"] = {k: out["metrics"].get(k) for k in POINT_METRICS}
                return self._finish(out, t0)
            refused = refusal(plan) if self.spec.engine == "sim" else None
            engine = "sim" if self.spec.engine == "sim" and refused is None else "nautilus"
            out["engine"] = engine
            if period != self.period:
                self.close()
                self.period = period
                self.period_data = self.data if period is None else slice_market_data(self.data, plan)
            if self.spec.reuse_engine:
                if self.session is not None and self.session_engine != engine:
                    self.close()
                if self.session is None:
                    self.session = (SimSession(plan, self.period_data) if engine == "sim"
                                    else EngineSession(plan, self.period_data, replay=self.spec.replay))  # fmt: skip
                    self.session_engine = engine
                result = self.session.run(plan, reports=False)
            elif engine == "sim":
                result = run_sim(plan, self.period_data)
            else:
                result = run_backtest(plan, self.period_data, replay=self.spec.replay)
            out["engine"] = result.extra.get("engine", "nautilus")  # what actually ran it
            out["metrics"] = {k: result.metrics.get(k) for k in POINT_METRICS}
            out["returns"] = daily_returns(result.equity_ts, result.equity, plan.venue.starting_balance,
                                           plan.period.start_ns)  # fmt: skip
            out["warnings"] = list(result.warnings)
            if refused is not None:
                out["warnings"].append(f"engine sim: {refused}; ran on NautilusTrader")
            out["bars"], out["bars_replayed"] = result.bars_processed, result.extra["bars_replayed"]
        except VibeQuantError as exc:  # the point's parameters are invalid: recorded, the batch goes on
            out["error"] = str(exc)
        except Exception as exc:  # a bug: recorded with its type; the engine may be broken, start a new one
            log.exception("batch point %s %s failed", index, params)
            out["error"] = f"{type(exc).__name__}: {exc}"
            self.close()
        return self._finish(out, t0)

    @staticmethod
    def _finish(out: dict, t0: float) -> dict:
        out["elapsed_s"] = time.perf_counter() - t0
        out["rss_mb"] = peak_rss_mb()
        return out

    def close(self) -> None:
        if self.session is not None:
            self.session.dispose()
            self.session = None
            self.session_engine = None


# -- process-pool entry points (one PointWorker per worker process) ------------------------------

_worker: PointWorker | None = None
_init_error: str | None = None


def init_process(spec: WorkerSpec) -> None:
    global _worker, _init_error
    # Ctrl-C reaches the whole process group: the parent cancels, workers must not die mid-point.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger().setLevel(logging.ERROR)  # warnings travel with each result instead
    try:
        _worker = PointWorker(spec)
    except VibeQuantError as exc:
        # The run's data cannot be loaded (missing bars, a stale spec): every point reports it. Raising
        # here would break the pool, and each point would be retried on fresh workers as a crash.
        _init_error = str(exc)


def run_in_process(
    index: int, params: dict, period: tuple[str, str] | None = None, document: dict | None = None
) -> dict:
    if _init_error is not None:
        return {"index": index, "params": params, "period": period, "metrics": None, "returns": None,
                "warnings": [], "error": _init_error, "engine": None, "elapsed_s": 0.0, "rss_mb": peak_rss_mb()}  # fmt: skip
    assert _worker is not None, "init_process was not called in this worker"
    return _worker.run(index, params, period, document)
