"""Custom NautilusTrader data for the Binance streams that are neither ticks nor tradable bars.

* ``metrics`` (open interest and long/short ratios, every 5 minutes) -> :class:`BinanceOiMetrics`
* ``bookDepth`` (notional within +-N% of the mid, a snapshot of 10 levels every ~30 s)
  -> :class:`BinanceBookDepth` (one object per level row)
* ``markPriceKlines`` / ``indexPriceKlines`` / ``premiumIndexKlines``
  -> :class:`BinanceMarkPriceBar` / :class:`BinanceIndexPriceBar` / :class:`BinancePremiumIndexBar`

Why the three price klines are not ``Bar``: a NautilusTrader ``Bar`` must carry its instrument's
price precision and the simulated venue may fill orders against bars. Mark and index prices
are not tick-aligned (index prices are averages with 8 decimals), the premium index is a
signed ratio, and none of them is a price anyone traded at. As custom data they live in their
own catalog namespace (``data/custom_binance_mark_price_bar/<instrument>``), keep every
decimal, reach strategies through ``on_data`` and can never be matched against orders.

Values are exact decimals: Parquet ``decimal128(38, 18)`` columns (DuckDB reads them as
DECIMAL), ``Decimal`` attributes on the Python objects, parsed from the file's strings
without going through float. Timestamps follow the bar convention: a kline is stamped at its
close (``open_time + interval``), so no strategy sees it before it closed.

The Arrow codecs are registered with ``register_arrow`` at import, so
``ParquetDataCatalog.query(BinanceOiMetrics, ...)`` and ``write_data`` work (reads come back
wrapped in ``CustomData``). Ingest writes the same tables directly from columns.
"""

from __future__ import annotations

from decimal import Context, Decimal

import pyarrow as pa
from nautilus_trader.core.data import Data
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.funcs import class_to_filename
from nautilus_trader.serialization.arrow.serializer import register_arrow

VALUE_SCALE = 18
VALUE_TYPE = pa.decimal128(38, VALUE_SCALE)
_QUANTUM = Decimal(1).scaleb(-VALUE_SCALE)
_WIDE = Context(prec=60)  # decimal128(38, 18) values exactly; the default context rounds to 28 digits


def plain(value: Decimal) -> Decimal:
    """`value` exactly, without trailing zeros; whole numbers keep a plain form (``100``, not ``1E+2``)."""
    value = value.normalize(_WIDE)
    return value.quantize(Decimal(1), context=_WIDE) if value.as_tuple().exponent > 0 else value  # type: ignore[operator]


class BinanceData(Data):
    """Base of the Binance custom data: an instrument, exact decimal fields, two timestamps.

    Subclasses list their decimal fields in ``FIELDS``.
    """

    FIELDS: tuple[str, ...] = ()

    def __init__(self, instrument_id: InstrumentId, ts_event: int, ts_init: int, **values: Decimal):
        self.instrument_id = instrument_id
        self._ts_event = ts_event
        self._ts_init = ts_init
        missing = set(self.FIELDS) - values.keys()
        if missing or len(values) != len(self.FIELDS):
            raise TypeError(f"{type(self).__name__} needs exactly the fields {self.FIELDS}, got {sorted(values)}")
        for key in self.FIELDS:
            setattr(self, key, values[key])

    @property
    def ts_event(self) -> int:
        return self._ts_event

    @property
    def ts_init(self) -> int:
        return self._ts_init

    def values(self) -> dict[str, Decimal]:
        return {key: getattr(self, key) for key in self.FIELDS}

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and self.instrument_id == other.instrument_id  # type: ignore[attr-defined]
            and self.ts_event == other.ts_event  # type: ignore[attr-defined]
            and self.ts_init == other.ts_init  # type: ignore[attr-defined]
            and self.values() == other.values()  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash((type(self), self.instrument_id, self.ts_event))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.values().items())
        return f"{type(self).__name__}({self.instrument_id}, {fields}, ts_event={self.ts_event})"

    @classmethod
    def schema(cls) -> pa.Schema:
        fields = [pa.field("instrument_id", pa.dictionary(pa.int32(), pa.string()), nullable=False)]
        fields += [pa.field(key, VALUE_TYPE, nullable=False) for key in cls.FIELDS]
        fields += [pa.field("ts_event", pa.uint64(), nullable=False), pa.field("ts_init", pa.uint64(), nullable=False)]
        return pa.schema(fields, metadata={"type": cls.__name__})

    @classmethod
    def kind(cls) -> str:
        """The catalog folder NautilusTrader uses for this class (``custom_binance_oi_metrics``)."""
        return class_to_filename(cls)

    @classmethod
    def encode(cls, data: BinanceData | list[BinanceData]) -> pa.RecordBatch:
        items = data if isinstance(data, list) else [data]
        rows: dict[str, list] = {"instrument_id": [str(d.instrument_id) for d in items]}
        for key in cls.FIELDS:
            rows[key] = [Decimal(getattr(d, key)).quantize(_QUANTUM, context=_WIDE) for d in items]
        rows["ts_event"] = [d.ts_event for d in items]
        rows["ts_init"] = [d.ts_init for d in items]
        return pa.RecordBatch.from_pydict(rows, schema=cls.schema())

    @classmethod
    def decode(cls, table: pa.Table | pa.RecordBatch) -> list[BinanceData]:
        cols = table.to_pydict()
        ids = {s: InstrumentId.from_str(s) for s in set(cols["instrument_id"])}
        out = []
        for i in range(table.num_rows):
            values = {key: plain(cols[key][i]) for key in cls.FIELDS}
            out.append(cls(ids[cols["instrument_id"][i]], cols["ts_event"][i], cols["ts_init"][i], **values))
        return out


class BinanceOiMetrics(BinanceData):
    """One ``metrics`` row: open interest (contracts and USD) and the long/short ratios, at ``create_time``."""

    FIELDS = (
        "sum_open_interest",
        "sum_open_interest_value",
        "count_toptrader_long_short_ratio",
        "sum_toptrader_long_short_ratio",
        "count_long_short_ratio",
        "sum_taker_long_short_vol_ratio",
    )


class BinanceBookDepth(BinanceData):
    """One ``bookDepth`` row: cumulative depth (base units) and notional within ``percentage`` % of the
    mid (negative = bid side). A snapshot is the rows sharing one ``ts_event``."""

    FIELDS = ("percentage", "depth", "notional")


class BinancePriceBar(BinanceData):
    """OHLC of a non-tradable Binance price series, stamped at the kline's close time."""

    FIELDS = ("open", "high", "low", "close")


class BinanceMarkPriceBar(BinancePriceBar):
    """``markPriceKlines``: the mark price Binance uses for PnL and liquidations."""


class BinanceIndexPriceBar(BinancePriceBar):
    """``indexPriceKlines``: the spot index the mark price is anchored to."""


class BinancePremiumIndexBar(BinancePriceBar):
    """``premiumIndexKlines``: the premium index (signed ratio) funding is computed from."""


CUSTOM_TYPES = (
    BinanceOiMetrics,
    BinanceBookDepth,
    BinanceMarkPriceBar,
    BinanceIndexPriceBar,
    BinancePremiumIndexBar,
)

for _cls in CUSTOM_TYPES:
    register_arrow(_cls, _cls.schema(), encoder=_cls.encode, decoder=_cls.decode)
