"""Figures of an LPI experiment bundle as pure functions of its stored tables: a long signal trace is
decimated keeping its spikes, the sensitivity heatmap orders latencies by their milliseconds, the markout
summary skips markouts without a mid, the fold figure shades the scored span."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vibe_quant.plots.lpi import fold_equity_figure, lpi_trace_figure, markout_table, sensitivity_figure

MIN_NS = 60 * 10**9


def test_a_long_trace_is_decimated_and_keeps_its_spikes_and_gaps() -> None:
    rng = np.random.default_rng(11)
    n = 300_000
    trace = pd.DataFrame({"ts_event": np.arange(n, dtype=np.int64) * 10**9, "lpi_fast": rng.normal(0, 1, n),
                          "exh": rng.normal(0, 1, n), "mid": 80_000 + np.cumsum(rng.normal(0, 5, n))})  # fmt: skip
    trace.loc[123_457, "lpi_fast"] = 42.0  # one bucket's liquidation burst
    trace.loc[:999, "lpi_fast"] = np.nan  # the z-score's warm-up
    fig = lpi_trace_figure(trace, max_points=4000)
    lpi, exh, mid = fig.data
    assert (lpi.name, exh.name, mid.name) == ("LPI_fast", "EXH", "mid")
    assert mid.yaxis == "y2"
    assert all(len(t.y) <= 4000 for t in fig.data)
    assert np.nanmax(lpi.y) == 42.0
    assert np.isnan(lpi.y[0])
    assert np.min(mid.y) == trace["mid"].min()
    assert fig.layout.title.text == "LPI signal trace (300,000 snapshots)"


def test_the_sensitivity_heatmap_puts_the_fastest_latency_first() -> None:
    grid = pd.DataFrame({"latency": ["retail", "retail", "none", "none", "co_located", "co_located"],
                         "latency_ms": [300.0, 300.0, 0.0, 0.0, 1.5, 1.5],
                         "fee_tier": ["vip0", "vip9"] * 3, "pnl": [-5.0, -1.0, 3.0, 4.0, 1.0, 2.0]})  # fmt: skip
    heat = sensitivity_figure(grid).data[0]
    assert list(heat.y) == ["none", "co_located", "retail"]
    assert list(heat.x) == ["vip0", "vip9"]
    assert np.asarray(heat.z).tolist() == [[3.0, 4.0], [1.0, 2.0], [-5.0, -1.0]]
    assert (heat.zmin, heat.zmax) == (-5.0, 5.0)


def test_the_markout_table_skips_markouts_without_a_mid() -> None:
    markouts = pd.DataFrame({"horizon_ms": [1000, 1000, 1000, 5000, 5000],
                             "markout_bps": [2.0, -1.0, None, 4.0, 3.0]})  # fmt: skip
    table = markout_table(markouts)
    assert table.index.tolist() == [1000, 5000]
    assert table["fills"].tolist() == [2, 2]
    assert table["mean_bps"].tolist() == [0.5, 3.5]
    assert table["positive"].tolist() == [0.5, 1.0]


def test_the_fold_figure_shades_the_warm_up_and_the_scored_span() -> None:
    t0 = pd.Timestamp("2026-05-08T00:00:00").value
    ts = t0 + np.arange(1, 181, dtype=np.int64) * MIN_NS
    equity = pd.concat([pd.DataFrame({"run": run, "ts": ts, "equity": 100_000.0 + k * np.arange(180)})
                        for k, run in enumerate(("strategy", "baseline"))])  # fmt: skip
    fold = {"fold": 3, "start": "2026-05-08T00:00:00", "train_end": "2026-05-08T02:00:00",
            "score_start": "2026-05-08T02:05:00", "end": "2026-05-08T03:00:00"}  # fmt: skip
    fig = fold_equity_figure(equity, fold)
    assert [t.name for t in fig.data] == ["strategy", "baseline"]
    assert fig.data[1].y[-1] == pytest.approx(100_179.0)
    spans = [(str(s.x0), str(s.x1)) for s in fig.layout.shapes]
    assert spans == [("2026-05-08 00:00:00", "2026-05-08 02:00:00"), ("2026-05-08 02:05:00", "2026-05-08 03:00:00")]
    assert fig.layout.title.text == "Fold 3: equity (USDT)"
