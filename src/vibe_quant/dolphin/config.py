"""The scan pipeline's definitions: every choice the DOLPHIN specification leaves open is a named field
here, with its default, and recorded whole in every scan file's metadata and in the manifest
(docs/specs.md#dolphin-scans).

A scan row is one bar of one catalog timeframe (1h by default, 1m supported): windows and every other
time-like DOLPHIN parameter count rows, never seconds.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

import msgspec

from vibe_quant.data.bars import TIMEFRAME_BY_LABEL, Timeframe
from vibe_quant.errors import ConfigError

DAY_MINUTES = 1440
MAX_ANCHOR_ROWS = 240  # rolling sums are recomputed exactly at least every this many rows


class ScanConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How a scan table is built from catalog bars.

    Defaults: 1h rows; windows of 50, 150, 300 and 750 rows; ``lambda_max(w)`` = the largest
    eigenvalue of the Pearson correlation matrix of the last ``w`` log returns of the universe,
    divided by the number of assets N (so it lies in [1/N, 1]); a window's velocity is the first
    difference of ``lambda_max(w)`` per row; ``vel_div`` = velocity of the first window minus the
    velocity of the last; ``instability_50/150`` are not defined by the specification and are NaN.
    An asset whose price did not move over a window (every return exactly 0) has no correlation:
    it enters that window's matrix as an uncorrelated asset (its row and column are the unit vector).
    """

    timeframe: str = "1h"
    windows: tuple[int, ...] = (50, 150, 300, 750)
    returns: Literal["log"] = "log"  # r_t = log(close_t / close_{t-1})
    matrix: Literal["pearson_correlation"] = "pearson_correlation"
    normalise: Literal["n_assets"] = "n_assets"  # lambda_max / N
    velocity: Literal["first_difference"] = "first_difference"  # lambda(t) - lambda(t-1), per row
    instability: Literal["nan"] = "nan"

    def __post_init__(self) -> None:
        if self.timeframe not in TIMEFRAME_BY_LABEL:
            raise ConfigError(f"timeframe {self.timeframe!r}: choose one of {', '.join(TIMEFRAME_BY_LABEL)}")
        if len(self.windows) < 2 or list(self.windows) != sorted(set(self.windows)):
            raise ConfigError(
                f"windows {list(self.windows)}: give at least two, strictly increasing (e.g. 50,150,300,750)"
            )
        if self.windows[0] < 5:
            raise ConfigError(f"windows {list(self.windows)}: a correlation window needs at least 5 rows")

    @property
    def tf(self) -> Timeframe:
        return TIMEFRAME_BY_LABEL[self.timeframe]

    @property
    def step_ns(self) -> int:
        return self.tf.minutes * 60_000_000_000

    @property
    def rows_per_day(self) -> int:
        return DAY_MINUTES // self.tf.minutes

    @property
    def anchor_rows(self) -> int:
        """Rows per block: the batch builder recomputes its rolling sums exactly at each block's start.

        The largest divisor of the rows per day up to 240 (24 at 1h, 240 at 1m), so blocks never cross
        a day and a row's value depends only on its own scan number and data, never on the range built.
        """
        return max(d for d in range(1, min(self.rows_per_day, MAX_ANCHOR_ROWS) + 1) if self.rows_per_day % d == 0)

    @property
    def warmup_rows(self) -> int:
        """Bars needed before a table's first row: the longest window of returns, one more close, one more row."""
        return self.windows[-1] + 1

    @property
    def velocity_columns(self) -> tuple[str, ...]:
        return tuple(f"v{w}_lambda_max_velocity" for w in self.windows)

    def definitions(self) -> dict:
        """The config plus what each field means, as stored in every output's metadata."""
        return {
            **msgspec.to_builtins(self),
            "vel_div": f"v{self.windows[0]}_lambda_max_velocity - v{self.windows[-1]}_lambda_max_velocity",
            "lambda_max": "largest eigenvalue of the Pearson correlation matrix of the window's log returns / N",
            "flat_asset": "an asset with every return 0 in a window enters that window's matrix uncorrelated",
            "row": f"one {self.timeframe} bar; ts = bar close (UTC); the file of date D holds the bars opened on D",
            "scan_number": "bar close time / bar length (bars since 1970-01-01 UTC): stable whatever range is built",
        }

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(msgspec.to_builtins(self), sort_keys=True).encode()).hexdigest()[:16]


META_COLUMNS = ("ts", "scan_number", "vel_div")
INSTABILITY_COLUMNS = ("instability_50", "instability_150")


def meta_columns(config: ScanConfig) -> tuple[str, ...]:
    """The columns before the asset columns, in file order."""
    return (*META_COLUMNS, *config.velocity_columns, *INSTABILITY_COLUMNS)
