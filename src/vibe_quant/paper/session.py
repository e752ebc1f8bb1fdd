"""Run a replay paper session end to end: pacing, operator commands, checkpoints, restarts.

:func:`run_session` drives a :class:`~vibe_quant.paper.node.ReplayNode` for a session row of the
state database (``store.py``):

* **Pacing.** ``speed`` is feed time per wall time: 1 replays in real time, 600 ten minutes a
  second, None as fast as the node goes (the loop yields to the event loop every few hundred
  bars).
* **Between bars** (a bar boundary): pending operator commands are applied and journaled with
  the bar count; every ``flush_s`` the equity rows, fills, status snapshot and heartbeat are
  written (one transaction); every ``checkpoint_s`` (60 s by default) and on halt, stop and
  finish a checkpoint of the whole state is written.
* **Restart** (``resume=True``, also after ``kill -9``): a replay is deterministic, so the node
  is rebuilt and fed again from the first bar, at full speed, to where the session had got,
  applying each journaled command at the bar it was applied at; at the last checkpoint's bar the
  state it reached must equal the checkpoint (positions, open orders, balance, ledger, breakers,
  strategy states), else the session fails loudly rather than trade on a state nobody saw.
  Rows written again (equity, fills) are keyed, so nothing is counted twice; events already in
  the JSON-lines log are not written again. Then it goes on at its speed.

Every row the session writes is keyed and every write is one transaction: a killed process
leaves the database as of its last write, never half of one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from vibe_quant.backtest.engine import BacktestResult
from vibe_quant.backtest.ledger import cost_summary
from vibe_quant.backtest.market_data import MarketData
from vibe_quant.backtest.plan import RunPlan
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.paper import store
from vibe_quant.paper.loops import add_stop_handlers
from vibe_quant.paper.node import ReplayNode
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)

YIELD_EVERY = 256  # bars between turns of the event loop at full speed
RECENT_FILLS = 25
NS = 1_000_000_000
RESTART_MARK = b'"type": "SESSION_RESTARTED"'


@dataclass(frozen=True)
class Pacing:
    speed: float | None = None  # feed seconds per wall second; None: as fast as possible
    checkpoint_s: float = 60.0
    flush_s: float = 1.0
    poll_s: float = 0.25  # how often pending commands are read


@dataclass
class Outcome:
    session_id: int
    status: str  # finished | stopped
    result: BacktestResult
    bars_done: int
    caught_up: int  # bars replayed again after a restart
    elapsed_s: float


def _plain(value):
    """JSON round trip: what a checkpoint holds (floats keep their exact repr)."""
    return json.loads(json.dumps(value))


class _Writer:
    """What the session has written so far (fills, equity rows, events): a restart skips what is there."""

    def __init__(self, home: Home, session_id: int):
        self.events_path = store.events_path(home.logs, session_id)
        self.events_path.parent.mkdir(parents=True, exist_ok=True)
        self.events_written = 0  # the node's events in the file (restart markers are not the node's)
        if self.events_path.exists():
            with open(self.events_path, "rb") as fh:
                self.events_written = sum(1 for line in fh if RESTART_MARK not in line)
        self.fills_written = 0
        self.equity: list[tuple[int, float]] = []
        self.telemetry = None  # PaperTelemetry (vq paper start --metrics-port): updated at each flush
        self.alert_fills = None  # the alert hook for new fills, once the session is past a restart's catch-up

    def mark_restart(self, session_id: int, ts: int, replayed: int) -> None:
        event = {"time": _iso(ts), "session": session_id, "ts": ts, "type": "SESSION_RESTARTED",
                 "bars_replayed": replayed}  # fmt: skip
        with open(self.events_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")


def state_of(node: ReplayNode) -> dict:
    """The node's whole state for a checkpoint (and, without the ledger lists, the status snapshot)."""
    from nautilus_trader.model.currencies import USDT

    module, rec = node.module, node.recorder
    account = node.kernel.cache.account_for_venue(module.venue)
    balance = account.balance_total(USDT).as_double() if account is not None else None
    positions = [
        {"instrument": st.symbol, "signed_qty": st.signed_qty, "avg_px": st.avg_px, "margin": st.wallet,
         "liquidation_price": st.liq_price, "mark": st.close, "unrealized_pnl": st.signed_qty * (st.close - st.avg_px)}
        for st in module.state_list if st.signed_qty
    ]  # fmt: skip
    orders = []
    for order in node.kernel.cache.orders_open():
        orders.append({
            "order_id": order.client_order_id.value, "strategy": order.strategy_id.value,
            "instrument": order.instrument_id.symbol.value, "type": order.type_string(), "side": order.side_string(),
            "qty": order.quantity.as_double(), "price": order.price.as_double() if order.has_price else None,
            "trigger": order.trigger_price.as_double() if order.has_trigger_price else None,
            "reduce_only": order.is_reduce_only, "reason": rec.reasons.get(order.client_order_id.value),
        })  # fmt: skip
    orders.sort(key=lambda o: o["order_id"])
    costs = cost_summary((), rec.fills, rec.funding, rec.liquidations)  # the backtest's definitions
    breakers = None
    if node.gate is not None:
        summary = node.gate.summary()
        scopes = [*node.gate.guards, *(["portfolio"] if node.gate.portfolio is not None else [])]
        breakers = {"trips": summary["trips"], "halted": summary["halted_at_end"], "scopes": scopes}
    return _plain({
        "cursor_ns": node.bars[node.bars_done - 1].ts_init if node.bars_done else None,
        "bars_done": node.bars_done, "bars_total": len(node.bars), "balance": balance, "equity": node.equity(),
        "starting_balance": node.plan.venue.starting_balance, "positions": positions, "open_orders": orders,
        "strategies": node.supervisor.states, "breakers": breakers,
        "costs": {"fees": costs["total_fees"], "funding": costs["total_funding"], "slippage": costs["total_slippage"],
                  "fills": len(rec.fills),
                  "funding_settlements": len(rec.funding), "liquidations": len(rec.liquidations)},
        "funding": [dataclasses.asdict(f) for f in rec.funding],
        "liquidations": [dataclasses.asdict(x) for x in rec.liquidations],
    })  # fmt: skip


