"""Testnet and live sessions: the same strategies, sizing and risk gate on NautilusTrader's Binance adapter.

:func:`build_live_node` builds (inside a running event loop) a ``TradingNode`` with NautilusTrader's
Binance USD-M clients (``binance.py``) and the session's strategies, built by the plan's bound
strategy as in a backtest, with these ports (``strategy/ports.py``):

* :class:`LiveAccount`, the whole venue account as an ``AccountView``: one
  :class:`~vibe_quant.strategy.node.NodeAccount` per strategy (books kept from NautilusTrader's
  message bus and portfolio), bound when the strategies start (the instruments are loaded by then);
* the risk gate of the session's sizing and risk config (live safety: ``safety.py``), its breaker
  actors added before the strategies, as in a backtest;
* an event log whose events go to the session's JSON-lines file.

:func:`run_live_session` runs it with the :class:`~vibe_quant.paper.node.Supervisor` (halt and
alert, operator commands), a status snapshot every second and a checkpoint every 60 s and on
stop. On start NautilusTrader reconciles its state with the venue (``reconciliation=True``:
open orders, recent orders, positions); a restarted session re-applies the HALTED states of its
last checkpoint. What the venue charges (fees, funding) is in its account balance; fills are
recorded as they arrive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from pathlib import Path

from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.paper import store
from vibe_quant.paper.loops import add_stop_handlers, run_async
from vibe_quant.paper.node import Supervisor, legs_of
from vibe_quant.state import StateManager
from vibe_quant.strategy.ports import EventLog, StrategyPorts
from vibe_quant.strategy.registry import LegSpec

log = logging.getLogger(__name__)

NS = 1_000_000_000


class LiveAccount:
    """:class:`~vibe_quant.strategy.account.AccountView` of a node's whole account.

    Each strategy's books are a :class:`~vibe_quant.strategy.node.NodeAccount`, made the first time
    the account is read after the strategy is registered and its instruments are in the cache (when
    the first strategy starts); equity is the venue balance plus every open position's unrealised PnL.
    """

    def __init__(self) -> None:
        self.strategies: list = []
        self._accounts: dict[str, object] = {}

    def add(self, strategies: list) -> None:
        self.strategies = list(strategies)

    def _bound(self) -> list:
        from vibe_quant.strategy.node import NodeAccount

        for strategy in self.strategies:
            sid = strategy.id.value
            loaded = strategy.is_initialized and all(
                strategy.cache.instrument(leg.instrument_id) is not None for leg in legs_of(strategy)
            )
            if sid not in self._accounts and loaded:
                self._accounts[sid] = NodeAccount(strategy)
        return list(self._accounts.values())

    def equity(self) -> float:
        accounts = self._bound()
        if not accounts:
            return 0.0
        first = accounts[0]
        balance = first.equity() - sum(b.signed_qty * (b.close - b.avg_px) for b in first.books() if b.signed_qty)
        return balance + sum(b.signed_qty * (b.close - b.avg_px) for b in self.books() if b.signed_qty)

    def used_margin(self) -> float:
        return sum(a.used_margin() for a in self._bound())

    def _holder(self, instrument_id: str):
        for account in self._bound():
            if any(b.instrument_id.value == instrument_id for b in account.books()):
                return account
        raise UserError(f"no strategy of this node trades {instrument_id}")

    def book(self, instrument_id: str):
        return self._holder(instrument_id).book(instrument_id)

    def books(self) -> list:
        return [b for account in self._bound() for b in account.books()]

    def resting(self, instrument_id: str) -> dict:
        return self._holder(instrument_id).resting(instrument_id)


@dataclasses.dataclass
class LiveNode:
    node: object
    strategies: list
    actors: list
    supervisor: Supervisor
    account: LiveAccount
    events: EventLog
    gate: object
    config: object  # TradingNodeConfig


def leverages_of(plan) -> dict[str, int]:
    """Per-symbol leverage as Binance takes it (whole numbers, rounded down)."""
    return {s: max(int(plan.venue.leverage_for(s)), 1) for s in plan.symbols}


def build_live_node(plan, mode: str, credentials, trader_id: str, log_directory: Path | None = None) -> LiveNode:
    """Build the node of a testnet/live session (call inside a running event loop; nothing connects)."""
    from vibe_quant.data.bars import timeframe
    from vibe_quant.instruments.specs import InstrumentSpecs
    from vibe_quant.paper.binance import build_node, node_config
    from vibe_quant.risk.gate import RiskGate

    specs = InstrumentSpecs()
    config = node_config(list(plan.symbols), leverages_of(plan), mode, credentials, trader_id=trader_id,
                         log_directory=log_directory, specs=specs)  # fmt: skip
    node = build_node(config)
    tf = timeframe(plan.timeframe)
    legs = [LegSpec(s, f"{s}-PERP.BINANCE", tf.bar_type(f"{s}-PERP.BINANCE")) for s in plan.symbols]
    events = EventLog(maxlen=10_000)
    account = LiveAccount()
    gate = None
    if plan.sizing is not None or plan.risk is not None:
        min_notional = {s: float(specs.get(s).min_notional) for s in plan.symbols}
        gate = RiskGate(plan.sizing, plan.risk, account, events, min_notional, plan.venue.starting_balance,
                        node.kernel.risk_engine)  # fmt: skip
    strategies = plan.strategy.build(legs, StrategyPorts(account, events, gate, None))
    account.add(strategies)
    actors = gate.actors() if gate is not None else []
    for actor in actors:
        node.trader.add_actor(actor)
    for strategy in strategies:
        node.trader.add_strategy(strategy)
    supervisor = Supervisor(events)
    for strategy in strategies:
        supervisor.guard(strategy)
    return LiveNode(node, strategies, actors, supervisor, account, events, gate, config)


def describe_node(live: LiveNode) -> dict:
    """What ``--check`` prints beyond the connection summary: strategies, legs, gate and breakers."""
    return {
        "strategies": [s.id.value for s in live.strategies],
        "bar_types": sorted({str(leg.bar_type) for s in live.strategies for leg in legs_of(s)}),
        "risk_gate": live.gate is not None,
        "breaker_actors": [type(a).__name__ for a in live.actors],
        "post_only_entries": bool(live.gate is not None and live.gate.post_only_bars),
    }


def _state(live: LiveNode) -> dict:
    """Status of a live node from NautilusTrader's cache and portfolio and the strategies' books."""
    cache = live.node.kernel.cache
    positions = [
        {"instrument": b.symbol, "signed_qty": b.signed_qty, "avg_px": b.avg_px, "margin": b.wallet, "mark": b.close,
         "liquidation_price": None, "unrealized_pnl": b.signed_qty * (b.close - b.avg_px)}
        for b in live.account.books() if b.signed_qty
    ]  # fmt: skip
    orders = [{"order_id": o.client_order_id.value, "strategy": o.strategy_id.value,
               "instrument": o.instrument_id.symbol.value, "type": o.type_string(), "side": o.side_string(),
               "qty": o.quantity.as_double(), "price": o.price.as_double() if o.has_price else None,
               "trigger": o.trigger_price.as_double() if o.has_trigger_price else None,
               "reduce_only": o.is_reduce_only, "reason": live.events.reasons.get(o.client_order_id.value)}
              for o in cache.orders_open()]  # fmt: skip
    fills = [e for e in live.events.events if e["type"] == "FILL"]
    return json.loads(json.dumps({
        "equity": live.account.equity(), "positions": positions, "open_orders": orders,
        "strategies": live.supervisor.states, "costs": {"fees": sum(f["fee"] for f in fills), "fills": len(fills)},
        "recent_fills": fills[-25:], "warnings": list(live.events.warnings),
    }, default=str))  # fmt: skip


def _record_fills(live: LiveNode) -> None:
    """Record every fill of the node's strategies as a FILL event (the session's ledger)."""
    from nautilus_trader.model.enums import OrderSide
    from nautilus_trader.model.events import OrderFilled

    def on_order(event) -> None:
        if isinstance(event, OrderFilled):
            coid = event.client_order_id.value
            live.events.event(event.ts_event, "FILL", instrument=event.instrument_id.value, order_id=coid,
                              side=1 if event.order_side == OrderSide.BUY else -1, qty=event.last_qty.as_double(),
                              price=event.last_px.as_double(), fee=event.commission.as_double(),
                              liquidity=str(event.liquidity_side), reason=live.events.reasons.get(coid, "signal"))  # fmt: skip

    live.node.kernel.msgbus.subscribe(topic="events.order.*", handler=on_order)


async def _run(home: Home, session_id: int, plan, mode: str, credentials, checkpoint_s: float) -> str:
    with StateManager(home.db_path) as db:
        last = store.last_checkpoint(db, session_id)
        store.update_session(db, session_id, status="running", pid=os.getpid(), error=None, finished_at=None)
    live = build_live_node(plan, mode, credentials, trader_id=f"VQ{mode.upper()}-{session_id:03d}",
                           log_directory=home.logs)  # fmt: skip
    _record_fills(live)
    if last is not None:  # an operator's halt survives a restart
        for sid, st in (last["state"].get("strategies") or {}).items():
            if st.get("state") == "HALTED" and sid in live.supervisor.states:
                live.supervisor.states[sid].update(state="HALTED", reason=st.get("reason"), since=st.get("since"))
    loop = asyncio.get_running_loop()
    stop = {"requested": False}
    add_stop_handlers(loop, lambda: stop.update(requested=True))
    from vibe_quant.paper.session import install_alerts

    alerts_installed = install_alerts(home)
    task = asyncio.ensure_future(live.node.run_async())
    events_path = store.events_path(home.logs, session_id)
    events_path.parent.mkdir(parents=True, exist_ok=True)
    written, next_checkpoint = 0, time.monotonic() + checkpoint_s
    status = "stopped"
    try:
        with StateManager(home.db_path) as db:
            while not stop["requested"]:
                if task.done():
                    task.result()
                    status = "stopped"
                    break
                now_ns = time.time_ns()
                for cmd in store.pending_commands(db, session_id):
                    if cmd["command"] == "stop":
                        stop["requested"] = True
                        result = "stopping"
                    else:
                        try:
                            result = live.supervisor.apply(cmd["command"], cmd["target"], now_ns, cmd["reason"])
                        except UserError as exc:
                            result = f"refused: {exc}"
                    store.mark_applied(db, cmd["id"], 0, result)
                state = _state(live)
                store.write_progress(db, session_id, cursor_ns=now_ns, bars_done=0, snapshot=state, equity=[(
                    now_ns, state["equity"])], fills=[])  # fmt: skip
                events = list(live.events.events)
                if len(events) > written:
                    with open(events_path, "a", encoding="utf-8") as fh:
                        for event in events[written:]:
                            fh.write(json.dumps({"session": session_id, **event}, default=str) + "\n")
                    written = len(events)
                if time.monotonic() >= next_checkpoint:
                    next_checkpoint = time.monotonic() + checkpoint_s
                    store.write_checkpoint(db, session_id, "periodic", now_ns, 0, state)
                await asyncio.sleep(1.0)
            store.write_checkpoint(db, session_id, "shutdown", time.time_ns(), 0, _state(live))
            store.update_session(db, session_id, status=status, finished_at=store.now_iso())
    finally:
        await live.node.stop_async()
        if not task.done():
            task.cancel()
        live.node.kernel.dispose()  # (node.dispose() would stop this event loop)
        if alerts_installed:
            from vibe_quant.alerts import uninstall

            uninstall()
    return status


def run_live_session(home: Home, session_id: int, credentials, checkpoint_s: float = 60.0) -> str:
    """Run testnet/live session `session_id` until stopped (SIGTERM, SIGINT, ``vq paper stop``)."""
    with StateManager(home.db_path) as db:
        row = store.get_session(db, session_id)
    if row["mode"] not in ("testnet", "live"):
        raise UserError(f"session {session_id} is a {row['mode']} session, not testnet/live")
    return run_async(lambda: _run(home, session_id, store.session_plan(row), row["mode"], credentials, checkpoint_s))


async def _check(plan, mode: str, credentials, log_directory: Path | None) -> dict:
    from vibe_quant.paper.binance import check_config

    live = build_live_node(plan, mode, credentials, trader_id=f"VQ{mode.upper()}-CHECK", log_directory=log_directory)
    try:
        return {**check_config(live.config), **describe_node(live)}
    finally:
        live.node.kernel.dispose()  # (node.dispose() would stop this event loop)


def check_live(plan, mode: str, credentials, log_directory: Path | None = None) -> dict:
    """Build the whole node of a testnet/live session (clients, strategies, risk gate) without connecting,
    and return the redacted summary ``--check`` prints."""
    return run_async(lambda: _check(plan, mode, credentials, log_directory))
