"""The largest eigenvalue of a window's correlation matrix, one window at a time or a block of rows at once.

:func:`lambda_max_window` is the plain definition (the streaming builder calls it every row, tests and the
benchmark's baseline use it). :func:`lambda_max_block` gives the same numbers for a block of consecutive
rows much faster, in two ways picked by shape:

- ``w >= N`` (window at least as long as the universe): the window's cross-product sums are rolled one
  row at a time (add the new return's outer product, drop the oldest), starting from an exact sum at the
  block's anchor, so a row costs O(N^2) instead of O(w N^2); the N x N matrices are solved in one
  batched ``eigvalsh`` call.
- ``w < N``: the correlation matrix has rank below ``w``, and its non-zero eigenvalues are those of the
  w x w Gram matrix of the standardised returns, which is solved instead (50 x 50 instead of 140 x 140).

Symmetric solvers on float64 throughout (LAPACK through numpy). Rolling sums drift by rounding only
within a block (at most 240 rows), which keeps every row within ~1e-13 of the plain definition.
"""

from __future__ import annotations

import numpy as np

ROW_CHUNK = 256  # rows per batched solve: bounds the (rows, N, N) arrays in memory


def lambda_max_window(returns: np.ndarray) -> float:
    """Return lambda_max / N of one window.

    Parameters
    ----------
    returns : ndarray, shape (w, N)
        The window's log returns, oldest first.

    Returns
    -------
    float
        The largest eigenvalue of the Pearson correlation matrix divided by N, in [1/N, 1]. An asset
        whose returns are all exactly 0 enters the matrix uncorrelated (unit row and column).
    """
    n = returns.shape[1]
    x = returns - returns.mean(axis=0)
    ss = np.einsum("ij,ij->j", x, x)
    flat = ~np.any(returns != 0.0, axis=0)
    scale = np.where(flat, 0.0, 1.0 / np.sqrt(np.where(flat, 1.0, ss)))
    corr = (x.T @ x) * np.outer(scale, scale)
    corr[flat, :] = 0.0
    corr[:, flat] = 0.0
    np.fill_diagonal(corr, 1.0)
    return float(np.linalg.eigvalsh(corr)[-1]) / n


def _corr_from_sums(s: np.ndarray, m: np.ndarray, nz: np.ndarray, w: int) -> np.ndarray:
    """Correlation matrices (rows, N, N) from window sums of outer products, of returns and of non-zero counts."""
    c = s - m[:, :, None] * m[:, None, :] / w
    d = np.einsum("rii->ri", c).copy()
    flat = nz == 0
    scale = np.where(flat, 0.0, 1.0 / np.sqrt(np.where(flat | (d <= 0.0), 1.0, d)))
    c *= scale[:, :, None]
    c *= scale[:, None, :]
    idx = np.arange(c.shape[1])
    c[:, idx, idx] = 1.0
    return c


def _rolled(r: np.ndarray, w: int, first: int, last: int) -> np.ndarray:
    """lambda_max / N for rows first..last (inclusive) with window w, by rolling sums from an exact anchor."""
    n = r.shape[1]
    lo = first - w + 1
    x0 = r[lo : first + 1]
    s = x0.T @ x0
    m = x0.sum(axis=0)
    nz = np.count_nonzero(x0, axis=0)
    out = np.empty(last - first + 1)
    out[0] = np.linalg.eigvalsh(_corr_from_sums(s[None], m[None], nz[None], w))[0, -1] / n
    t = first + 1
    while t <= last:
        stop = min(last, t + ROW_CHUNK - 1)
        new, old = r[t : stop + 1], r[t - w : stop + 1 - w]
        ds = np.einsum("ri,rj->rij", new, new) - np.einsum("ri,rj->rij", old, old)
        ss = np.cumsum(ds, axis=0) + s
        ms = np.cumsum(new - old, axis=0) + m
        nzs = np.cumsum((new != 0.0).astype(np.int64) - (old != 0.0), axis=0) + nz
        out[t - first : stop - first + 1] = np.linalg.eigvalsh(_corr_from_sums(ss, ms, nzs, w))[:, -1] / n
        s, m, nz = ss[-1], ms[-1], nzs[-1]
        t = stop + 1
    return out


def _gram(r: np.ndarray, w: int, first: int, last: int) -> np.ndarray:
    """lambda_max / N for rows first..last with window w < N, through each window's w x w Gram matrix."""
    n = r.shape[1]
    out = np.empty(last - first + 1)
    for t in range(first, last + 1, ROW_CHUNK):
        stop = min(last, t + ROW_CHUNK - 1)
        x = np.lib.stride_tricks.sliding_window_view(r[t - w + 1 : stop + 1], w, axis=0)  # (rows, N, w)
        flat = ~np.any(x != 0.0, axis=2)
        xc = x - x.mean(axis=2, keepdims=True)
        ss = np.einsum("rjk,rjk->rj", xc, xc)
        z = xc * np.where(flat, 0.0, 1.0 / np.sqrt(np.where(flat, 1.0, ss)))[:, :, None]
        g = np.einsum("rjk,rjl->rkl", z, z)  # (rows, w, w): same non-zero spectrum as z z^T (N x N)
        top = np.linalg.eigvalsh(g)[:, -1]
        out[t - first : stop - first + 1] = np.where(flat.any(axis=1), np.maximum(top, 1.0), top) / n
    return out


def lambda_max_block(r: np.ndarray, w: int, first: int, last: int) -> np.ndarray:
    """Return lambda_max / N for rows ``first..last`` (inclusive) of window `w`.

    Parameters
    ----------
    r : ndarray, shape (T, N)
        Log returns, row ``t`` being the return into bar ``t``; rows ``first - w + 1 .. last`` are read.
    w : int
        Window length in rows.
    first, last : int
        The rows to compute; the rolling sums start exactly at ``first``.

    Returns
    -------
    ndarray, shape (last - first + 1,)
    """
    if first - w + 1 < 0:
        raise ValueError(f"window {w} needs rows from {first - w + 1}; the block starts too early")
    if w < r.shape[1]:
        return _gram(r, w, first, last)
    return _rolled(r, w, first, last)


def power_iteration(corr: np.ndarray, tol: float = 1e-15, max_iter: int = 100_000) -> float:
    """The largest eigenvalue of a symmetric positive semi-definite matrix by power iteration.

    An independent check of the LAPACK path (used by the tests): start from the all-ones vector and
    iterate until the Rayleigh quotient stops changing.
    """
    v = np.ones(corr.shape[0]) / np.sqrt(corr.shape[0])
    value = 0.0
    for _ in range(max_iter):
        u = corr @ v
        new = float(v @ u)
        v = u / np.linalg.norm(u)
        if abs(new - value) <= tol * abs(new):
            return new
        value = new
    raise RuntimeError(f"power iteration did not converge in {max_iter} steps")
