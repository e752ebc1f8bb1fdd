"""Which perpetuals a scan table holds, and their closes as one matrix.

The universe is every USD-M perpetual whose catalog bars cover the whole range, warm-up included, with
no missing bar (or an explicit list, each of which must). A delisted contract's flat zero-volume tail
(bars printed after trading stopped, kept with ``import-csv --keep-flat-tail``) never enters.
Closes are read as NautilusTrader reads them (``Price.as_double``), so scan tables and strategies on
catalog bars see the same floats.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vibe_quant.data.catalog import data_dir, read_span
from vibe_quant.data.csv_import import FLAT_TAIL_MIN
from vibe_quant.data.units import mantissas_from_fixed128
from vibe_quant.dolphin.config import ScanConfig
from vibe_quant.errors import UserError, did_you_mean
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.timeutil import iso, utc_day

FIXED_SCALAR = 1e16  # NautilusTrader's raw price scale (10**16 at 1.221)
MIN_ASSETS = 2


@dataclass(frozen=True)
class Span:
    """The scan rows of whole UTC days ``start..end`` and the bars they read (warm-up first)."""

    config: ScanConfig
    start: dt.date
    end: dt.date

    @property
    def first_row_ns(self) -> int:  # close of the first bar opened on `start`
        return _day_ns(self.start) + self.config.step_ns

    @property
    def last_row_ns(self) -> int:  # close of the last bar opened on `end`
        return _day_ns(self.end + dt.timedelta(days=1))

    @property
    def first_bar_ns(self) -> int:
        return self.first_row_ns - self.config.warmup_rows * self.config.step_ns

    @property
    def bars(self) -> int:
        return (self.last_row_ns - self.first_bar_ns) // self.config.step_ns + 1

    def day_of(self, close_ns: int) -> dt.date:
        """The UTC date of the bar closing at `close_ns` (its open time's date)."""
        return utc_day(close_ns - self.config.step_ns)


@dataclass(frozen=True)
class Universe:
    """The assets of a scan table and the reasons others were left out."""

    symbols: tuple[str, ...]
    left_out: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Closes:
    """Closes of the universe over a span: ``closes[t, j]`` of ``symbols[j]`` at bar close ``ts[t]``."""

    symbols: tuple[str, ...]
    ts: np.ndarray  # int64 ns
    closes: np.ndarray  # (T, N) float64


def _day_ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def _bar_type(specs: InstrumentSpecs, symbol: str, config: ScanConfig) -> str:
    return config.tf.bar_type(specs.get(symbol).nautilus_id)


def catalog_symbols(catalog: Path, specs: InstrumentSpecs, config: ScanConfig) -> list[str]:
    """USD-M perpetuals with bars of the config's timeframe in the catalog, sorted."""
    return [s for s in sorted(specs.symbols) if data_dir(catalog, "bar", _bar_type(specs, s, config)).is_dir()]


def _read(catalog: Path, specs: InstrumentSpecs, symbol: str, config: ScanConfig, lo: int, hi: int):
    table = read_span(catalog, "bar", _bar_type(specs, symbol, config), lo, hi)
    if table is None or table.num_rows == 0:
        return None
    return table


def to_doubles(mantissas: np.ndarray, precision: int) -> np.ndarray:
    """Floats exactly as NautilusTrader's ``Price.as_double()`` gives them: ``float(raw) / 1e16``.

    ``raw = m * 10**(16 - p)``; the float product of the exact floats ``m`` and ``10**(16 - p)`` is the
    correctly rounded raw value, which is what ``float(raw)`` is (``m / 10**p`` differs in the last bit
    for about 4% of prices).
    """
    return (mantissas.astype(np.float64) * float(10 ** (16 - precision))) / FIXED_SCALAR


def _coverage(table, span: Span) -> str | None:
    """Why the bars do not cover the span (None if they do)."""
    ts = table.column("ts_init").to_numpy().astype(np.int64)
    step = span.config.step_ns
    if ts[0] > span.first_bar_ns:
        return f"bars start at {iso(int(ts[0]))}, warm-up needs {iso(span.first_bar_ns)}"
    if ts[-1] < span.last_row_ns:
        return f"bars end at {iso(int(ts[-1]))}"
    if len(ts) != span.bars:
        gaps = np.flatnonzero(np.diff(ts) != step)
        where = iso(int(ts[gaps[0]])) if gaps.size else "?"
        return f"{span.bars - len(ts)} missing bar(s), the first after {where}"
    return None


def _flat_tail(table, spec) -> int:
    """Length of the trailing run of flat zero-volume bars at one unchanged price."""
    cols = [mantissas_from_fixed128(table.column(c), spec.price_precision) for c in ("open", "high", "low", "close")]
    volume = mantissas_from_fixed128(table.column("volume"), spec.size_precision)
    flat = (volume == 0) & (cols[0] == cols[1]) & (cols[1] == cols[2]) & (cols[2] == cols[3])
    flat[1:] &= cols[3][1:] == cols[3][:-1]
    run = 0
    for f in flat[::-1]:
        if not f:
            break
        run += 1
    return run


def select_universe(
    catalog: Path, specs: InstrumentSpecs, span: Span, symbols: list[str] | None = None, exclude: tuple[str, ...] = ()
) -> Universe:
    """Return the assets of a scan table over `span`.

    Parameters
    ----------
    symbols : list of str, optional
        An explicit universe (each must cover the span); default: every covering perpetual.
    exclude : tuple of str
        Symbols never taken.

    Raises
    ------
    UserError
        An unknown or non-covering explicit symbol, a last day the catalog holds only in part (a day is
        written only when complete), or fewer than two assets.
    """
    known = catalog_symbols(catalog, specs, span.config)
    for s in (*(symbols or ()), *exclude):
        if s not in known:
            raise UserError(
                f"{s}: no {span.config.timeframe} bars in the catalog; import them first "
                f"(vq data import-csv or vq data ingest).{did_you_mean(s, known)}"
            )
    chosen, left_out, partial_last = [], {}, []
    for s in symbols or known:
        if s in exclude:
            left_out[s] = "excluded"
            continue
        table = _read(catalog, specs, s, span.config, span.first_bar_ns, span.last_row_ns)
        why = "no bars in the range" if table is None else _coverage(table, span)
        if why is None and _flat_tail(table, specs.get(s)) >= FLAT_TAIL_MIN:
            why = "flat zero-volume tail (delisted?)"
        if why is None:
            chosen.append(s)
            continue
        left_out[s] = why
        if table is not None:
            ts = table.column("ts_init").to_numpy().astype(np.int64)
            if (
                ts[0] <= span.first_bar_ns
                and 0 < span.last_row_ns - ts[-1] < span.config.rows_per_day * span.config.step_ns
            ):
                partial_last.append(int(ts[-1]))
        if symbols:
            _refuse_partial(span, partial_last)
            raise UserError(f"{s} does not cover {span.start}..{span.end} (warm-up included): {why}")
    _refuse_partial(span, partial_last)  # the catalog is mid-day: never build from part of a day
    if len(chosen) < MIN_ASSETS:
        raise UserError(
            f"{len(chosen)} perpetual(s) with {span.config.timeframe} bars cover {span.start}..{span.end} and the "
            f"{span.config.warmup_rows}-bar warm-up before it (from {iso(span.first_bar_ns)}); a scan needs at "
            f"least {MIN_ASSETS}: import more symbols or choose a later --start / earlier --end"
        )
    return Universe(tuple(chosen), left_out)


def _refuse_partial(span: Span, last_closes: list[int]) -> None:
    if not last_closes:
        return
    last = max(last_closes)
    day = span.day_of(last + span.config.step_ns)
    rows = (last - (_day_ns(day))) // span.config.step_ns
    raise UserError(
        f"{day} is incomplete: {rows} of {span.config.rows_per_day} rows (the bars of {len(last_closes)} "
        f"perpetual(s) end at {iso(last)}); a day is written only when complete: pass --end "
        f"{day - dt.timedelta(days=1)}, import the rest of the day, or --exclude those perpetuals"
    )


def load_closes(catalog: Path, specs: InstrumentSpecs, symbols: tuple[str, ...], span: Span) -> Closes:
    """Read the universe's closes over the span (warm-up included) as one (T, N) matrix."""
    cols = []
    ts = None
    for s in symbols:
        table = _read(catalog, specs, s, span.config, span.first_bar_ns, span.last_row_ns)
        if table is None or _coverage(table, span) is not None:
            raise UserError(f"{s} no longer covers {span.start}..{span.end}; rebuild the universe")
        if ts is None:
            ts = table.column("ts_init").to_numpy().astype(np.int64)
        cols.append(to_doubles(mantissas_from_fixed128(table.column("close"), specs.get(s).price_precision),
                               specs.get(s).price_precision))  # fmt: skip
    return Closes(symbols, ts, np.column_stack(cols))
