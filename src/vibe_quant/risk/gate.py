"""Sizing and risk at run time: the entry gate every ``PerpStrategy`` order passes, and the two
NautilusTrader Actors that watch equity at each bar close.

The circuit-breaker flow (docs/specs.md#circuit-breaker-flow), for every new position a strategy asks for
(``PerpStrategy.go``)::

    strategy-level check   halted (drawdown, daily loss, losses in a row, cooldown)? -> refuse, log
    position sizing        the sizer's quantity (else the strategy's own) x drawdown scaling,
                           capped by max position / leverage / portfolio heat, step, min notional
    portfolio-level check  halted? per-instrument notional cap; total and correlated exposure
                           -> refuse, log, alert
    NautilusTrader         our margin check (its RiskEngine skips margin accounts), then the
                           RiskEngine's own checks and trading state
    submit

Exits (closing a position) are never blocked. Each decision is a ``RISK_CHECK`` event in the
run's event log. The Actors (:class:`StrategyRiskActor`, :class:`PortfolioRiskActor`) are
registered before the strategies, so at a bar close they evaluate first: a breaker tripped at
a close blocks the entries of that same close. A halt cancels the scope's open orders, closes its
positions at market (cancelling a position's stop without closing it would leave it unprotected:
the kill switch of docs/specs.md#live-safety-and-kill-switch, cancel + flatten), sets the state (a portfolio halt also puts
NautilusTrader's RiskEngine in ``HALTED``), writes a ``CIRCUIT_BREAKER`` event and calls the
alert hooks (the alerts stage sends them to Telegram).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.data import Bar

from vibe_quant.risk.config import RiskConfig, SizingConfig
from vibe_quant.risk.guards import NS_PER_HOUR, EquityGuard, StrategyGuard, Trip
from vibe_quant.risk.sizing import SizeRequest, atr, size

log = logging.getLogger(__name__)

ALERT_HOOKS: list[Callable[[dict], None]] = []


def register_alert_hook(hook: Callable[[dict], None]) -> None:
    """Call `hook(event)` for every CIRCUIT_BREAKER event and refused-by-portfolio entry."""
    ALERT_HOOKS.append(hook)


def unregister_alert_hook(hook: Callable[[dict], None]) -> bool:
    """Stop calling `hook`; return whether it was registered."""
    try:
        ALERT_HOOKS.remove(hook)
    except ValueError:
        return False
    return True


def _alert(event: dict) -> None:
    for hook in list(ALERT_HOOKS):
        try:
            hook(event)
        except Exception:  # an alert channel failing must never stop risk management
            log.exception("alert hook %r failed", hook)


class RiskGate:
    """One run's sizing and risk state, shared by its strategies and Actors."""

    def __init__(self, sizing: SizingConfig | None, risk: RiskConfig | None, account, events,
                 min_notional: dict[str, float], starting_balance: float, risk_engine=None):  # fmt: skip
        self.sizing, self.risk = sizing, risk
        self.account, self.events = account, events  # strategy ports: AccountView, EventSink
        self.min_notional = min_notional
        self.starting_balance = starting_balance
        self.legs: list = []  # every strategy's instruments (vibe_quant.strategy.leg.Leg)
        self.guards: dict[str, StrategyGuard] = {}
        self.portfolio: EquityGuard | None = None
        self.pcfg = risk.portfolio_level if risk is not None else None
        if self.pcfg is not None:
            p = self.pcfg
            self.portfolio = EquityGuard(p.max_portfolio_drawdown_pct, p.max_portfolio_daily_loss_pct,
                                         p.rolling_drawdown_pct, p.rolling_hours, p.cooldown_after_halt_hours)  # fmt: skip
        self.risk_engine = risk_engine  # NautilusTrader's, for the trading state (a halt sets HALTED)
        self.counts: dict[str, int] = {}
        self._last_portfolio_ts = -1

    @property
    def post_only_bars(self) -> int | None:
        """Bars a post-only entry rests (the risk config's prefer_post_only), else None."""
        return self.pcfg.post_only_bars if self.pcfg is not None and self.pcfg.prefer_post_only else None

    def attach(self, leg) -> None:
        """Guard `leg` (a strategy's instrument; strategies attach their legs when built)."""
        self.legs.append(leg)

    def actors(self) -> list[Actor]:
        """The run's Actors (none without a risk config); call after every strategy is built.

        Strategy-level breakers watch each leg on its share of the starting balance (a
        single-instrument strategy is one leg).
        """
        if self.risk is None:
            return []
        allocation = self.starting_balance / max(len(self.legs), 1)
        out: list[Actor] = []
        for leg in self.legs:
            guard = StrategyGuard(self.risk.strategy_level, allocation)
            self.guards[leg.name] = guard
            out.append(StrategyRiskActor(self, leg, guard))
        out.append(PortfolioRiskActor(self, [leg.bar_type for leg in self.legs]))
        return out

    # -- the entry gate -----------------------------------------------------------------------

    def entry(self, leg, bar: Bar, direction: int, qty: float, price: float, stop: float | None) -> float:
        """Quantity to send for a new position of `leg` (0: refused, logged)."""
        ts = bar.ts_event
        st = leg.book
        guard = self.guards.get(leg.name)
        if guard is not None and guard.halted is not None:
            return self._refuse(
                leg, ts, "strategy_halted", f"strategy halted by {guard.halted.breaker}", alert=False
            )  # the halt itself alerted
        if self.portfolio is not None and self.portfolio.halted is not None:
            return self._refuse(leg, ts, "portfolio_halted", f"portfolio halted by {self.portfolio.halted.breaker}",
                                alert=False)  # fmt: skip
        equity = self.account.equity()
        scale = guard.scale() if guard is not None else 1.0
        if self.sizing is not None:
            kelly = self.sizing.method == "kelly"
            req = SizeRequest(
                equity=equity, price=price, stop_distance=stop, leverage=st.leverage,
                step=leg.instrument.size_increment.as_double(), min_notional=self.min_notional[st.symbol],
                open_risk=self.open_risk(exclude=st), scale=scale,
                trade_returns=[r for _, r in st.closed[-self.sizing.kelly_lookback :]] if kelly else (),
                atr=atr(st.highs, st.lows, st.closes, st.i, self.sizing.atr_period) if self.sizing.method == "atr" else None,
            )  # fmt: skip
            decision = size(self.sizing, req)
            if decision.refused:
                return self._refuse(leg, ts, decision.refused, f"sizing {self.sizing.method}: {decision.refused}",
                                    alert=False, **decision.info)  # fmt: skip
            qty, limits, info = decision.qty, decision.limits, {**decision.info, "method_qty": decision.method_qty}
        else:
            qty, limits, info = qty * scale, (["drawdown_scale"] if scale != 1.0 else []), {"method": "strategy"}
        if self.pcfg is not None:
            p = self.pcfg
            if p.max_position_notional_pct is not None and qty * price > p.max_position_notional_pct * equity:
                qty = p.max_position_notional_pct * equity / price
                limits.append("max_position_notional_pct")
            qty = leg.floor_qty(qty)
            notional = qty * price
            if p.max_total_exposure_pct is not None:
                gross = self.gross_exposure(exclude=st) + notional
                if gross > p.max_total_exposure_pct * equity + 1e-9:
                    return self._refuse(leg, ts, "max_total_exposure",
                                        f"exposure would be {gross / equity:.1%} of equity, limit "
                                        f"{p.max_total_exposure_pct:.0%}", exposure=gross / equity)  # fmt: skip
            if p.max_correlated_exposure_pct is not None:
                cluster, members = self.correlated_exposure(st, direction, notional)
                if members and cluster > p.max_correlated_exposure_pct * equity + 1e-9:
                    return self._refuse(leg, ts, "max_correlated_exposure",
                                        f"exposure correlated with {st.symbol} ({', '.join(members)}) would be "
                                        f"{cluster / equity:.1%} of equity, limit {p.max_correlated_exposure_pct:.0%}",
                                        exposure=cluster / equity)  # fmt: skip
        qty = leg.floor_qty(qty)
        if qty <= 0:
            return self._refuse(leg, ts, "size_below_step", "size rounds to zero", alert=False)
        if qty * price < self.min_notional[st.symbol]:
            return self._refuse(leg, ts, "below_min_notional",
                                f"notional {qty * price:.2f} below the {self.min_notional[st.symbol]:g} minimum",
                                alert=False)  # fmt: skip
        self._count("entries_passed")
        for limit in limits:
            self._count(f"limited_by_{limit}")
        self.events.event(ts, "RISK_CHECK", instrument=leg.instrument_id.value, strategy=leg.name, check="entry",
                            result="PASS", qty=qty, notional=qty * price, equity=equity, scale=scale,
                            limits=limits, **info)  # fmt: skip
        return qty

    def _refuse(self, leg, ts: int, check: str, message: str, alert: bool = True, **info) -> float:
        self._count(f"refused_{check}")
        event = {"instrument": leg.instrument_id.value, "strategy": leg.name, "check": check,
                 "result": "FAIL", "action": "order refused", "message": message, **info}  # fmt: skip
        self.events.event(ts, "RISK_CHECK", **event)
        if alert:
            _alert({"ts": ts, "type": "RISK_CHECK", **event})
        return 0.0

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def gross_exposure(self, exclude=None) -> float:
        return sum(abs(st.signed_qty) * st.close for st in self.account.books() if st.signed_qty and st is not exclude)

    def open_risk(self, exclude=None) -> float:
        """Heat: what the open positions lose if their stops fill (no stop: their isolated margin)."""
        total = 0.0
        for st in self.account.books():
            if not st.signed_qty or st is exclude:
                continue
            side = 1 if st.signed_qty > 0 else -1
            stops = [
                p
                for kind, s, p in self.account.resting(st.instrument_id.value).values()
                if kind == "stop" and s == -side
            ]
            if stops:
                worst = min(stops) if side > 0 else max(stops)
                total += abs(st.signed_qty) * max(side * (st.avg_px - worst), 0.0)
            else:
                total += abs(st.signed_qty) * st.avg_px / st.leverage
        return total

    def correlated_exposure(self, st, direction: int, notional: float) -> tuple[float, list[str]]:
        """Notional of the new position plus the open positions moving with it: same side with
        correlation >= threshold, or opposite side with correlation <= -threshold (bar returns
        over the last `correlation_bars` common closes)."""
        p = self.pcfg
        total, members = notional, []
        for other in self.account.books():
            if other is st or not other.signed_qty:
                continue
            rho = _correlation(st, other, p.correlation_bars)
            if rho is None:
                continue
            side = 1 if other.signed_qty > 0 else -1
            if rho * side * direction >= p.correlation_threshold:
                total += abs(other.signed_qty) * other.close
                members.append(other.symbol)
        return total, members

    # -- breakers (called by the Actors at each bar close) ---------------------------------------

    def strategy_bar(self, leg, guard: StrategyGuard, st, ts: int) -> None:
        if guard.halted is not None and guard.resume_due(ts):
            guard.resume()
            self._breaker_event(ts, "strategy", leg.name, None, "resumed")
        trip = guard.update(ts, guard.allocation + st.cash + st.signed_qty * st.closes[st.i])
        if len(st.closed) != guard.trades_seen:
            new = st.closed[guard.trades_seen :]
            guard.trades_seen = len(st.closed)
            if trip is None:
                trip = guard.on_trades(ts, [pnl for pnl, _ in new])
        if trip is not None:
            self._breaker_event(ts, "strategy", leg.name, trip, "halt: orders cancelled, position closed")
            leg.flatten(ts, f"halt_{trip.breaker}")
        elif guard.halted is not None and st.signed_qty and not leg.busy():
            leg.flatten(ts, f"halt_{guard.halted.breaker}")  # an entry that was already on its way

    def portfolio_bar(self, ts: int) -> None:
        if ts == self._last_portfolio_ts:  # several instruments close at once: once per close time
            return
        self._last_portfolio_ts = ts
        guard = self.portfolio
        if guard.halted is not None and guard.resume_due(ts):
            guard.resume()
            self._set_trading_state("ACTIVE")
            self._breaker_event(ts, "portfolio", "portfolio", None, "resumed")
        trip = guard.update(ts, self.account.equity())
        if trip is not None:
            self._breaker_event(ts, "portfolio", "portfolio", trip, "halt: all orders cancelled, positions closed")
            self.kill_switch(ts, f"portfolio_{trip.breaker}")

    def kill_switch(self, ts: int, reason: str) -> None:
        """The kill switch (docs/specs.md#live-safety-and-kill-switch): cancel every open order, close every position, HALT the RiskEngine."""
        for leg in self.legs:
            leg.flatten(ts, reason)
        self._set_trading_state("HALTED")  # after the closing orders went out: they pass

    def _set_trading_state(self, name: str) -> None:
        if self.risk_engine is None:
            return
        from nautilus_trader.model.enums import TradingState

        state = getattr(TradingState, name)
        if self.risk_engine.trading_state != state:
            self.risk_engine.set_trading_state(state)

    def _breaker_event(self, ts: int, level: str, scope: str, trip: Trip | None, action: str) -> None:
        event = {"level": level, "scope": scope, "action": action}
        if trip is not None:
            self._count(f"{level}_{trip.breaker}")
            event.update(breaker=trip.breaker, value=trip.value, limit=trip.limit,
                         until=trip.until_ns, permanent=trip.until_ns is None)  # fmt: skip
            log.info("circuit breaker: %s %s %s %.4f >= %.4f", level, scope, trip.breaker, trip.value, trip.limit)
        self.events.event(ts, "CIRCUIT_BREAKER", **event)
        _alert({"ts": ts, "type": "CIRCUIT_BREAKER", **event})

    def summary(self) -> dict:
        """What the report shows: configs, every trip, and entry decisions by outcome."""
        import msgspec

        trips = []
        for scope, guard in [*self.guards.items(), *([("portfolio", self.portfolio)] if self.portfolio else [])]:
            for ts, trip in guard.trips:
                trips.append({"ts": ts, "scope": scope, "breaker": trip.breaker, "value": trip.value,
                              "limit": trip.limit, "until": trip.until_ns})  # fmt: skip
        trips.sort(key=lambda t: t["ts"])
        halted_at_end = [s for s, g in self.guards.items() if g.halted is not None]
        if self.portfolio is not None and self.portfolio.halted is not None:
            halted_at_end.append("portfolio")
        return {
            "sizing": msgspec.to_builtins(self.sizing) if self.sizing is not None else None,
            "risk": msgspec.to_builtins(self.risk) if self.risk is not None else None,
            "trips": trips, "halted_at_end": halted_at_end, "decisions": dict(sorted(self.counts.items())),
        }  # fmt: skip


