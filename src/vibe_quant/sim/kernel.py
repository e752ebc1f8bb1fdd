"""The perp kernel: our bar venue rules and the DSL strategy's bar cycle as one compiled loop.

It replays what the NautilusTrader path does on bars (``backtest/venue.py``,
``backtest/execution.py``, ``strategy/leg.py``, ``dsl/strategy.py`` and NautilusTrader 1.221's own
matching engine), event for event, over flat arrays (docs/specs.md#the-perp-kernel):

* **a new close time** ``t`` (every symbol with a bar stamped ``t``, in symbol order): the symbols
  advance to their bar; funding settles on the position held at each snapshot at or before the
  bar's open (mark: the previous close); then the order commands that reached the exchange by
  ``t`` execute in arrival order: market orders fill at the open moved by the slippage model; a
  bracket's stop and take-profit are armed when its entry fills (a stop already through the last
  price is rejected and the strategy exits at the next open instead);
* **each bar**, in symbol order: isolated-margin liquidation (unless a resting stop fires first),
  stop before take-profit when the bar reaches both, then NautilusTrader's price path open, high,
  low, close (a point only when it moves the last price) matched against the resting orders in
  price order; then the strategy decides on the bar's close from the precomputed signal arrays
  (exits before entries, reversals through flat, sizing from equity with the margin and
  maximum-position checks, a signal acted on once, time filters, trailing stops);
* **the equity curve**: balance plus unrealised PnL at every close time.

Money is rounded as NautilusTrader rounds it (``Money``: 8 decimals, half away from zero, summed
in fixed point) and prices and quantities are the doubles its ``Price``/``Quantity`` return, so
fills, fees and balances come out equal, not merely close. Screening's random draws are the keyed
draws of ``backtest/draws.py``, as in the NautilusTrader fill model.

State lives in a few packed arrays so the helpers can update it in place (numba passes scalars
by value): per symbol ``sf``/``si``, per order slot ``oi``/``of``, the commands on their way
``qi``/``qf`` and the counters ``cnt``.

``simulate_nb`` is compiled with numba; ``simulate_nb.py_func`` is the same code run by the Python
interpreter (the slow reference twin, for debugging and coverage). The proof that the kernel gives
NautilusTrader's answer is ``tests/sim/test_identity.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from vibe_quant.backtest.draws import LIMIT_QUEUE, SLIPPAGE, draw_nb

K = 8  # order slots per symbol (a bracket uses three)
Q = 64  # commands on their way at once
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

# order slot states
FREE, INFLIGHT, OPEN = 0, 1, 2
# order kinds (FillRecord.order_type)
MARKET, STOP, LIMIT = 0, 1, 2
ORDER_TYPES = ("MARKET", "STOP_MARKET", "LIMIT")
# reasons (FillRecord.reason)
R_ENTRY, R_EXIT, R_STOP, R_TARGET, R_LIQ, R_SIGNAL = 0, 1, 2, 3, 4, 5
REASONS = ("entry", "exit", "stop_loss", "take_profit", "liquidation", "signal")
# command types
C_SUBMIT, C_CANCEL, C_MODIFY = 0, 1, 2
# take-profit kinds
TP_NONE, TP_DISTANCE, TP_RISK_REWARD = 0, 1, 2

# per-symbol float state sf[s, *]
F_QTY, F_AVG, F_WALLET, F_LIQ, F_LAST, F_LEVEL = range(6)  # F_LEVEL: a policy's target level at its last decision
# per-symbol int state si[s, *]
S_TRADE, S_CUR, S_NF, S_LAST_INIT, S_SIGNALLED, S_INFLIGHT, S_STOP_SLOT, S_DRAW_TS, S_RANK_SLIP, S_RANK_LIM = range(10)
# order slot ints oi[s, slot, *] and floats of[s, slot, *]
O_ST, O_KIND, O_SIDE, O_REASON, O_REDUCE, O_TRACKED, O_PARENT, O_SIB, O_C1, O_C2, O_PMOD, O_PCAN, O_NO, O_SEQ = range(
    14
)
OF_PX, OF_QTY = range(2)
# commands on their way qi[k, *], in NautilusTrader's list order (see _push)
Q_TS, Q_CNT, Q_TYPE, Q_SYM, Q_SLOT, Q_NO = range(6)
# counters cnt[*]
N_FILL, N_FUND, N_LIQ, N_Q, N_MP, N_ORDER, N_ACCEPT, N_STATUS, N_BAL = range(9)

# instrument parameters: floats sp_f[s, *] and ints sp_i[s, *]
P_TICK, P_STEP, P_LEV, P_TAKER, P_MAKER, P_MAXNOT, P_POWP, P_RESTP, P_POWS, P_RESTS = range(10)
I_KEY, I_READY = range(2)
# run parameters: floats vf[*] and ints vi[*]
V_SPREAD, V_IMPACT, V_PLIMIT, V_PSLIP, V_FRACTION, V_RISK, V_MMF, V_MAXLEV, V_RATIO = range(9)
W_VALID, W_BASE, W_INSERT, W_UPDATE, W_CANCEL, W_FILL_LAT, W_BAR_NS, W_BAL_UNITS, W_SIZING, W_TP, W_SL, W_TRAIL = range(
    12
)
# fill record columns: ints fi[n, *] and floats ff[n, *]
FI_TS, FI_ECON, FI_SYM, FI_SIDE, FI_TAKER, FI_TYPE, FI_REASON, FI_ORDER, FI_TRADE = range(9)
FF_QTY, FF_PX, FF_FEE, FF_REF, FF_EST = range(5)
# liquidation record columns
LI_TS, LI_SYM, LI_SIDE, LI_TRADE = range(4)
LF_QTY, LF_ENTRY, LF_PX, LF_WALLET, LF_CLEAR = range(5)
# status
OK, FULL = 0, 1
# the run's clock[*]: equity points written, the last close time seen
C_NEQ, C_LAST = range(2)


@njit(cache=True)
def units_nb(x):
    """NautilusTrader's ``Money(x, USDT)`` as integer 1e-8 units: 8 decimals, half away from zero."""
    v = np.int64(math.floor(abs(x) * 1e8 + 0.5))
    return v if x >= 0 else -v


