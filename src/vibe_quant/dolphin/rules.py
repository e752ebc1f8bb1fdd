"""The NDAlphaEngine's formulas as pure functions (docs/specs.md#dolphin-engine).

Scalar rules (signal gate, confidence, direction confirmation, order-book confirmation, sizing,
Layer 7 multipliers, the ACB's regime multiplier, the leverage clamp, the MC gate, exit fees and
slips) are plain Python over floats: they run once per entry or exit. The per-asset IRP ranking
runs over ~100 assets at every candidate bar: its source is written once as loops
(:func:`irp_metrics_py`, :func:`best_irp_asset_py`, the slow reference twins) and compiled with
numba (:data:`best_irp_asset_nb`), so both give the same floats operation for operation.

``direction`` is -1 (SHORT) or +1 (LONG); the LONG rules mirror the SHORT ones around
``long_threshold``/``long_extreme``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from vibe_quant.dolphin.engine_config import EngineConfig

# DC outcomes
CONFIRM, NEUTRAL, CONTRADICT = 1, 0, -1
MC_OK, MC_ORANGE, MC_RED = "OK", "ORANGE", "RED"


def clamp(x: float, low: float, high: float) -> float:
    return low if x < low else high if x > high else x


def signal_fires(vel_div: float, cfg: EngineConfig) -> bool:
    """The gate: SHORT ``vel_div < vel_div_threshold``; LONG ``vel_div > long_threshold``."""
    return vel_div < cfg.vel_div_threshold if cfg.direction < 0 else vel_div > cfg.long_threshold


def _edges(cfg: EngineConfig) -> tuple[float, float]:
    return (cfg.vel_div_threshold, cfg.vel_div_extreme) if cfg.direction < 0 else (cfg.long_threshold, cfg.long_extreme)


def strength(vel_div: float, cfg: EngineConfig) -> float:
    """``clamp((threshold - vel_div) / (threshold - extreme), 0, 1)``; 1 at or beyond the extreme."""
    threshold, extreme = _edges(cfg)
    if is_extreme(vel_div, cfg):
        return 1.0
    return clamp((threshold - vel_div) / (threshold - extreme), 0.0, 1.0)


def is_extreme(vel_div: float, cfg: EngineConfig) -> bool:
    return vel_div <= cfg.vel_div_extreme if cfg.direction < 0 else vel_div >= cfg.long_extreme


def confidence(vel_div: float, cfg: EngineConfig) -> float:
    """The signal's confidence ``0.50 + ratio * 0.40`` (range [0.50, 0.90])."""
    threshold, extreme = _edges(cfg)
    ratio = clamp((threshold - vel_div) / (threshold - extreme), 0.0, 1.0)
    return cfg.confidence_base + ratio * cfg.confidence_span


def direction_confirmation(history, cfg: EngineConfig) -> int:
    """DC on an asset's price history: the change from ``history[n-lookback-1]`` to ``history[n-1]`` in bp.

    SHORT: below ``-dc_min_magnitude_bps`` CONFIRM, above ``+dc_min_magnitude_bps`` CONTRADICT, else
    NEUTRAL (LONG: mirrored). Fewer than ``lookback + 1`` prices: NEUTRAL.
    """
    n = len(history)
    if n < cfg.dc_lookback_bars + 1:
        return NEUTRAL
    chg_bps = dc_change_bps(float(history[n - cfg.dc_lookback_bars - 1]), float(history[n - 1]))
    if cfg.direction < 0:
        chg_bps = -chg_bps  # positive: the price moves our way
    if chg_bps > cfg.dc_min_magnitude_bps:
        return CONFIRM
    if chg_bps < -cfg.dc_min_magnitude_bps:
        return CONTRADICT
    return NEUTRAL


def dc_change_bps(p0: float, p1: float) -> float:
    """The specification's ``chg_bps = (p1 - p0) / p0 * 10000``."""
    return (p1 - p0) / p0 * 10000.0


def ob_confirmation(imbalance_ma5: float, persistence: float, direction: int) -> float | None:
    """OB-2: the confidence factor from the order-book imbalance; None: a hard skip.

    ``eff_imb = -imbalance_ma5`` for SHORT (sell pressure positive), ``+imbalance_ma5`` for LONG.
    """
    eff_imb = -imbalance_ma5 if direction < 0 else imbalance_ma5
    if eff_imb > 0.10:
        return 1.0 + min(0.15, eff_imb * persistence * 0.5)
    if eff_imb < -0.15 and persistence > 0.60:
        return None
    if eff_imb < -0.10:
        return max(0.85, 1.0 - abs(eff_imb) * persistence * 0.4)
    return 1.0


def size_leverage(strength_score: float, cfg: EngineConfig) -> float:
    """Cubic convex leverage ``min + s**convexity * (max - min)`` (0.5..5.0 before the ACB)."""
    return cfg.min_leverage + strength_score**cfg.leverage_convexity * (cfg.max_leverage - cfg.min_leverage)


