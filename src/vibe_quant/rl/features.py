"""The observation's per-bar features (docs/specs.md#rl-observation).

Every feature of bar ``k`` is a function of bars ``0..k`` (closed bars only) and of the funding rates
settled at or before bar ``k``'s close. One compiled step, :func:`feature_step_nb`, updates the
recursive state (EMAs, Wilder's RSI and ATR) and the short histories with one bar and writes its row;
the batch builder (:func:`feature_matrix`, the environment) and the streaming builder
(:class:`FeatureStream`, the NautilusTrader strategy) both call it, so they agree bit for bit.

Scales are fixed (no statistics of the data, so a live stream computes the same numbers): returns,
normalised prices, EMA distances, ATR and realised volatility in percent; funding in basis points;
the volume z-score clipped to +-10; RSI centred (``rsi/100 - 0.5``). The mark premium and the open
interest change are not in the catalog yet: their columns are 0 with a ``*_present`` flag of 0.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

FEATURES = (
    "ret_1", "ret_5", "ret_15", "open", "high", "low", "volume_z", "ema_20", "ema_100", "rsi_14", "atr_14",
    "rv_20", "funding", "funding_24h", "funding_7d", "premium", "premium_present", "oi_change", "oi_present",
)  # fmt: skip
N_FEATURES = len(FEATURES)
WARMUP = 100  # bars before a row is meaningful (the longest: EMA(100)); the first decision needs a full window too
VOLUME_WINDOW = 120
RV_WINDOW = 20
PORTFOLIO = ("position", "unrealized_pnl", "margin_use", "level")

# recursive state st[*]
_EMA20, _EMA100, _GAIN, _LOSS, _ATR, _PREV_C, _N = range(7)
_HIST = 128  # ring buffer length (>= 120 volumes, 16 closes, 20 returns)


@njit(cache=True)
def funding_features_nb(rates, n_known):
    """(current, mean of the last 3, sum of the last 21) of the first `n_known` settled `rates` (0 when none)."""
    if n_known <= 0:
        return 0.0, 0.0, 0.0
    cur = rates[n_known - 1]
    s3 = 0.0
    k3 = 0
    for j in range(max(0, n_known - 3), n_known):
        s3 += rates[j]
        k3 += 1
    s21 = 0.0
    for j in range(max(0, n_known - 21), n_known):
        s21 += rates[j]
    return cur, s3 / k3, s21


@njit(cache=True)
def feature_step_nb(st, closes, volumes, rets, o, h, lo, c, v, f_now, f_24, f_7d, row):
    """Add one closed bar to the state and write its feature row (see the module for the definitions)."""
    n = int(st[_N])
    k = n % _HIST
    closes[k] = c
    volumes[k] = v
    if n == 0:
        st[_EMA20] = c
        st[_EMA100] = c
        st[_GAIN] = 0.0
        st[_LOSS] = 0.0
        st[_ATR] = h - lo
        r1 = 0.0
    else:
        prev = st[_PREV_C]
        r1 = math.log(c / prev) if prev > 0 and c > 0 else 0.0
        st[_EMA20] += (2.0 / 21.0) * (c - st[_EMA20])
        st[_EMA100] += (2.0 / 101.0) * (c - st[_EMA100])
        d = c - prev
        st[_GAIN] += (max(d, 0.0) - st[_GAIN]) / 14.0
        st[_LOSS] += (max(-d, 0.0) - st[_LOSS]) / 14.0
        tr = max(h - lo, abs(h - prev), abs(lo - prev))
        st[_ATR] += (tr - st[_ATR]) / 14.0
    rets[k] = r1
    st[_PREV_C] = c
    st[_N] = n + 1
    count = n + 1
    for j, lag in enumerate((1, 5, 15)):
        back = closes[(n - lag) % _HIST] if n >= lag else 0.0
        row[j] = 100.0 * math.log(c / back) if back > 0 and c > 0 else 0.0
    row[3] = 100.0 * (o / c - 1.0) if c > 0 else 0.0
    row[4] = 100.0 * (h / c - 1.0) if c > 0 else 0.0
    row[5] = 100.0 * (lo / c - 1.0) if c > 0 else 0.0
    m = min(count, 120)
    sv = 0.0
    for j in range(m):
        sv += volumes[(n - j) % _HIST]
    mean = sv / m
    var = 0.0
    for j in range(m):
        dv = volumes[(n - j) % _HIST] - mean
        var += dv * dv
    sd = math.sqrt(var / m)
    z = (v - mean) / sd if sd > 0 else 0.0
    row[6] = min(10.0, max(-10.0, z))
    row[7] = 100.0 * (c / st[_EMA20] - 1.0) if st[_EMA20] > 0 else 0.0
    row[8] = 100.0 * (c / st[_EMA100] - 1.0) if st[_EMA100] > 0 else 0.0
    g, ls = st[_GAIN], st[_LOSS]
    rsi = 50.0 if g + ls == 0 else 100.0 * g / (g + ls)
    row[9] = rsi / 100.0 - 0.5
    row[10] = 100.0 * st[_ATR] / c if c > 0 else 0.0
    mr = min(count - 1, 20)
    ss = 0.0
    for j in range(mr):
        x = rets[(n - j) % _HIST]
        ss += x * x
    row[11] = 100.0 * math.sqrt(ss / mr) if mr > 0 else 0.0
    row[12] = 1e4 * f_now
    row[13] = 1e4 * f_24
    row[14] = 1e4 * f_7d
    row[15] = 0.0
    row[16] = 0.0
    row[17] = 0.0
    row[18] = 0.0


@njit(cache=True)
def feature_matrix_nb(bts, bo, bh, bl, bc, bvol, fts, frate, out):
    """Rows of every bar of one symbol into `out` (n_bars x N_FEATURES); funding settled by each close."""
    st = np.zeros(7)
    closes = np.zeros(_HIST)
    volumes = np.zeros(_HIST)
    rets = np.zeros(_HIST)
    row = np.zeros(out.shape[1])
    nf = 0
    for k in range(bts.size):
        while nf < fts.size and fts[nf] <= bts[k]:
            nf += 1
        f_now, f_24, f_7d = funding_features_nb(frate, nf)
        feature_step_nb(st, closes, volumes, rets, bo[k], bh[k], bl[k], bc[k], bvol[k], f_now, f_24, f_7d, row)
        for j in range(out.shape[1]):
            out[k, j] = row[j]


def feature_matrix(bts, bo, bh, bl, bc, bvol, fts, frate) -> np.ndarray:
    """Feature rows of one symbol's bars, shape (n_bars, N_FEATURES), float64.

    Parameters
    ----------
    bts, bo, bh, bl, bc, bvol : ndarray, shape (n_bars,)
        Close times (ns) and the bars' open, high, low, close and volume.
    fts, frate : ndarray, shape (n_funding,)
        Settlement times (ns) and rates of the funding, sorted.
    """
    out = np.zeros((len(bts), N_FEATURES))
    feature_matrix_nb(np.asarray(bts, np.int64), *(np.asarray(x, np.float64) for x in (bo, bh, bl, bc, bvol)),
                      np.asarray(fts, np.int64), np.asarray(frate, np.float64), out)  # fmt: skip
    return out


class FeatureStream:
    """The same rows one bar at a time (a strategy's live view); ``push`` returns the bar's row.

    Parameters
    ----------
    window : int
        Rows kept for the observation (the newest last).
    """

    def __init__(self, window: int):
        self.window = window
        self._st = np.zeros(7)
        self._closes = np.zeros(_HIST)
        self._volumes = np.zeros(_HIST)
        self._rets = np.zeros(_HIST)
        self._rows = np.zeros((window, N_FEATURES))
        self._row = np.zeros(N_FEATURES)
        self.count = 0

    def push(self, o: float, h: float, lo: float, c: float, v: float, settled_rates: np.ndarray) -> np.ndarray:
        """Add a closed bar; `settled_rates` are the funding rates settled at or before its close, oldest first."""
        f_now, f_24, f_7d = funding_features_nb(settled_rates, settled_rates.size)
        feature_step_nb(self._st, self._closes, self._volumes, self._rets, o, h, lo, c, v, f_now, f_24, f_7d,
                        self._row)  # fmt: skip
        self._rows[:-1] = self._rows[1:]
        self._rows[-1] = self._row
        self.count += 1
        return self._row

    def window_rows(self) -> np.ndarray:
        """The last `window` rows (zeros before the first bars), shape (window, N_FEATURES)."""
        return self._rows
