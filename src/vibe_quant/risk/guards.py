"""Circuit breakers as plain state machines over (bar close time, equity) — the Actors in
:mod:`vibe_quant.risk.gate` feed them; tests drive them with hand-drawn numbers.

Every breaker compares at each bar close (the decision time) and trips when the figure reaches
its limit (``>=``, to 1e-9): a 15% limit trips at exactly 15.00%.

* drawdown = 1 - equity / peak since the start; trips a halt for the rest of the run (a live
  strategy stays halted until an operator resumes it);
* daily loss = 1 - equity / equity at the UTC day's first close (the bar closing at 00:00 ends
  the previous day); halted until the later of the cooldown and the next UTC day;
* rolling drawdown = 1 - equity / peak of the last `rolling_hours` of closes;
* consecutive losses (strategy level): closed trades with net PnL <= 0 in a row;
* a halt lasts `cooldown_after_halt_hours`, or for good when that is None (auto-disable).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

NS_PER_HOUR = 3_600_000_000_000
NS_PER_DAY = 24 * NS_PER_HOUR
EPS = 1e-9  # equity is a sum of float cash flows: 15% computed as 0.1499999999999999 still trips


@dataclass
class Trip:
    """A breaker that fired."""

    breaker: str  # drawdown_halt / daily_loss / rolling_drawdown / consecutive_losses
    value: float
    limit: float
    until_ns: int | None  # None: halted for good


class EquityGuard:
    """Drawdown, daily loss and rolling drawdown on one equity curve, with halts and cooldowns."""

    def __init__(self, drawdown: float | None, daily_loss: float | None, rolling: float | None,
                 rolling_hours: float, cooldown_hours: float | None):  # fmt: skip
        self.drawdown_limit, self.daily_limit, self.rolling_limit = drawdown, daily_loss, rolling
        self.rolling_ns = int(rolling_hours * NS_PER_HOUR)
        self.cooldown_ns = None if cooldown_hours is None else int(cooldown_hours * NS_PER_HOUR)
        self.peak = None
        self.day = None
        self.day_start = None
        self.next_day_ns = -1  # first close time of the next UTC day
        self.last_equity = None
        self.window: deque = deque()  # (ts, equity), equities decreasing: the max is window[0]
        self.halted: Trip | None = None
        self.trips: list[tuple[int, Trip]] = []
        # Equity above `floor` trips neither the drawdown nor the daily loss: most closes stop
        # at that one comparison (the Actors run this at every bar close).
        self.floor = -float("inf")

    @property
    def drawdown(self) -> float:
        return 0.0 if not self.peak or self.last_equity is None else max(0.0, 1.0 - self.last_equity / self.peak)

    def resume_due(self, ts: int) -> bool:
        """True when a halt's time is up at `ts` (the caller then calls :meth:`resume`)."""
        return self.halted is not None and self.halted.until_ns is not None and ts >= self.halted.until_ns

    def resume(self) -> None:
        self.halted = None
        self.window.clear()  # a rolling drawdown measured from before the halt would re-trip at once

    def _set_floor(self) -> None:
        floor = -float("inf")
        if self.drawdown_limit is not None:
            floor = self.peak * (1.0 - self.drawdown_limit + EPS)
        if self.daily_limit is not None and self.day_start is not None:
            floor = max(floor, self.day_start * (1.0 - self.daily_limit + EPS))
        self.floor = floor

    def update(self, ts: int, equity: float) -> Trip | None:
        """Record the close at `ts`; return the breaker that trips now (None if none, or already halted)."""
        if ts >= self.next_day_ns:  # the bar closing at 00:00 still belongs to the previous day
            self.day = (ts - 1) // NS_PER_DAY
            self.next_day_ns = (self.day + 1) * NS_PER_DAY + 1
            self.day_start = self.last_equity if self.last_equity is not None else equity
            if self.peak is None:
                self.peak = equity
            self._set_floor()
        self.last_equity = equity
        if equity > self.peak:
            self.peak = equity
            self._set_floor()
        if self.rolling_limit is None:
            if equity > self.floor or self.halted is not None:
                return None
        else:
            w = self.window
            while w and w[-1][1] <= equity:
                w.pop()
            w.append((ts, equity))
            while w[0][0] <= ts - self.rolling_ns:
                w.popleft()
            if self.halted is not None:
                return None
        trip = self.check(ts, equity)
        if trip is not None:
            self.halted = trip
            self.trips.append((ts, trip))
        return trip

    def check(self, ts: int, equity: float) -> Trip | None:
        if self.drawdown_limit is not None and self.peak > 0:
            dd = 1.0 - equity / self.peak
            if dd >= self.drawdown_limit - EPS:
                return Trip("drawdown_halt", dd, self.drawdown_limit, None)
        if self.rolling_limit is not None and self.window[0][1] > 0:
            dd = 1.0 - equity / self.window[0][1]
            if dd >= self.rolling_limit - EPS:
                return Trip("rolling_drawdown", dd, self.rolling_limit, self._until(ts))
        if self.daily_limit is not None and self.day_start and self.day_start > 0:
            loss = 1.0 - equity / self.day_start
            if loss >= self.daily_limit - EPS:
                until = self._until(ts)
                if until is not None:
                    until = max(until, (self.day + 1) * NS_PER_DAY + 1)  # not before the next UTC day
                return Trip("daily_loss", loss, self.daily_limit, until)
        return None

    def _until(self, ts: int) -> int | None:
        return None if self.cooldown_ns is None else ts + self.cooldown_ns


class StrategyGuard(EquityGuard):
    """Strategy level: the equity breakers, consecutive losses and drawdown scaling."""

    def __init__(self, cfg, allocation: float):
        super().__init__(cfg.max_drawdown_halt_pct, cfg.max_daily_loss_pct, cfg.rolling_drawdown_pct,
                         cfg.rolling_hours, cfg.cooldown_after_halt_hours)  # fmt: skip
        self.cfg = cfg
        self.allocation = allocation
        self.losses_in_a_row = 0
        self.trades_seen = 0

    def resume(self) -> None:
        super().resume()
        self.losses_in_a_row = 0

    def scale(self) -> float:
        """Size multiplier from the drawdown (default: 50% size from 10% drawdown, docs/specs.md#circuit-breakers)."""
        limit = self.cfg.max_drawdown_scale_pct
        return self.cfg.drawdown_scale_factor if limit is not None and self.drawdown >= limit - EPS else 1.0

    def on_trades(self, ts: int, net_pnls: list[float]) -> Trip | None:
        """Count newly closed trades (net PnL); trip after `max_consecutive_losses` losses in a row."""
        trip = None
        for pnl in net_pnls:
            self.losses_in_a_row = self.losses_in_a_row + 1 if pnl <= 0 else 0
            limit = self.cfg.max_consecutive_losses
            if limit is not None and self.losses_in_a_row >= limit and self.halted is None and trip is None:
                cooldown = self.cooldown_ns
                trip = Trip("consecutive_losses", float(self.losses_in_a_row), float(limit),
                            None if cooldown is None else ts + cooldown)  # fmt: skip
                self.halted = trip
                self.trips.append((ts, trip))
        return trip
