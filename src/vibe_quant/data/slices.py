"""Load a time slice of ticks, bars and custom data from the catalog, streamed into a ``BacktestEngine``.

Nothing reads the whole catalog: each stream walks ``[start, end]`` in windows and asks
``ParquetDataCatalog.query`` for one window at a time, which opens only the files whose
interval (in their name) intersects it and filters rows by ``ts_init``. Memory holds one
window per stream.

Ordering (docs/specs.md#stream-ordering): within a stream the catalog order, ``(ts_event, id)``
as ingested; across streams NautilusTrader's data iterator merges by ``ts_init`` and breaks
ties by the order the streams were added, which :func:`add_streams` fixes as quotes, then
trades, then bars, then custom data. At one timestamp a strategy therefore sees the quote
before the trade it priced, and every tick before the bar that closes there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from nautilus_trader.model.data import Bar, BarType, QuoteTick, TradeTick
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from vibe_quant.data.custom import CUSTOM_TYPES
from vibe_quant.errors import UserError

HOUR_NS = 3_600_000_000_000
STREAM_ORDER = ("quotes", "trades", "bars", "custom")  # tie-break priority at equal ts_init
CUSTOM_BY_NAME = {c.__name__.removeprefix("Binance"): c for c in CUSTOM_TYPES}


@dataclass(frozen=True)
class Stream:
    """One data stream of one instrument: ``quotes``, ``trades``, ``bars`` (with `bar_type`) or a
    custom type (``OiMetrics``, ``BookDepth``, ``MarkPriceBar``, ``IndexPriceBar``, ``PremiumIndexBar``)."""

    kind: str
    instrument_id: str
    bar_type: str | None = None

    @property
    def rank(self) -> int:
        return STREAM_ORDER.index(self.kind if self.kind in STREAM_ORDER else "custom")

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.bar_type or self.instrument_id}"

    def data_cls(self) -> type:
        if self.kind == "quotes":
            return QuoteTick
        if self.kind == "trades":
            return TradeTick
        if self.kind == "bars":
            return Bar
        try:
            return CUSTOM_BY_NAME[self.kind]
        except KeyError:
            known = ", ".join(["quotes", "trades", "bars", *CUSTOM_BY_NAME])
            raise UserError(f"unknown stream {self.kind!r}; choose from {known}") from None


def iter_stream(
    catalog: ParquetDataCatalog, stream: Stream, start_ns: int, end_ns: int, window_ns: int = HOUR_NS
) -> Iterator[list]:
    """Yield the stream's objects in ``[start_ns, end_ns]`` as lists, one non-empty window at a time.

    Custom data comes wrapped in ``CustomData`` (``.data`` is the object), as the engine needs it.
    """
    cls = stream.data_cls()
    ident = stream.bar_type if stream.kind == "bars" else stream.instrument_id
    lo = start_ns
    while lo <= end_ns:
        hi = min(end_ns, lo + window_ns - 1)
        kwargs = {"bar_types": [ident]} if cls is Bar else {"identifiers": [ident]}
        if cls is Bar:
            chunk = catalog.bars(start=lo, end=hi, **kwargs)
        else:
            chunk = catalog.query(cls, start=lo, end=hi, **kwargs)
        if chunk:
            yield chunk
        lo = hi + 1


def load_slice(
    catalog_root: Path | str, streams: Sequence[Stream], start_ns: int, end_ns: int, window_ns: int = HOUR_NS
) -> list:
    """Return every object of `streams` in ``[start_ns, end_ns]`` merged in engine order
    (``ts_init``, then stream priority, then catalog order). For tests and small slices; a
    backtest streams with :func:`add_streams`."""
    catalog = ParquetDataCatalog(str(catalog_root))
    tagged = []
    for stream in sorted(streams, key=lambda s: s.rank):
        for chunk in iter_stream(catalog, stream, start_ns, end_ns, window_ns):
            tagged.extend((d.ts_init, stream.rank, i, d) for i, d in enumerate(chunk, start=len(tagged)))
    tagged.sort(key=lambda t: t[:3])
    return [t[3] for t in tagged]


def add_streams(
    engine,
    catalog_root: Path | str,
    streams: Sequence[Stream],
    start_ns: int,
    end_ns: int,
    window_ns: int = HOUR_NS,
    client_id: str = "BINANCE",
) -> None:
    """Register one NautilusTrader data iterator per stream, in tie-break priority order.

    The engine pulls the next window of a stream only when it has consumed the previous one.
    The instruments must already be in the engine.
    """
    catalog = ParquetDataCatalog(str(catalog_root))
    client = ClientId(client_id)
    for stream in sorted(streams, key=lambda s: s.rank):
        if stream.kind == "bars":
            BarType.from_str(stream.bar_type)  # fail early on a malformed bar type
        engine.add_data_iterator(
            stream.name, iter_stream(catalog, stream, start_ns, end_ns, window_ns), client_id=client
        )
