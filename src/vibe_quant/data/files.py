"""Binance archive file names, markets, datasets, periods and URLs (pure).

Official names: ``FILUSDT-1m-2023-08.zip`` (klines and the mark/index/premium-index klines,
named by interval), ``BTCUSDT-aggTrades-2024-03-01.zip``, ``BTCUSDT-fundingRate-2026-04.zip``
(named by dataset), monthly (``YYYY-MM``) or daily (``YYYY-MM-DD``), each also as ``.csv`` once
unzipped. URLs::

    {root}/data/futures/um/{monthly|daily}/klines/{SYMBOL}/1m/{name}
    {root}/data/futures/um/daily/markPriceKlines/{SYMBOL}/1m/{name}
    {root}/data/futures/cm/daily/aggTrades/{SYMBOL}/{name}
    {root}/data/spot/daily/klines/{SYMBOL}/1h/{name}

with ``{url}.CHECKSUM`` beside. The kline-shaped datasets share one file name, so only the
folder tells ``markPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2024-03-01.zip`` from a traded-price kline
file (:func:`parse_path`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

KLINES = "klines"
MARK_KLINES = "markPriceKlines"
INDEX_KLINES = "indexPriceKlines"
PREMIUM_KLINES = "premiumIndexKlines"
FUNDING = "fundingRate"
AGG_TRADES = "aggTrades"
TRADES = "trades"
BOOK_TICKER = "bookTicker"
METRICS = "metrics"
BOOK_DEPTH = "bookDepth"

KLINE_DATASETS = (KLINES, MARK_KLINES, INDEX_KLINES, PREMIUM_KLINES)  # named by interval
NAMED_DATASETS = (FUNDING, AGG_TRADES, TRADES, BOOK_TICKER, METRICS, BOOK_DEPTH)  # named by dataset
DATASETS = (*KLINE_DATASETS, *NAMED_DATASETS)
TICK_DATASETS = (AGG_TRADES, TRADES, BOOK_TICKER)
DAILY_ONLY = {METRICS, BOOK_DEPTH}  # Binance publishes these per day only
MONTHLY_ONLY = {FUNDING}


@dataclass(frozen=True)
class Market:
    """One Binance market: its CLI key, the raw-lake/state name and the archive URL folder."""

    key: str
    name: str
    path: str
    datasets: tuple[str, ...]


MARKETS = {
    "um": Market("um", "futures-um", "futures/um", DATASETS),
    "cm": Market("cm", "futures-cm", "futures/cm", DATASETS),
    "spot": Market("spot", "spot", "spot", (KLINES, AGG_TRADES, TRADES)),
}
MARKET = MARKETS["um"].name  # the default market (USD-M futures)
VENUE = "BINANCE"
KLINE_INTERVAL = "1m"
# Binance kline intervals with a fixed length (3d, 1w and 1M are calendar-shaped: not supported).
INTERVAL_MINUTES = {
    "1m": 1,
    "3m": 3,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "4h": 240,
    "6h": 360,
    "8h": 480,
    "12h": 720,
    "1d": 1440,
}

_NAME = re.compile(
    r"^(?P<symbol>[^\s/\\-]+)-(?P<tag>[A-Za-z]+|\d+[smhdwM])-(?P<y>\d{4})-(?P<m>\d{2})(?:-(?P<d>\d{2}))?"
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
    """One archive file identified by its official name (and folder, for kline-shaped data).

    ``start``/``end`` are the half-open UTC date span ``[start, end)`` the file speaks for.
    ``interval`` is set for the kline-shaped datasets only.
    """

    dataset: str
    symbol: str
    start: dt.date
    end: dt.date
    kind: str  # "monthly" or "daily"
    ext: str = "zip"
    market: str = "um"
    interval: str | None = KLINE_INTERVAL

    def __post_init__(self) -> None:
        if self.dataset not in KLINE_DATASETS and self.interval is not None:
            object.__setattr__(self, "interval", None)

    @property
    def name(self) -> str:
        tag = self.interval if self.dataset in KLINE_DATASETS else self.dataset
        date = f"{self.start:%Y-%m}" if self.kind == "monthly" else f"{self.start:%Y-%m-%d}"
        return f"{self.symbol}-{tag}-{date}.{self.ext}"

    @property
    def start_ms(self) -> int:
        return utc_ms(self.start)

    @property
    def end_ms(self) -> int:
        return utc_ms(self.end)

    @property
    def market_name(self) -> str:
        return MARKETS[self.market].name

    def url(self, root: str) -> str:
        """Return the official URL under archive root `root` (``https://data.binance.vision``)."""
        sub = f"{self.dataset}/{self.symbol}" + (f"/{self.interval}" if self.interval else "")
        return f"{root.rstrip('/')}/data/{MARKETS[self.market].path}/{self.kind}/{sub}/{self.name}"

    def with_ext(self, ext: str) -> ArchiveFile:
        return ArchiveFile(self.dataset, self.symbol, self.start, self.end, self.kind, ext, self.market, self.interval)


def parse_name(name: str, market: str = "um", dataset: str | None = None) -> ArchiveFile | None:
    """Return the :class:`ArchiveFile` an official file name denotes, or None.

    A name tagged with an interval (``FILUSDT-1m-2023-08.zip``) is a traded-price kline file
    unless `dataset` names another kline-shaped dataset (the folder it was found in).
    """
    m = _NAME.match(name)
    if m is None:
        return None
    tag = m["tag"]
    if tag in NAMED_DATASETS:
        ds, interval = tag, None
    elif tag in INTERVAL_MINUTES or tag[0].isdigit():
        ds, interval = (dataset if dataset in KLINE_DATASETS else KLINES), tag
    else:
        return None
    try:
        if m["d"]:
            start = dt.date(int(m["y"]), int(m["m"]), int(m["d"]))
            return ArchiveFile(
                ds, m["symbol"], start, start + dt.timedelta(days=1), "daily", m["ext"], market, interval
            )
        start = dt.date(int(m["y"]), int(m["m"]), 1)
    except ValueError:
        return None
    return ArchiveFile(ds, m["symbol"], start, next_month(start), "monthly", m["ext"], market, interval)


def market_of_path(parts: tuple[str, ...]) -> str | None:
    """Return the market a mirror folder path denotes (``data/futures/cm/...`` -> ``cm``), or None."""
    if "spot" in parts:
        return "spot"
    for key in ("cm", "um"):
        if key in parts:
            return key
    if "option" in parts:
        return "option"
    return None


def parse_path(parts: tuple[str, ...], name: str, default_market: str = "um") -> ArchiveFile | None:
    """Like :func:`parse_name`, taking market and kline dataset from the folders `parts`."""
    dataset = next((p for p in reversed(parts) if p in KLINE_DATASETS), None)
    market = market_of_path(parts) or default_market
    if market not in MARKETS:
        return None
    return parse_name(name, market, dataset)


def plan_files(
    dataset: str, symbol: str, start: dt.date, end: dt.date, market: str = "um", interval: str | None = KLINE_INTERVAL
) -> list[ArchiveFile]:
    """Return the official files covering ``[start, end)``: monthly for whole months, else daily.

    Funding rates exist only as monthly files, so a partial month uses the monthly file (the
    ingest clips it to the range); metrics and bookDepth exist only as daily files.
    """
    out: list[ArchiveFile] = []
    month = month_start(start)
    while month < end:
        nxt = next_month(month)
        whole = start <= month and nxt <= end
        if (whole and dataset not in DAILY_ONLY) or dataset in MONTHLY_ONLY:
            out.append(ArchiveFile(dataset, symbol, month, nxt, "monthly", "zip", market, interval))
        else:
            day = max(start, month)
            while day < min(end, nxt):
                out.append(
                    ArchiveFile(dataset, symbol, day, day + dt.timedelta(days=1), "daily", "zip", market, interval)
                )
                day += dt.timedelta(days=1)
        month = nxt
    return out