@njit(cache=True)
def money_nb(units):
    """The double ``Money.as_double()`` returns for `units` (its fixed-point raw value over 1e16)."""
    return (float(units) * 1e8) / 1e16


@njit(cache=True)
def fixed_nb(x, pow_p, rest):
    """The double NautilusTrader's ``Price(x, p)``/``Quantity(x, p)`` returns (``pow_p`` = 10**p,
    ``rest`` = 10**(16-p)): rounded half away from zero, then its fixed-point raw value as a float."""
    r = math.floor(abs(x) * pow_p + 0.5)
    if x < 0:
        r = -r
    return (r * rest) / 1e16


@njit(cache=True)
def round_adverse_nb(price, tick, side):
    """``instruments.ticks.round_adverse``: up for buys, down for sells."""
    steps = price / tick
    if side > 0:
        return math.ceil(steps - 1e-9) * tick
    return math.floor(steps + 1e-9) * tick


@njit(cache=True)
def liquidation_price_nb(side, qty, entry, wallet, kfloor, kcap, kmmr, kcum, k0, k1):
    """``instruments.margin.liquidation_price`` over one symbol's brackets ``k0:k1``."""
    fallback = 0.0
    for b in range(k0, k1):
        den = qty * kmmr[b] - side * qty
        if den == 0:
            continue
        lp = max((wallet + kcum[b] - side * qty * entry) / den, 0.0)
        notional = qty * lp
        tol = 1e-9 * max(kcap[b], 1.0)
        if kfloor[b] - tol <= notional < kcap[b] + tol:
            return lp
        fallback = lp
    return fallback


# -- commands and orders ------------------------------------------------------------------------------


@njit(cache=True)
def _push(qi, qf, mp, cnt, ts, ctype, s, slot, px, oi_no):
    """A command on its way, reaching the exchange at `ts`.

    NautilusTrader 1.221 keeps these in a list it grows with ``heapq.heappush`` keyed
    ``(ts, n-th command of that ts)`` but takes from with ``list.pop(0)``, which is not a heap pop:
    a command can wait behind a later one. The list here is that list, element for element, so
    commands execute in NautilusTrader's order. `mp` holds the arrival times the venue module
    watches (it asks the exchange to process commands when one is due, ``backtest/venue.py``).
    `oi_no` is the order's number: a command finds its order even if the slot was reused since.
    """
    n = cnt[N_Q]
    if n >= qi.shape[0]:
        raise RuntimeError("perp kernel: more than 64 order commands on their way")
    counter = 1
    for k in range(n):
        if qi[k, Q_TS] == ts:
            counter += 1
    pos = n
    while pos > 0:  # heapq._siftdown(heap, 0, n)
        parent = (pos - 1) >> 1
        if ts < qi[parent, Q_TS] or (ts == qi[parent, Q_TS] and counter < qi[parent, Q_CNT]):
            qi[pos] = qi[parent]
            qf[pos] = qf[parent]
            pos = parent
            continue
        break
    qi[pos, Q_TS] = ts
    qi[pos, Q_CNT] = counter
    qi[pos, Q_TYPE] = ctype
    qi[pos, Q_SYM] = s
    qi[pos, Q_SLOT] = slot
    qi[pos, Q_NO] = oi_no
    qf[pos] = px
    cnt[N_Q] = n + 1
    mp[cnt[N_MP]] = ts
    cnt[N_MP] += 1


@njit(cache=True)
def _new_order(oi, of, cnt, s, kind, side, px, qty, reason, reduce, tracked):
    for sl in range(oi.shape[1]):
        if oi[s, sl, O_ST] == FREE:
            oi[s, sl, O_ST] = INFLIGHT
            oi[s, sl, O_KIND] = kind
            oi[s, sl, O_SIDE] = side
            oi[s, sl, O_REASON] = reason
            oi[s, sl, O_REDUCE] = reduce
            oi[s, sl, O_TRACKED] = tracked
            oi[s, sl, O_PARENT] = -1
            oi[s, sl, O_SIB] = -1
            oi[s, sl, O_C1] = -1
            oi[s, sl, O_C2] = -1
            oi[s, sl, O_PMOD] = 0
            oi[s, sl, O_PCAN] = 0
            cnt[N_ORDER] += 1
            oi[s, sl, O_NO] = cnt[N_ORDER]
            oi[s, sl, O_SEQ] = 0
            of[s, sl, OF_PX] = px
            of[s, sl, OF_QTY] = qty
            return sl
    raise RuntimeError("perp kernel: more than 8 orders on one symbol")


@njit(cache=True)
def _done(oi, si, s, sl):
    """An order leaves the book (filled, cancelled, rejected): the strategy stops waiting for it."""
    oi[s, sl, O_ST] = FREE
    if oi[s, sl, O_TRACKED]:
        oi[s, sl, O_TRACKED] = 0
        si[s, S_INFLIGHT] -= 1


@njit(cache=True)
def _cancel_resting(oi, qi, qf, mp, cnt, s, t, lat):
    """``Leg.cancel_resting``: a cancel on its way for every accepted (resting) order of `s`."""
    for sl in range(oi.shape[1]):
        if oi[s, sl, O_ST] == OPEN and oi[s, sl, O_KIND] != MARKET:
            oi[s, sl, O_PCAN] = 1
            _push(qi, qf, mp, cnt, t + lat, C_CANCEL, s, sl, 0.0, oi[s, sl, O_NO])


@njit(cache=True)
def _submit_market(oi, of, si, qi, qf, mp, cnt, s, t, lat, side, qty, reason, reduce):
    sl = _new_order(oi, of, cnt, s, MARKET, side, 0.0, qty, reason, reduce, 1)
    si[s, S_INFLIGHT] += 1
    _push(qi, qf, mp, cnt, t + lat, C_SUBMIT, s, sl, 0.0, oi[s, sl, O_NO])
    return sl


# -- fills ----------------------------------------------------------------------------------------------


@njit(cache=True)
def _fee_units(qty, price, rate):
    """NautilusTrader's ``MakerTakerFeeModel``: ``Money(Money(qty * multiplier * price) * rate)`` in 1e-8 units."""
    return units_nb(money_nb(units_nb(qty * 1.0 * price)) * rate)


