"""``vq dolphin backtest`` on real 1h scan tables of the champion window: both profiles, the bundle, the refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import linked_home
from vibe_quant.dolphin.array_engine import run_array, run_reference
from vibe_quant.dolphin.backtest import load_acb_schedule, load_scan_data
from vibe_quant.dolphin.engine_config import engine_config
from vibe_quant.home import Home


def _summary(cli, home: Home, scans: Path, *extra: str) -> dict:
    code, text = cli(["--home", str(home.root), "dolphin", "backtest", "--scans", str(scans), "--json", *extra])
    assert code == 0, text
    return json.loads(text)


def test_both_profiles_run_the_champion_window(cli, tmp_path: Path, hourly_home: Home, champion_scans: Path) -> None:
    home = linked_home(tmp_path / "home", hourly_home.catalog)
    code, text = cli(
        ["--home", str(home.root), "dolphin", "backtest", "--scans", str(champion_scans), "--profile", "seed"]
    )
    assert code == 0, text
    for words in ("profile seed", "trades", "gross", "entry fees", "net", "bonuses drawn: entry refund", "legacy edge",
                  "bundle:"):  # fmt: skip
        assert words in text
    seed = _summary(cli, home, champion_scans, "--profile", "seed")
    honest = _summary(cli, home, champion_scans)
    assert honest["profile"] == "honest"
    assert seed["profile"] == "seed"
    assert seed["costs"]["trades"] == honest["costs"]["trades"] > 0
    assert honest["costs"]["refund_entry_draws"] == honest["costs"]["edge_draws"] == 0
    assert seed["costs"]["refund_entry_draws"] + seed["costs"]["edge_draws"] > 0
    for s in (seed, honest):
        c = s["costs"]
        assert c["net"] == pytest.approx(c["gross"] - c["entry_fees"] - c["exit_fees"], abs=1e-9)
        assert c["gross"] == pytest.approx(c["price_pnl"] + c["refunds"] + c["edge"], abs=1e-9)
        assert s["metrics"]["final_equity"] == pytest.approx(10_000 + c["net"], abs=1e-9)
        bundle = Path(s["bundle"])
        rows = list(csv.DictReader((bundle / "ledger.csv").open()))
        assert len(rows) == c["trades"]
        assert sum(float(r["net"]) for r in rows) == pytest.approx(c["net"], abs=1e-9)
        days = list(csv.DictReader((bundle / "daily.csv").open()))
        assert next(d["date"] for d in days) == "2025-12-31"
        assert len(days) == 57
        assert float(days[-1]["capital"]) == pytest.approx(s["metrics"]["final_equity"], abs=1e-9)
        assert set(days[0]) == {"date", "pnl", "capital", "boost", "beta", "mc_status", "trades", "posture"}


def test_the_ledger_is_byte_identical_and_the_seed_moves_only_the_draws(cli, tmp_path: Path, hourly_home: Home,
                                                                        champion_scans: Path) -> None:  # fmt: skip
    home = linked_home(tmp_path / "home", hourly_home.catalog)
    first = _summary(cli, home, champion_scans, "--profile", "seed", "--out", str(tmp_path / "a"))
    second = _summary(cli, home, champion_scans, "--profile", "seed", "--out", str(tmp_path / "b"))
    for name in ("ledger.csv", "ledger.parquet", "daily.csv", "equity.parquet"):
        assert (Path(first["bundle"]) / name).read_bytes() == (Path(second["bundle"]) / name).read_bytes()
    other = _summary(cli, home, champion_scans, "--profile", "seed", "--seed", "7", "--out", str(tmp_path / "c"))
    a = list(csv.DictReader((Path(first["bundle"]) / "ledger.csv").open()))
    b = list(csv.DictReader((Path(other["bundle"]) / "ledger.csv").open()))
    assert [(r["asset"], r["entry_bar"], r["exit_bar"]) for r in a] == [
        (r["asset"], r["entry_bar"], r["exit_bar"]) for r in b
    ]
    assert [(r["refund_entry"], r["refund_exit"], r["edge"]) for r in a] != [
        (r["refund_entry"], r["refund_exit"], r["edge"]) for r in b
    ]


def test_array_and_reference_agree_on_real_tables(champion_scans: Path) -> None:
    data = load_scan_data(champion_scans)
    assert data.closes.shape == (57 * 24, 55)
    acb, _ = load_acb_schedule(champion_scans)
    for cfg in (engine_config(profile="seed"), engine_config(vel_div_threshold=-0.005, max_hold_bars=12)):
        a, b = run_array(data, cfg, acb=acb), run_reference(data, cfg, acb=acb)
        assert a.trades == b.trades
        assert a.days == b.days
        assert np.array_equal(a.equity, b.equity)
    assert len(a.trades) > 20  # the dense variant trades often


def test_refusals_name_the_flag_and_write_nothing(cli, tmp_path: Path, hourly_home: Home, champion_scans: Path) -> None:
    home = linked_home(tmp_path / "home", hourly_home.catalog)
    base = ["--home", str(home.root), "dolphin", "backtest"]
    code, text = cli([*base, "--scans", str(champion_scans), "--profile", "generous"])
    assert code == 2
    assert "--profile 'generous'" in text
    code, text = cli([*base, "--scans", str(tmp_path / "nowhere")])
    assert code != 0
    assert "no scan tables" in text
    assert "vq dolphin scans build" in text
    code, text = cli([*base, "--scans", str(champion_scans), "--start", "2025-12-01"])
    assert code != 0
    assert "2025-12-31..2026-02-25" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text("dolphin:\n  fixed_tp: 0.01\n")
    code, text = cli([*base, "--scans", str(champion_scans), "--config", str(bad)])
    assert code != 0
    assert "bad.yaml" in text
    assert "fixed_tp_pct" in text
    code, text = cli([*base, "--scans", str(champion_scans), "--engine", "turbo"])
    assert code != 0
    assert "--engine 'turbo'" in text
    assert not home.runs.exists() or not any(home.runs.iterdir())
