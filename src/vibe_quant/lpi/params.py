"""Parameters of the LPI feature engine, the validity flags of a snapshot and the snapshot dtype.

The formulas and every choice made where the research specification left a gap are in
``docs/specs.md#liquidation-pressure-index``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from vibe_quant.errors import ConfigError

# Validity flags (bits of ``validity_flags``): a flag is set exactly when its value is NaN, except
# UNQUOTED_TRADE and QUOTES_FREE, which describe the inputs.
NO_QUOTE = 1  # no touch known at the close: spread, mid (and LD unless depth-based) are NaN
UNQUOTED_TRADE = 2  # a trade of the bucket had no touch on its side: it could not count as impact
P_WARMUP = 4  # P is NaN (its window holds fewer than min_periods values)
L_WARMUP = 8  # L is NaN (warm-up, or LD NaN)
EXH_WARMUP = 16  # EXH is NaN
NO_LEV = 32  # LEV is NaN (no open interest yet, or its window warming up)
NO_DEPTH = 64  # no depth value known at the close
RV_WARMUP = 128  # RV is NaN (fewer than rv_window returns)
QUOTES_FREE = 256  # the touch was inferred from the trades, not read from quotes

FLAG_NAMES = {
    NO_QUOTE: "no_quote",
    UNQUOTED_TRADE: "unquoted_trade",
    P_WARMUP: "p_warmup",
    L_WARMUP: "l_warmup",
    EXH_WARMUP: "exh_warmup",
    NO_LEV: "no_lev",
    NO_DEPTH: "no_depth",
    RV_WARMUP: "rv_warmup",
    QUOTES_FREE: "quotes_free",
}

# Float columns of a snapshot, in the kernel's output order.
FLOAT_FIELDS = (
    "notional",
    "impact_sell",
    "impact_buy",
    "spread",
    "mid",
    "depth_proxy",
    "ld",
    "p",
    "l",
    "lpi_fast",
    "exh",
    "lev",
    "rv",
    "sigma",
)
SNAPSHOT_DTYPE = np.dtype(
    [("ts_event", "i8"), ("n_trades", "i8")]
    + [(name, "f8") for name in FLOAT_FIELDS]
    + [("quote_age_ns", "i8"), ("validity_flags", "u4")]
)

Clock = Literal["volume", "time"]
ZScore = Literal["mad", "std"]
LdVariant = Literal["spread_mid", "spread_depth"]
ExhVariant = Literal["spread", "depth"]


@dataclass(frozen=True)
class LpiParams:
    """Parameters of the liquidation pressure index (``docs/specs.md#liquidation-pressure-index``).

    Parameters
    ----------
    clock : {"volume", "time"}, default "volume"
        Bucket clock: a bucket closes on the trade that brings its notional to `bucket_notional`
        (volume), or at the first event at or after ``start + bucket_ns`` (time).
    bucket_notional : float, default 1_000_000.0
        Notional (quote currency, USD/USDT) of a volume bucket.
    bucket_ns : int, default 1_000_000_000
        Length of a time bucket in nanoseconds (1 s).
    eta : float, default 0.0005
        Impact threshold as a fraction of the touch (5 bps).
    window : int, default 300
        Rolling window H of the bucket z-scores, in buckets.
    min_periods : int, default 30
        Fewest values in a window before its z-score is defined (NaN before).
    zscore : {"mad", "std"}, default "mad"
        Robust median/MAD z-score, or mean/standard deviation.
    lambda_ld, lambda_f, lambda_liq, lambda_spr : float, default 1.0
        Weights of L in LPI, of Z(funding) in LEV, of the depth term and of the spread term of EXH.
    ld_variant : {"spread_mid", "spread_depth"}, default "spread_mid"
        LD = spread / mid, or spread / (depth + depth_eps).
    exh_variant : {"spread", "depth"}, default "spread"
        Second term of EXH: spread reversion, or the change of depth.
    depth_eps : float, default 1e-9
        Epsilon of the depth denominator.
    rv_window : int, default 60
        Realised variance window, in bucket returns of the mid.
    lev_window : int, default 288
        Rolling window of the open-interest and funding z-scores, in updates (288 five-minute OI
        rows = one day).
    quotes_free : bool, default False
        Infer the touch from the trades (a sell print sets the bid, a buy print the ask) instead of
        reading quotes.

    Raises
    ------
    ConfigError
        A value is out of range; the message names the field and shows the value.
    """

    clock: Clock = "volume"
    bucket_notional: float = 1_000_000.0
    bucket_ns: int = 1_000_000_000
    eta: float = 0.0005
    window: int = 300
    min_periods: int = 30
    zscore: ZScore = "mad"
    lambda_ld: float = 1.0
    lambda_f: float = 1.0
    lambda_liq: float = 1.0
    lambda_spr: float = 1.0
    ld_variant: LdVariant = "spread_mid"
    exh_variant: ExhVariant = "spread"
    depth_eps: float = 1e-9
    rv_window: int = 60
    lev_window: int = 288
    quotes_free: bool = False

    def __post_init__(self) -> None:
        choices = {
            "clock": ("volume", "time"),
            "zscore": ("mad", "std"),
            "ld_variant": ("spread_mid", "spread_depth"),
            "exh_variant": ("spread", "depth"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"lpi.{name}: {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        positive = ("bucket_notional", "bucket_ns", "window", "min_periods", "rv_window", "lev_window")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"lpi.{name}: {getattr(self, name)!r} must be > 0")
        if not 0 <= self.eta < 1:
            raise ConfigError(f"lpi.eta: {self.eta!r} must be in [0, 1) (a fraction: 5 bps = 0.0005)")
        if self.min_periods > self.window:
            raise ConfigError(f"lpi.min_periods: {self.min_periods} exceeds window {self.window}; lower it")
        if not self.depth_eps >= 0:
            raise ConfigError(f"lpi.depth_eps: {self.depth_eps!r} must be >= 0")