@njit(cache=True)
def _record_fill(fi, ff, cnt, t, econ, s, side, taker, kind, reason, order_no, trade, qty, price, fee, ref, est):
    n = cnt[N_FILL]
    fi[n, FI_TS] = t
    fi[n, FI_ECON] = econ
    fi[n, FI_SYM] = s
    fi[n, FI_SIDE] = side
    fi[n, FI_TAKER] = 1 if taker else 0
    fi[n, FI_TYPE] = kind
    fi[n, FI_REASON] = reason
    fi[n, FI_ORDER] = order_no
    fi[n, FI_TRADE] = trade
    ff[n, FF_QTY] = qty
    ff[n, FF_PX] = price
    ff[n, FF_FEE] = fee
    ff[n, FF_REF] = ref
    ff[n, FF_EST] = est
    cnt[N_FILL] = n + 1


@njit(cache=True)
def _fill(s, sl, t, econ, price, ref, est, taker, sf, si, oi, of, sp_f, kfloor, kcap, kmmr, kcum, koff, fi, ff, cnt):
    """Book a fill of order `sl` of symbol `s` in full: record, fee, balance, position, contingencies."""
    n = cnt[N_FILL]
    if n >= fi.shape[0]:
        cnt[N_STATUS] = FULL
        return
    side = oi[s, sl, O_SIDE]
    qty = of[s, sl, OF_QTY]
    fee_units = _fee_units(qty, price, sp_f[s, P_TAKER] if taker else sp_f[s, P_MAKER])
    fee = money_nb(fee_units)
    cnt[N_BAL] -= fee_units
    old = sf[s, F_QTY]
    if old == 0 or (old > 0) == (side > 0):  # open (NETTING: at most one position, opened in one fill)
        si[s, S_TRADE] += 1
        sf[s, F_QTY] = side * qty
        sf[s, F_AVG] = price
        sf[s, F_WALLET] = qty * price / sp_f[s, P_LEV]
        sf[s, F_LIQ] = liquidation_price_nb(side, qty, price, sf[s, F_WALLET], kfloor, kcap, kmmr, kcum,
                                            koff[s], koff[s + 1])  # fmt: skip
    else:  # close (our exits close the whole position)
        points = (price - sf[s, F_AVG]) if old > 0 else (sf[s, F_AVG] - price)
        cnt[N_BAL] += units_nb(min(qty, abs(old)) * 1.0 * points)
        sf[s, F_QTY] = 0.0
        sf[s, F_AVG] = 0.0
        sf[s, F_WALLET] = 0.0
        sf[s, F_LIQ] = 0.0
    _record_fill(fi, ff, cnt, t, econ, s, side, taker, oi[s, sl, O_KIND], oi[s, sl, O_REASON], oi[s, sl, O_NO],
                 si[s, S_TRADE], qty, price, fee, ref, est)  # fmt: skip
    _done(oi, si, s, sl)
    sib = oi[s, sl, O_SIB]
    if sib >= 0 and oi[s, sib, O_ST] == OPEN:  # OUO: the other exit goes
        _done(oi, si, s, sib)
    if sf[s, F_QTY] == 0:  # the position closed: its reduce-only resting orders go
        for other in range(oi.shape[1]):
            if oi[s, other, O_ST] == OPEN and oi[s, other, O_REDUCE] and oi[s, other, O_KIND] != MARKET:
                _done(oi, si, s, other)


@njit(cache=True)
def _market_price(s, sl, b, t, validation, spread_ticks, impact, p_slip, fill_lat, bar_ns, seed, bo, bvol, bavg,
                  sp_f, sp_i, si, oi, of):  # fmt: skip
    """``PerpFillModel`` for a market order executed at the bar `b`'s open: (price, reference, estimate, economic)."""
    side = oi[s, sl, O_SIDE]
    tick = sp_f[s, P_TICK]
    reference = bo[b]
    lat = fill_lat % bar_ns
    econ = (t - bar_ns) + lat
    if validation:
        vol = bvol[b]
        avg_volume = bavg[b]
        qty = of[s, sl, OF_QTY]
        participation = qty / avg_volume if avg_volume > 0 else 1.0
        est = tick * spread_ticks / 2.0 + impact * vol * math.sqrt(max(participation, 0.0))
        if lat > 0 and bar_ns > 0:
            est = est + vol * math.sqrt(lat / bar_ns) * SQRT_2_OVER_PI
    else:
        est = _coin_tick(s, t, p_slip, seed, sp_f, sp_i, si)
    price = fixed_nb(round_adverse_nb(reference + side * est, tick, side), sp_f[s, P_POWP], sp_f[s, P_RESTP])
    return price, reference, est, econ


@njit(cache=True)
def _coin_tick(s, t, p_slip, seed, sp_f, sp_i, si):
    """Screening: one tick of slippage with probability ``prob_slippage`` (a keyed draw)."""
    if not p_slip > 0:
        return 0.0
    if si[s, S_DRAW_TS] != t:
        si[s, S_DRAW_TS] = t
        si[s, S_RANK_SLIP] = 0
        si[s, S_RANK_LIM] = 0
    u = draw_nb(seed, SLIPPAGE, sp_i[s, I_KEY], t, si[s, S_RANK_SLIP])
    si[s, S_RANK_SLIP] += 1
    return sp_f[s, P_TICK] if u < p_slip else 0.0


@njit(cache=True)
def _limit_queue(s, t, p_limit, seed, sp_i, si):
    """A limit touched exactly at its price fills with probability ``prob_fill_on_limit`` (a keyed draw)."""
    if p_limit == 1:
        return True
    if p_limit == 0:
        return False
    if si[s, S_DRAW_TS] != t:
        si[s, S_DRAW_TS] = t
        si[s, S_RANK_SLIP] = 0
        si[s, S_RANK_LIM] = 0
    u = draw_nb(seed, LIMIT_QUEUE, sp_i[s, I_KEY], t, si[s, S_RANK_LIM])
    si[s, S_RANK_LIM] += 1
    return p_limit >= u


