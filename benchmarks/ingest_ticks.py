"""Tick ingest benchmark: vibe-quant vs the naive NautilusTrader path, one run.

Inputs are built from real rows (no synthetic prices):

* ``day``: one COIN-M BTCUSD_PERP aggTrades day with 3,158,400 rows — each row of the real
  2026-05-08 file (105,280 rows) repeated 30 times at its own timestamp with fresh ids, the
  size of a busy BTC day (issue target: a 2-5M-row day under 2 GB peak RSS).
* ``month``: 30 daily files (the real day shifted by k days, ids shifted), 3,158,400 rows,
  to show the parallel file pipeline.
* ``quotes``: one USD-M BTCUSDT bookTicker day of 999,900 rows — the real 9,999-row sample
  repeated 100 times, each copy 30 s later with fresh update ids.

* ours:  ``run_ingest`` end to end (zip -> exact parse -> TradeTick/QuoteTick Parquet, raw lake,
  staged commit, state DB, manifest).
* naive: pandas ``read_csv`` -> NautilusTrader ``TradeTickDataWrangler`` /
  ``QuoteTickDataWrangler`` -> ``ParquetDataCatalog.write_data`` (float parsing, no raw lake).

Each measurement runs in its own spawned process (imports excluded) so peak RSS is its own;
medians of `--repeat` runs. Writes ``benchmarks/results/ingest_ticks.json``.

    uv run python benchmarks/ingest_ticks.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import multiprocessing as mp
import platform
import resource
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _child import run_in_child  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
COINM_DAY = SHARED / "binance-vision/data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip"
BOOK_SAMPLE = SHARED / "samples" / "BTCUSDT-bookTicker-2023-10-02-short.csv"
COPIES = 30
QUOTE_COPIES = 100
DAY_MS = 86_400_000


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). ``ru_maxrss`` would include the parent's peak at
    fork time, which survives exec on Linux, and the parent holds the built inputs."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _zip(path: Path, member: str, text: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, text)


def build_inputs(root: Path) -> dict[str, int]:
    """Write the three inputs under `root` (official names); return their row counts."""
    with zipfile.ZipFile(COINM_DAY) as zf:
        raw = zf.read(zf.namelist()[0])
    header, *rows = raw.rstrip(b"\n").split(b"\n")
    parsed = [r.split(b",") for r in rows]
    n = len(parsed)
    # day: each row COPIES times at its own timestamp, ids renumbered in order.
    out = [header]
    first_id = int(parsed[0][0])
    for i, f in enumerate(parsed):
        for j in range(COPIES):
            new_id = str(first_id + i * COPIES + j).encode()
            out.append(b",".join([new_id, *f[1:]]))
    _zip(
        root / "day/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip",
        "BTCUSD_PERP-aggTrades-2026-05-08.csv",
        b"\n".join(out) + b"\n",
    )
    # month: the real day shifted by k days.
    for k in range(COPIES):
        day = dt.date(2026, 5, 8) + dt.timedelta(days=k)
        lines = [header]
        for f in parsed:
            lines.append(
                b",".join([str(int(f[0]) + k * 200_000).encode(), *f[1:5], str(int(f[5]) + k * DAY_MS).encode(), f[6]])
            )
        name = f"BTCUSD_PERP-aggTrades-{day}"
        _zip(root / f"month/BTCUSD_PERP/{name}.zip", f"{name}.csv", b"\n".join(lines) + b"\n")
    # quotes: the 27 s sample repeated every 30 s.
    qheader, *qrows = BOOK_SAMPLE.read_bytes().rstrip(b"\n").split(b"\n")
    qparsed = [r.split(b",") for r in qrows]
    lines = [qheader]
    for j in range(QUOTE_COPIES):
        shift = j * 30_000
        for f in qparsed:
            lines.append(
                b",".join(
                    [
                        str(int(f[0]) + j * 10_000_000).encode(),
                        *f[1:5],
                        str(int(f[5]) + shift).encode(),
                        str(int(f[6]) + shift).encode(),
                    ]
                )
            )
    _zip(
        root / "quotes/BTCUSDT/BTCUSDT-bookTicker-2023-10-02.zip",
        "BTCUSDT-bookTicker-2023-10-02.csv",
        b"\n".join(lines) + b"\n",
    )
    return {"day": n * COPIES, "month": n * COPIES, "quotes": len(qparsed) * QUOTE_COPIES}


def run_ours(queue: mp.Queue, source: str, market: str, dataset: str) -> None:
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    specs = InstrumentSpecs()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp)).ensure()
        t0 = time.perf_counter()
        report = run_ingest(home, IngestRequest(source, None, (dataset,), market=market), specs)
        seconds = time.perf_counter() - t0
    queue.put({"seconds": seconds, "rows": sum(report.bars_written().values()), "peak_rss_mb": _peak_rss_mb()})


def run_naive(queue: mp.Queue, source: str, market: str, dataset: str) -> None:
    import pandas as pd
    from nautilus_trader.persistence.catalog import ParquetDataCatalog
    from nautilus_trader.persistence.wranglers import QuoteTickDataWrangler, TradeTickDataWrangler

    from vibe_quant.instruments.factory import instrument
    from vibe_quant.instruments.specs import InstrumentSpecs

    symbol = "BTCUSD_PERP" if market == "cm" else "BTCUSDT"
    inst = instrument(InstrumentSpecs().get(symbol, market))
    rows = 0
    with tempfile.TemporaryDirectory() as tmp:
        catalog = ParquetDataCatalog(tmp)
        t0 = time.perf_counter()
        catalog.write_data([inst])
        for path in sorted(Path(source).rglob("*.zip")):
            with zipfile.ZipFile(path) as zf, zf.open(zf.namelist()[0]) as fh:
                df = pd.read_csv(io.BufferedReader(fh))
            if dataset == "aggTrades":
                df.index = pd.to_datetime(df["transact_time"], unit="ms", utc=True)
                frame = pd.DataFrame(
                    {
                        "price": df["price"],
                        "quantity": df["quantity"],
                        "buyer_maker": df["is_buyer_maker"],
                        "trade_id": df["agg_trade_id"].astype(str),
                    },
                    index=df.index,
                )
                ticks = TradeTickDataWrangler(inst).process(frame)
            else:
                df.index = pd.to_datetime(df["event_time"], unit="ms", utc=True)
                frame = pd.DataFrame(
                    {
                        "bid_price": df["best_bid_price"],
                        "ask_price": df["best_ask_price"],
                        "bid_size": df["best_bid_qty"],
                        "ask_size": df["best_ask_qty"],
                    },
                    index=df.index,
                )
                ticks = QuoteTickDataWrangler(inst).process(frame)
            catalog.write_data(ticks)
            rows += len(ticks)
        seconds = time.perf_counter() - t0
    queue.put({"seconds": seconds, "rows": rows, "peak_rss_mb": _peak_rss_mb()})


def measure(target, repeat: int, rows: int, *args) -> dict:
    runs = [run_in_child(target, *args) for _ in range(repeat)]
    for r in runs:
        if r["rows"] != rows:
            raise SystemExit(f"{target.__name__}{args}: wrote {r['rows']} rows, expected {rows}")
    med = statistics.median(r["seconds"] for r in runs)
    return {
        "runs": runs,
        "median_s": med,
        "rows_per_s_median": rows / med,
        "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("building inputs from the real COIN-M day and bookTicker sample ...", flush=True)
        rows = build_inputs(root)
        cases = {
            "day": (str(root / "day"), "cm", "aggTrades"),
            "month": (str(root / "month"), "cm", "aggTrades"),
            "quotes": (str(root / "quotes"), "um", "bookTicker"),
        }
        for case, case_args in cases.items():
            results[case] = {"rows": rows[case]}
            for name, target in (("ours", run_ours), ("naive", run_naive)):
                print(f"measuring {case}/{name} x{args.repeat} ...", flush=True)
                m = measure(target, args.repeat, rows[case], *case_args)
                results[case][name] = m
                print(
                    f"  median {m['median_s']:.2f}s = {m['rows_per_s_median'] / 1e6:.2f} M rows/s, "
                    f"peak RSS {m['peak_rss_mb_max']:.0f} MB",
                    flush=True,
                )
            results[case]["speedup_vs_naive"] = results[case]["naive"]["median_s"] / results[case]["ours"]["median_s"]
    ratios = {case: round(r["speedup_vs_naive"], 2) for case, r in results.items()}
    summary = {
        "benchmark": "tick ingest into a fresh catalog: aggTrades -> TradeTick, bookTicker -> QuoteTick",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count(), "platform": platform.platform()},
        "results": results,
        "speedup_vs_naive": ratios,
        "targets": {
            "trades_per_s_ge_2M_day": results["day"]["ours"]["rows_per_s_median"] >= 2e6,
            "trades_per_s_ge_2M_month": results["month"]["ours"]["rows_per_s_median"] >= 2e6,
            "speedup_ge_3_all": all(v >= 3 for v in ratios.values()),
            "peak_rss_lt_2GB_day": results["day"]["ours"]["peak_rss_mb_max"] < 2048,
        },
    }
    out = ROOT / "benchmarks" / "results" / "ingest_ticks.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({"speedup_vs_naive": ratios, "targets": summary["targets"]}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