def bucket(vel_div: float, cfg: EngineConfig) -> int:
    """0 extreme (beyond 1.5 x extreme), 1 strong, 2 moderate (beyond the midpoint), 3 weak.

    The edges are rounded to 1e-12 so that they are the decimals the specification prints
    (``-0.05 * 1.5`` is -0.07500000000000001 in binary floating point, which would put -0.075 in
    bucket 1).
    """
    threshold, extreme = _edges(cfg)
    s = -cfg.direction  # +1 SHORT: compare as is; LONG: mirrored
    x = vel_div * s
    if x <= round(extreme * 1.5, 12) * s:
        return 0
    if x <= extreme * s:
        return 1
    if x <= round((threshold + extreme) / 2, 12) * s:
        return 2
    return 3


def bucket_boost(win_rate: float | None) -> float:
    """Layer 7 bucket boost, checked in the specification's order; None (too few trades): 1.0."""
    if win_rate is None:
        return 1.0
    if win_rate > 0.60:
        return 1.3
    if win_rate > 0.55:
        return 1.1
    if win_rate < 0.40:
        return 0.7
    if win_rate < 0.45:
        return 0.85
    return 1.0


def streak_mult(losses: int | None) -> float:
    """Losses among the last 5 trades: >= 4 -> 0.5, >= 3 -> 0.7, <= 1 -> 1.1, 2 -> 1.0; None: 1.0."""
    if losses is None:
        return 1.0
    if losses >= 4:
        return 0.5
    if losses >= 3:
        return 0.7
    if losses <= 1:
        return 1.1
    return 1.0


def trend_mult(vd_trend: float | None, cfg: EngineConfig) -> float:
    """``vd_trend = history[-1] - history[-10]``: deepening (SHORT: < -0.01) 1.3, recovering 0.7; None 1.0."""
    if vd_trend is None:
        return 1.0
    x = vd_trend if cfg.direction < 0 else -vd_trend  # LONG: mirrored
    if x < cfg.trend_deepening:
        return cfg.trend_deepening_mult
    if x > cfg.trend_recovering:
        return cfg.trend_recovering_mult
    return 1.0


def eff_fraction(strength_score: float, extreme: bool, multipliers: float, cfg: EngineConfig) -> float:
    """``clamp((0.02 + s*(fraction-0.02)) * conf/0.95 * extreme_boost * multipliers, 0.02, fraction)``."""
    conf = cfg.sizer_confidence_extreme if extreme else cfg.sizer_confidence
    conf_mult = conf / cfg.sizer_confidence_norm
    boost = cfg.extreme_boost if extreme else 1.0
    base = cfg.min_fraction + strength_score * (cfg.fraction - cfg.min_fraction)
    return clamp(base * conf_mult * boost * multipliers, cfg.min_fraction, cfg.fraction)


def regime_size_mult(vel_div: float, base_boost: float, beta: float, mc_scale: float, cfg: EngineConfig) -> float:
    """ACB Scale 2: ``boost * (1 + beta * strength**convexity) * mc_scale`` (beta 0: ``boost * mc_scale``)."""
    if beta > 0:
        threshold, extreme = _edges(cfg)
        s = clamp((threshold - vel_div) / (threshold - extreme), 0.0, 1.0) ** cfg.leverage_convexity
        return base_boost * (1.0 + beta * s) * mc_scale
    return base_boost * mc_scale


def final_leverage(size_lev: float, rsm: float, market_mult: float, dc_mult: float, posture: str,
                   cfg: EngineConfig) -> tuple[float, float]:  # fmt: skip
    """The clamp: ``(final, clamped_max)`` with ``clamped_max = min(max * rsm * market, abs_max)``, STALKER <= 2."""
    clamped_max = min(cfg.max_leverage * rsm * market_mult, cfg.abs_max_leverage)
    if posture == "STALKER":
        clamped_max = min(clamped_max, cfg.stalker_max_leverage)
    raw = size_lev * dc_mult * rsm * market_mult
    return clamp(raw, cfg.min_leverage, clamped_max), clamped_max


def mc_status(catastrophic_probability: float, envelope_score: float) -> str:
    """RED: cat > 0.25 or env < -1.0; ORANGE: env < 0 or cat > 0.10; else OK."""
    if catastrophic_probability > 0.25 or envelope_score < -1.0:
        return MC_RED
    if envelope_score < 0 or catastrophic_probability > 0.10:
        return MC_ORANGE
    return MC_OK


def pnl_pct(entry: float, price: float, direction: int) -> float:
    """The unleveraged price return of a position: SHORT ``(entry - price) / entry``."""
    return (entry - price) / entry if direction < 0 else (price - entry) / entry


def exit_price(price: float, direction: int, slip: float) -> float:
    """The exit price moved against the position by `slip` (SHORT: ``price * (1 + slip)``)."""
    return price * (1.0 + slip) if direction < 0 else price * (1.0 - slip)


# -- IRP: one source, two twins -------------------------------------------------------------------


