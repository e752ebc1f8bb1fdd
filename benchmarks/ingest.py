"""Ingest benchmark: vibe-quant vs the naive NautilusTrader path vs the I/O floor, one run.

Work: every FILUSDT 1m monthly zip in ../shared/data (21 months, 902,880 bars) from a local
mirror into a fresh catalog, with 1m + 5m/15m/1h/4h bars.

* ours:  ``run_ingest`` (exact parse, aggregation, raw lake, staged catalog, DB, manifest).
* naive: pandas ``read_csv`` -> ``BarDataWrangler`` -> ``catalog.write_data``, per timeframe
  (pandas resample for 5m..4h). Note it goes through floats; ours never does.
* floor: a plain pyarrow read of the same zipped CSVs (unzip + parse, nothing else).

Each variant runs in its own spawned process (imports excluded from the timing) so that its
peak RSS is its own; each is repeated and the median reported. Writes
``benchmarks/results/ingest.json``.

    uv run python benchmarks/ingest.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _child import run_in_child  # noqa: E402

MIRROR = ROOT.parent / "shared" / "data" / "binance-vision"
KLINES = MIRROR / "data" / "futures" / "um" / "monthly" / "klines" / "FILUSDT" / "1m"
EXPECTED_1M = 902_880


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(queue: mp.Queue) -> None:
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    specs = InstrumentSpecs()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp)).ensure()
        t0 = time.perf_counter()
        report = run_ingest(home, IngestRequest(str(MIRROR), ("FILUSDT",), ("klines",)), specs)
        seconds = time.perf_counter() - t0
    queue.put({"seconds": seconds, "bars": report.bars_written(), "peak_rss_mb": _peak_rss_mb()})


def run_naive(queue: mp.Queue) -> None:
    import zipfile

    import pandas as pd
    from nautilus_trader.model.data import BarType
    from nautilus_trader.persistence.catalog import ParquetDataCatalog
    from nautilus_trader.persistence.wranglers import BarDataWrangler

    from vibe_quant.instruments.factory import crypto_perpetual
    from vibe_quant.instruments.specs import InstrumentSpecs

    instrument = crypto_perpetual(InstrumentSpecs().get("FILUSDT"))
    rules = {"1-MINUTE": None, "5-MINUTE": "5min", "15-MINUTE": "15min", "1-HOUR": "1h", "4-HOUR": "4h"}
    steps = {"1-MINUTE": "1min", "5-MINUTE": "5min", "15-MINUTE": "15min", "1-HOUR": "1h", "4-HOUR": "4h"}
    counts = dict.fromkeys(rules, 0)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = ParquetDataCatalog(tmp)
        t0 = time.perf_counter()
        catalog.write_data([instrument])
        for path in sorted(KLINES.glob("*.zip")):
            with zipfile.ZipFile(path) as zf, zf.open(zf.namelist()[0]) as fh:
                df = pd.read_csv(fh)
            df.index = pd.to_datetime(df["open_time"], unit="ms", utc=True)
            ohlcv = df[["open", "high", "low", "close", "volume"]]
            for spec, rule in rules.items():
                frame = (
                    ohlcv
                    if rule is None
                    else ohlcv.resample(rule, label="left", closed="left")
                    .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
                    .dropna()
                )
                frame = frame.copy()
                frame.index = frame.index + pd.Timedelta(steps[spec])  # Nautilus bars are stamped at close
                bar_type = BarType.from_str(f"FILUSDT-PERP.BINANCE-{spec}-LAST-EXTERNAL")
                bars = BarDataWrangler(bar_type, instrument).process(frame)
                catalog.write_data(bars)
                counts[spec] += len(bars)
        seconds = time.perf_counter() - t0
    queue.put({"seconds": seconds, "bars": counts, "peak_rss_mb": _peak_rss_mb()})


def run_floor(queue: mp.Queue) -> None:
    import io
    import zipfile

    import pyarrow.csv as pacsv

    rows = 0
    t0 = time.perf_counter()
    for path in sorted(KLINES.glob("*.zip")):
        with zipfile.ZipFile(path) as zf:
            data = zf.read(zf.namelist()[0])
        rows += pacsv.read_csv(io.BytesIO(data)).num_rows
    seconds = time.perf_counter() - t0
    queue.put({"seconds": seconds, "rows": rows, "peak_rss_mb": _peak_rss_mb()})


def measure(target, repeat: int) -> dict:
    runs = [run_in_child(target) for _ in range(repeat)]
    seconds = [r["seconds"] for r in runs]
    return {
        "runs": runs,
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "bars_1m_per_s_median": EXPECTED_1M / statistics.median(seconds),
        "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = sorted(KLINES.glob("*.zip"))
    if len(files) != 21:
        raise SystemExit(f"expected 21 FILUSDT monthly zips under {KLINES}, found {len(files)}")
    results = {}
    for name, target in (("floor", run_floor), ("ours", run_ours), ("naive", run_naive)):
        print(f"measuring {name} x{args.repeat} ...", flush=True)
        results[name] = measure(target, args.repeat)
        print(
            f"  median {results[name]['median_s']:.2f}s, peak RSS {results[name]['peak_rss_mb_max']:.0f} MB", flush=True
        )
    ours, naive, floor = results["ours"], results["naive"], results["floor"]
    assert all(r["bars"]["1m"] == EXPECTED_1M for r in ours["runs"]), "ours wrote the wrong number of 1m bars"
    assert all(r["bars"]["1-MINUTE"] == EXPECTED_1M for r in naive["runs"]), "naive wrote the wrong number of bars"
    assert all(r["rows"] == EXPECTED_1M for r in floor["runs"])
    speedup = naive["median_s"] / ours["median_s"]
    of_floor = floor["median_s"] / ours["median_s"]
    summary = {
        "benchmark": "ingest FILUSDT 21 months (902,880 1m bars) + 5m/15m/1h/4h into a fresh catalog",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count(), "platform": platform.platform()},
        "bars_written_ours": ours["runs"][0]["bars"],
        "ours": ours,
        "naive": naive,
        "io_floor": floor,
        "ratios": {
            "ours_speedup_vs_naive": speedup,
            "ours_fraction_of_io_floor": of_floor,
            "ours_rss_vs_naive": ours["peak_rss_mb_max"] / naive["peak_rss_mb_max"],
        },
        "targets": {
            "speedup_vs_naive_ge_5": speedup >= 5,
            "fraction_of_floor_ge_0.5": of_floor >= 0.5,
            "peak_rss_lt_1GB": ours["peak_rss_mb_max"] < 1024,
        },
    }
    out = ROOT / "benchmarks" / "results" / "ingest.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({"ratios": summary["ratios"], "targets": summary["targets"]}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
