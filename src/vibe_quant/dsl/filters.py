"""A DSL strategy's entry time filters (sessions, blocked days, minutes around funding), as one object.

The streaming strategy (``strategy.py``) asks it bar by bar; the compiled perp simulator asks it
for the bars with an entry signal before the run (``vibe_quant.sim``): one rule, two callers.
"""

from __future__ import annotations

import bisect
import datetime as dt
import zoneinfo
from collections.abc import Callable

import numpy as np

NS_PER_MIN = 60_000_000_000
NS_PER_DAY = 1440 * NS_PER_MIN


class EntryFilters:
    """Whether an entry is allowed at a decision time (a bar's close, ns UTC).

    Parameters
    ----------
    analysis : Analysis
        The checked strategy document.
    funding_times : callable
        Returns the symbol's funding settlement times (sorted ns), read once when first needed.
    warn : callable
        Receives the warning when ``avoid_around_funding`` falls back to Binance's 00/08/16 UTC schedule.
    """

    def __init__(self, analysis, funding_times: Callable[[], list[int]], warn: Callable[[str], None]):
        self._sessions = [(s, e, None if tz == "UTC" else zoneinfo.ZoneInfo(tz)) for s, e, tz in analysis.sessions]
        self._blocked_days = analysis.blocked_days
        fa = analysis.doc.time_filters.avoid_around_funding
        self._window = (fa.minutes_before * NS_PER_MIN, fa.minutes_after * NS_PER_MIN) if fa.enabled else None
        self._load = funding_times
        self._warn = warn
        self._times: list[int] | None = None

    @property
    def active(self) -> bool:
        """False when the strategy has no time filter (every entry allowed)."""
        return bool(self._blocked_days or self._sessions or self._window is not None)

    def _funding_times(self, label: str) -> list[int]:
        if self._times is None:
            self._times = list(self._load())
            if not self._times:
                self._warn(f"{label}: no funding times in the catalog; avoid_around_funding uses Binance's "
                           "00:00/08:00/16:00 UTC schedule")  # fmt: skip
        return self._times

    def allowed_at(self, ts: np.ndarray, label: str = "") -> np.ndarray:
        """:meth:`allowed` at every time of `ts` (int64 ns), vectorised: the same rules, array by array
        (``tests/dsl/test_filters.py`` checks them against :meth:`allowed`)."""
        ts = np.asarray(ts, dtype=np.int64)
        ok = np.ones(ts.size, dtype=bool)
        if self._blocked_days:
            ok &= ~np.isin((ts // NS_PER_DAY + 3) % 7, list(self._blocked_days))
        if self._sessions:
            inside = np.zeros(ts.size, dtype=bool)
            for start, end, tz in self._sessions:
                if tz is None:
                    minute = ts // NS_PER_MIN % 1440
                else:
                    import pandas as pd

                    local = pd.DatetimeIndex(ts.astype("datetime64[ns]"), tz="UTC").tz_convert(tz)
                    minute = np.asarray(local.hour * 60 + local.minute, dtype=np.int64)
                inside |= (start <= minute) & (minute <= end) if start <= end else (minute >= start) | (minute <= end)
            ok &= inside
        if self._window is not None:
            before, after = self._window
            times = np.asarray(self._funding_times(label), dtype=np.int64)
            if times.size:
                i = np.searchsorted(times, ts - after, side="left")
                ok &= ~((i < times.size) & (times[np.minimum(i, times.size - 1)] <= ts + before))
            else:
                step = 8 * 60 * NS_PER_MIN
                nearest = np.round(ts / step).astype(np.int64) * step  # 00/08/16 UTC, rounded as round() does
                ok &= ~((nearest - before <= ts) & (ts <= nearest + after))
        return ok

    def allowed(self, ts: int, label: str = "") -> bool:
        """Time filters at decision time `ts` (`label` names the instrument in the fallback warning)."""
        if self._blocked_days and (ts // NS_PER_DAY + 3) % 7 in self._blocked_days:  # 1970-01-01 was a Thursday
            return False
        if self._sessions:
            inside = False
            for start, end, tz in self._sessions:
                if tz is None:
                    minute = ts // NS_PER_MIN % 1440
                else:
                    local = dt.datetime.fromtimestamp(ts / 1e9, tz)
                    minute = local.hour * 60 + local.minute
                if (start <= minute <= end) if start <= end else (minute >= start or minute <= end):
                    inside = True
                    break
            if not inside:
                return False
        if self._window is not None:
            before, after = self._window
            times = self._funding_times(label)
            if times:
                i = bisect.bisect_left(times, ts - after)
                if i < len(times) and times[i] <= ts + before:
                    return False
            else:
                step = 8 * 60 * NS_PER_MIN
                nearest = round(ts / step) * step  # 00/08/16 UTC
                if nearest - before <= ts <= nearest + after:
                    return False
        return True
