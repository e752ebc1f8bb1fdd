"""`vq dolphin compare` on real hourly perpetuals (the session's hourly catalog)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import linked_home
from tests.dolphin.conftest import covering
from vibe_quant.results.dolphin_compare import FILE


def test_vq_dolphin_compare_on_real_hourly_perps(cli, tmp_path: Path, hourly_home) -> None:
    """`vq dolphin compare` over a few real hourly perpetuals (751 bars of scanner warm-up, then about 10 days of
    engine rows): the bundle's dolphin_compare.json, its parts summing to the total difference."""
    home = linked_home(tmp_path / "home", hourly_home.catalog)
    symbols = [p.name.split("_USDT_")[0] + "USDT" for p in covering("2025-11-28 00:00", "2026-03-02 23:00", 8)]
    args = ["--home", str(home.root), "dolphin", "compare", "--symbols", ",".join(symbols), "--start", "2026-01-01",
            "--end", "2026-02-10"]  # fmt: skip
    code, text = cli(args)
    assert code == 0, text
    assert "orders vs engine" in text
    (bundle,) = home.runs.glob(f"*/{FILE}")
    c = json.loads(bundle.read_text())
    assert c["counts"]["engine_trades"] == len(c["trades"]) > 0
    assert math.fsum([*c["parts"].values(), c["residual"]]) == pytest.approx(c["diff"], abs=1e-9)
    assert abs(c["residual"]) < 1e-6
    for t in c["trades"]:
        assert math.fsum([*t["parts"].values(), t["residual"]]) == pytest.approx(t["diff"], abs=1e-9)
    code, text = cli([*args[:-2], "--end", "2026-02-10", "--strategy", "ema_cross"])
    assert code != 0
    assert "--strategy 'ema_cross'" in text
