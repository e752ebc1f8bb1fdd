"""``vq demo`` runs end to end on the bundled sample and says where its outputs are."""

from __future__ import annotations

import json
from pathlib import Path

from vibe_quant.cli import app, run


def test_demo_runs_on_the_bundled_sample(tmp_path: Path, capsys) -> None:
    home = tmp_path / "demo-home"
    assert run(app, ["-q", "demo", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "byte-identical" in out
    assert "all checks passed" in out
    assert f"catalog:    {home.resolve() / 'catalog'}" in out
    manifest = json.loads((home / "catalog" / "manifest.json").read_text())
    assert manifest["symbols"]["FILUSDT"]["timeframes"]["1m"]["bars"] == 92 * 1440
    assert manifest["symbols"]["NEARUSDT"]["timeframes"]["4h"]["bars"] == 92 * 6
    assert manifest["symbols"]["BTCUSDT"]["funding"]["rows"] == 90
    # step 6: one validation backtest with its bundle and database rows
    assert "ema_trend_atr FILUSDT 15m 2023-08-01..2023-10-31, validation, latency retail" in out
    assert "warning: funding not modelled for FILUSDT" in out
    [bundle] = list((home / "runs").iterdir())
    assert f"backtest:   {bundle.resolve()}" in out
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["metrics"]["total_trades"] > 0
