"""Rolling z-scores in bounded memory: the plain-Python twin of the kernel's windows.

A window keeps its last `size` values twice, in arrival order (to drop the oldest) and sorted (for
the median and MAD in O(size) per push, no re-sort). See
``docs/specs.md#liquidation-pressure-index`` for the scale rules.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

MAD_SCALE = 1.4826  # MAD -> standard deviation under normality
MEANAD_SCALE = 1.253314  # mean absolute deviation -> standard deviation (modified z-score, MAD = 0)


class RollingZ:
    """Z-score of each pushed value against the window of the last `size` values (itself included).

    Parameters
    ----------
    size : int
        Window length (values).
    min_periods : int
        Fewest values held before a z-score is returned; NaN before.
    robust : bool
        Median/MAD (True) or mean/population standard deviation (False).
    """

    def __init__(self, size: int, min_periods: int, robust: bool) -> None:
        self.size = size
        self.min_periods = min_periods
        self.robust = robust
        self._ring: deque[float] = deque()
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._ring)

    def push(self, x: float) -> float:
        """Add `x` (a NaN is not added) and return its z-score, NaN while warming up."""
        if math.isnan(x):
            return math.nan
        if len(self._ring) == self.size:
            old = self._ring.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        self._ring.append(x)
        bisect.insort_left(self._sorted, x)
        n = len(self._sorted)
        if n < self.min_periods:
            return math.nan
        srt = self._sorted
        if self.robust:
            med = median_sorted(srt)
            mad = median_sorted(sorted(abs(v - med) for v in srt))
            if mad > 0.0:
                return (x - med) / (MAD_SCALE * mad)
            total = 0.0
            for v in srt:
                total += abs(v - med)
            mean_ad = total / n
            return 0.0 if mean_ad == 0.0 else (x - med) / (MEANAD_SCALE * mean_ad)
        total = 0.0
        for v in srt:
            total += v
        mean = total / n
        total = 0.0
        for v in srt:
            total += (v - mean) * (v - mean)
        std = math.sqrt(total / n)
        return 0.0 if std == 0.0 else (x - mean) / std


def median_sorted(values: list[float]) -> float:
    """Median of an ascending list."""
    n = len(values)
    if n % 2:
        return values[n // 2]
    return (values[n // 2 - 1] + values[n // 2]) * 0.5