@njit(cache=True)
def _rejected(s, sl, t, sf, si, oi, of, qi, qf, mp, cnt, vi):
    """The exchange rejects order `sl`; ``Leg.rejected``: a rejected stop-loss while in a position and with
    nothing on its way exits at the next open instead (holding unprotected is not an option)."""
    was_stop = oi[s, sl, O_REASON] == R_STOP
    _done(oi, si, s, sl)
    q = sf[s, F_QTY]
    if was_stop and q != 0 and si[s, S_INFLIGHT] == 0:
        base = vi[W_BASE]
        _cancel_resting(oi, qi, qf, mp, cnt, s, t, base + vi[W_CANCEL])
        _submit_market(oi, of, si, qi, qf, mp, cnt, s, t, base + vi[W_INSERT], -1 if q > 0 else 1, abs(q), R_STOP, 1)


@njit(cache=True)
def _arm(s, sl, t, sf, si, oi, of, sp_f, qi, qf, mp, cnt, vi, kfloor, kcap, kmmr, kcum, koff,
         fi, ff):  # fmt: skip
    """A bracket's exit order reaches the book when its entry fills (NautilusTrader's OTO release)."""
    side = oi[s, sl, O_SIDE]
    px = of[s, sl, OF_PX]
    last, ready = sf[s, F_LAST], si[s, S_LAST_INIT] != 0
    if oi[s, sl, O_KIND] == STOP:
        if ready and ((side > 0 and last >= px) or (side < 0 and last <= px)):
            _rejected(s, sl, t, sf, si, oi, of, qi, qf, mp, cnt, vi)  # already in the market
            return
        oi[s, sl, O_ST] = OPEN
        cnt[N_ACCEPT] += 1
        oi[s, sl, O_SEQ] = cnt[N_ACCEPT]
        return
    oi[s, sl, O_ST] = OPEN
    cnt[N_ACCEPT] += 1
    oi[s, sl, O_SEQ] = cnt[N_ACCEPT]
    if ready and ((side > 0 and last <= px) or (side < 0 and last >= px)):  # marketable: fills as a taker
        _fill(s, sl, t, t, px, px, 0.0, True, sf, si, oi, of, sp_f, kfloor, kcap, kmmr, kcum, koff, fi, ff, cnt)


@njit(cache=True)
def _liquidate(s, t, b, bo, sf, si, oi, sp_f, li, lf, fi, ff, cnt):
    """``PerpVenueModule._liquidate``: close at the liquidation price, the rest of the margin is the clearance fee."""
    for sl in range(oi.shape[1]):  # Binance cancels the symbol's open orders first
        if oi[s, sl, O_ST] == OPEN:
            _done(oi, si, s, sl)
    q = sf[s, F_QTY]
    side = 1 if q > 0 else -1
    qty, entry, wallet, lp = abs(q), sf[s, F_AVG], sf[s, F_WALLET], sf[s, F_LIQ]
    if (lp >= entry) if side > 0 else (lp <= entry):
        lp = bo[b]  # already below maintenance (e.g. funding drained it)
    price = fixed_nb(round_adverse_nb(lp, sp_f[s, P_TICK], -side), sp_f[s, P_POWP], sp_f[s, P_RESTP])
    n = cnt[N_FILL]
    if n >= fi.shape[0] or cnt[N_LIQ] >= li.shape[0]:
        cnt[N_STATUS] = FULL
        return
    fee_units = _fee_units(qty, price, sp_f[s, P_TAKER])
    fee = money_nb(fee_units)
    cnt[N_BAL] -= fee_units
    points = (price - entry) if side > 0 else (entry - price)
    cnt[N_BAL] += units_nb(qty * 1.0 * points)
    cnt[N_ORDER] += 1
    _record_fill(fi, ff, cnt, t, t, s, -side, True, MARKET, R_LIQ, -cnt[N_ORDER], si[s, S_TRADE], qty, price, fee,
                 price, 0.0)  # fmt: skip
    sf[s, F_QTY] = 0.0
    sf[s, F_AVG] = 0.0
    sf[s, F_WALLET] = 0.0
    sf[s, F_LIQ] = 0.0
    loss_so_far = -side * qty * (price - entry) + fee
    clearance = wallet - loss_so_far
    if clearance:
        cnt[N_BAL] -= units_nb(clearance)
    k = cnt[N_LIQ]
    li[k, LI_TS] = t
    li[k, LI_SYM] = s
    li[k, LI_SIDE] = side
    li[k, LI_TRADE] = si[s, S_TRADE]
    lf[k, LF_QTY] = qty
    lf[k, LF_ENTRY] = entry
    lf[k, LF_PX] = price
    lf[k, LF_WALLET] = wallet
    lf[k, LF_CLEAR] = clearance
    cnt[N_LIQ] = k + 1


# -- the strategy's orders (Leg.go) ------------------------------------------------------------------


@njit(cache=True)
def _go_flat(s, t, sf, si, oi, of, qi, qf, mp, cnt, vi, reason):
    """The exit half of ``Leg.go``: cancel the resting exits, close the position at market."""
    q = sf[s, F_QTY]
    base = vi[W_BASE]
    _cancel_resting(oi, qi, qf, mp, cnt, s, t, base + vi[W_CANCEL])
    _submit_market(oi, of, si, qi, qf, mp, cnt, s, t, base + vi[W_INSERT], -1 if q > 0 else 1, abs(q), reason, 1)


