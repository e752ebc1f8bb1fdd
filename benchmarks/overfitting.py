"""Overfitting benchmark, two parts, each against a baseline in the same process run:

1. CSCV / PBO: our vectorised ``cscv`` (block sums, one matrix product per side) vs the
   textbook loop of the paper and its R/Python ports (per split: slice the rows, compute every
   trial's Sharpe, rank), on a 500-trial x 1,186-day matrix with 16 blocks (12,870 splits).
   Both must give the same PBO (checked).
2. Walk-forward: 4 RSI-MTF candidates on FILUSDT 5m 2023-02..2026-04 with seed 001's windows
   (270/90/30 days), 2 workers. Ours: the overfitting pipeline's walk-forward (each worker holds
   the run's bars once and slices a window, one engine per window) vs the naive path: per window
   and candidate, read the window from the catalog and build a fresh engine (same 2 workers).
   Both must give the same window returns (checked).

    uv run python benchmarks/overfitting.py [--repeat 3] [--candidates 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import combinations
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _child import fil_home  # noqa: E402

START, END = dt.date(2023, 2, 1), dt.date(2026, 4, 30)


def textbook_pbo(m: np.ndarray, n_splits: int) -> float:
    """CSCV as the paper writes it: one split at a time."""
    from scipy.stats import rankdata

    size = m.shape[0] // n_splits
    m = m[m.shape[0] - size * n_splits :]
    blocks = np.arange(m.shape[0]) // size
    below = 0
    combos = list(combinations(range(n_splits), n_splits // 2))
    for chosen in combos:
        is_rows = np.isin(blocks, chosen)
        j, jbar = m[is_rows], m[~is_rows]
        r = j.mean(axis=0) / j.std(axis=0, ddof=1)
        rbar = jbar.mean(axis=0) / jbar.std(axis=0, ddof=1)
        omega = rankdata(rbar)[int(np.argmax(r))] / (m.shape[1] + 1)
        below += np.log(omega / (1 - omega)) <= 0
    return below / len(combos)


def bench_cscv(repeat: int) -> dict:
    from vibe_quant.stats.pbo import cscv

    m = np.random.default_rng(0).normal(0.0, 0.01, (1186, 500))
    ours, base = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        pbo = cscv(m, 16).pbo
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        ref = textbook_pbo(m, 16)
        base.append(time.perf_counter() - t)
    assert abs(pbo - ref) < 1e-12, (pbo, ref)
    o, b = statistics.median(ours), statistics.median(base)
    return {"matrix": [1186, 500], "n_splits": 16, "splits": 12870, "pbo": pbo, "ours_s": o, "textbook_s": b,
            "speedup": b / o, "runs_ours": ours, "runs_textbook": base}  # fmt: skip


def _naive_window(home_root: str, base: dict, params: dict, period: tuple[str, str]) -> list[float]:
    import msgspec

    from vibe_quant.backtest.config import parse_config
    from vibe_quant.backtest.engine import run_backtest
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.instruments.specs import InstrumentSpecs
    from vibe_quant.stats.performance import daily_returns

    cfg = msgspec.structs.replace(parse_config(base), params=params, start=dt.date.fromisoformat(period[0]),
                                  end=dt.date.fromisoformat(period[1]))  # fmt: skip
    plan = plan_run(cfg)
    data = load_market_data(Path(home_root) / "catalog", plan, InstrumentSpecs())
    result = run_backtest(plan, data)
    return daily_returns(result.equity_ts, result.equity, cfg.starting_balance, plan.period.start_ns).tolist()


def bench_wfa(home, n_candidates: int, workers: int) -> dict:
    import msgspec

    from vibe_quant.backtest.config import parse_config
    from vibe_quant.overfitting.config import WalkForward
    from vibe_quant.overfitting.pipeline import Candidate, _walk_forward, wfa_windows
    from vibe_quant.strategy.registry import find_strategy

    ref = find_strategy("rsi_mean_reversion_mtf")
    base = parse_config({"strategy": ref.name, "kind": ref.kind, "document": ref.document, "symbols": ["FILUSDT"], "timeframe": "5m",
                         "start": str(START), "end": str(END), "mode": "screening"})  # fmt: skip
    params = [{"rsi.period": p, "rsi_oversold_threshold": o} for p in (14, 21) for o in (25, 30)][:n_candidates]
    cands = [Candidate({"id": i, "parameters": p}, np.zeros(1)) for i, p in enumerate(params)]
    cfg = WalkForward()
    windows = wfa_windows(base, cfg)
    t = time.perf_counter()
    verdicts, _sel = _walk_forward(home, base, cands, cfg, windows, workers, None, lambda *_: None)
    ours = time.perf_counter() - t
    tasks = [(p, (w.train_start.isoformat(), w.test_end.isoformat())) for w in windows for p in params]
    plain = msgspec.to_builtins(base)
    t = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        naive = list(pool.map(_naive_window, [str(home.root)] * len(tasks), [plain] * len(tasks),
                              [p for p, _ in tasks], [w for _, w in tasks]))  # fmt: skip
    naive_s = time.perf_counter() - t
    # Same window returns: rebuild ours in the naive order and compare.
    ours_returns = {c.id: verdicts[c.id].figures["is_returns"] + verdicts[c.id].figures["oos_returns"] for c in cands}
    for k, (p, _w) in enumerate(tasks):
        cid, wi = params.index(p), k // len(params)
        r = np.asarray(naive[k])
        train = windows[wi].train_days
        got = (float(np.prod(1 + r[:train]) - 1), float(np.prod(1 + r[train:]) - 1))
        want = (ours_returns[cid][wi], ours_returns[cid][len(windows) + wi])
        assert np.allclose(got, want, rtol=0, atol=1e-12), (k, got, want)
    return {"candidates": len(params), "windows": len(windows), "backtests": len(tasks), "workers": workers,
            "ours_s": ours, "naive_s": naive_s, "speedup": naive_s / ours,
            "ours_backtests_per_min": len(tasks) / ours * 60, "naive_backtests_per_min": len(tasks) / naive_s * 60}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = {"machine": {"python": platform.python_version(), "cpus": mp.cpu_count()},
              "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip
    result["cscv"] = bench_cscv(args.repeat)
    print(f"CSCV 1186x500, 16 blocks: ours {result['cscv']['ours_s']:.2f}s, textbook {result['cscv']['textbook_s']:.2f}s "
          f"({result['cscv']['speedup']:.1f}x), PBO {result['cscv']['pbo']:.3f} both")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="vq-bench-of-") as tmp:
        home = fil_home(tmp)
        result["walk_forward"] = bench_wfa(home, args.candidates, args.workers)
    w = result["walk_forward"]
    print(f"walk-forward {w['candidates']} candidates x {w['windows']} windows: ours {w['ours_s']:.1f}s, "
          f"naive {w['naive_s']:.1f}s ({w['speedup']:.2f}x), identical window returns")  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "overfitting.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
