"""Session gauges from real status snapshots, the latency probe on a real replay node, job heartbeats."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from prometheus_client import CollectorRegistry

from tests.paper.conftest import day
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.plan import plan_run
from vibe_quant.paper.node import ReplayNode
from vibe_quant.paper.session import snapshot_of, state_of
from vibe_quant.telemetry.metrics import JobHeartbeatCollector, LatencyProbe, SessionMetrics


def value(registry: CollectorRegistry, name: str, **labels) -> float | None:
    return registry.get_sample_value(name, labels)


def check_gauges(registry: CollectorRegistry, snap: dict, session: str) -> None:
    """Every session gauge holds what `snap` says."""
    s = {"session": session}
    positions = snap["positions"]
    assert value(registry, "vq_equity_usdt", **s) == snap["equity"]
    assert value(registry, "vq_balance_usdt", **s) == snap["balance"]
    assert value(registry, "vq_realized_pnl_usdt", **s) == snap["balance"] - snap["starting_balance"]
    assert value(registry, "vq_unrealized_pnl_usdt", **s) == pytest.approx(sum(p["unrealized_pnl"] for p in positions))
    assert value(registry, "vq_gross_exposure_usdt", **s) == pytest.approx(
        sum(abs(p["signed_qty"] * p["mark"]) for p in positions)
    )
    assert value(registry, "vq_margin_used_usdt", **s) == pytest.approx(sum(p["margin"] for p in positions))
    for p in positions:
        assert value(registry, "vq_position_quantity", instrument=p["instrument"], **s) == p["signed_qty"]
    costs = snap["costs"]
    assert value(registry, "vq_fees_paid_usdt", **s) == costs["fees"]
    assert value(registry, "vq_funding_paid_usdt", **s) == costs["funding"]
    assert value(registry, "vq_slippage_usdt", **s) == costs["slippage"]
    assert value(registry, "vq_fills", **s) == costs["fills"]
    counts = _order_counts(snap)
    for kind in {"MARKET", "LIMIT", "STOP_MARKET", "MARKET_IF_TOUCHED", *counts}:
        assert value(registry, "vq_open_orders", type=kind, **s) == counts.get(kind, 0)
    for sid, st in snap["strategies"].items():
        assert value(registry, "vq_strategy_active", strategy=sid, **s) == (st["state"] == "ACTIVE")
    assert value(registry, "vq_bars_done", **s) == snap["bars_done"]
    assert value(registry, "vq_bars_total", **s) == snap["bars_total"]
    assert value(registry, "vq_feed_time_seconds", **s) == snap["cursor_ns"] / 1e9


def _order_counts(snap: dict) -> dict:
    counts: dict = {}
    for o in snap["open_orders"]:
        counts[o["type"]] = counts.get(o["type"], 0) + 1
    return counts


def test_probe_times_every_decision_ack_and_fill_of_a_replay_and_gauges_follow_the_snapshots(aug_data_loader) -> None:
    plan = plan_run(BacktestConfig(strategy="ema_trend_atr", symbols=("FILUSDT",), timeframe="15m", start=day(1),
                                   end=day(8), leverage=10))  # fmt: skip
    data = aug_data_loader(plan)
    registry = CollectorRegistry()
    probe = LatencyProbe(registry, 7)
    gauges = SessionMetrics(registry, 7, plan.symbols, clock=lambda: 1_700_000_000.0)
    with_position: list[dict] = []

    async def go():
        node = ReplayNode(plan, data)
        await node.build()
        probe.attach(node.kernel.msgbus)
        await node.start()
        try:
            while not node.done:
                node.step()
                snap = snapshot_of(state_of(node), node, None)
                if not with_position and snap["positions"] and snap["open_orders"]:
                    gauges.update(snap)
                    check_gauges(registry, snap, "7")
                    with_position.append(snap)
            sid = node.strategies[0].id.value
            node.supervisor.halt(sid, node.feed_ts, "operator: test")
            final = snapshot_of(state_of(node), node, None)
            orders = node.kernel.cache.orders()
            fills = len(node.recorder.fills)
        finally:
            await node.stop()
        return final, orders, fills, sid

    final, orders, fills, sid = asyncio.run(go())
    assert with_position, "the replay never held a position with open orders"
    symbol = with_position[0]["positions"][0]["instrument"]
    assert symbol in plan.symbols  # the pre-registered series are the snapshot's instruments

    gauges.update(final)
    check_gauges(registry, final, "7")
    assert final["positions"] == []  # closed: its gauges read 0, they do not vanish
    assert value(registry, "vq_position_quantity", session="7", instrument=symbol) == 0.0
    assert value(registry, "vq_gross_exposure_usdt", session="7") == 0.0
    assert value(registry, "vq_strategy_active", session="7", strategy=sid) == 0.0
    assert value(registry, "vq_session_last_update_timestamp_seconds", session="7") == 1_700_000_000.0
    assert value(registry, "vq_breakers_halted", session="7") == 0.0

    def events(order, name):
        return sum(1 for e in order.events if type(e).__name__ == name)

    accepted = [o for o in orders if events(o, "OrderAccepted")]
    unaccepted_filled = [o for o in orders if not events(o, "OrderAccepted") and events(o, "OrderFilled")]
    assert sum(events(o, "OrderFilled") for o in orders) == fills > 0
    assert accepted
    assert unaccepted_filled  # the simulated venue fills market entries without an OrderAccepted
    assert value(registry, "vq_tick_to_decision_seconds_count", session="7") == len(orders)
    assert value(registry, "vq_decision_to_ack_seconds_count", session="7") == len(accepted) + len(unaccepted_filled)
    assert value(registry, "vq_ack_to_fill_seconds_count", session="7") == sum(events(o, "OrderFilled")
                                                                               for o in accepted)  # fmt: skip
    assert 0 < sum(events(o, "OrderFilled") for o in accepted) < fills
    assert value(registry, "vq_order_events_total", session="7", event="initialized") == len(orders)
    assert value(registry, "vq_order_events_total", session="7", event="filled") == fills
    for name in ("vq_tick_to_decision_seconds", "vq_decision_to_ack_seconds", "vq_ack_to_fill_seconds"):
        total = value(registry, f"{name}_sum", session="7")
        assert 0 < total < 10 * value(registry, f"{name}_count", session="7")  # wall seconds, positive, bounded
        assert value(registry, f"{name}_bucket", session="7", le="10.0") == value(registry, f"{name}_count",
                                                                                  session="7")  # fmt: skip


def test_probe_matches_by_client_order_id_with_a_stepped_clock() -> None:
    """Times come from the injected clock; an ack or fill of an order decided before attach is not timed."""

    class Id:
        def __init__(self, v):
            self.v = v

        def __hash__(self):
            return hash(self.v)

        def __eq__(self, other):
            return self.v == other.v

    def event(kind, oid):
        return type(f"Order{kind}", (), {"client_order_id": Id(oid)})()

    now = [0.0]
    registry = CollectorRegistry()
    probe = LatencyProbe(registry, "s", clock=lambda: now[0])
    probe.on_order_event(event("Initialized", "O-0"))  # before any tick: counted, not timed
    now[0] = 1.0
    probe.on_bar(object())
    now[0] = 1.002
    probe.on_order_event(event("Initialized", "O-1"))
    now[0] = 1.5
    probe.on_order_event(event("Accepted", "O-1"))
    probe.on_order_event(event("Accepted", "O-9"))  # never decided here
    now[0] = 4.5
    probe.on_order_event(event("Filled", "O-1"))
    probe.on_order_event(event("Filled", "O-9"))
    probe.on_order_event(event("Initialized", "O-2"))  # a market order filled without an ack
    now[0] = 4.75
    probe.on_order_event(event("Filled", "O-2"))
    probe.on_order_event(event("Filled", "O-2"))
    s = {"session": "s"}
    assert value(registry, "vq_tick_to_decision_seconds_count", **s) == 2
    assert value(registry, "vq_tick_to_decision_seconds_sum", **s) == pytest.approx(0.002 + 3.5)
    assert value(registry, "vq_tick_to_decision_seconds_bucket", le="0.001", **s) == 0
    assert value(registry, "vq_tick_to_decision_seconds_bucket", le="0.0025", **s) == 1
    assert value(registry, "vq_tick_to_decision_seconds_bucket", le="5.0", **s) == 2
    assert value(registry, "vq_decision_to_ack_seconds_sum", **s) == pytest.approx(0.498 + 0.25)
    assert value(registry, "vq_decision_to_ack_seconds_count", **s) == 2
    assert value(registry, "vq_ack_to_fill_seconds_sum", **s) == pytest.approx(3.0 + 3.0)  # O-9's ack was seen
    assert value(registry, "vq_ack_to_fill_seconds_count", **s) == 2
    assert value(registry, "vq_order_events_total", event="accepted", **s) == 2


def test_job_heartbeat_ages_of_running_jobs_only(home) -> None:
    from vibe_quant.state import StateManager

    now = dt.datetime(2026, 4, 2, 12, 0, 0, tzinfo=dt.UTC)
    with StateManager(home.db_path) as db:
        db.insert("background_jobs", {"pid": 11, "job_type": "paper", "label": "paper session 1", "status": "running",
                                      "heartbeat_at": "2026-04-02T11:59:10+00:00"})  # fmt: skip
        db.insert("background_jobs", {"pid": 12, "job_type": "screen run", "status": "running",
                                      "heartbeat_at": None, "started_at": "2026-04-02 11:55:00"})  # fmt: skip
        db.insert("background_jobs", {"pid": 13, "job_type": "backtest run", "status": "completed",
                                      "heartbeat_at": "2026-04-01T00:00:00+00:00"})  # fmt: skip
    registry = CollectorRegistry()
    registry.register(JobHeartbeatCollector(home.db_path, now=lambda: now))
    assert value(registry, "vq_job_heartbeat_age_seconds", job_id="1", job_type="paper", label="paper session 1") == 50
    assert value(registry, "vq_job_heartbeat_age_seconds", job_id="2", job_type="screen run", label="") == 300
    assert value(registry, "vq_job_heartbeat_age_seconds", job_id="3", job_type="backtest run", label="") is None
    assert value(registry, "vq_jobs_running") == 2


def test_job_heartbeats_of_a_home_without_a_database_are_empty(tmp_path) -> None:
    registry = CollectorRegistry()
    registry.register(JobHeartbeatCollector(tmp_path / "state.db"))
    assert value(registry, "vq_jobs_running") == 0
    assert not (tmp_path / "state.db").exists()
