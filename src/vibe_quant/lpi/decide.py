"""The decision rules of the LPI strategies as a pure state machine (``docs/specs.md#lpi-strategies``).

:class:`Decider` takes snapshots, ticks, fills, order terminations and markouts and answers with
actions (:class:`Place`, :class:`Cancel`, :class:`Event`); it never touches NautilusTrader, so
scenario tables drive it directly, and the NautilusTrader strategy (``lpi/strategy.py``) only
translates. Orders are named by a sequence number the decider assigns (1, 2, ...): the same
inputs give the same orders at the same times.

Its position is the sum of its own fills (the venue's position events arrive after the fill).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

from vibe_quant.lpi.config import LpiStrategyConfig
from vibe_quant.lpi.features import SignalSnapshot

NS_PER_MS = 1_000_000
BPS = 1e4


@dataclass(frozen=True)
class InstrumentRules:
    """Price tick, size step and smallest order size of the traded instrument."""

    tick: float
    step: float
    min_qty: float


@dataclass(frozen=True)
class Market:
    """What the strategy knows at a decision: time, touch, equity, the venue's size cap."""

    ts: int
    bid: float
    ask: float
    equity: float = math.nan
    cap_qty: float = math.inf  # largest quantity the venue accepts at the leverage


@dataclass(frozen=True)
class Place:
    """Send an order: market when `price` is None, else a post-only GTC limit."""

    seq: int
    side: int  # +1 buy, -1 sell
    qty: float
    price: float | None
    reduce_only: bool
    reason: str
    ts: int


@dataclass(frozen=True)
class Cancel:
    seq: int
    reason: str


@dataclass(frozen=True)
class Event:
    kind: str
    fields: dict


@dataclass
class _Order:
    seq: int
    role: str  # "entry" or "exit"
    side: int
    qty: float
    price: float | None
    placed_ts: int
    reason: str
    filled: float = 0.0
    cancel: str | None = None  # why a cancel was sent ("ttl", or the exit reason)


@dataclass
class _Trade:
    direction: int
    prior_sign: int  # sign of the pressure at entry (B fades it)
    entry_ts: int
    target: float
    tranche: float
    placed: float = 0.0  # entry quantity sent (unfilled cancelled parts given back)
    exiting: str | None = None
    entry_seqs: set = field(default_factory=set)
    marks: list = field(default_factory=list)  # first-horizon markouts of entry fills (bps)


def target_notional(equity: float, sigma: float, cfg: LpiStrategyConfig) -> float:
    """``min(n_max, E kappa mu / (sigma^2 + lambda_jump), max_leverage E)`` (0 for NaN inputs)."""
    if not (equity > 0 and math.isfinite(sigma)):
        return 0.0
    denom = sigma * sigma + cfg.lambda_jump
    n = equity * cfg.kappa * cfg.mu / denom if denom > 0 else math.inf
    return min(cfg.n_max, n, cfg.max_leverage * equity)


def floor_step(qty: float, step: float) -> float:
    """`qty` rounded down to a multiple of `step` (0 below one step)."""
    return round(math.floor(qty / step + 1e-9) * step, 9) if qty > 0 else 0.0


def post_price(side: int, bid: float, ask: float, tick: float, improve: int) -> float:
    """Passive price: bid + `improve` ticks for a buy (at most ask - tick), ask - `improve` ticks for a
    sell (at least bid + tick), on the tick grid; NaN without a touch."""
    if math.isnan(bid) or math.isnan(ask):
        return math.nan
    if side > 0:
        px = min(bid + improve * tick, ask - tick)
        return round(math.floor(px / tick + 1e-9) * tick, 9)
    px = max(ask - improve * tick, bid + tick)
    return round(math.ceil(px / tick - 1e-9) * tick, 9)


class MarkoutBook:
    """Markouts of fills: at each horizon, the first mid at or after ``fill_ts + horizon``.

    Parameters
    ----------
    horizons_ms : sequence of int
        Horizons in milliseconds, ascending.
    """

    def __init__(self, horizons_ms) -> None:
        self.horizons_ms = tuple(int(h) for h in horizons_ms)
        self._pending: list[deque] = [deque() for _ in self.horizons_ms]

    def fill(self, order_id: str, side: int, price: float, ts: int) -> None:
        """Register a fill (`side` +1 buy, -1 sell) at `ts` (ns); fills arrive in time order."""
        for h, q in zip(self.horizons_ms, self._pending, strict=True):
            q.append((ts + h * NS_PER_MS, order_id, side, price, ts))

    def mid(self, ts: int, mid: float) -> list[dict]:
        """Markouts completed by a mid at `ts`: ``markout_bps = side (mid - fill) / fill 1e4``
        (positive: the fill was good for us). A NaN mid completes nothing."""
        out: list[dict] = []
        if math.isnan(mid):
            return out
        for h, q in zip(self.horizons_ms, self._pending, strict=True):
            while q and q[0][0] <= ts:
                _, order_id, side, price, fill_ts = q.popleft()
                out.append({"ts": ts, "order_id": order_id, "side": side, "fill_price": price, "fill_ts": fill_ts,
                            "horizon_ms": h, "mid": mid, "markout_bps": side * (mid - price) / price * BPS})  # fmt: skip
        return out


