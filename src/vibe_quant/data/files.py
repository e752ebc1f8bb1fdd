"""Binance archive file names, periods and URLs (pure).

Official names: ``FILUSDT-1m-2023-08.zip`` (monthly), ``FILUSDT-1m-2023-08-05.zip`` (daily),
``BTCUSDT-fundingRate-2026-04.zip`` (monthly only), each also as ``.csv`` once unzipped.
URLs: ``{root}/data/futures/um/{monthly|daily}/klines/{SYMBOL}/1m/{name}`` and
``{root}/data/futures/um/monthly/fundingRate/{SYMBOL}/{name}``, with ``{url}.CHECKSUM`` beside.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

KLINES = "klines"
FUNDING = "fundingRate"
DATASETS = (KLINES, FUNDING)
MARKET = "futures-um"
VENUE = "BINANCE"
KLINE_INTERVAL = "1m"

_NAME = re.compile(
    r"^(?P<symbol>[^\s/\\-]+)-(?P<kind>1m|fundingRate)-(?P<y>\d{4})-(?P<m>\d{2})(?:-(?P<d>\d{2}))?"
    r"\.(?P<ext>zip|csv)$"
)
NS_PER_MS = 1_000_000


def utc_ms(day: dt.date) -> int:
    """Return midnight UTC of `day` in epoch milliseconds."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 1000


def iso_ms(ms: int, seconds: bool = True) -> str:
    """Format epoch milliseconds for messages: ``2023-09-01 03:17:00 UTC``."""
    fmt = "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime(fmt)


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


@dataclass(frozen=True, order=True)
class ArchiveFile:
    """One archive file identified by its official name.

    ``start``/``end`` are the half-open UTC date span ``[start, end)`` the file speaks for.
    """

    dataset: str
    symbol: str
    start: dt.date
    end: dt.date
    kind: str  # "monthly" or "daily"
    ext: str = "zip"

    @property
    def name(self) -> str:
        tag = KLINE_INTERVAL if self.dataset == KLINES else FUNDING
        date = f"{self.start:%Y-%m}" if self.kind == "monthly" else f"{self.start:%Y-%m-%d}"
        return f"{self.symbol}-{tag}-{date}.{self.ext}"

    @property
    def start_ms(self) -> int:
        return utc_ms(self.start)

    @property
    def end_ms(self) -> int:
        return utc_ms(self.end)

    def url(self, root: str) -> str:
        """Return the official URL under archive root `root` (``https://data.binance.vision``)."""
        sub = f"{KLINES}/{self.symbol}/{KLINE_INTERVAL}" if self.dataset == KLINES else f"{FUNDING}/{self.symbol}"
        return f"{root.rstrip('/')}/data/futures/um/{self.kind}/{sub}/{self.name}"

    def with_ext(self, ext: str) -> ArchiveFile:
        return ArchiveFile(self.dataset, self.symbol, self.start, self.end, self.kind, ext)


def parse_name(name: str) -> ArchiveFile | None:
    """Return the :class:`ArchiveFile` an official file name denotes, or None."""
    m = _NAME.match(name)
    if m is None:
        return None
    dataset = KLINES if m["kind"] == KLINE_INTERVAL else FUNDING
    try:
        if m["d"]:
            start = dt.date(int(m["y"]), int(m["m"]), int(m["d"]))
            return ArchiveFile(dataset, m["symbol"], start, start + dt.timedelta(days=1), "daily", m["ext"])
        start = dt.date(int(m["y"]), int(m["m"]), 1)
    except ValueError:
        return None
    return ArchiveFile(dataset, m["symbol"], start, next_month(start), "monthly", m["ext"])


def plan_files(dataset: str, symbol: str, start: dt.date, end: dt.date) -> list[ArchiveFile]:
    """Return the official files covering ``[start, end)``: monthly for whole months, else daily.

    Funding rates exist only as monthly files, so a partial month uses the monthly file (the
    ingest clips it to the range).
    """
    out: list[ArchiveFile] = []
    month = month_start(start)
    while month < end:
        nxt = next_month(month)
        whole = start <= month and nxt <= end
        if whole or dataset == FUNDING:
            out.append(ArchiveFile(dataset, symbol, month, nxt, "monthly"))
        else:
            day = max(start, month)
            while day < min(end, nxt):
                out.append(ArchiveFile(dataset, symbol, day, day + dt.timedelta(days=1), "daily"))
                day += dt.timedelta(days=1)
        month = nxt
    return out
