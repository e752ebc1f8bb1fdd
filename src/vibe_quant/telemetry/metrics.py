"""Metric definitions (docs/specs.md#telemetry): a session's state, its order latencies, job heartbeats.

Every metric is named ``vq_*`` and lives on a :class:`~prometheus_client.CollectorRegistry` the
caller creates (never the process-global one, so two sessions or a test never collide). Money is
in USDT, times in seconds.

* :class:`SessionMetrics` sets the session's gauges from the status snapshot the session writes at
  each flush (``vibe_quant.paper.session.state_of``): nothing is recomputed from the ledger.
* :class:`LatencyProbe` listens on a NautilusTrader message bus: a bar reaching the strategies is
  a tick, ``OrderInitialized`` a decision, ``OrderAccepted`` the venue's ack, ``OrderFilled`` a
  fill; it observes the wall-clock time between them, matched by client order id.
* :class:`JobHeartbeatCollector` reads the running background jobs from the state database at
  scrape time.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

# 10 us to 10 s: a replay decides in microseconds, a live venue acks in milliseconds to seconds.
LATENCY_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0)  # fmt: skip
MAX_TRACKED_ORDERS = 10_000  # orders whose decision/ack times are kept (oldest dropped first)
TICK_PRIORITY = 1_000  # before the portfolio (10) and the strategies (0) on the same bar topic
SESSION = ("session",)
# order types whose open-order series exist from the start (others appear when first seen)
ORDER_TYPES = ("MARKET", "LIMIT", "STOP_MARKET", "MARKET_IF_TOUCHED")


def _ns_to_s(ns: int | None) -> float:
    return float("nan") if ns is None else ns / 1e9


class SessionMetrics:
    """The gauges of one paper/live session, set from its status snapshot.

    Parameters
    ----------
    registry : CollectorRegistry
        Where the metrics are registered (one :class:`SessionMetrics` per registry).
    session_id : int or str
        The ``session`` label.
    instruments : iterable of str, default ()
        Instruments (as the snapshot names them) whose position gauges exist from the start, at 0
        (so do the open-order gauges of :data:`ORDER_TYPES`).
    clock : callable, default time.time
        Wall time in epoch seconds, for ``vq_session_last_update_timestamp_seconds``.

    Notes
    -----
    Realised PnL is ``balance - starting_balance`` (net of fees and funding); unrealised PnL the sum
    of the open positions'. Series seen once (an instrument, an order type, a breaker scope) stay,
    at 0, when they leave the snapshot, so a closed position reads 0 rather than vanishing.
    """

    def __init__(self, registry: CollectorRegistry, session_id: int | str, instruments: Iterable[str] = (),
                 clock: Callable[[], float] = time.time):  # fmt: skip
        self.session = str(session_id)
        self.clock = clock
        r = registry

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, [*SESSION, *labels], registry=r)

        self.equity = gauge("vq_equity_usdt", "Account equity: balance plus unrealised PnL.")
        self.balance = gauge("vq_balance_usdt", "Account balance (wallet).")
        self.starting_balance = gauge("vq_starting_balance_usdt", "The session's starting balance.")
        self.realized = gauge("vq_realized_pnl_usdt", "Realised PnL net of fees and funding (balance - start).")
        self.unrealized = gauge("vq_unrealized_pnl_usdt", "Unrealised PnL of the open positions at their marks.")
        self.position = gauge("vq_position_quantity", "Signed position quantity (base units; < 0 short).",
                              ("instrument",))  # fmt: skip
        self.notional = gauge("vq_position_notional_usdt", "Signed position notional at the mark.", ("instrument",))
        self.gross = gauge("vq_gross_exposure_usdt", "Gross exposure: sum of |quantity x mark| over positions.")
        self.margin = gauge("vq_margin_used_usdt", "Margin held by the open positions.")
        self.fees = gauge("vq_fees_paid_usdt", "Fees paid since the session started (incl. liquidation clearance).")
        self.funding = gauge("vq_funding_paid_usdt", "Funding paid since the session started (< 0: received).")
        self.slippage = gauge("vq_slippage_usdt", "Slippage of the fills against their reference prices (> 0 a cost).")
        self.fills = gauge("vq_fills", "Fills since the session started.")
        self.liquidations = gauge("vq_liquidations", "Liquidations since the session started.")
        self.settlements = gauge("vq_funding_settlements", "Funding settlements charged since the session started.")
        self.open_orders = gauge("vq_open_orders", "Open orders by order type.", ("type",))
        self.strategy = gauge("vq_strategy_active", "Strategy state: 1 ACTIVE, 0 HALTED.", ("strategy",))
        self.breaker = gauge("vq_breaker_tripped", "Circuit breaker halted now (1) or not (0), per scope.", ("scope",))
        self.breaker_trips = gauge("vq_breaker_trips", "Circuit breaker trips since the session started, per scope.",
                                   ("scope",))  # fmt: skip
        self.breakers_halted = gauge("vq_breakers_halted", "Breaker scopes halted now (0 without a risk gate).")
        self.bars_done = gauge("vq_bars_done", "Bars processed by the node.")
        self.bars_total = gauge("vq_bars_total", "Bars the replay has in all (NaN live).")
        self.feed_time = gauge("vq_feed_time_seconds", "Feed time of the last bar processed (epoch seconds).")
        self.updated = gauge("vq_session_last_update_timestamp_seconds", "Wall time of the last snapshot (epoch s).")
        self._instruments = set(instruments)
        self._order_kinds: set[str] = set(ORDER_TYPES)
        self._scopes: set[str] = set()
        for instrument in self._instruments:
            self.position.labels(self.session, instrument).set(0)
            self.notional.labels(self.session, instrument).set(0)

    def update(self, snapshot: dict) -> None:
        """Set every gauge from `snapshot` (the status snapshot of ``vibe_quant.paper.session``)."""
        s = self.session
        positions = snapshot.get("positions") or []
        costs = snapshot.get("costs") or {}
        balance, start = snapshot.get("balance"), snapshot.get("starting_balance")
        self.equity.labels(s).set(snapshot["equity"])
        self.balance.labels(s).set(balance if balance is not None else float("nan"))
        self.starting_balance.labels(s).set(start if start is not None else float("nan"))
        self.realized.labels(s).set(balance - start if balance is not None and start is not None else float("nan"))
        self.unrealized.labels(s).set(sum(p["unrealized_pnl"] for p in positions))
        seen = {}
        for p in positions:
            seen[p["instrument"]] = (p["signed_qty"], p["signed_qty"] * p["mark"])
        self._instruments |= set(seen)
        for instrument in self._instruments:
            qty, notional = seen.get(instrument, (0.0, 0.0))
            self.position.labels(s, instrument).set(qty)
            self.notional.labels(s, instrument).set(notional)
        self.gross.labels(s).set(sum(abs(n) for _, n in seen.values()))
        self.margin.labels(s).set(sum(p["margin"] or 0.0 for p in positions))
        self.fees.labels(s).set(costs.get("fees", 0.0))
        self.funding.labels(s).set(costs.get("funding", 0.0))
        self.slippage.labels(s).set(costs.get("slippage", 0.0))
        self.fills.labels(s).set(costs.get("fills", 0))
        self.liquidations.labels(s).set(costs.get("liquidations", 0))
        self.settlements.labels(s).set(costs.get("funding_settlements", 0))
        counts: dict[str, int] = {}
        for order in snapshot.get("open_orders") or []:
            counts[order["type"]] = counts.get(order["type"], 0) + 1
        self._order_kinds |= set(counts)
        for kind in self._order_kinds:
            self.open_orders.labels(s, kind).set(counts.get(kind, 0))
        for sid, st in (snapshot.get("strategies") or {}).items():
            self.strategy.labels(s, sid).set(1 if st["state"] == "ACTIVE" else 0)
        breakers = snapshot.get("breakers") or {"trips": [], "halted": []}
        trips: dict[str, int] = {}
        for trip in breakers["trips"]:
            trips[trip["scope"]] = trips.get(trip["scope"], 0) + 1
        halted = set(breakers["halted"])
        # every scope the gate guards is a series from the start (at 0), so a first trip is an increase
        self._scopes |= set(trips) | halted | set(breakers.get("scopes") or ())
        for scope in self._scopes:
            self.breaker.labels(s, scope).set(1 if scope in halted else 0)
            self.breaker_trips.labels(s, scope).set(trips.get(scope, 0))
        self.breakers_halted.labels(s).set(len(halted))
        self.bars_done.labels(s).set(snapshot.get("bars_done") or 0)
        total = snapshot.get("bars_total")
        self.bars_total.labels(s).set(total if total is not None else float("nan"))
        self.feed_time.labels(s).set(_ns_to_s(snapshot.get("cursor_ns")))
        self.updated.labels(s).set(self.clock())


class LatencyProbe:
    """Tick-to-decision, decision-to-ack and ack-to-fill latency histograms from a message bus.

    Parameters
    ----------
    registry : CollectorRegistry
    session_id : int or str
        The ``session`` label.
    clock : callable, default time.perf_counter
        Monotonic wall-clock seconds.

    Notes
    -----
    A tick is a bar published on ``data.bars.*`` (the probe subscribes with a priority above the
    portfolio's and the strategies', so it sees the bar first); a decision is an
    ``OrderInitialized`` on ``events.order.*``, timed from the newest tick; an ack an
    ``OrderAccepted``, timed from its order's decision; a fill each ``OrderFilled``, timed from its
    order's ack. A market order the venue fills without accepting it first (NautilusTrader's
    simulated exchange does) has no ack: its first fill is timed in decision-to-ack (the venue's
    answer) and none of its fills in ack-to-fill. An event whose predecessor the probe did not see
    (no tick yet, an order from before :meth:`attach`) is counted in ``vq_order_events_total``
    but not timed.
    """

    def __init__(self, registry: CollectorRegistry, session_id: int | str,
                 clock: Callable[[], float] = time.perf_counter):  # fmt: skip
        self.session = str(session_id)
        self.clock = clock

        def histogram(name: str, doc: str) -> Histogram:
            return Histogram(name, doc, SESSION, buckets=LATENCY_BUCKETS, registry=registry)

        h_tick = histogram("vq_tick_to_decision_seconds", "From a bar reaching the strategies to an order decided.")
        h_ack = histogram("vq_decision_to_ack_seconds", "From an order decided to the venue's acceptance.")
        h_fill = histogram("vq_ack_to_fill_seconds", "From an order's acceptance to each of its fills.")
        self.events = Counter("vq_order_events", "Order events on the message bus, by event type.",
                              ["session", "event"], registry=registry)  # fmt: skip
        # children exist from the start: a session without orders still shows zero counts
        self.tick_to_decision = h_tick.labels(self.session)
        self.decision_to_ack = h_ack.labels(self.session)
        self.ack_to_fill = h_fill.labels(self.session)
        self.last_tick: float | None = None
        self._decided: OrderedDict = OrderedDict()
        self._acked: OrderedDict = OrderedDict()
        self._bus = None

    def attach(self, msgbus) -> None:
        """Subscribe to `msgbus` (a NautilusTrader ``MessageBus``), before the node starts."""
        msgbus.subscribe("data.bars.*", self.on_bar, priority=TICK_PRIORITY)
        msgbus.subscribe("events.order.*", self.on_order_event, priority=TICK_PRIORITY)
        self._bus = msgbus

    def detach(self) -> None:
        """Unsubscribe from the bus :meth:`attach` subscribed to (nothing if not attached)."""
        if self._bus is not None:
            self._bus.unsubscribe("data.bars.*", self.on_bar)
            self._bus.unsubscribe("events.order.*", self.on_order_event)
            self._bus = None

    def on_bar(self, bar) -> None:
        self.last_tick = self.clock()

    def on_order_event(self, event) -> None:
        now = self.clock()
        name = type(event).__name__
        self.events.labels(self.session, name.removeprefix("Order").lower()).inc()
        key = event.client_order_id
        if name == "OrderInitialized":
            if self.last_tick is not None:
                self.tick_to_decision.observe(now - self.last_tick)
            _remember(self._decided, key, now)
        elif name == "OrderAccepted":
            decided = self._decided.pop(key, None)
            if decided is not None:
                self.decision_to_ack.observe(now - decided)
            _remember(self._acked, key, now)
        elif name == "OrderFilled":
            decided = self._decided.pop(key, None)
            if decided is not None:  # filled without an OrderAccepted: the fill is the venue's first answer
                self.decision_to_ack.observe(now - decided)
            acked = self._acked.get(key)
            if acked is not None:
                self.ack_to_fill.observe(now - acked)
        elif name in ("OrderCanceled", "OrderRejected", "OrderDenied", "OrderExpired"):
            self._decided.pop(key, None)
            self._acked.pop(key, None)


def _remember(table: OrderedDict, key, value: float) -> None:
    table[key] = value
    if len(table) > MAX_TRACKED_ORDERS:
        table.popitem(last=False)


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


class JobHeartbeatCollector:
    """``vq_job_heartbeat_age_seconds{job_id, job_type, label}`` of every running background job,
    read from the state database at scrape time (its heartbeat, else its start).

    Parameters
    ----------
    db_path : path
        The home's state database (``Home.db_path``); no database or no table: no series.
    now : callable, default the UTC clock
        Aware UTC datetime to measure ages against.
    """

    def __init__(self, db_path: str | Path, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)):
        self.db_path = Path(db_path)
        self.now = now

    def collect(self):
        family = GaugeMetricFamily("vq_job_heartbeat_age_seconds", "Seconds since a running job's last heartbeat.",
                                   labels=["job_id", "job_type", "label"])  # fmt: skip
        running = GaugeMetricFamily("vq_jobs_running", "Background jobs with status running.")
        rows = self._rows()
        now = self.now()
        for job_id, job_type, label, beat, started in rows:
            at = _parse_time(beat) or _parse_time(started)
            age = float("nan") if at is None else max(0.0, (now - at).total_seconds())
            family.add_metric([str(job_id), job_type or "", label or ""], age)
        running.add_metric([], len(rows))
        yield family
        yield running

    def _rows(self) -> list[tuple]:
        if not self.db_path.exists():
            return []
        # read only, short timeout: a scrape never waits on a writer for long nor creates the file
        conn = sqlite3.connect(f"{self.db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
        try:
            return conn.execute(
                "SELECT id, job_type, label, heartbeat_at, started_at FROM background_jobs WHERE status = 'running'"
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such" in str(exc):  # a database from before the jobs tables
                return []
            raise
        finally:
            conn.close()
