"""A replay paper session: the node (``replay.py``), its feed loop, and the operator's supervision.

:class:`ReplayNode` builds a ``TradingNode`` for a :class:`~vibe_quant.backtest.plan.RunPlan` and
steps it bar by bar, exactly as the backtest engine steps its loop: clocks to the bar's close
(timers fire), the exchange's part of the bar (funding, arrivals, liquidation, matching), the bar
to the strategies, then what is due at that time. Its ledger, equity curve and costs are the
validation backtest's for the same plan and data (tests/paper/test_parity.py).

:class:`Supervisor` is the part a live node needs and a backtest does not
(docs/specs.md#paper-trading-and-live-execution):

* **halt and alert**: an unexpected error in a strategy's ``on_bar`` cancels its orders, logs
  the error with its stack trace as a JSON event, calls the alert hooks and sets the strategy
  HALTED; a halted strategy receives no bars (as NautilusTrader's stopped components) until an
  operator resumes it;
* **operator commands** (``halt``, ``resume``, ``close_all``: the kill switch cancels every order
  and flattens every position, then halts every strategy; ``stop``), applied at a bar boundary;
* **state** each strategy's ACTIVE/HALTED, positions, open orders, balance, the ledger and the
  breakers, for checkpoints and the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback

from vibe_quant.backtest.account import SimAccount
from vibe_quant.backtest.engine import BacktestResult, assemble
from vibe_quant.backtest.market_data import MarketData, funding_warnings
from vibe_quant.backtest.plan import RunPlan
from vibe_quant.paper.loops import run_async
from vibe_quant.paper.replay import ReplayDataClient, ReplayExecClient, feed_clock, synchronous_dispatch
from vibe_quant.strategy.ports import StrategyPorts
from vibe_quant.strategy.registry import LegSpec

log = logging.getLogger(__name__)

ACTIVE, HALTED = "ACTIVE", "HALTED"
START_TIMEOUT_S = 30.0


def legs_of(strategy) -> list:
    """The :class:`~vibe_quant.strategy.leg.Leg` objects of a vibe-quant strategy (one or many)."""
    return list(getattr(strategy, "legs", None) or [strategy.leg])


class Supervisor:
    """Halt-and-alert, operator commands and strategy states for the strategies of one node.

    Parameters
    ----------
    events : EventSink
        Where HALT/RESUME/ERROR/KILL_SWITCH events go (the run's recorder).
    alert : callable
        ``alert(event: dict)``: the alert hooks (``vibe_quant.risk.gate``'s by default).
    """

    def __init__(self, events, alert=None):
        if alert is None:
            from vibe_quant.risk.gate import _alert as alert
        self.events = events
        self.alert = alert
        self.strategies: dict[str, object] = {}
        self.states: dict[str, dict] = {}

    def guard(self, strategy) -> None:
        """Supervise `strategy`: its ``on_bar`` runs only while ACTIVE, and an exception in it halts it.

        The wrapper is an instance attribute: NautilusTrader's ``handle_bar`` looks ``on_bar`` up
        on the instance, so the strategy's class (and every backtest) is untouched.
        """
        sid = strategy.id.value
        self.strategies[sid] = strategy
        self.states[sid] = {"state": ACTIVE, "reason": None, "since": None}
        on_bar = strategy.on_bar
        state = self.states[sid]

        def guarded(bar, _on_bar=on_bar, _state=state, _sid=sid):
            if _state["state"] != ACTIVE:
                return
            try:
                _on_bar(bar)
            except Exception as exc:
                self.fail(_sid, bar.ts_event, exc)

        strategy.on_bar = guarded

    def fail(self, sid: str, ts: int, exc: BaseException) -> None:
        """The halt-and-alert flow for an error in strategy `sid` at feed time `ts`."""
        trace = "".join(traceback.format_exception(exc))
        log.error("strategy %s failed at %d, halted: %s", sid, ts, exc)
        self.events.event(ts, "STRATEGY_ERROR", strategy=sid, error=f"{type(exc).__name__}: {exc}", traceback=trace)
        self.halt(sid, ts, f"error: {type(exc).__name__}: {exc}")

    def halt(self, sid: str, ts: int, reason: str) -> bool:
        """Cancel the strategy's orders and set it HALTED (its position stays: close-all flattens)."""
        state = self.states[sid]
        if state["state"] == HALTED:
            return False
        strategy = self.strategies[sid]
        for leg in legs_of(strategy):
            for order in strategy.cache.orders_open(instrument_id=leg.instrument_id, strategy_id=strategy.id):
                if not order.is_pending_cancel:
                    strategy.cancel_order(order)
            leg.in_flight.clear()
        state.update(state=HALTED, reason=reason, since=ts)
        event = {"ts": ts, "type": "STRATEGY_HALTED", "strategy": sid, "reason": reason}
        self.events.event(ts, "STRATEGY_HALTED", strategy=sid, reason=reason)
        self.alert(event)
        return True

    def resume(self, sid: str, ts: int, reason: str = "operator") -> bool:
        state = self.states[sid]
        if state["state"] == ACTIVE:
            return False
        state.update(state=ACTIVE, reason=None, since=ts)
        self.events.event(ts, "STRATEGY_RESUMED", strategy=sid, reason=reason)
        return True

    def kill_switch(self, ts: int, reason: str) -> None:
        """Cancel every order, flatten every position at market, halt every strategy."""
        for sid, strategy in self.strategies.items():
            for leg in legs_of(strategy):
                if leg.book is not None:
                    leg.flatten(ts, "kill_switch")
            self.states[sid].update(state=HALTED, reason=f"kill switch: {reason}", since=ts)
        event = {"ts": ts, "type": "KILL_SWITCH", "reason": reason}
        self.events.event(ts, "KILL_SWITCH", reason=reason)
        self.alert(event)

    def targets(self, target: str | None) -> list[str]:
        """Strategy ids a command names (None: all); UserError for an unknown one."""
        if target is None:
            return list(self.strategies)
        if target not in self.strategies:
            from vibe_quant.errors import UserError

            raise UserError(f"no strategy {target!r} in this session; strategies: {', '.join(self.strategies)}")
        return [target]

    def apply(self, command: str, target: str | None, ts: int, reason: str | None) -> str:
        """Apply an operator command at feed time `ts`; returns what it did (journaled)."""
        why = reason or "operator"
        if command == "halt":
            done = [sid for sid in self.targets(target) if self.halt(sid, ts, f"operator: {why}")]
            return f"halted {', '.join(done) or 'nothing (already halted)'}"
        if command == "resume":
            done = [sid for sid in self.targets(target) if self.resume(sid, ts, why)]
            return f"resumed {', '.join(done) or 'nothing (already active)'}"
        if command == "close_all":
            self.kill_switch(ts, why)
            return "kill switch: orders cancelled, positions closing at the next open, strategies halted"
        raise ValueError(f"not a strategy command: {command}")


class ReplayNode:
    """A TradingNode replaying `data` for `plan` (build and run inside an event loop).

    Parameters
    ----------
    plan : RunPlan
    data : MarketData
        What the validation backtest of `plan` reads (``load_market_data``).
    trader_id : str, default "PAPER-001"
    log_directory : str, optional
        NautilusTrader's log file directory (its INFO log); None: errors to the console only.
    """

    def __init__(self, plan: RunPlan, data: MarketData, trader_id: str = "PAPER-001",
                 log_directory: str | None = None, log_name: str | None = None):  # fmt: skip
        self.plan, self.data = plan, data
        self.trader_id = trader_id
        self.log_directory, self.log_name = log_directory, log_name
        self.node = None
        self._task = None
        self.bars_done = 0
        self._last_ts = 0

    async def build(self) -> None:
        """Build the node, its clients, the risk gate and the strategies (nothing runs yet)."""
        from nautilus_trader.common import Environment
        from nautilus_trader.config import LoggingConfig, TradingNodeConfig
        from nautilus_trader.live.node import TradingNode

        loop = asyncio.get_running_loop()
        logging_config = LoggingConfig(log_level="ERROR")
        if self.log_directory is not None:
            logging_config = LoggingConfig(log_level="ERROR", log_level_file="INFO", log_directory=self.log_directory,
                                           log_file_name=self.log_name)  # fmt: skip
        # No residual wait after stop (NautilusTrader waits timeout_post_stop seconds for late events;
        # a replay has none: every step settled).
        config = TradingNodeConfig(environment=Environment.SANDBOX, trader_id=self.trader_id, logging=logging_config,
                                   timeout_post_stop=0.0)  # fmt: skip
        with feed_clock():
            self.node = TradingNode(config=config, loop=loop)
        self.node.build()  # no client configs: ours are registered below
        kernel = self.kernel = self.node.kernel
        self.data_client = ReplayDataClient(loop, kernel.msgbus, kernel.cache, kernel.clock)
        kernel.data_engine.register_client(self.data_client)
        self.exec_client = ReplayExecClient(loop, kernel.portfolio, kernel.msgbus, kernel.cache, kernel.clock,
                                            self.plan, self.data)  # fmt: skip
        kernel.exec_engine.register_client(self.exec_client)
        synchronous_dispatch(kernel)
        self.module, self.recorder = self.exec_client.module, self.exec_client.recorder
        for message in funding_warnings(self.plan, self.data):
            self.recorder.warn(message)
        self.bars = self.exec_client.bars
        account = SimAccount(self.module)
        self.gate = self._gate(account)
        legs = [LegSpec(symbol, str(instrument.id), str(self.data.bars[symbol][0].bar_type))
                for symbol, instrument in zip(self.plan.symbols, self.exec_client.instruments, strict=True)]  # fmt: skip
        self.strategies = self.plan.strategy.build(legs, StrategyPorts(account, self.recorder, self.gate, None))
        self.actors = self.gate.actors() if self.gate is not None else []
        for actor in self.actors:  # actors first: at a bar close the breakers act before the strategies
            self.node.trader.add_actor(actor)
        for strategy in self.strategies:
            self.node.trader.add_strategy(strategy)
        self.supervisor = Supervisor(self.recorder)
        for strategy in self.strategies:
            self.supervisor.guard(strategy)
        self._clocks = [kernel.clock, *(c.clock for c in [*self.actors, *self.strategies])]

    def _gate(self, account):
        if self.plan.sizing is None and self.plan.risk is None:
            return None
        from vibe_quant.risk.gate import RiskGate

        min_notional = {s: float(self.data.specs[s].min_notional) for s in self.plan.symbols}
        return RiskGate(self.plan.sizing, self.plan.risk, account, self.recorder, min_notional,
                        self.plan.venue.starting_balance, self.kernel.risk_engine)  # fmt: skip

    async def start(self) -> None:
        """Start the node and wait until every strategy runs."""
        self._task = asyncio.ensure_future(self.node.run_async())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while not all(s.is_running for s in self.strategies):
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("the trading node stopped while starting")
            if loop.time() > deadline:
                raise RuntimeError(f"the trading node's strategies did not start within {START_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.005)

    def step(self) -> int:
        """Replay the next bar (see the module docstring); returns its close time."""
        bar = self.bars[self.bars_done]
        ts = bar.ts_init
        if ts > self._last_ts:
            self._last_ts = ts
            handlers = [h for clock in self._clocks for h in clock.advance_time(ts)]
            for handler in sorted(handlers, key=lambda h: h.event.ts_event):
                handler.handle()
        self.exec_client.step(bar)
        self.data_client.publish(bar)
        self.exec_client.settle(ts)
        self.bars_done += 1
        return ts

    @property
    def feed_ts(self) -> int:
        """Close time of the last bar replayed (the node's clock), 0 before the first."""
        return self._last_ts

    @property
    def done(self) -> bool:
        return self.bars_done >= len(self.bars)

    def next_ts(self) -> int | None:
        return self.bars[self.bars_done].ts_init if not self.done else None

    def equity(self) -> float:
        return self.module.equity()

    def result(self, elapsed_s: float = 0.0) -> BacktestResult:
        """The ledger, equity curve and metrics so far, as a backtest's result (same assembly)."""
        self.module.finish()
        rec = self.recorder
        rec.equity_ts, rec.equity, rec.exposure, rec.margin = self.module.equity_curve(True)
        result = assemble(self.plan, rec, self.exec_client.states, "", self.bars_done, elapsed_s)
        if self.gate is not None:
            result.extra["risk"] = self.gate.summary()
        return result

    async def stop(self) -> None:
        """Stop the node (its strategies stop; nothing is cancelled at the simulated venue)."""
        if self.node is None:
            return
        try:
            await asyncio.wait_for(self.node.stop_async(), timeout=START_TIMEOUT_S)
        finally:
            if self._task is not None and not self._task.done():
                # the engines' queue tasks end on the sentinels their stop enqueued
                await asyncio.wait([self._task], timeout=2.0)
            if self._task is not None and not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task


def replay(plan: RunPlan, data: MarketData) -> BacktestResult:
    """Replay every bar of `data` through a fresh paper node at full speed and return its result
    (no session, no database: what the parity tests and the benchmark compare with a backtest)."""
    import time

    async def go() -> BacktestResult:
        node = ReplayNode(plan, data)
        await node.build()
        await node.start()
        t0 = time.perf_counter()
        try:
            while not node.done:
                node.step()
                if node.bars_done % 256 == 0:
                    await asyncio.sleep(0)
            return node.result(time.perf_counter() - t0)
        finally:
            await node.stop()

    return run_async(go)
