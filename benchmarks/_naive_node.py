"""The naive screening path the benchmark compares against: what seed 001's pseudo-code does, a
fresh ``BacktestNode`` per parameter combination with NautilusTrader's default engine settings
(INFO logging, ``run_analysis=True``), the bars read from the catalog by the node each time.

To trade exactly like our runner (same fills: checked by the benchmark) the node's venue gets
our venue module, fill model and 1 ns latency through NautilusTrader's importable configs; those
need per-instrument state built from the bars, so this path reads the bars twice per combination
(once here, once in the node). Only benchmarks use this file.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
from nautilus_trader.backtest.config import (
    BacktestDataConfig,
    BacktestEngineConfig,
    BacktestRunConfig,
    BacktestVenueConfig,
    ImportableFeeModelConfig,
    ImportableFillModelConfig,
    ImportableLatencyModelConfig,
    SimulationModuleConfig,
)
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.config import ImportableActorConfig, ImportableStrategyConfig, NautilusConfig
from nautilus_trader.model.data import Bar

from vibe_quant.backtest.account import SimAccount
from vibe_quant.backtest.config import parse_config
from vibe_quant.backtest.engine import assemble, instrument_states, merge_bars
from vibe_quant.backtest.execution import PerpFillModel
from vibe_quant.backtest.market_data import load_market_data
from vibe_quant.backtest.plan import plan_run
from vibe_quant.backtest.recorder import RunRecorder
from vibe_quant.backtest.venue import PerpVenueModule
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.strategy.ports import StrategyPorts
from vibe_quant.strategy.registry import LegSpec

_PREPARED: dict[str, tuple] = {}  # key -> (states, recorder, sequence, fill model args)


class BarTypeDataConfig(BacktestDataConfig, frozen=True):
    """Query the catalog by bar type: with only an instrument id (what BacktestDataConfig derives
    from ``bar_types``) the catalog returns every timeframe of the instrument."""

    @property
    def query(self):
        query = super().query
        query["identifiers"] = list(self.bar_types)
        return query


class NodeModuleConfig(SimulationModuleConfig, frozen=True):
    key: str


class NodeModule(PerpVenueModule):
    def __init__(self, config: NodeModuleConfig):
        states, recorder, sequence, _ = _PREPARED[config.key]
        super().__init__(states, recorder, sequence)


class NodeFillModelConfig(NautilusConfig, frozen=True):
    key: str


class NodeFillModel(PerpFillModel):
    def __init__(self, config: NodeFillModelConfig):
        states, recorder, _, args = _PREPARED[config.key]
        super().__init__(states, recorder, *args)


_CURRENT: list = []  # (venue module, recorder) of the run in progress


def sim_ports(strategy) -> StrategyPorts:
    """The ports a node-built strategy resolves at start (its config names this function)."""
    module, recorder = _CURRENT
    return StrategyPorts(SimAccount(module), recorder)


def run_naive(home_root: str, base: dict, params: dict) -> dict:
    """One combination, the naive way; returns metrics, fills and timings."""
    t0 = time.perf_counter()
    plan = plan_run(msgspec.structs.replace(parse_config(base), params=params))
    cfg = plan.config
    catalog = str(Path(home_root) / "catalog")
    data = load_market_data(Path(catalog), plan, InstrumentSpecs())
    instruments, states = instrument_states(plan, data)
    recorder = RunRecorder()
    state_list = list(states.values())
    sequence = [state_list[k] for k in merge_bars(cfg.symbols, data)[1]]
    key = f"{id(states)}"
    _PREPARED[key] = (states, recorder, sequence, (cfg.mode, cfg.spread_ticks, cfg.impact,
                      max(cfg.latency_ns[0], 1) + cfg.latency_ns[1], cfg.prob_fill_on_limit, cfg.prob_slippage, cfg.seed))  # fmt: skip
    symbol = cfg.symbols[0]
    instrument = instruments[0]
    bar_type = str(data.bars[symbol][0].bar_type)
    start_ns, end_ns = plan.period.start_ns + plan.bar_ns, plan.period.end_ns
    # The strategies as a node builds them (ImportableStrategyConfig); their ports: this run's venue module.
    strategies = [
        ImportableStrategyConfig(
            strategy_path=c.strategy_path,
            config_path=c.config_path,
            config={**c.config, "ports": f"{__name__}:sim_ports"},
        )
        for c in plan.strategy.importable([LegSpec(symbol, str(instrument.id), bar_type)])
    ]
    run_config = BacktestRunConfig(
        engine=BacktestEngineConfig(strategies=strategies),  # defaults: INFO logging, run_analysis=True
        venues=[BacktestVenueConfig(
            name="BINANCE", oms_type="NETTING", account_type="MARGIN", base_currency=None,
            starting_balances=[f"{cfg.starting_balance} USDT"], default_leverage=cfg.leverage,
            leverages={str(instrument.id): cfg.leverage_for(symbol)},
            modules=[ImportableActorConfig(actor_path=f"{__name__}:NodeModule", config_path=f"{__name__}:NodeModuleConfig",
                                           config={"key": key})],
            fill_model=ImportableFillModelConfig(fill_model_path=f"{__name__}:NodeFillModel",
                                                 config_path=f"{__name__}:NodeFillModelConfig", config={"key": key}),
            latency_model=ImportableLatencyModelConfig(
                latency_model_path="nautilus_trader.backtest.models:LatencyModel",
                config_path="nautilus_trader.backtest.config:LatencyModelConfig",
                config={"base_latency_nanos": max(cfg.latency_ns[0], 1), "insert_latency_nanos": cfg.latency_ns[1],
                        "update_latency_nanos": cfg.latency_ns[2], "cancel_latency_nanos": cfg.latency_ns[3]},
            ),
            fee_model=ImportableFeeModelConfig(fee_model_path="nautilus_trader.backtest.models:MakerTakerFeeModel",
                                               config_path="nautilus_trader.backtest.config:MakerTakerFeeModelConfig",
                                               config={}),
            bar_execution=True, bar_adaptive_high_low_ordering=False,
        )],
        data=[BarTypeDataConfig(catalog_path=catalog, data_cls=Bar,
                                 bar_types=[bar_type], start_time=start_ns, end_time=end_ns)],
        dispose_on_completion=False,
    )  # fmt: skip
    node = BacktestNode(configs=[run_config])
    node.build()
    engine = node.get_engine(run_config.id)
    module = next(m for m in _modules() if m.recorder is recorder)
    _CURRENT[:] = [module, recorder]
    t1 = time.perf_counter()
    node.run()
    elapsed = time.perf_counter() - t1
    module.finish()
    recorder.equity_ts, recorder.equity, _, _ = module.equity_curve()
    result = assemble(plan, recorder, states, "", len(data.bars[symbol]), elapsed)
    engine.dispose()
    del _PREPARED[key]
    return {"metrics": result.metrics, "fills": [(f.ts_ns, f.side, f.qty, f.price) for f in recorder.fills],
            "elapsed_s": time.perf_counter() - t0}  # fmt: skip


def _modules():
    import gc

    # The node does not expose the venue's modules: find the one it built for this combination
    # (earlier combinations' modules may still be alive in this process).
    return [o for o in gc.get_objects() if isinstance(o, NodeModule)]