VERIFIED = ("balance", "positions", "open_orders", "strategies", "breakers", "costs", "funding", "liquidations")


def snapshot_of(state: dict, node: ReplayNode, speed: float | None) -> dict:
    """The status row's snapshot: the state without the full ledger lists, plus the newest fills."""
    snap = {k: v for k, v in state.items() if k not in ("funding", "liquidations")}
    snap["recent_fills"] = [dataclasses.asdict(f) for f in node.recorder.fills[-RECENT_FILLS:]]
    snap["recent_funding"] = state["funding"][-10:]
    snap["speed"] = speed
    snap["warnings"] = list(node.recorder.warnings)
    return _plain(snap)


def _differences(expected: dict, actual: dict) -> list[str]:
    out = []
    for key in VERIFIED:
        if expected.get(key) != actual.get(key):
            out.append(f"{key}: checkpoint {json.dumps(expected.get(key))[:300]} != replayed "
                       f"{json.dumps(actual.get(key))[:300]}")  # fmt: skip
    return out


async def run_session(home: Home, session_id: int, plan: RunPlan, data: MarketData, pacing: Pacing,
                      resume: bool = False, on_progress: Callable[[int, int], None] | None = None,
                      metrics_port: int | None = None, metrics_linger_s: float = 0.0) -> Outcome:  # fmt: skip
    """Run (or, with `resume`, restart) replay session `session_id` to its end or to a stop.

    With `metrics_port` (0: any free port) the session serves Prometheus metrics on 127.0.0.1
    (docs/specs.md#telemetry), updated at each flush, for `metrics_linger_s` seconds after its end.

    Raises
    ------
    UserError
        A restart does not reproduce the session's last checkpoint.
    """
    t0 = time.perf_counter()
    db = StateManager(home.db_path)
    try:
        return await _run(home, db, session_id, plan, data, pacing, resume, on_progress, t0, metrics_port,
                          metrics_linger_s)  # fmt: skip
    except BaseException as exc:
        status = "stopped" if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError) else "failed"
        store.update_session(db, session_id, status=status, error=f"{type(exc).__name__}: {exc}"[:2000],
                             finished_at=store.now_iso())  # fmt: skip
        raise
    finally:
        db.close()