@njit(cache=True)
def _submit_entry(s, t, direction, qty, close, stop, target, sp_f, si, oi, of, qi, qf, mp, cnt, vi):
    """The entry of ``Leg.go``: a market order, or a bracket (entry with its stop and take-profit)."""
    lat = vi[W_BASE] + vi[W_INSERT]
    has_stop, has_target = not np.isnan(stop), not np.isnan(target)
    if not has_stop and not has_target:
        _submit_market(oi, of, si, qi, qf, mp, cnt, s, t, lat, direction, qty, R_ENTRY, 0)
        return
    tick, powp, restp = sp_f[s, P_TICK], sp_f[s, P_POWP], sp_f[s, P_RESTP]
    entry = _new_order(oi, of, cnt, s, MARKET, direction, 0.0, qty, R_ENTRY, 0, 1)
    si[s, S_INFLIGHT] += 1
    c1 = c2 = -1
    if has_stop:
        px = round_adverse_nb(close - direction * stop, tick, -direction)
        if px > 0:
            c1 = _new_order(oi, of, cnt, s, STOP, -direction, fixed_nb(px, powp, restp), qty, R_STOP, 1, 0)
    if has_target:
        px = round_adverse_nb(close + direction * target, tick, direction)
        if px > 0:
            c2 = _new_order(oi, of, cnt, s, LIMIT, -direction, fixed_nb(px, powp, restp), qty, R_TARGET, 1, 0)
    si[s, S_STOP_SLOT] = c1
    oi[s, entry, O_C1] = c1
    oi[s, entry, O_C2] = c2
    if c1 >= 0:
        oi[s, c1, O_PARENT] = entry
        oi[s, c1, O_SIB] = c2
    if c2 >= 0:
        oi[s, c2, O_PARENT] = entry
        oi[s, c2, O_SIB] = c1
    _push(qi, qf, mp, cnt, t + lat, C_SUBMIT, s, entry, 0.0, oi[s, entry, O_NO])


# -- the run ------------------------------------------------------------------------------------------


@njit(cache=True)
def _equity(bal_units, sf, si, boff, bc):
    u = money_nb(bal_units)
    for j in range(sf.shape[0]):
        if sf[j, F_QTY] != 0 and si[j, S_CUR] >= 0:
            u = u + sf[j, F_QTY] * (bc[boff[j] + si[j, S_CUR]] - sf[j, F_AVG])
    return u


@njit(cache=True)
def _process(t, validation, spread_ticks, impact, p_slip, fill_lat, bar_ns, seed, boff, bo, bvol, bavg,
             sp_f, sp_i, vi, kfloor, kcap, kmmr, kcum, koff, sf, si, oi, of, qi, qf, mp, cnt, fi, ff):  # fmt: skip
    """``SimulatedExchange.process(t)``: execute the commands at the head of the list while they are due."""
    while cnt[N_Q] > 0 and qi[0, Q_TS] <= t:
        cs, slot, ctype, px_cmd, no = qi[0, Q_SYM], qi[0, Q_SLOT], qi[0, Q_TYPE], qf[0], qi[0, Q_NO]
        n = cnt[N_Q]
        for k in range(1, n):  # list.pop(0)
            qi[k - 1] = qi[k]
            qf[k - 1] = qf[k]
        cnt[N_Q] = n - 1
        if oi[cs, slot, O_NO] != no or oi[cs, slot, O_ST] == FREE:
            continue  # its order is gone (filled, cancelled): the command changes nothing
        if ctype == C_CANCEL:
            oi[cs, slot, O_PCAN] = 0
            if oi[cs, slot, O_ST] == OPEN:
                _done(oi, si, cs, slot)
            continue
        if ctype == C_MODIFY:
            oi[cs, slot, O_PMOD] = 0
            if oi[cs, slot, O_ST] == OPEN:
                side_o, lst = oi[cs, slot, O_SIDE], sf[cs, F_LAST]
                moved_in = si[cs, S_LAST_INIT] != 0 and (
                    (side_o > 0 and lst >= px_cmd) or (side_o < 0 and lst <= px_cmd)
                )
                if not moved_in:  # a stop moved into the market is rejected, it keeps its trigger
                    of[cs, slot, OF_PX] = px_cmd
            continue
        # a market order (alone or a bracket's entry) executes at the open of its symbol's current bar
        q = sf[cs, F_QTY]
        if oi[cs, slot, O_REDUCE] and (q == 0 or (q > 0) == (oi[cs, slot, O_SIDE] > 0)):
            # NautilusTrader rejects a reduce-only order that would open or increase a position
            _rejected(cs, slot, t, sf, si, oi, of, qi, qf, mp, cnt, vi)
            continue
        b = boff[cs] + si[cs, S_CUR]
        px, ref, est, econ = _market_price(cs, slot, b, t, validation, spread_ticks, impact, p_slip, fill_lat, bar_ns,
                                           seed, bo, bvol, bavg, sp_f, sp_i, si, oi, of)  # fmt: skip
        c1, c2 = oi[cs, slot, O_C1], oi[cs, slot, O_C2]
        _fill(cs, slot, t, econ, px, ref, est, True, sf, si, oi, of, sp_f, kfloor, kcap, kmmr, kcum, koff, fi, ff, cnt)
        for child in (c1, c2):
            if child >= 0 and oi[cs, child, O_ST] == INFLIGHT:
                _arm(cs, child, t, sf, si, oi, of, sp_f, qi, qf, mp, cnt, vi, kfloor, kcap, kmmr,
                     kcum, koff, fi, ff)  # fmt: skip