def _correlation(a, b, bars: int) -> float | None:
    if a.i < 2 or b.i < 2:
        return None
    ta = np.asarray(a.ts[max(a.i - bars, 0) : a.i + 1])
    tb = np.asarray(b.ts[max(b.i - bars, 0) : b.i + 1])
    common, ia, ib = np.intersect1d(ta, tb, return_indices=True)
    if common.size < 10:
        return None
    ca = np.asarray(a.closes[max(a.i - bars, 0) : a.i + 1])[ia]
    cb = np.asarray(b.closes[max(b.i - bars, 0) : b.i + 1])[ib]
    ra, rb = np.diff(ca) / ca[:-1], np.diff(cb) / cb[:-1]
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


class StrategyRiskActor(Actor):
    """Strategy-level breakers for one leg (a strategy's instrument), evaluated at each of its bar closes."""

    def __init__(self, gate: RiskGate, leg, guard: StrategyGuard):
        super().__init__(ActorConfig(component_id=f"StrategyRisk-{leg.name}"))
        self.gate, self.leg, self.guard = gate, leg, guard
        self.st = None

    def on_start(self) -> None:
        self.st = self.gate.account.book(self.leg.instrument_id.value)
        self.subscribe_bars(self.leg.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.gate.strategy_bar(self.leg, self.guard, self.st, bar.ts_event)


class PortfolioRiskActor(Actor):
    """Portfolio-level breakers, evaluated once per bar close time over the whole account."""

    def __init__(self, gate: RiskGate, bar_types: list):
        super().__init__(ActorConfig(component_id="PortfolioRisk"))
        self.gate, self.bar_types = gate, bar_types

    def on_start(self) -> None:
        for bar_type in self.bar_types:
            self.subscribe_bars(bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.gate.portfolio_bar(bar.ts_event)


__all__ = [
    "NS_PER_HOUR",
    "PortfolioRiskActor",
    "RiskGate",
    "StrategyRiskActor",
    "register_alert_hook",
    "unregister_alert_hook",
]