class Decider:
    """The LPI decision state machine of one instrument (``docs/specs.md#lpi-strategies``).

    Parameters
    ----------
    cfg : LpiStrategyConfig
        Checked configuration (variant, thresholds, sizing, execution).
    rules : InstrumentRules
        Tick, size step and minimum quantity.
    """

    def __init__(self, cfg: LpiStrategyConfig, rules: InstrumentRules) -> None:
        self.cfg = cfg
        self.rules = rules
        self.cascade = cfg.variant == "cascade"
        self.position = 0.0
        self.orders: dict[int, _Order] = {}
        self.trade: _Trade | None = None
        self.kill_until = -1
        self._depths: deque[float] = deque(maxlen=cfg.window)
        self._reposts: list[tuple[int, str, float, str]] = []  # (due ts, role, qty, reason)
        self._seq = 0

    # -- inputs -------------------------------------------------------------------------------------

    def on_snapshot(self, snap: SignalSnapshot, mk: Market) -> list:
        """A bucket closed: kill switch, then exits of the open trade or an entry."""
        out: list = []
        if self._kill(snap, mk, out):
            return out
        if self.trade is not None:
            self._exits(snap, mk, out)
        else:
            self._entry(snap, mk, out)
        return out

    def on_tick(self, mk: Market) -> list:
        """A tick (any): reposts that are due, time-to-live cancels, A's time stop, leftovers."""
        out: list = []
        cfg, t = self.cfg, self.trade
        due = [r for r in self._reposts if r[0] <= mk.ts]
        if due:
            self._reposts = [r for r in self._reposts if r[0] > mk.ts]
            for _, role, qty, reason in due:
                if role == "exit_market":
                    self._market_exit(reason, mk, out)
                else:
                    self._post(role, qty, reason, mk, out)
        ttl = cfg.entry_ttl_ms * NS_PER_MS
        for o in list(self.orders.values()):
            if o.price is not None and o.cancel is None and mk.ts >= o.placed_ts + ttl:
                o.cancel = "ttl"
                out.append(Cancel(o.seq, "ttl"))
        if t is not None and self.cascade and t.exiting is None and mk.ts >= t.entry_ts + cfg.hold_ms * NS_PER_MS:
            self._exit("time_stop", mk, out)
        self._reconcile(mk, out)
        return out

    def on_fill(self, seq: int, qty: float, price: float, mk: Market) -> list:
        """Order `seq` filled `qty` at `price`: position, the next tranche, a finished exit."""
        out: list = []
        o = self.orders.get(seq)
        if o is None:
            return out
        o.filled += qty
        self.position = round(self.position + o.side * qty, 9)
        if o.filled >= o.qty - self.rules.step * 0.5:
            del self.orders[seq]
        t = self.trade
        if t is not None and o.role == "entry":
            t.entry_seqs.add(seq)
            if seq not in self.orders and t.exiting is None and o.price is not None:
                pending = sum(r[2] for r in self._reposts if r[1] == "entry")
                rest = floor_step(t.target - t.placed - pending, self.rules.step)
                # Posted at the next tick (its touch already moved by the fill); the last takes the rest.
                if rest >= self.rules.min_qty:
                    qty = t.tranche if rest >= 2 * t.tranche - self.rules.step * 0.5 else rest
                    self._reposts.append((mk.ts, "entry", qty, "tranche"))
        self._reconcile(mk, out)
        return out

    def on_done(self, seq: int, mk: Market, rejected: bool = False) -> list:
        """Order `seq` ended unfilled or partly filled (cancelled, expired, rejected, denied)."""
        out: list = []
        o = self.orders.pop(seq, None)
        if o is None:
            return out
        left = floor_step(o.qty - o.filled, self.rules.step)
        t = self.trade
        if t is not None and o.role == "entry":
            t.placed -= left
            if t.exiting is None and left >= self.rules.min_qty and o.price is not None:
                if o.cancel == "ttl":
                    self._post("entry", left, "tranche", mk, out)
                elif rejected:  # post-only would have crossed: try again one time-to-live later
                    self._reposts.append((mk.ts + self.cfg.entry_ttl_ms * NS_PER_MS, "entry", left, "tranche"))
        elif t is not None and o.role == "exit" and t.exiting is not None:
            if o.price is None:
                if rejected:  # never resend at once: a synchronous denial would loop
                    self._reposts.append((mk.ts + self.cfg.entry_ttl_ms * NS_PER_MS, "exit_market", 0.0, t.exiting))
            elif o.cancel == "ttl" and abs(self.position) >= self.rules.min_qty:
                self._post("exit", abs(self.position), t.exiting, mk, out)
            elif rejected:
                self._market_exit(t.exiting, mk, out)
        self._reconcile(mk, out)
        return out

    def on_markout(self, seq: int, horizon_ms: int, bps: float, mk: Market) -> list:
        """A markout of order `seq`'s fill: B's adverse-selection guard at the first horizon."""
        out: list = []
        t, guard = self.trade, self.cfg.markout_guard_bps
        if self.cascade or guard is None or t is None or t.exiting is not None:
            return out
        if horizon_ms != self.cfg.markout_ms[0] or seq not in t.entry_seqs:
            return out
        t.marks.append(bps)
        if sum(t.marks) / len(t.marks) < -guard and self._may_exit():
            self._exit("adverse_selection", mk, out)
        return out

    def on_foreign_fill(self, side: int, qty: float, mk: Market) -> list:
        """A fill of an order the decider did not send (a risk gate flattening the instrument)."""
        out: list = []
        self.position = round(self.position + side * qty, 9)
        self._reconcile(mk, out)
        return out

    @property
    def busy(self) -> bool:
        """A trade is open: entries working, a position, or an exit on its way."""
        return self.trade is not None or bool(self.orders) or abs(self.position) > 0

    # -- rules --------------------------------------------------------------------------------------

    def _kill(self, snap: SignalSnapshot, mk: Market, out: list) -> bool:
        cfg = self.cfg
        spread_bps = snap.spread / snap.mid * BPS if snap.mid > 0 else math.nan
        d = snap.depth_proxy
        median = statistics.median(self._depths) if len(self._depths) >= cfg.min_periods else math.nan
        collapsed = cfg.kill_depth_frac > 0 and d < cfg.kill_depth_frac * median
        if not math.isnan(d):
            self._depths.append(d)
        if not (spread_bps > cfg.kill_spread_bps or collapsed):
            return False
        if mk.ts >= self.kill_until:
            out.append(Event("KILL_SWITCH", {"ts": mk.ts, "spread_bps": spread_bps, "depth": d, "depth_median": median,
                                             "cause": "spread" if spread_bps > cfg.kill_spread_bps else "depth"}))  # fmt: skip
        self.kill_until = mk.ts + cfg.kill_cooldown_ms * NS_PER_MS
        if self.trade is not None and self._may_exit():
            self._exit("kill_switch", mk, out)
        return True

    def _may_exit(self) -> bool:
        """No exit decided yet, or only a resting limit exit (a stop may replace it with a market one)."""
        t = self.trade
        return t.exiting is None or any(o.role == "exit" and o.price is not None for o in self.orders.values())

    def _exits(self, snap: SignalSnapshot, mk: Market, out: list) -> None:
        cfg, t = self.cfg, self.trade
        if not self._may_exit():
            return
        lpi = snap.lpi_fast
        if self.cascade:
            if t.exiting is not None:
                return
            spread_bps = snap.spread / snap.mid * BPS if snap.mid > 0 else math.nan
            if snap.exh > cfg.exh_exit:
                self._exit("exh_exit", mk, out, snap)
            elif spread_bps > cfg.max_spread_bps:
                self._exit("spread_gate", mk, out, snap)
            return
        if (lpi > 0) - (lpi < 0) == t.prior_sign and abs(lpi) >= cfg.reaccel_lpi:
            self._exit("hard_stop", mk, out, snap)
        elif t.exiting is None and abs(lpi) <= cfg.exit_lpi:
            self._exit("exit_normalised", mk, out, snap)

    def _entry(self, snap: SignalSnapshot, mk: Market, out: list) -> None:
        cfg = self.cfg
        lpi, exh = snap.lpi_fast, snap.exh
        if not abs(lpi) >= cfg.theta_lpi:
            return
        sign = 1 if lpi > 0 else -1
        if self.cascade:
            if not exh <= cfg.theta_exh_low:
                return
            direction = -sign  # with the pressure: sell pressure (LPI > 0) -> short
        else:
            if not exh >= cfg.theta_exh_high:
                return
            direction = sign  # against the pressure
        spread_bps = snap.spread / snap.mid * BPS if snap.mid > 0 else math.nan
        # The touch's age at the decision: a time bucket is emitted by the first event after its end.
        age = snap.quote_age_ns + max(mk.ts - snap.ts_event, 0) if snap.quote_age_ns >= 0 else -1
        price = (mk.bid + mk.ask) * 0.5
        price = price if price > 0 else snap.mid
        qty = 0.0
        if mk.ts < self.kill_until:
            reason = "kill_cooldown"
        elif self.busy:
            reason = "busy"
        elif not self.cascade and cfg.use_lev and not snap.lev >= cfg.theta_lev:
            reason = "lev_filter"
        elif age < 0 or age > cfg.max_quote_age_ms * NS_PER_MS:
            reason = "stale_data"
        elif not spread_bps <= cfg.max_spread_bps:
            reason = "wide_spread"
        elif not math.isfinite(snap.sigma):
            reason = "no_sigma"
        else:
            n = target_notional(mk.equity, snap.sigma, cfg)
            qty = floor_step(min(n / price, mk.cap_qty), self.rules.step) if price > 0 else 0.0
            reason = "entry" if qty >= self.rules.min_qty else "size_below_min"
        out.append(Event("SIGNAL", {"ts": mk.ts, "variant": cfg.variant, "lpi": lpi, "exh": exh, "lev": snap.lev,
                                    "direction": direction, "reason": reason, "qty": qty}))  # fmt: skip
        if reason != "entry":
            return
        post = cfg.maker_only or not self.cascade
        n_tr = 1 if self.cascade else cfg.tranches
        tranche = floor_step(qty / n_tr, self.rules.step)
        if tranche < self.rules.min_qty:
            tranche = qty
        self.trade = _Trade(direction, sign, mk.ts, qty, tranche)
        if post:
            self._post("entry", tranche if qty >= 2 * tranche - self.rules.step * 0.5 else qty, "entry", mk, out)
        else:
            self._place("entry", direction, qty, None, "entry", mk, out)

    # -- orders -------------------------------------------------------------------------------------

    def _place(self, role: str, side: int, qty: float, price: float | None, reason: str, mk: Market, out: list):
        self._seq += 1
        self.orders[self._seq] = _Order(self._seq, role, side, qty, price, mk.ts, reason)
        if role == "entry":
            self.trade.placed += qty
        out.append(Place(self._seq, side, qty, price, role == "exit", reason, mk.ts))

    def _post(self, role: str, qty: float, reason: str, mk: Market, out: list) -> None:
        t = self.trade
        if t is None:
            return
        side = t.direction if role == "entry" else (-1 if self.position > 0 else 1)
        px = post_price(side, mk.bid, mk.ask, self.rules.tick, self.cfg.improve_ticks)
        if not px > 0:  # no touch: try again one time-to-live later
            self._reposts.append((mk.ts + self.cfg.entry_ttl_ms * NS_PER_MS, role, qty, reason))
            return
        self._place(role, side, qty, px, reason, mk, out)

    def _exit(self, reason: str, mk: Market, out: list, snap: SignalSnapshot | None = None) -> None:
        t = self.trade
        t.exiting = reason
        self._reposts = []
        lpi, exh, lev = (snap.lpi_fast, snap.exh, snap.lev) if snap is not None else (math.nan,) * 3
        out.append(Event("SIGNAL", {"ts": mk.ts, "variant": self.cfg.variant, "lpi": lpi, "exh": exh, "lev": lev,
                                    "direction": 0, "reason": reason}))  # fmt: skip
        for o in self.orders.values():  # resting limits; a market order cannot be recalled
            if o.price is not None:
                if o.cancel is None:
                    out.append(Cancel(o.seq, reason))
                o.cancel = reason
        if any(o.role == "exit" for o in self.orders.values()):
            return  # a market exit is on its way, or the cancelled limit exit is replaced when done
        maker = reason == "exit_normalised" and self.cfg.maker_only
        if abs(self.position) >= self.rules.step * 0.5:
            if maker:
                self._post("exit", abs(self.position), reason, mk, out)
            else:
                self._market_exit(reason, mk, out)
        self._reconcile(mk, out)

    def _market_exit(self, reason: str, mk: Market, out: list) -> None:
        if abs(self.position) >= self.rules.step * 0.5:
            self._place("exit", -1 if self.position > 0 else 1, abs(self.position), None, reason, mk, out)

    def _reconcile(self, mk: Market, out: list) -> None:
        """Close the books of a finished trade; exit what fills left after an exit was decided."""
        t = self.trade
        if t is None:
            return
        if self.orders or self._reposts:
            return
        if abs(self.position) < self.rules.step * 0.5:
            self.trade = None  # nothing working, nothing held: the trade is over
        elif t.exiting is not None:
            self._market_exit(t.exiting, mk, out)
