"""Replay paper trading: a NautilusTrader ``TradingNode`` fed from the catalog, trading on our venue.

The node is a real ``TradingNode`` (live kernel, trader, cache, portfolio, live data and
execution engines, asyncio loop) running the strategy objects the backtest runs, built by the
plan's bound strategy. Three things make it the backtest's twin rather than an approximation
(docs/nautilus.md#replay-paper-node):

* **The feed's clock.** A replay is the past replayed: every clock of the node (the kernel's,
  each strategy's and actor's) is a ``TestClock`` the feed sets to each bar's close, so order
  timestamps, GTD expiries, the RiskEngine's checks and the exchange all live in the data's time.
  NautilusTrader 1.221 has no option for it: the kernel picks ``LiveClock`` for a live node, so
  :func:`feed_clock` swaps the class while the node is built (the trader then gives every
  component a clock of the kernel's class).
* **Our exchange.** :class:`ReplayExecClient` extends NautilusTrader's sandbox execution client
  with the backtest's ``SimulatedExchange`` setup: our venue module (funding at the data's
  funding times, isolated-margin liquidation, stop before take-profit), our fill model (next-open
  market fills with the validation slippage model) and the latency model. The sandbox's own
  exchange has fixed ``FillModel()``/``MakerTakerFeeModel()``/``LatencyModel(0)``, charges no
  funding and never liquidates; it subscribes to ``data.*.{venue}.*``, which bars (published on
  ``data.bars.{bar_type}``) never match. The feed hands each bar to the exchange itself.
* **Settled steps.** The live engines queue every command and event for the next loop
  iteration. A replay step is "a bar, then everything it causes": :func:`synchronous_dispatch`
  points the message-bus endpoints of the data, risk and execution engines at their synchronous
  (base-class) handlers, as in a backtest. A bracket's stop can then see the position its entry
  fill opened within the same bar (reduce-only checks read the cache), as on a real exchange.

What differs from a backtest is stated where it happens: pacing (``--speed``), the operator's
commands, and restarts (``node.py``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
from nautilus_trader.adapters.sandbox.execution import SandboxExecutionClient
from nautilus_trader.backtest.engine import SimulatedExchange
from nautilus_trader.backtest.execution_client import BacktestExecClient
from nautilus_trader.backtest.models import LatencyModel, MakerTakerFeeModel
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import ClientId, Venue
from nautilus_trader.model.objects import Money

from vibe_quant.backtest.engine import VENUE, instrument_states, merge_bars
from vibe_quant.backtest.execution import PerpFillModel
from vibe_quant.backtest.market_data import MarketData
from vibe_quant.backtest.plan import RunPlan
from vibe_quant.backtest.recorder import RunRecorder
from vibe_quant.backtest.venue import PerpVenueModule, bar_positions

# The engines' message-bus endpoints a replay dispatches synchronously (see the module docstring).
SYNC_ENDPOINTS = (
    ("data_engine", "DataEngine.process", "nautilus_trader.data.engine", "DataEngine", "process"),
    ("risk_engine", "RiskEngine.execute", "nautilus_trader.risk.engine", "RiskEngine", "execute"),
    ("risk_engine", "RiskEngine.process", "nautilus_trader.risk.engine", "RiskEngine", "process"),
    ("exec_engine", "ExecEngine.execute", "nautilus_trader.execution.engine", "ExecutionEngine", "execute"),
    ("exec_engine", "ExecEngine.process", "nautilus_trader.execution.engine", "ExecutionEngine", "process"),
)


@contextmanager
def feed_clock() -> Iterator[None]:
    """Build a node inside this block and every clock it makes is a ``TestClock`` (the feed's).

    The kernel module's ``LiveClock`` name is swapped for the block only; nothing else reads it
    after construction. Off the main thread the kernel's signal set-up is skipped for the block.
    """
    import nautilus_trader.system.kernel as kernel_module
    from nautilus_trader.common.component import TestClock

    from vibe_quant.paper.loops import node_signals

    live = kernel_module.LiveClock
    kernel_module.LiveClock = TestClock
    try:
        with node_signals():
            yield
    finally:
        kernel_module.LiveClock = live


def synchronous_dispatch(kernel) -> None:
    """Point the live engines' queued endpoints at their synchronous handlers (a replay step settles)."""
    import importlib

    for attr, endpoint, module, cls, method in SYNC_ENDPOINTS:
        engine = getattr(kernel, attr)
        base = getattr(getattr(importlib.import_module(module), cls), method)
        kernel.msgbus.deregister(endpoint, getattr(engine, method))
        kernel.msgbus.register(endpoint, functools.partial(base, engine))


class ReplayDataClient(LiveMarketDataClient):
    """The replay's market data client: the feed pushes the catalog's bars through it (``publish``);
    subscriptions need no action (every bar of the run is published)."""

    def __init__(self, loop, msgbus, cache, clock):
        super().__init__(loop, ClientId("REPLAY"), Venue(VENUE), msgbus, cache, clock, InstrumentProvider())

    async def _connect(self) -> None:
        return None

    async def _disconnect(self) -> None:
        return None

    async def _subscribe_bars(self, command) -> None:
        return None

    async def _unsubscribe_bars(self, command) -> None:
        return None

    def publish(self, bar) -> None:
        self._handle_data(bar)


class ReplayExecClient(SandboxExecutionClient):
    """NautilusTrader's sandbox execution client with the backtest's simulated exchange.

    Parameters
    ----------
    loop, portfolio, msgbus, cache, clock
        The node's (``clock`` is the feed's ``TestClock``).
    plan : RunPlan
        The venue rules (fees, latency, leverage, fill model) and period.
    data : MarketData
        The bars and funding the exchange replays (the same lists the feed publishes).
    """

    def __init__(self, loop, portfolio, msgbus, cache, clock, plan: RunPlan, data: MarketData):
        venue = plan.venue
        config = SandboxExecutionClientConfig(
            venue=VENUE, starting_balances=[f"{venue.starting_balance} USDT"], oms_type="NETTING",
            account_type="MARGIN", default_leverage=Decimal(str(venue.leverage)),
        )  # fmt: skip
        super().__init__(loop, portfolio, msgbus, cache, clock, config)
        self.instruments, template = instrument_states(plan, data)
        self.bars, owners = merge_bars(plan.symbols, data)
        own, _ = bar_positions(owners)
        self.states = {iid: st.fresh() for iid, st in template.items()}
        state_list = list(self.states.values())
        self.recorder = RunRecorder()
        self.module = PerpVenueModule(self.states, self.recorder, [state_list[k] for k in owners], VENUE, own)
        base, insert, update, cancel = venue.latency_ns
        # >= 1 ns in flight, as in the backtest: an order sent at a close executes at the next open.
        latency = LatencyModel(base_latency_nanos=max(base, 1), insert_latency_nanos=insert,
                               update_latency_nanos=update, cancel_latency_nanos=cancel)  # fmt: skip
        fill_model = PerpFillModel(
            self.states, self.recorder, venue.mode, venue.spread_ticks, venue.impact,
            max(base, 1) + insert, venue.prob_fill_on_limit, venue.prob_slippage, venue.seed,
        )  # fmt: skip
        # Replace the sandbox's exchange (fixed models, no modules) by the backtest's.
        self.exchange = SimulatedExchange(
            venue=Venue(VENUE), oms_type=OmsType.NETTING, account_type=AccountType.MARGIN,
            starting_balances=[Money(venue.starting_balance, USDT)], base_currency=None,
            default_leverage=Decimal(str(venue.leverage)),
            leverages={iid: Decimal(str(st.leverage)) for iid, st in template.items()}, modules=[self.module],
            portfolio=portfolio, msgbus=msgbus, cache=cache, clock=clock, fill_model=fill_model,
            fee_model=MakerTakerFeeModel(), latency_model=latency, bar_execution=True,
            bar_adaptive_high_low_ordering=False, use_message_queue=True,
        )  # fmt: skip
        self._client = BacktestExecClient(exchange=self.exchange, msgbus=msgbus, cache=cache, clock=clock)
        self.exchange.register_client(self._client)
        self.exchange.initialize_account()
        for instrument in self.instruments:
            cache.add_instrument(instrument)

    def connect(self) -> None:
        """Connect: add the instruments to the exchange and open the account (no data subscription:
        the feed hands the exchange its bars)."""
        self._log.info("Connecting...")
        for instrument in self.instruments:
            self.exchange.add_instrument(instrument)
        self._client._set_connected(True)
        self._set_connected(True)
        self._log.info("Connected")

    def step(self, bar) -> None:
        """The exchange's part of a bar, before the strategies see it (venue module, then matching)."""
        self.exchange.process_bar(bar)

    def settle(self, ts: int) -> None:
        """Execute what is due at `ts` (after the strategies reacted to the bar, as the backtest does)."""
        self.exchange.process(ts)


async def settle_loop() -> None:
    """Give the event loop one turn (the node's own tasks: queues, timers)."""
    await asyncio.sleep(0)
