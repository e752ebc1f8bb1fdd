"""Min/max decimation of long curves for display.

A browser draws a few thousand points per trace comfortably; a 1m backtest has ~900k. Plain
striding (every k-th point) drops the bars where a drawdown bottoms out. Here the curve is cut
into equal buckets and each keeps its first, lowest, highest and last point in time order, so
every extreme of the full curve is still drawn and the line joins buckets where they really meet.
Written by hand: plotly-resampler does this server-side for Dash apps only, and our figures must
also go into static HTML reports.
"""

from __future__ import annotations

import numpy as np

DISPLAY_POINTS = 4000  # points per curve after decimation (about 1,000 buckets)


def minmax_decimate(x: np.ndarray, y: np.ndarray, max_points: int = DISPLAY_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Return at most about `max_points` points of (x, y) keeping each bucket's first, min, max and last.

    The global minimum and maximum, the first and the last point are always kept. Curves no longer
    than `max_points` come back unchanged. NaN values are ignored when choosing a bucket's extremes.

    Parameters
    ----------
    x, y : np.ndarray
        Same length; `x` sorted (times).
    max_points : int
        Target size (at least 4).

    Returns
    -------
    (np.ndarray, np.ndarray)
        The kept points, in their original order.
    """
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    n = y.size
    if x.size != n:
        raise ValueError(f"x and y differ in length: {x.size} vs {n}")
    if n <= max_points:
        return x, y
    buckets = max(1, max_points // 4)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts, ends = edges[:-1], edges[1:] - 1
    filled = np.where(np.isnan(y), np.inf, y)
    lows = starts + _argreduce(filled, edges, np.minimum)
    filled = np.where(np.isnan(y), -np.inf, y)
    highs = starts + _argreduce(filled, edges, np.maximum)
    keep = np.unique(np.concatenate([starts, lows, highs, ends]))
    return x[keep], y[keep]


def _argreduce(values: np.ndarray, edges: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """Per bucket [edges[i], edges[i+1]): offset of the first element equal to the bucket's ufunc reduction."""
    extreme = ufunc.reduceat(values, edges[:-1])
    sizes = np.diff(edges)
    hit = values == np.repeat(extreme, sizes)
    # the first hit of each bucket is the smallest index among its hits (misses count as past the end)
    idx = np.arange(values.size)
    first = np.minimum.reduceat(np.where(hit, idx, values.size), edges[:-1])
    return first - edges[:-1]