@njit(cache=True)
def _decide(s, i, b, t, c, sig, exl, exs, alw, stopd, tgtd, traild, boff, bc, sp_f, sp_i, vf, vi, sf, si, oi, of, qi,
            qf, mp, cnt):  # fmt: skip
    """``DslStrategy.on_bar`` on the signal table, then ``Leg.go``: what the strategy sends at bar `b`'s close."""
    sizing, tp_kind, has_sl, has_trail = vi[W_SIZING], vi[W_TP], vi[W_SL] != 0, vi[W_TRAIL] != 0
    base_lat = vi[W_BASE]
    if i < sp_i[s, I_READY] or si[s, S_INFLIGHT] != 0:
        return
    q = sf[s, F_QTY]
    side = 1 if q > 0 else (-1 if q < 0 else 0)
    sg = np.int64(sig[b])
    if sg == 0:
        si[s, S_SIGNALLED] = 0
    act = 0  # 1: exit, 2: enter sg (through flat when in a position)
    if side != 0 and (exl[b] if side > 0 else exs[b]):
        act = 2 if (sg == -side and sg != si[s, S_SIGNALLED] and alw[b]) else 1
    else:
        if side != 0 and has_trail:
            sl = si[s, S_STOP_SLOT]
            if (sl >= 0 and oi[s, sl, O_ST] == OPEN and oi[s, sl, O_KIND] == STOP and oi[s, sl, O_PMOD] == 0
                    and oi[s, sl, O_PCAN] == 0):  # fmt: skip
                distance = traild[b]
                if distance > 0:
                    tick = sp_f[s, P_TICK]
                    cand = round_adverse_nb(c - side * distance, tick, -side)
                    curp = of[s, sl, OF_PX]
                    if (cand > curp + tick / 2) if side > 0 else (cand < curp - tick / 2):
                        oi[s, sl, O_PMOD] = 1
                        _push(qi, qf, mp, cnt, t + base_lat + vi[W_UPDATE], C_MODIFY, s, sl,
                              fixed_nb(cand, sp_f[s, P_POWP], sp_f[s, P_RESTP]), oi[s, sl, O_NO])  # fmt: skip
        if sg != 0 and sg != si[s, S_SIGNALLED]:
            if side == sg:
                si[s, S_SIGNALLED] = sg
            elif alw[b]:
                act = 2
    if act == 1:
        _go_flat(s, t, sf, si, oi, of, qi, qf, mp, cnt, vi, R_EXIT)
        return
    if act != 2:
        return
    # DslStrategy._enter
    stop = stopd[b] if has_sl else np.nan
    if has_sl and not stop > 0:
        return  # e.g. ATR of a flat market: no meaningful stop, wait for the next bar
    if tp_kind == TP_RISK_REWARD:
        target_d = stop * vf[V_RATIO]
    elif tp_kind == TP_DISTANCE:
        target_d = tgtd[b]
    else:
        target_d = np.nan
    equity, used = account_nb(sf, si, boff, bc, cnt)
    lev = sp_f[s, P_LEV]
    want = equity * vf[V_RISK] / stop if sizing == 1 else equity * vf[V_FRACTION] / c
    if not np.isnan(vf[V_MMF]):
        want = min(want, vf[V_MMF] * equity * lev / c)
    if not np.isnan(vf[V_MAXLEV]):
        want = min(want, vf[V_MAXLEV] * equity / c)
    want = min(want, sp_f[s, P_MAXNOT] / c * 0.999 if c > 0 else 0.0)
    si[s, S_SIGNALLED] = sg
    go_nb(s, t, side, sg, want, c, stop, target_d, equity, used, sp_f, sf, si, oi, of, qi, qf, mp, cnt, vi)


@njit(cache=True)
def account_nb(sf, si, boff, bc, cnt):
    """(equity, used margin) as the venue's account reports them: balance + (sum of the unrealised PnLs), in
    that order, and the sum of the isolated margins."""
    n_sym = sf.shape[0]
    upnl = 0.0
    for j in range(n_sym):
        if sf[j, F_QTY] != 0:
            upnl = upnl + sf[j, F_QTY] * (bc[boff[j] + si[j, S_CUR]] - sf[j, F_AVG])
    equity = money_nb(cnt[N_BAL]) + upnl
    used = 0.0
    for j in range(n_sym):
        if sf[j, F_QTY] != 0:
            used = used + sf[j, F_WALLET]
    return equity, used


@njit(cache=True)
def go_nb(s, t, side, direction, want, c, stop, target, equity, used, sp_f, sf, si, oi, of, qi, qf, mp, cnt, vi):
    """``Leg.go``: close the current side (`side`) first, then the checks (size step, maximum position at the
    leverage, initial margin plus taker fee within the free equity and the released margin), then the entry
    of `want` (base units) on `direction` with its bracket (`stop`/`target` distances, NaN for none)."""
    released = 0.0
    if side != 0:
        released = sf[s, F_WALLET]
        _go_flat(s, t, sf, si, oi, of, qi, qf, mp, cnt, vi, R_SIGNAL)
    step = sp_f[s, P_STEP]
    qty = math.floor(want / step + 1e-9) * step if want > 0 else 0.0
    if not qty > 0:
        return  # size_below_step
    if qty * c > sp_f[s, P_MAXNOT]:
        return  # max_position_at_leverage
    required = qty * c / sp_f[s, P_LEV] + qty * c * max(sp_f[s, P_TAKER], 0.0)
    if required > (equity - used) + released:
        return  # insufficient_margin
    oq = fixed_nb(qty, sp_f[s, P_POWS], sp_f[s, P_RESTS])
    _submit_entry(s, t, direction, oq, c, stop, target, sp_f, si, oi, of, qi, qf, mp, cnt, vi)


@njit(cache=True)
def new_state_nb(n_sym, foff, balance_units):
    """A run's state before its first bar: ``(sf, si, oi, of, qi, qf, mp, cnt, order_buf, clock)``."""
    sf = np.zeros((n_sym, 6))
    si = np.zeros((n_sym, 10), np.int64)
    si[:, S_CUR] = -1
    si[:, S_STOP_SLOT] = -1
    si[:, S_DRAW_TS] = -1
    for j in range(n_sym):
        si[j, S_NF] = foff[j]
    oi = np.zeros((n_sym, K, 14), np.int64)
    of = np.zeros((n_sym, K, 2))
    qi = np.zeros((Q, 6), np.int64)
    qf = np.zeros(Q)
    mp = np.zeros(Q * 4, np.int64)
    cnt = np.zeros(9, np.int64)
    cnt[N_BAL] = balance_units
    order_buf = np.zeros(K, np.int64)
    clock = np.zeros(2, np.int64)
    clock[C_LAST] = -1
    return sf, si, oi, of, qi, qf, mp, cnt, order_buf, clock