async def _run(home, db, session_id, plan, data, pacing, resume, on_progress, t0, metrics_port,
               metrics_linger_s) -> Outcome:  # fmt: skip
    row = store.get_session(db, session_id)
    journal: dict[int, list[dict]] = {}
    checkpoint = None
    target = 0
    if resume:
        for cmd in store.applied_commands(db, session_id):
            journal.setdefault(cmd["applied_bar"], []).append(cmd)
        checkpoint = store.last_checkpoint(db, session_id)
        target = max(row["bars_done"] or 0, checkpoint["bars_done"] if checkpoint else 0)
    store.update_session(db, session_id, status="running", pid=os.getpid(), error=None, finished_at=None)
    # One trader id for every replay (each has its own simulated exchange): order ids are then those
    # of the validation backtest (BACKTESTER-001), which the divergence report matches them to.
    node = ReplayNode(plan, data, trader_id="PAPER-001", log_directory=str(home.logs), log_name=f"paper-{session_id}")
    await node.build()
    telemetry = _telemetry(session_id, node, metrics_port, metrics_linger_s)
    try:
        await node.start()
    except BaseException:
        if telemetry is not None:
            telemetry.close()
        raise
    loop = asyncio.get_running_loop()
    stop = {"requested": False}

    def request_stop() -> None:
        stop["requested"] = True

    handled = add_stop_handlers(loop, request_stop)
    alerts_installed = False
    writer = _Writer(home, session_id)
    writer.telemetry = telemetry
    total = len(node.bars)
    store.update_session(db, session_id, bars_total=total)
    status = "finished"
    try:
        # -- catch-up after a restart --------------------------------------------------------
        while node.bars_done < target and not node.done:
            for cmd in journal.get(node.bars_done, ()):
                _apply(node, cmd, journal_only=True)
            if checkpoint is not None and node.bars_done == checkpoint["bars_done"]:
                _verify(node, checkpoint)
            _step(node, writer)
            if node.bars_done % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        for cmd in journal.get(node.bars_done, ()):
            _apply(node, cmd, journal_only=True)
        if checkpoint is not None and node.bars_done == checkpoint["bars_done"]:
            _verify(node, checkpoint)
        caught_up = node.bars_done
        if caught_up:  # a restart (a session started with --resume before any bar is not one)
            _flush(db, session_id, node, writer, pacing.speed)  # what the catch-up re-made, before the marker
            writer.mark_restart(session_id, node.feed_ts, caught_up)
        # Alerts from here on: what the catch-up re-made (halts, breakers, fills) was alerted when it happened.
        alerts_installed = install_alerts(home)
        writer.alert_fills = node.supervisor.alert
        # -- the session ---------------------------------------------------------------------
        wall0, feed0 = time.monotonic(), node.next_ts()
        next_flush = next_poll = 0.0
        next_checkpoint = time.monotonic() + pacing.checkpoint_s
        _flush(db, session_id, node, writer, pacing.speed)
        while True:
            now = time.monotonic()
            if now >= next_poll or node.done:
                next_poll = now + pacing.poll_s
                halted_before = _halted(node)
                for cmd in store.pending_commands(db, session_id):
                    if cmd["command"] == "stop":
                        store.mark_applied(db, cmd["id"], node.bars_done, "stopping")
                        stop["requested"] = True
                        continue
                    try:
                        result = _apply(node, cmd)
                    except UserError as exc:
                        result = f"refused: {exc}"
                    store.mark_applied(db, cmd["id"], node.bars_done, result)
                if _halted(node) != halted_before:  # a halt is worth a checkpoint at once
                    next_checkpoint = now
            if stop["requested"] or node.done:
                status = "stopped" if stop["requested"] and not node.done else "finished"
                break
            if now >= next_flush:
                next_flush = now + pacing.flush_s
                _flush(db, session_id, node, writer, pacing.speed)
                if on_progress is not None:
                    on_progress(node.bars_done, total)
            if now >= next_checkpoint:
                next_checkpoint = now + pacing.checkpoint_s
                _checkpoint(db, session_id, node, writer, pacing.speed, "periodic")
            if pacing.speed is not None:
                due = wall0 + (node.next_ts() - feed0) / NS / pacing.speed
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(min(wait, pacing.poll_s))
                    continue
            _step(node, writer)
            if pacing.speed is None and node.bars_done % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        result = node.result(time.perf_counter() - t0)
        _checkpoint(db, session_id, node, writer, pacing.speed, "finish" if status == "finished" else "shutdown",
                    status=status)  # fmt: skip
        store.update_session(db, session_id, finished_at=store.now_iso())
        if on_progress is not None:
            on_progress(node.bars_done, total)
        return Outcome(session_id, status, result, node.bars_done, caught_up, time.perf_counter() - t0)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        try:
            await node.stop()
        finally:
            if telemetry is not None:
                await telemetry.close_async()
            if alerts_installed:
                from vibe_quant.alerts import uninstall

                uninstall()


