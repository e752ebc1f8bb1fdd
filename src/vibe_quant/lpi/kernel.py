"""The numba kernel of the LPI feature engine: the formulas of ``features.FeatureEngine`` over arrays.

Every floating-point operation is the reference's, in the same order (sums run over the sorted
window, oldest-first for RV), so the two agree bit for bit. See
``docs/specs.md#liquidation-pressure-index``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from vibe_quant.lpi import params as P
from vibe_quant.lpi.params import LpiParams
from vibe_quant.lpi.rolling import MAD_SCALE, MEANAD_SCALE

# Rows of the bucket windows and of the slow windows.
ZP, ZL, ZE1, ZE2 = 0, 1, 2, 3
ZOI, ZF = 0, 1
NF = len(P.FLOAT_FIELDS)


@njit(cache=True)
def _median_nb(srt, n):
    if n % 2:
        return srt[n // 2]
    return (srt[n // 2 - 1] + srt[n // 2]) * 0.5


@njit(cache=True)
def _kth_dev_nb(srt, n, med, k):
    # k-th smallest |x - med| (0-based): merge the left half (walking down) with the right half.
    j = n // 2
    li = j - 1
    ri = j
    val = 0.0
    for _ in range(k + 1):
        if li >= 0 and (ri >= n or med - srt[li] <= srt[ri] - med):
            val = med - srt[li]
            li -= 1
        else:
            val = srt[ri] - med
            ri += 1
    return val


@njit(cache=True)
def _zpush_nb(ring, srt, cnt, head, k, x, size, minp, robust):
    if math.isnan(x):
        return np.nan
    n = cnt[k]
    row = srt[k]
    if n == size:
        slot = head[k]
        pos = np.searchsorted(row[:n], ring[k, slot])
        for i in range(pos, n - 1):
            row[i] = row[i + 1]
        n -= 1
        head[k] = (slot + 1) % size
    else:
        slot = n
    ring[k, slot] = x
    pos = np.searchsorted(row[:n], x)
    for i in range(n, pos, -1):
        row[i] = row[i - 1]
    row[pos] = x
    n += 1
    cnt[k] = n
    if n < minp:
        return np.nan
    if robust:
        med = _median_nb(row, n)
        if n % 2:
            mad = _kth_dev_nb(row, n, med, n // 2)
        else:
            mad = (_kth_dev_nb(row, n, med, n // 2 - 1) + _kth_dev_nb(row, n, med, n // 2)) * 0.5
        if mad > 0.0:
            return (x - med) / (MAD_SCALE * mad)
        total = 0.0
        for i in range(n):
            total += abs(row[i] - med)
        mean_ad = total / n
        return 0.0 if mean_ad == 0.0 else (x - med) / (MEANAD_SCALE * mean_ad)
    total = 0.0
    for i in range(n):
        total += row[i]
    mean = total / n
    total = 0.0
    for i in range(n):
        total += (row[i] - mean) * (row[i] - mean)
    std = math.sqrt(total / n)
    return 0.0 if std == 0.0 else (x - mean) / std


@njit(cache=True)
def lpi_nb(
    trade_ts, trade_price, trade_notional, trade_side,
    quote_ts, bid_arr, ask_arr, depth_ts, depth_arr, oi_ts, oi_arr, funding_ts, funding_arr,
    time_clock, bucket_notional, bucket_ns, eta, window, minp, robust,
    lambda_ld, lambda_f, lambda_liq, lambda_spr, ld_spread_mid, exh_spread, depth_eps,
    rv_window, lev_window, quotes_free, capacity,
):  # fmt: skip
    """Snapshot columns of every closed bucket.

    Returns ``(ts_event int64 (b,), n_trades int64 (b,), floats float64 (b, NF), quote_age int64 (b,),
    flags int64 (b,))`` with columns as ``params.FLOAT_FIELDS``.
    """
    ring = np.zeros((4, window))
    srt = np.zeros((4, window))
    cnt = np.zeros(4, np.int64)
    head = np.zeros(4, np.int64)
    lev_minp = min(minp, lev_window)
    sring = np.zeros((2, lev_window))
    ssrt = np.zeros((2, lev_window))
    scnt = np.zeros(2, np.int64)
    shead = np.zeros(2, np.int64)
    rvring = np.zeros(rv_window)
    rvn = 0
    rvhead = 0

    cap = max(capacity, 16)
    o_ts = np.empty(cap, np.int64)
    o_n = np.empty(cap, np.int64)
    o_f = np.empty((cap, NF))
    o_age = np.empty(cap, np.int64)
    o_flags = np.empty(cap, np.int64)
    nb = 0

    bid = np.nan
    ask = np.nan
    qts = -1
    dval = np.nan
    z_oi = np.nan
    z_f = np.nan
    fseen = False
    lev = np.nan
    is_open = False
    end = 0
    n = 0
    notional = 0.0
    imp_s = 0.0
    imp_b = 0.0
    unquoted = False
    prev_lpi = np.nan
    prev_spread = np.nan
    prev_depth = np.nan
    prev_mid = np.nan

    nt, nq, nd, no, nfu = trade_ts.size, quote_ts.size, depth_ts.size, oi_ts.size, funding_ts.size
    it = iq = idp = io = ifd = 0
    while True:
        # Next event: earliest time; at one time quotes, depth, OI, funding, then trades.
        kind = -1
        ts = 0
        if iq < nq:
            kind, ts = 0, quote_ts[iq]
        if idp < nd and (kind < 0 or depth_ts[idp] < ts):
            kind, ts = 1, depth_ts[idp]
        if io < no and (kind < 0 or oi_ts[io] < ts):
            kind, ts = 2, oi_ts[io]
        if ifd < nfu and (kind < 0 or funding_ts[ifd] < ts):
            kind, ts = 3, funding_ts[ifd]
        if it < nt and (kind < 0 or trade_ts[it] < ts):
            kind, ts = 4, trade_ts[it]
        if kind < 0:
            break
        close_ts = -1
        if is_open and time_clock and ts >= end:
            close_ts = end
        # Apply the event unless a close must come first: handled by closing, then applying below.
        for step in range(2):
            if step == 0:
                if close_ts < 0:
                    continue
            else:
                close_ts = -1
                if kind == 0:
                    if not quotes_free:
                        bid = bid_arr[iq]
                        ask = ask_arr[iq]
                        qts = ts
                    iq += 1
                elif kind == 1:
                    dval = depth_arr[idp]
                    idp += 1
                elif kind == 2:
                    z_oi = _zpush_nb(sring, ssrt, scnt, shead, ZOI, oi_arr[io], lev_window, lev_minp, robust)
                    lev = z_oi + lambda_f * z_f if fseen else z_oi
                    io += 1
                elif kind == 3:
                    fseen = True
                    z_f = _zpush_nb(sring, ssrt, scnt, shead, ZF, funding_arr[ifd], lev_window, lev_minp, robust)
                    lev = z_oi + lambda_f * z_f
                    ifd += 1
                else:
                    price = trade_price[it]
                    tn = trade_notional[it]
                    side = trade_side[it]
                    it += 1
                    if not is_open:
                        is_open = True
                        end = ts - ts % bucket_ns + bucket_ns
                    n += 1
                    notional += tn
                    if side < 0:
                        if math.isnan(bid):
                            unquoted = True
                        elif price < bid * (1.0 - eta):
                            imp_s += tn
                    elif side > 0:
                        if math.isnan(ask):
                            unquoted = True
                        elif price > ask * (1.0 + eta):
                            imp_b += tn
                    if quotes_free:
                        if side < 0:
                            bid = price
                            qts = ts
                        elif side > 0:
                            ask = price
                            qts = ts
                    if (not time_clock) and notional >= bucket_notional:
                        close_ts = ts
                if close_ts < 0:
                    continue
            # -- close the bucket at close_ts --
            flags = P.QUOTES_FREE if quotes_free else 0
            if unquoted:
                flags |= P.UNQUOTED_TRADE
            spread = np.nan
            mid = np.nan
            if not (math.isnan(bid) or math.isnan(ask)):
                spread = ask - bid
                if quotes_free and spread < 0.0:
                    spread = 0.0
                mid = (ask + bid) * 0.5
            d = dval
            pz = _zpush_nb(ring, srt, cnt, head, ZP, imp_s - imp_b, window, minp, robust)
            ld = spread / mid if ld_spread_mid else spread / (d + depth_eps)
            lz = _zpush_nb(ring, srt, cnt, head, ZL, ld, window, minp, robust)
            lpi = pz + lambda_ld * lz
            e1 = _zpush_nb(ring, srt, cnt, head, ZE1, -(lpi - prev_lpi), window, minp, robust)
            if exh_spread:
                e2 = _zpush_nb(ring, srt, cnt, head, ZE2, -(spread - prev_spread), window, minp, robust)
                exh = e1 + lambda_spr * e2
            else:
                e2 = _zpush_nb(ring, srt, cnt, head, ZE2, d - prev_depth, window, minp, robust)
                exh = e1 + lambda_liq * e2
            rv = np.nan
            sigma = np.nan
            if not (math.isnan(mid) or math.isnan(prev_mid)):
                r = math.log(mid / prev_mid)
                if rvn == rv_window:
                    rvring[rvhead] = r * r
                    rvhead = (rvhead + 1) % rv_window
                else:
                    rvring[rvn] = r * r
                    rvn += 1
                if rvn == rv_window:
                    rv = 0.0
                    for i in range(rv_window):
                        rv += rvring[(rvhead + i) % rv_window]
                    sigma = math.sqrt(rv)
            if math.isnan(mid):
                flags |= P.NO_QUOTE
            if math.isnan(pz):
                flags |= P.P_WARMUP
            if math.isnan(lz):
                flags |= P.L_WARMUP
            if math.isnan(exh):
                flags |= P.EXH_WARMUP
            if math.isnan(lev):
                flags |= P.NO_LEV
            if math.isnan(d):
                flags |= P.NO_DEPTH
            if math.isnan(rv):
                flags |= P.RV_WARMUP
            if nb == cap:
                cap *= 2
                t1 = np.empty(cap, np.int64)
                t1[:nb] = o_ts
                o_ts = t1
                t2 = np.empty(cap, np.int64)
                t2[:nb] = o_n
                o_n = t2
                t3 = np.empty((cap, NF))
                t3[:nb] = o_f
                o_f = t3
                t4 = np.empty(cap, np.int64)
                t4[:nb] = o_age
                o_age = t4
                t5 = np.empty(cap, np.int64)
                t5[:nb] = o_flags
                o_flags = t5
            o_ts[nb] = close_ts
            o_n[nb] = n
            row = o_f[nb]
            row[0] = notional
            row[1] = imp_s
            row[2] = imp_b
            row[3] = spread
            row[4] = mid
            row[5] = d
            row[6] = ld
            row[7] = pz
            row[8] = lz
            row[9] = lpi
            row[10] = exh
            row[11] = lev
            row[12] = rv
            row[13] = sigma
            o_age[nb] = close_ts - qts if qts >= 0 else -1
            o_flags[nb] = flags
            nb += 1
            prev_lpi = lpi
            prev_spread = spread
            prev_depth = d
            prev_mid = mid
            is_open = False
            n = 0
            notional = 0.0
            imp_s = 0.0
            imp_b = 0.0
            unquoted = False
    return o_ts[:nb], o_n[:nb], o_f[:nb], o_age[:nb], o_flags[:nb]


def run_kernel(x, params: LpiParams) -> np.ndarray:
    """Run :func:`lpi_nb` on checked inputs and pack a ``SNAPSHOT_DTYPE`` array."""
    p = params
    nt = x.trade_ts.size
    if p.clock == "volume":
        capacity = min(nt, int(float(x.trade_notional.sum()) / p.bucket_notional) + 2)
    else:
        span = int(x.trade_ts[-1] - x.trade_ts[0]) // p.bucket_ns + 2 if nt else 0
        capacity = min(nt, span)
    ts, n, f, age, flags = lpi_nb(
        x.trade_ts, x.trade_price, x.trade_notional, x.trade_side,
        x.quote_ts, x.bid, x.ask, x.depth_ts, x.depth, x.oi_ts, x.oi, x.funding_ts, x.funding,
        p.clock == "time", float(p.bucket_notional), int(p.bucket_ns), float(p.eta), int(p.window),
        int(p.min_periods), p.zscore == "mad", float(p.lambda_ld), float(p.lambda_f), float(p.lambda_liq),
        float(p.lambda_spr), p.ld_variant == "spread_mid", p.exh_variant == "spread", float(p.depth_eps),
        int(p.rv_window), int(p.lev_window), bool(p.quotes_free), capacity,
    )  # fmt: skip
    out = np.empty(ts.size, dtype=P.SNAPSHOT_DTYPE)
    out["ts_event"] = ts
    out["n_trades"] = n
    for j, name in enumerate(P.FLOAT_FIELDS):
        out[name] = f[:, j]
    out["quote_age_ns"] = age
    out["validity_flags"] = flags
    return out