@njit(cache=True)
def open_bar_nb(
    m, seq_sym, seq_idx, boff, bts, bo, bh, bl, bc, bvol, bavg,
    foff, fts, frate, koff, kfloor, kcap, kmmr, kcum, sp_f, sp_i, vf, vi, seed,
    sf, si, oi, of, qi, qf, mp, cnt, order_buf, clock, fi, ff, ri, rf, li, lf, eq_ts, eq,
):  # fmt: skip
    """Everything of element `m` of the merged bar sequence before its strategy decides: a new close
    time (the previous one's equity point, funding, the commands due), then the bar's liquidation,
    stop before take-profit and NautilusTrader's matching. The caller checks ``cnt[N_STATUS]``."""
    m_total = seq_sym.size
    validation = vi[W_VALID] != 0
    fill_lat, bar_ns = vi[W_FILL_LAT], vi[W_BAR_NS]
    spread_ticks, impact, p_limit, p_slip = vf[V_SPREAD], vf[V_IMPACT], vf[V_PLIMIT], vf[V_PSLIP]
    s = seq_sym[m]
    b = boff[s] + seq_idx[m]  # this bar (the merged sequence: close time, then symbol order)
    t = bts[b]
    if t > clock[C_LAST]:
        if clock[C_LAST] >= 0:
            n_eq = clock[C_NEQ]
            eq_ts[n_eq] = clock[C_LAST]
            eq[n_eq] = _equity(cnt[N_BAL], sf, si, boff, bc)
            clock[C_NEQ] = n_eq + 1
        clock[C_LAST] = t
        # every symbol with a bar at t advances to it; funding up to that bar's open
        k = m
        while k < m_total:
            s2 = seq_sym[k]
            i2 = seq_idx[k]
            if bts[boff[s2] + i2] != t:
                break
            si[s2, S_CUR] = i2
            upto = t - bar_ns
            while si[s2, S_NF] < foff[s2 + 1] and fts[si[s2, S_NF]] <= upto:
                fidx = si[s2, S_NF]
                si[s2, S_NF] += 1
                q2 = sf[s2, F_QTY]
                if q2 == 0:
                    continue
                b2 = boff[s2] + i2
                mark = bc[b2 - 1] if i2 > 0 else bo[b2]
                amount = q2 * mark * frate[fidx]
                cnt[N_BAL] -= units_nb(amount)
                sf[s2, F_WALLET] -= amount
                sf[s2, F_LIQ] = liquidation_price_nb(1 if q2 > 0 else -1, abs(q2), sf[s2, F_AVG], sf[s2, F_WALLET],
                                                     kfloor, kcap, kmmr, kcum, koff[s2], koff[s2 + 1])  # fmt: skip
                nr = cnt[N_FUND]
                ri[nr, 0] = fts[fidx]
                ri[nr, 1] = s2
                ri[nr, 2] = si[s2, S_TRADE]
                rf[nr, 0] = q2
                rf[nr, 1] = mark
                rf[nr, 2] = frate[fidx]
                rf[nr, 3] = amount
                cnt[N_FUND] = nr + 1
            k += 1
        # the venue module has the exchange execute the commands due by t (if any is due)
        due = False
        if cnt[N_MP] > 0:
            k = 0
            for a in range(cnt[N_MP]):
                if mp[a] <= t:
                    due = True
                else:
                    mp[k] = mp[a]
                    k += 1
            cnt[N_MP] = k
        if due:
            _process(t, validation, spread_ticks, impact, p_slip, fill_lat, bar_ns, seed, boff, bo, bvol,
                     bavg, sp_f, sp_i, vi, kfloor, kcap, kmmr, kcum, koff, sf, si, oi, of, qi, qf, mp, cnt, fi, ff)  # fmt: skip
    if cnt[N_STATUS] != OK:
        return
    # -- this bar: liquidation, stop before take-profit, NautilusTrader's matching -------------------
    i = si[s, S_CUR]
    b = boff[s] + i
    o, h, lo, c = bo[b], bh[b], bl[b], bc[b]
    q = sf[s, F_QTY]
    if q != 0:
        lp = sf[s, F_LIQ]
        if (q > 0 and lp > 0 and lo <= lp) or (q < 0 and h >= lp):
            liquidate = True
            if q > 0:
                if o > lp:
                    for sl in range(K):
                        if (oi[s, sl, O_ST] == OPEN and oi[s, sl, O_KIND] == STOP and oi[s, sl, O_SIDE] < 0
                                and of[s, sl, OF_PX] >= lp):  # fmt: skip
                            liquidate = False
            else:
                if o < lp:
                    for sl in range(K):
                        if (oi[s, sl, O_ST] == OPEN and oi[s, sl, O_KIND] == STOP and oi[s, sl, O_SIDE] > 0
                                and of[s, sl, OF_PX] <= lp):  # fmt: skip
                            liquidate = False
            if liquidate:
                _liquidate(s, t, b, bo, sf, si, oi, sp_f, li, lf, fi, ff, cnt)
        q = sf[s, F_QTY]
        if q != 0:
            long = q > 0
            exit_side = -1 if long else 1
            stop_hit = False
            target = -1
            for sl in range(K):
                if oi[s, sl, O_ST] != OPEN or oi[s, sl, O_SIDE] != exit_side or oi[s, sl, O_KIND] == MARKET:
                    continue
                px = of[s, sl, OF_PX]
                if oi[s, sl, O_KIND] == STOP and ((lo <= px) if long else (h >= px)):
                    stop_hit = True
                elif oi[s, sl, O_KIND] == LIMIT and ((h >= px) if long else (lo <= px)):
                    target = sl
            if stop_hit and target >= 0:
                _done(oi, si, s, target)  # pessimistic: the take-profit is cancelled, the stop fills
    resting = False
    for sl in range(K):
        if oi[s, sl, O_ST] == OPEN and oi[s, sl, O_KIND] != MARKET:
            resting = True
            break
    if not resting:  # nothing to match: the last price ends at the close (see below)
        sf[s, F_LAST] = c
        si[s, S_LAST_INIT] = 1
    for point in range(4 if resting else 0):
        # After the path the last price is always the close: either the close moved it or it equalled it.
        if point == 0:
            px = o
            if si[s, S_LAST_INIT] != 0 and px == sf[s, F_LAST]:
                continue
        elif point == 1:
            px = h
            if not px > sf[s, F_LAST]:
                continue
        elif point == 2:
            px = lo
            if not px < sf[s, F_LAST]:
                continue
        else:
            px = c
            if px == sf[s, F_LAST]:
                continue
        # resting orders in NautilusTrader's order: buys by price descending, then sells ascending
        n_buf = 0
        for pass_side in (1, -1):
            start = n_buf
            for sl in range(K):
                if oi[s, sl, O_ST] == OPEN and oi[s, sl, O_SIDE] == pass_side and oi[s, sl, O_KIND] != MARKET:
                    order_buf[n_buf] = sl
                    n_buf += 1
                    p = n_buf - 1
                    while p > start:
                        a0, a1 = order_buf[p - 1], order_buf[p]
                        x0, x1 = of[s, a0, OF_PX], of[s, a1, OF_PX]
                        before = (x1 > x0) if pass_side > 0 else (x1 < x0)
                        if not (before or (x1 == x0 and oi[s, a1, O_SEQ] < oi[s, a0, O_SEQ])):
                            break
                        order_buf[p - 1], order_buf[p] = a1, a0
                        p -= 1
        for qn in range(n_buf):
            sl = order_buf[qn]
            if oi[s, sl, O_ST] != OPEN:
                continue
            side_o = oi[s, sl, O_SIDE]
            oprice = of[s, sl, OF_PX]
            if oi[s, sl, O_KIND] == STOP:
                if not ((side_o > 0 and px >= oprice) or (side_o < 0 and px <= oprice)):
                    continue
                gapped = (o <= oprice) if side_o < 0 else (o >= oprice)
                reference = o if gapped else oprice
                econ = (t - bar_ns) if gapped else t
                est = sp_f[s, P_TICK] if validation else _coin_tick(s, t, p_slip, seed, sp_f, sp_i, si)
                fpx = fixed_nb(round_adverse_nb(reference + side_o * est, sp_f[s, P_TICK], side_o),
                               sp_f[s, P_POWP], sp_f[s, P_RESTP])  # fmt: skip
                _fill(s, sl, t, econ, fpx, reference, est, True, sf, si, oi, of, sp_f, kfloor, kcap, kmmr, kcum,
                      koff, fi, ff, cnt)  # fmt: skip
            else:
                if not ((side_o > 0 and px <= oprice) or (side_o < 0 and px >= oprice)):
                    continue
                if px == oprice and not _limit_queue(s, t, p_limit, seed, sp_i, si):
                    continue  # only touched: still queued
                _fill(s, sl, t, t, oprice, oprice, 0.0, False, sf, si, oi, of, sp_f, kfloor, kcap, kmmr, kcum,
                      koff, fi, ff, cnt)  # fmt: skip
        sf[s, F_LAST] = px
        si[s, S_LAST_INIT] = 1


