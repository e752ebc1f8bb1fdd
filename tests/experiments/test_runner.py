"""LPI experiments end to end on the proxy of the real COIN-M day: walk-forward folds scored on their
test spans, the EMA-cross baseline, the bundle, byte-identical reruns whatever the ingest order, the
sensitivity sweep, ablations and bad input."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import ingest_proxy_day
from vibe_quant.backtest.recorder import FillRecord, RunRecorder
from vibe_quant.experiments.bundle import FILES, bundle_files, write_experiment_bundle
from vibe_quant.experiments.config import experiment_from_data
from vibe_quant.experiments.runner import Fold, folds, run_experiment, score, strategy_params
from vibe_quant.home import Home
from vibe_quant.lpi import LpiParams, compute
from vibe_quant.lpi.inputs import aggtrades_arrays
from vibe_quant.lpi.params import SNAPSHOT_DTYPE

H = 3600 * 10**9
DAY0 = 1_778_198_400 * 10**9  # 2026-05-08T00:00Z
WALK = {"name": "proxy", "instruments": ["BTCUSDT"], "start": "2026-05-08", "end": "2026-05-08",
        "strategy": "lpi_reversion", "walk_forward": {"train": "6h", "test": "3h", "step": "3h", "purge": "5m"}}  # fmt: skip


@pytest.fixture(scope="module")
def walk(proxy_home: Home):
    """The walk-forward experiment on the proxy day, run once for the module."""
    exp = experiment_from_data(dict(WALK), "walk")
    return exp, run_experiment(proxy_home, exp)


def test_walk_forward_folds_are_scored_on_their_test_spans_only(walk) -> None:
    exp, result = walk
    assert [f.fold for f in result.folds] == folds(exp.resolved())
    assert len(result.folds) == 6  # t = 0, 3, ..., 15 h: train 6 h + test 3 h within the day
    for f in (*result.folds, *result.baseline):
        assert all(f.fold.score_start <= x.ts_ns < f.fold.end for x in f.fills)
        assert all(f.fold.score_start <= t.entry_ns < f.fold.end for t in f.trades)
        assert f.metrics["fills"] == len(f.fills)
        assert f.metrics["maker_fills"] == sum(x.liquidity == "MAKER" for x in f.fills)
        # the run warmed up over the train span: its equity curve starts there, the score after the purge
        assert f.equity_ts[0] <= f.fold.train_end < f.fold.score_start
    # seed 002's Phase 3 acceptance: the strategy trades in a small interval (pinned: these ticks, these defaults)
    traded = [f.fold.index for f in result.folds if f.metrics["fills"]]
    assert traded == [2]
    fold2 = result.folds[2]
    assert fold2.metrics["maker_fills"] >= 3  # the reversion's post-only tranches
    assert {m["horizon_ms"] for m in fold2.markouts} == {1000, 5000, 30000}
    # the baseline trades every fold on the same ticks
    assert all(f.metrics["fills"] > 0 for f in result.baseline)


def test_fold_pnl_is_the_equity_change_over_the_scored_span(walk) -> None:
    _, result = walk
    for f in result.folds:
        before = f.equity[f.equity_ts < f.fold.score_start]
        inside = f.equity[(f.equity_ts >= f.fold.score_start) & (f.equity_ts <= f.fold.end)]
        assert f.metrics["pnl"] == pytest.approx(inside[-1] - before[-1], abs=1e-6)


def test_bundle_holds_every_artifact_and_labels(walk, tmp_path: Path) -> None:
    exp, result = walk
    home = Home(tmp_path / "home").ensure()
    bundle = write_experiment_bundle(home, result)
    assert bundle == home.runs / exp.experiment_id
    assert sorted(p.name for p in bundle.iterdir()) == sorted(FILES)
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["experiment_id"] == exp.experiment_id
    assert len(summary["folds"]) == len(summary["baseline"]["folds"]) == 6
    assert summary["effective"] == {"quotes_free": True, "depth_proxy": False, "oi_prior": False}
    labels = " ".join(summary["labels"])
    assert "quotes-free" in labels
    assert "no bookDepth" in labels
    assert "no metrics" in labels
    assert summary["comparison"]["folds"] == 6
    resolved = yaml.safe_load((bundle / "config_resolved.yaml").read_text())
    assert resolved["signal"]["bucket_notional"] == 1_000_000.0
    assert resolved["execution"]["taker_fee"] == 0.0005
    fills = (bundle / "fills.csv").read_text().splitlines()
    assert len(fills) - 1 == sum(len(f.fills) for f in (*result.folds, *result.baseline))
    assert fills[0].startswith("run,fold,ts_ns,")


def test_signal_trace_is_the_kernel_over_the_raw_file(walk, proxy_home: Home) -> None:
    """The trace in the bundle equals the feature kernel run straight on the ingested CSV."""
    _, result = walk
    csv = next((proxy_home.root.parent / "src").rglob("*.csv"))
    raw = aggtrades_arrays(csv)
    from vibe_quant.lpi import LpiInputs

    expected = compute(LpiInputs(**raw).checked(), LpiParams(quotes_free=True))
    got = pq.read_table(bundle_path_trace(result)).to_pandas()
    assert len(got) == len(expected) > 100
    for name in SNAPSHOT_DTYPE.names:
        np.testing.assert_array_equal(got[name].to_numpy(), expected[name], err_msg=name)


def bundle_path_trace(result) -> pq.ParquetFile:
    import io

    return io.BytesIO(bundle_files(result)["signal_trace.parquet"])


def test_same_experiment_gives_byte_identical_bundles_whatever_the_ingest_order(walk, tmp_path: Path) -> None:
    exp, result = walk
    other = ingest_proxy_day(tmp_path / "b", reverse_rows=True)  # rows newest first: the ingester sorts
    again = run_experiment(other, exp)
    first, second = bundle_files(result), bundle_files(again)
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name


def test_score_by_hand() -> None:
    fold = Fold(0, 0, 100, 150, 300)
    fills = [FillRecord(ts, ts, "X", f"o{ts}", 1, 1.0, 10.0, 0.5, liq, "LIMIT", "entry", 10.0, 0.0, "p")
             for ts, liq in ((120, "MAKER"), (160, "MAKER"), (200, "TAKER"), (300, "TAKER"))]  # fmt: skip
    recorder = RunRecorder(fills=fills)
    recorder.event(170, "MARKOUT", horizon_ms=1000, markout_bps=2.0)
    recorder.event(210, "MARKOUT", horizon_ms=1000, markout_bps=-4.0)
    recorder.event(140, "MARKOUT", horizon_ms=1000, markout_bps=100.0)  # before the scored span
    result = SimpleNamespace(equity_ts=[50, 100, 140, 200, 250, 300], equity=[1000, 1010, 1020, 990, 1030, 1040],
                             recorder=recorder, trades=[])  # fmt: skip
    m = score(fold, result, bar_ns=50, start_equity=1000.0)
    assert m["pnl"] == 20.0  # 1040 - 1020 (the last close before 150)
    assert m["return"] == pytest.approx(20 / 1020)
    assert m["max_drawdown"] == pytest.approx(30 / 1020)  # 1020 -> 990
    assert (m["fills"], m["maker_fills"], m["fees"]) == (2, 1, 1.0)  # 160 and 200; 300 is the end (excluded)
    assert m["markout_1000ms_bps"] == -1.0


def test_ablations_set_only_their_own_parameters() -> None:
    exp = experiment_from_data({**WALK, "params": {"theta_lpi": 2.5}}, "x").resolved()
    base = strategy_params(exp, quotes_free=False, depth=True, oi=True)
    changes = {
        "depth": (strategy_params(exp, False, False, True), {"ld_variant", "exh_variant"}),
        "oi": (strategy_params(exp, False, True, False), {"use_lev"}),
        "quotes": (strategy_params(exp, True, True, True), {"quotes_free"}),
    }
    for name, (params, keys) in changes.items():
        assert {k for k in base if base[k] != params[k]} == keys, name
    maker = experiment_from_data({**WALK, "params": {"theta_lpi": 2.5}, "execution": {"maker_only": True}}, "y")
    assert {k for k, v in strategy_params(maker.resolved(), False, True, True).items() if base.get(k) != v} == {
        "maker_only"
    }
    assert base["theta_lpi"] == 2.5
    assert base["use_lev"] is True
    assert base["ld_variant"] == "spread_depth"


def test_sweep_and_show_through_the_cli(proxy_home: Home, tmp_path: Path, cli) -> None:
    home = tmp_path / "home"
    shutil.copytree(proxy_home.root, home)
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({**{k: v for k, v in WALK.items() if k != "walk_forward"}, "strategy": "lpi_cascade",
                                   "start": "2026-05-08T00:00", "end": "2026-05-08T02:00", "baseline": None,
                                   "signal": {"bucket_notional": 100_000.0, "window": 100, "min_periods": 20,
                                              "rv_window": 20},
                                   "params": {"theta_lpi": 2.0, "n_max": 20_000.0}}))  # fmt: skip
    code, out = cli(["--home", str(home), "-q", "lpi", "sweep", str(exp), "--latency", "none,retail",
                     "--fee-tier", "vip0,vip9", "--json"])  # fmt: skip
    assert code == 0, out
    grid = json.loads(out.strip().splitlines()[-1])
    points = grid["points"]
    assert [(p["latency"], p["fee_tier"]) for p in points] == [("none", "vip0"), ("none", "vip9"),
                                                                ("retail", "vip0"), ("retail", "vip9")]  # fmt: skip
    assert len({p["experiment_id"] for p in points}) == 4
    assert all(p["fills"] > 0 for p in points)  # Variant A trades in the first two hours
    by = {(p["latency"], p["fee_tier"]): p for p in points}
    for lat in ("none", "retail"):  # the fee tier changes no decision here: the same fills, VIP9 pays less
        assert by[(lat, "vip0")]["fills"] == by[(lat, "vip9")]["fills"]
        assert by[(lat, "vip9")]["fees"] < by[(lat, "vip0")]["fees"]
    assert Path(grid["table"]).read_text().count("\n") == 5
    code, out = cli(["--home", str(home), "lpi", "show", points[0]["experiment_id"]])
    assert code == 0, out
    assert points[0]["experiment_id"] in out
    assert "quotes-free" in out


def test_bad_input_through_the_cli(proxy_home: Home, tmp_path: Path, cli) -> None:
    code, out = cli(["--home", str(proxy_home.root), "lpi", "run", str(tmp_path / "nope.yaml")])
    assert code != 0
    assert "no such experiment file" in out
    code, out = cli(["--home", str(proxy_home.root), "lpi", "show", "nope"])
    assert code != 0
    assert "no experiment bundle 'nope'" in out
    bad = tmp_path / "eth.yaml"
    bad.write_text(yaml.safe_dump({**WALK, "instruments": ["ETHUSDT"]}))
    code, out = cli(["--home", str(proxy_home.root), "lpi", "run", str(bad)])
    assert code != 0
    assert "no trade ticks for ETHUSDT" in out
    assert "vq data ingest --symbols ETHUSDT" in out
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({**WALK, "ablations": {"oi_prio": False}}))
    code, out = cli(["--home", str(proxy_home.root), "lpi", "run", str(typo)])
    assert code != 0
    assert "ablations: Object contains unknown field `oi_prio`" in out
    assert "oi_prior" in out  # the known keys


def test_a_failed_run_leaves_the_previous_bundle(walk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, result = walk
    home = Home(tmp_path / "home").ensure()
    bundle = write_experiment_bundle(home, result)
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    broken = dataclasses.replace(result, trace=np.zeros(1, dtype=[("x", "O")]))  # parquet cannot write objects
    with pytest.raises(Exception):  # noqa: B017,PT011 - whatever pyarrow raises
        write_experiment_bundle(home, broken)
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before
    assert not list((home.runs).glob(".staging*/*"))


@pytest.fixture(scope="module")
def slow_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """The hand-made USD-M fixture days 2024-03-01/02 (labelled in tests/fixtures/binance/README.md):
    aggTrades, open interest (``metrics``) and ``bookDepth``, ingested with the real ingester."""
    import datetime as dt

    from tests.conftest import PROJECT
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.instruments.specs import InstrumentSpecs

    home = Home(tmp_path_factory.mktemp("slow") / "home").ensure()
    request = IngestRequest(str(PROJECT / "tests/fixtures/binance"), ("BTCUSDT",), ("aggTrades", "metrics", "bookDepth"),
                            dt.date(2024, 3, 1), dt.date(2024, 3, 3))  # fmt: skip
    run_ingest(home, request, InstrumentSpecs())
    return home


def test_ablations_on_data_with_open_interest_and_depth(slow_home: Home) -> None:
    """Where the catalog has open interest and book depth, the tick run feeds them to the strategy and
    the OI and depth ablations take effect; each changes only the signal columns it names."""
    doc = {"name": "slow", "instruments": ["BTCUSDT"], "start": "2024-03-01", "end": "2024-03-02", "baseline": None,
           "signal": {"bucket_notional": 1000.0, "window": 5, "min_periods": 2, "rv_window": 2, "lev_window": 3}}  # fmt: skip
    runs = {name: run_experiment(slow_home, experiment_from_data({**doc, "ablations": ablations}, name))
            for name, ablations in (("all", {}), ("no_oi", {"oi_prior": False}), ("no_depth", {"depth_proxy": False}))}  # fmt: skip
    assert runs["all"].effective == {"quotes_free": True, "depth_proxy": True, "oi_prior": True}
    assert runs["no_oi"].effective == {"quotes_free": True, "depth_proxy": True, "oi_prior": False}
    assert runs["no_depth"].effective == {"quotes_free": True, "depth_proxy": False, "oi_prior": True}
    assert not [x for x in runs["all"].labels if "unavailable" in x]
    base = runs["all"].trace
    assert len(base) > 10
    assert np.isfinite(base["lev"]).any()
    assert np.isfinite(base["depth_proxy"]).any()

    def changed(name: str) -> set[str]:
        t = runs[name].trace
        assert len(t) == len(base)
        return {c for c in SNAPSHOT_DTYPE.names if not np.array_equal(t[c], base[c], equal_nan=True)}

    assert changed("no_oi") == {"lev", "validity_flags"}
    assert np.isnan(runs["no_oi"].trace["lev"]).all()
    assert changed("no_depth") - {"validity_flags"} == {"depth_proxy", "ld", "l", "lpi_fast", "exh"}


def test_tick_runs_deliver_open_interest_to_the_strategy(slow_home: Home) -> None:
    """The strategy's own per-tick engine sees the catalog's open interest (LEV finite in its SIGNAL
    events) and its snapshots equal the trace the bundle stores."""
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.ticks import load_tick_data, run_tick_backtest
    from vibe_quant.experiments.runner import backtest_config, load_data, signal_trace
    from vibe_quant.instruments.specs import InstrumentSpecs

    exp = experiment_from_data({"name": "slow", "instruments": ["BTCUSDT"], "start": "2024-03-01",
                                "end": "2024-03-02", "params": {"theta_lpi": 0.01, "exit_lpi": 0.001, "theta_exh_high": -99.0, "kill_spread_bps": 1e6,
                                           "max_spread_bps": 1e6, "max_quote_age_ms": 10**9},
                                "signal": {"bucket_notional": 1000.0, "window": 5, "min_periods": 2, "rv_window": 2,
                                           "lev_window": 3}}, "slow").resolved()  # fmt: skip
    params = strategy_params(exp, quotes_free=True, depth=True, oi=True)
    plan = plan_run(backtest_config(exp, exp.strategy, "lpi", params, "1m"))
    data = load_tick_data(slow_home.catalog, plan, InstrumentSpecs())
    result = run_tick_backtest(plan, data)
    signals = [e for e in result.recorder.events if e["type"] == "SIGNAL"]
    assert signals
    assert any(np.isfinite(e["lev"]) for e in signals)
    trace = signal_trace(load_data(slow_home, experiment_from_data({"name": "slow", "instruments": ["BTCUSDT"],
                         "start": "2024-03-01", "end": "2024-03-02"}, "x")), exp, True, True, True)  # fmt: skip
    rows = {}
    for t in trace:
        rows.setdefault(int(t["ts_event"]), []).append((float(t["lpi_fast"]), float(t["exh"]), float(t["lev"])))
    for e in signals:  # the strategy's snapshot at each decision is one of the trace's at that time, bit for bit
        got = np.array([e["lpi"], e["exh"], e["lev"]])
        assert any(np.array_equal(got, np.array(r), equal_nan=True) for r in rows[e["ts"]])
