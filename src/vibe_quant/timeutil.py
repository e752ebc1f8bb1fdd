"""Times: nanoseconds since the epoch (UTC) as people read them, without float rounding."""

from __future__ import annotations

import datetime as dt

NS_PER_DAY = 86_400 * 1_000_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def utc_datetime(ns: int) -> dt.datetime:
    """`ns` as an aware UTC datetime, truncated to the microsecond (never rounded up)."""
    return _EPOCH + dt.timedelta(microseconds=ns // 1_000)


def iso(ns: int | None) -> str | None:
    """`ns` as ISO 8601 with milliseconds and a ``Z`` (None stays None)."""
    if ns is None:
        return None
    return utc_datetime(ns).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_day(ns: int) -> dt.date:
    """The UTC day that contains the instant `ns`."""
    return (_EPOCH + dt.timedelta(days=ns // NS_PER_DAY)).date()