@njit(cache=True)
def after_decision_nb(t, boff, bo, bvol, bavg, koff, kfloor, kcap, kmmr, kcum, sp_f, sp_i, vf, vi, seed,
                      sf, si, oi, of, qi, qf, mp, cnt, fi, ff):  # fmt: skip
    """After the strategy decided on a bar closing at `t`: the exchange executes what is already due."""
    if cnt[N_Q] > 0 and qi[0, Q_TS] <= t:
        _process(t, vi[W_VALID] != 0, vf[V_SPREAD], vf[V_IMPACT], vf[V_PSLIP], vi[W_FILL_LAT], vi[W_BAR_NS], seed,
                 boff, bo, bvol, bavg, sp_f, sp_i, vi, kfloor, kcap, kmmr, kcum, koff, sf, si, oi, of, qi, qf, mp, cnt,
                 fi, ff)  # fmt: skip


@njit(cache=True)
def close_run_nb(boff, bc, sf, si, cnt, clock, eq_ts, eq):
    """The last close time's equity point; returns the number of equity points."""
    if clock[C_LAST] >= 0:
        n_eq = clock[C_NEQ]
        eq_ts[n_eq] = clock[C_LAST]
        eq[n_eq] = _equity(cnt[N_BAL], sf, si, boff, bc)
        clock[C_NEQ] = n_eq + 1
        clock[C_LAST] = -1
    return clock[C_NEQ]


@njit(cache=True)
def simulate_nb(
    seq_sym, seq_idx, boff, bts, bo, bh, bl, bc, bvol, bavg,
    sig, exl, exs, alw, stopd, tgtd, traild,
    foff, fts, frate, koff, kfloor, kcap, kmmr, kcum,
    sp_f, sp_i, vf, vi, seed,
    fi, ff, ri, rf, li, lf, eq_ts, eq,
):  # fmt: skip
    """Run one backtest into the preallocated record arrays; return the counters
    (``cnt[N_FILL]`` fills, ``cnt[N_FUND]`` funding records, ``cnt[N_LIQ]`` liquidations,
    ``cnt[N_STATUS]`` FULL when the fill arrays were too small) and the number of equity points."""
    sf, si, oi, of, qi, qf, mp, cnt, order_buf, clock = new_state_nb(boff.size - 1, foff, vi[W_BAL_UNITS])
    for m in range(seq_sym.size):
        open_bar_nb(m, seq_sym, seq_idx, boff, bts, bo, bh, bl, bc, bvol, bavg, foff, fts, frate, koff, kfloor, kcap,
                    kmmr, kcum, sp_f, sp_i, vf, vi, seed, sf, si, oi, of, qi, qf, mp, cnt, order_buf, clock, fi, ff, ri,
                    rf, li, lf, eq_ts, eq)  # fmt: skip
        if cnt[N_STATUS] != OK:
            return cnt, clock[C_NEQ]
        # -- the strategy on the bar's close, then the exchange processes what is due -------------------------
        s = seq_sym[m]
        i = si[s, S_CUR]
        b = boff[s] + i
        t = bts[b]
        if i >= sp_i[s, I_READY] and si[s, S_INFLIGHT] == 0:
            if sf[s, F_QTY] == 0 and sig[b] == 0:  # flat without a signal: the signal lapses, nothing else
                si[s, S_SIGNALLED] = 0
            elif not (sf[s, F_QTY] == 0 and sig[b] == si[s, S_SIGNALLED]):  # (flat, signal already acted on)
                _decide(s, i, b, t, bc[b], sig, exl, exs, alw, stopd, tgtd, traild, boff, bc, sp_f, sp_i, vf, vi, sf,
                        si, oi, of, qi, qf, mp, cnt)  # fmt: skip
        after_decision_nb(t, boff, bo, bvol, bavg, koff, kfloor, kcap, kmmr, kcum, sp_f, sp_i, vf, vi, seed, sf, si, oi,
                          of, qi, qf, mp, cnt, fi, ff)  # fmt: skip
    return cnt, close_run_nb(boff, bc, sf, si, cnt, clock, eq_ts, eq)