def irp_metrics_py(prices, direction, use_returns, epsilon, latency_fraction, latency_default):
    """IRP of one asset's window: ``(mfe, mae, efficiency, alignment, noise, latency)``.

    ``dir_returns[i] = (p[i+1] - p[i]) * direction`` (``price_diff``, the specification's form) or
    ``(p[i+1] / p[i] - 1) * direction`` (``returns``); the cumulative sum gives the MFE and MAE;
    noise is the population variance of the directional returns; latency the first 0-based index
    where the cumulative reaches ``latency_fraction`` of the MFE (``latency_default`` when the MFE
    is <= 0).
    """
    n_ret = prices.shape[0] - 1
    cum = 0.0
    mfe = -np.inf
    low = 0.0
    positive = 0
    total = 0.0
    for i in range(n_ret):
        r = (prices[i + 1] / prices[i] - 1.0) * direction if use_returns else (prices[i + 1] - prices[i]) * direction
        cum += r
        if cum > mfe:
            mfe = cum
        if cum < low:
            low = cum
        if r > 0:
            positive += 1
        total += r
    mean = total / n_ret
    sq = 0.0
    for i in range(n_ret):
        r = (prices[i + 1] / prices[i] - 1.0) * direction if use_returns else (prices[i + 1] - prices[i]) * direction
        sq += (r - mean) * (r - mean)
    noise = sq / n_ret
    mae = -low if low < 0 else 0.0
    efficiency = mfe / (mae + epsilon)
    alignment = positive / n_ret
    latency = latency_default
    if mfe > 0:
        target = latency_fraction * mfe
        cum = 0.0
        for i in range(n_ret):
            if use_returns:
                cum += (prices[i + 1] / prices[i] - 1.0) * direction
            else:
                cum += (prices[i + 1] - prices[i]) * direction
            if cum >= target:
                latency = i
                break
    return mfe, mae, efficiency, alignment, noise, latency


def ars_py(efficiency, alignment, noise, w_eff, w_align, w_noise, noise_scale):
    """``ARS = 0.5 * log1p(efficiency) + 0.35 * alignment - 0.15 * noise * 1000``."""
    return w_eff * math.log1p(efficiency) + w_align * alignment - w_noise * noise * noise_scale


def _best_irp_asset(metrics, ars):
    """Build the ranking over the given metric and ARS functions (Python or compiled: one source)."""

    def best_irp_asset(windows, eligible, direction, params):
        """The first asset of the IRP ranking that passes every gate, or -1.

        `windows` (w, k): each column one asset's last w prices; `eligible` (k,) bool: the asset may
        be taken (it has a price now and passes the order-book depth gate). Per asset the direct and
        the inverse direction are scored and the higher ARS kept (the direct one on a tie); the
        kernel's gates (noise, latency, alignment) and the wrapper's (minimum alignment, the kept
        direction must be the regime's) then apply. Ranking by ARS descending with ties in column
        order and taking the first survivor is taking the surviving maximum, lowest column on ties.
        `params`: see :func:`irp_params`.
        """
        (use_returns, epsilon, latency_fraction, latency_default, w_eff, w_align, w_noise, noise_scale,
         max_noise, max_latency, kernel_min_alignment, min_alignment) = params  # fmt: skip
        best = -1
        best_ars = -np.inf
        for j in range(windows.shape[1]):
            if not eligible[j]:
                continue
            col = windows[:, j]
            m1 = metrics(col, direction, use_returns, epsilon, latency_fraction, latency_default)
            a1 = ars(m1[2], m1[3], m1[4], w_eff, w_align, w_noise, noise_scale)
            m2 = metrics(col, -direction, use_returns, epsilon, latency_fraction, latency_default)
            a2 = ars(m2[2], m2[3], m2[4], w_eff, w_align, w_noise, noise_scale)
            if a2 > a1:
                continue  # the inverse direction wins: its action is not the regime's (direction gate)
            noise, latency, alignment = m1[4], m1[5], m1[3]
            if noise > max_noise or latency > max_latency or alignment < kernel_min_alignment:
                continue
            if min_alignment > 0 and alignment < min_alignment:
                continue
            if a1 > best_ars:
                best_ars = a1
                best = j
        return best

    return best_irp_asset


irp_metrics_nb = numba.njit(cache=True)(irp_metrics_py)
ars_nb = numba.njit(cache=True)(ars_py)
best_irp_asset_py = _best_irp_asset(irp_metrics_py, ars_py)  # the slow reference twin
best_irp_asset_nb = numba.njit(cache=True)(_best_irp_asset(irp_metrics_nb, ars_nb))


def irp_params(cfg: EngineConfig) -> tuple:
    """The tuple :func:`best_irp_asset_py` / ``_nb`` take."""
    return (cfg.irp_price_mode == "returns", cfg.irp_epsilon, cfg.irp_latency_fraction, cfg.irp_latency_default,
            cfg.ars_efficiency_weight, cfg.ars_alignment_weight, cfg.ars_noise_weight, cfg.ars_noise_scale,
            cfg.irp_max_noise, cfg.irp_max_latency, cfg.irp_min_alignment, cfg.min_irp_alignment)  # fmt: skip
