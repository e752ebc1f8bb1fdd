"""What a backtest reads from the catalog: per symbol its spec, instrument, execution bars and
funding, and a digest of the files read (part of the run id).

:func:`load_market_data` reads a plan's period; :func:`slice_market_data` cuts a sub-period out of
what was loaded (walk-forward windows reuse one load); :func:`funding_warnings` says loudly where
the catalog has no funding for the period (never a silent zero).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path

from vibe_quant.backtest.plan import RunPlan
from vibe_quant.data.bars import NS_PER_MS, TIMEFRAME_BY_LABEL
from vibe_quant.data.catalog import data_dir
from vibe_quant.errors import UserError
from vibe_quant.instruments.specs import InstrumentSpec, InstrumentSpecs

NS_PER_HOUR = 3_600_000_000_000


@dataclass
class MarketData:
    """Everything a run reads: per symbol its spec, instrument, execution bars and funding."""

    specs: dict[str, InstrumentSpec]
    instruments: dict[str, object]
    bars: dict[str, list]
    funding: dict[str, list]  # symbol -> FundingRateUpdate list (sorted)
    digest: str  # sha256 over the catalog files read (part of the run id)


def _files_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def load_market_data(catalog_root: Path, plan: RunPlan, specs: InstrumentSpecs) -> MarketData:
    """Read the run's bars, funding and instruments from the catalog.

    Raises
    ------
    UserError
        A symbol has no instrument or no bars in the range (with the ingest command to run),
        or its spec's precision no longer matches the stored bars.
    """
    from nautilus_trader.model.data import FundingRateUpdate
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    import vibe_quant.data.catalog  # noqa: F401 (registers the FundingRateUpdate codec)

    catalog = ParquetDataCatalog(str(catalog_root))
    config = plan.config
    tf = TIMEFRAME_BY_LABEL[config.timeframe]
    start_ns, end_ns = plan.period.start_ns, plan.period.end_ns
    out = MarketData({}, {}, {}, {}, "")
    files: list[Path] = []
    for symbol in config.symbols:
        spec = specs.get(symbol)
        iid = spec.nautilus_id
        found = catalog.instruments(instrument_ids=[iid])
        if not found:
            raise UserError(
                f"no {iid} instrument in {catalog_root}: ingest it first "
                f"(vq data ingest --symbols {symbol} --start {config.start} --end {config.end})"
            )
        instrument = found[0]
        if (instrument.price_precision, instrument.size_precision) != (spec.price_precision, spec.size_precision):
            raise UserError(
                f"{symbol}: catalog bars use precision {instrument.price_precision}/{instrument.size_precision} "
                f"but instrument_specs.yaml now says {spec.price_precision}/{spec.size_precision}; "
                "run `vq data rebuild --from-archive`"
            )
        bar_type = tf.bar_type(iid)
        # Bars closing inside (start, end]: the first bar opens at start.
        bars = catalog.bars([bar_type], start=start_ns + tf.step_ms * NS_PER_MS, end=end_ns)
        if not bars:
            raise UserError(
                f"no {config.timeframe} bars for {symbol} between {config.start} and {config.end} in "
                f"{catalog_root}: run `vq data ingest --symbols {symbol} --start {config.start} --end {config.end}`"
            )
        funding_start = start_ns - 24 * NS_PER_HOUR
        funding = catalog.query(FundingRateUpdate, identifiers=[iid], start=funding_start, end=end_ns)
        funding = [f.data if hasattr(f, "data") else f for f in funding]
        out.specs[symbol], out.instruments[symbol], out.bars[symbol], out.funding[symbol] = (
            spec,
            instrument,
            bars,
            funding,
        )
        for kind, ident in (("bar", bar_type), ("funding_rate_update", iid), ("crypto_perpetual", iid)):
            directory = data_dir(catalog_root, kind, ident)
            if directory.is_dir():
                files.extend(p for p in directory.glob("*.parquet") if _overlaps(p.name, funding_start, end_ns))
    out.digest = _files_digest(files)
    return out


def slice_market_data(data: MarketData, plan: RunPlan) -> MarketData:
    """Return `data` cut to `plan`'s dates (a sub-period of what was loaded), as
    :func:`load_market_data` would have read it: bars closing in (start, end], funding from a
    day before the start.

    Raises
    ------
    UserError
        A symbol has no bars in the sub-period.
    """
    config = plan.config
    tf = TIMEFRAME_BY_LABEL[config.timeframe]
    start_ns, end_ns = plan.period.start_ns, plan.period.end_ns
    out = MarketData(dict(data.specs), dict(data.instruments), {}, {}, f"{data.digest}:{config.start}:{config.end}")
    for symbol, bars in data.bars.items():
        out.bars[symbol] = [b for b in bars if start_ns + tf.step_ms * NS_PER_MS <= b.ts_init <= end_ns]
        if not out.bars[symbol]:
            raise UserError(f"no {config.timeframe} bars for {symbol} between {config.start} and {config.end}")
        out.funding[symbol] = [f for f in data.funding[symbol] if start_ns - 24 * NS_PER_HOUR <= f.ts_event <= end_ns]
    return out


def _overlaps(name: str, start_ns: int, end_ns: int) -> bool:
    from vibe_quant.data.catalog import parse_interval_filename

    span = parse_interval_filename(name)
    return span is None or (span[0] <= end_ns and span[1] >= start_ns)


def funding_warnings(plan: RunPlan, data: MarketData) -> list[str]:
    """Say loudly where funding is not modelled (no silent zero)."""
    out = []
    config = plan.config
    start_ns, end_ns = plan.period.start_ns, plan.period.end_ns
    for symbol, updates in data.funding.items():
        inside = [u.ts_event for u in updates if start_ns <= u.ts_event < end_ns]
        if not inside:
            out.append(
                f"funding not modelled for {symbol}: no funding rates in the catalog for {config.start}..{config.end} "
                f"(vq data ingest --symbols {symbol} --datasets fundingRate ...)"
            )
            continue
        points = [start_ns, *inside, end_ns]
        longest = max((b - a for a, b in itertools.pairwise(points)), default=0)
        if longest > 12 * NS_PER_HOUR:
            out.append(
                f"funding partly not modelled for {symbol}: a {longest / NS_PER_HOUR:.0f} h span in the run has "
                "no funding rates in the catalog"
            )
    return out