def _telemetry(session_id: int, node: ReplayNode, port: int | None, linger_s: float):
    if port is None:
        return None
    from vibe_quant.telemetry.exporter import PaperTelemetry

    telemetry = PaperTelemetry(session_id, port, linger_s=linger_s)
    telemetry.attach(node)
    return telemetry


def install_alerts(home: Home) -> bool:
    """Send this session's alerts (``vibe_quant.alerts``); True when this call installed the dispatcher
    (the session then removes it at its end)."""
    from vibe_quant.alerts import install, installed

    current = installed()
    if current is not None and current.db_path == home.db_path:
        return False
    install(home)
    return True


def _halted(node: ReplayNode) -> int:
    return sum(1 for s in node.supervisor.states.values() if s["state"] != "ACTIVE")


def _step(node: ReplayNode, writer: _Writer) -> None:
    ts = node.step()
    nxt = node.next_ts()
    if nxt is None or nxt != ts:  # every bar of this close time is in: mark to market
        writer.equity.append((ts, node.equity()))


def _apply(node: ReplayNode, cmd: dict, journal_only: bool = False) -> str:
    """Apply an operator command at the current bar boundary (the feed time of the last bar)."""
    ts = node.feed_ts
    if journal_only and (cmd["command"] == "stop" or (cmd["result"] or "").startswith("refused")):
        return cmd["result"]
    return node.supervisor.apply(cmd["command"], cmd["target"], ts, cmd["reason"])


def _verify(node: ReplayNode, checkpoint: dict) -> None:
    diffs = _differences(checkpoint["state"], state_of(node))
    if diffs:
        raise UserError(
            f"the restarted session does not reproduce its checkpoint {checkpoint['id']} at bar "
            f"{checkpoint['bars_done']}: " + "; ".join(diffs) + ". The data or code changed since it ran: "
            "start a new session (vq paper start) instead of resuming this one."
        )


def _flush(db, session_id: int, node: ReplayNode, writer: _Writer, speed, status: str | None = None,
           state: dict | None = None) -> dict:  # fmt: skip
    state = state if state is not None else state_of(node)
    fills = node.recorder.fills
    new_fills = [(seq, f.ts_ns, dataclasses.asdict(f)) for seq, f in enumerate(fills[writer.fills_written:],
                                                                              writer.fills_written)]  # fmt: skip
    snapshot = snapshot_of(state, node, speed)
    store.write_progress(db, session_id, cursor_ns=state["cursor_ns"], bars_done=node.bars_done, snapshot=snapshot,
                         equity=writer.equity, fills=new_fills, status=status)  # fmt: skip
    if writer.telemetry is not None:
        writer.telemetry.update(snapshot)
    if writer.alert_fills is not None:  # trade alerts (kept only when the alerts.trades setting is on)
        for _, _, f in new_fills:
            writer.alert_fills({"type": "FILL", "ts": f["ts_ns"], "instrument": f["instrument"], "side": f["side"],
                                "qty": f["qty"], "price": f["price"], "fee": f["fee"], "reason": f["reason"]})  # fmt: skip
    writer.fills_written = len(fills)
    writer.equity = []
    events = node.recorder.events
    if len(events) > writer.events_written:
        with open(writer.events_path, "a", encoding="utf-8") as fh:
            for event in list(events)[writer.events_written :]:
                fh.write(json.dumps(event, default=str) + "\n")
        writer.events_written = len(events)
    return state


def _iso(ns: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat().replace("+00:00", "Z")


def _checkpoint(db, session_id: int, node: ReplayNode, writer: _Writer, speed, reason: str,
                status: str | None = None) -> None:  # fmt: skip
    state = _flush(db, session_id, node, writer, speed, status=status)
    store.write_checkpoint(db, session_id, reason, state["cursor_ns"], node.bars_done, state)
