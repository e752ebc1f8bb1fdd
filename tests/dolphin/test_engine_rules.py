"""The NDAlphaEngine's formulas against the digest's Appendix A worked values (recomputed from the formulas)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vibe_quant.dolphin import rules as R
from vibe_quant.dolphin.engine_config import CHAMPION_YAML, EngineConfig, engine_config, load_engine_config
from vibe_quant.errors import ConfigError

CFG = EngineConfig()
BOOST_1 = 1.0 + 0.5 * math.log1p(1.0)  # signals = 1: 1.346574


@pytest.mark.parametrize(
    ("vd", "strength", "confidence", "leverage", "fraction"),
    [
        (-0.02, 0.0, 0.5, 0.5, 0.02),
        (-0.03, 1 / 3, 0.5 + 0.4 / 3, 0.5 + 4.5 / 27, (0.02 + 0.18 / 3) * 0.55 / 0.95),
        (-0.035, 0.5, 0.7, 1.0625, 0.11 * 0.55 / 0.95),
        (-0.04, 2 / 3, 0.5 + 0.8 / 3, 0.5 + 4.5 * 8 / 27, (0.02 + 0.12) * 0.55 / 0.95),
        (-0.05, 1.0, 0.9, 5.0, 0.20),
        (-0.06, 1.0, 0.9, 5.0, 0.20),
    ],
)
def test_strength_confidence_leverage_and_fraction(vd, strength, confidence, leverage, fraction) -> None:
    s = R.strength(vd, CFG)
    assert s == pytest.approx(strength, abs=1e-12)
    assert R.confidence(vd, CFG) == pytest.approx(confidence, abs=1e-12)
    assert R.size_leverage(s, CFG) == pytest.approx(leverage, abs=1e-12)
    assert R.eff_fraction(s, R.is_extreme(vd, CFG), 1.0, CFG) == pytest.approx(fraction, abs=1e-12)


def test_the_digests_six_decimal_values() -> None:
    values = [(R.confidence(vd, CFG), R.size_leverage(R.strength(vd, CFG), CFG),
               R.eff_fraction(R.strength(vd, CFG), R.is_extreme(vd, CFG), 1.0, CFG))
              for vd in (-0.03, -0.035, -0.04)]  # fmt: skip
    assert np.round(values, 6).tolist() == [[0.633333, 0.666667, 0.046316], [0.7, 1.0625, 0.063684],
                                            [0.766667, 1.833333, 0.081053]]  # fmt: skip


def test_buckets_at_their_printed_edges() -> None:
    vds = (-0.08, -0.075, -0.06, -0.05, -0.04, -0.035, -0.03)
    assert [R.bucket(v, CFG) for v in vds] == [0, 0, 1, 1, 2, 2, 3]


@pytest.mark.parametrize(("vd", "beta", "rsm", "final", "stalker"), [
    (-0.05, 0.8, BOOST_1 * 1.8, 6.0, 2.0),
    (-0.035, 0.8, BOOST_1 * 1.1, 1.0625 * BOOST_1 * 1.1, 1.0625 * BOOST_1 * 1.1 if 1.0625 * BOOST_1 * 1.1 < 2 else 2.0),
    (-0.035, 0.2, BOOST_1 * 1.025, 1.0625 * BOOST_1 * 1.025, 1.0625 * BOOST_1 * 1.025),
    (-0.02, 0.8, BOOST_1, 0.5 * BOOST_1, 0.5 * BOOST_1),
])  # fmt: skip
def test_regime_multiplier_and_the_leverage_clamp(vd, beta, rsm, final, stalker) -> None:
    got = R.regime_size_mult(vd, BOOST_1, beta, 1.0, CFG)
    assert got == pytest.approx(rsm, abs=1e-12)
    lev = R.size_leverage(R.strength(vd, CFG), CFG)
    assert R.final_leverage(lev, got, 1.0, 1.0, "APEX", CFG)[0] == pytest.approx(final, abs=1e-12)
    assert R.final_leverage(lev, got, 1.0, 1.0, "STALKER", CFG)[0] == pytest.approx(stalker, abs=1e-12)


def test_appendix_a_regime_values_to_six_decimals() -> None:
    assert round(BOOST_1, 6) == 1.346574
    assert round(R.regime_size_mult(-0.05, BOOST_1, 0.8, 1.0, CFG), 6) == 2.423832
    assert (
        round(R.final_leverage(5.0, R.regime_size_mult(-0.05, BOOST_1, 0.8, 1.0, CFG), 1.0, 1.0, "APEX", CFG)[1], 6)
        == 6.0
    )
    assert round(5.0 * R.regime_size_mult(-0.05, BOOST_1, 0.8, 1.0, CFG), 6) == 12.119162
    assert round(R.regime_size_mult(-0.035, BOOST_1, 0.8, 1.0, CFG), 6) == 1.481231
    assert round(R.regime_size_mult(-0.035, BOOST_1, 0.2, 1.0, CFG), 6) == 1.380238
    lev = R.final_leverage(1.0625, R.regime_size_mult(-0.035, BOOST_1, 0.8, 1.0, CFG), 1.0, 1.0, "APEX", CFG)[0]
    assert round(lev, 6) == 1.573808
    assert round(R.final_leverage(1.0625, 1.380238, 1.0, 1.0, "APEX", CFG)[0], 6) == 1.466503
    assert round(R.final_leverage(0.5, BOOST_1, 1.0, 1.0, "APEX", CFG)[0], 6) == 0.673287
    notional = 10_000 * R.eff_fraction(0.5, False, 1.0, CFG) * lev
    assert notional == pytest.approx(1002.267126, abs=5e-7)
    boost_4 = 1.0 + 0.5 * math.log1p(4.0)
    assert round(R.regime_size_mult(-0.06, boost_4, 0.8, 1.0, CFG), 6) == 3.248494
    # ORANGE halves the multiplier
    assert R.regime_size_mult(-0.035, BOOST_1, 0.8, 0.5, CFG) == pytest.approx(BOOST_1 * 1.1 * 0.5, abs=1e-12)


def test_direction_confirmation() -> None:
    def history(p1: float) -> list[float]:
        return [100.0] + [100.0] * 6 + [p1]

    assert R.dc_change_bps(100.0, 99.99) == pytest.approx(-1.0, abs=1e-9)
    assert R.direction_confirmation(history(99.99), CFG) == R.CONFIRM
    assert R.direction_confirmation(history(99.995), CFG) == R.NEUTRAL
    assert R.direction_confirmation(history(100.0076), CFG) == R.CONTRADICT
    assert R.direction_confirmation(history(100.0076)[1:], CFG) == R.NEUTRAL  # too short: 7 prices
    long = engine_config(direction=1)
    assert R.direction_confirmation(history(100.0076), long) == R.CONFIRM


def test_ob_confirmation() -> None:
    assert R.ob_confirmation(-0.2, 0.8, -1) == pytest.approx(1.08, abs=1e-12)
    assert R.ob_confirmation(0.2, 0.7, -1) is None
    assert R.ob_confirmation(0.2, 0.5, -1) == pytest.approx(0.96, abs=1e-12)
    assert R.ob_confirmation(0.05, 0.9, -1) == 1.0


def test_irp_golden_in_both_twins() -> None:
    p = np.array([10, 9.9, 9.8, 9.85, 9.7, 9.6])
    for metrics, ars in ((R.irp_metrics_py, R.ars_py), (R.irp_metrics_nb, R.ars_nb)):
        mfe, mae, eff, align, noise, latency = metrics(p, -1, False, 1e-6, 0.1, 50)
        assert (mfe, mae, align, latency) == (pytest.approx(0.4, abs=1e-12), 0.0, 0.8, 0)
        assert eff == pytest.approx(400_000.0, rel=1e-12)
        assert noise == pytest.approx(0.0046, abs=1e-12)
        assert round(ars(eff, align, noise, 0.5, 0.35, 0.15, 1000.0), 6) == 6.039611
        m = metrics(p, 1, False, 1e-6, 0.1, 50)
        assert m[0] == pytest.approx(-0.1, abs=1e-12)
        assert m[5] == 50
        assert round(ars(m[2], m[3], m[4], 0.5, 0.35, 0.15, 1000.0), 6) == -0.763841


def test_irp_twins_pick_the_same_asset() -> None:
    rng = np.random.default_rng(7)
    params = R.irp_params(CFG)
    for _ in range(20):
        windows = np.cumprod(1 + rng.normal(-0.0005, 0.002, (50, 60)), axis=0) * rng.uniform(0.01, 3, 60)
        eligible = rng.random(60) > 0.1
        assert R.best_irp_asset_py(windows, eligible, -1, params) == R.best_irp_asset_nb(windows, eligible, -1, params)


def test_mc_gate_classes() -> None:
    cases = [(0.26, 0.0), (0.0, -1.01), (0.0, -0.5), (0.11, 0.0), (0.10, 0.0)]
    assert [R.mc_status(c, e) for c, e in cases] == ["RED", "RED", "ORANGE", "ORANGE", "OK"]


def test_worked_short_trade() -> None:
    xp = R.exit_price(99.0, -1, CFG.tp_slip)
    raw = R.pnl_pct(100.0, xp, -1)
    assert R.pnl_pct(100.0, 99.0, -1) >= CFG.fixed_tp_pct
    assert xp == pytest.approx(99.0198, abs=1e-12)
    assert raw == pytest.approx(0.009802, abs=1e-12)
    fees = CFG.entry_fee_rate * 1000 + CFG.exit_fee_rate * 1000
    assert raw * 1000 == pytest.approx(9.802, abs=1e-12)
    assert raw * 1000 - fees == pytest.approx(9.138, abs=1e-12)
    assert (raw + 0.0002 + 0.0002 + 0.0005) * 1000 - fees == pytest.approx(10.038, abs=1e-12)


def test_fee_rates_are_the_printed_decimals() -> None:
    assert CFG.entry_fee_rate == 0.000314
    assert CFG.exit_fee_rate == 0.00035
    assert CFG.taker_fee == 0.0005


def test_shipped_champion_is_the_default_config() -> None:
    champion = load_engine_config()
    assert champion == EngineConfig()
    assert champion.profile == "honest"
    assert load_engine_config(profile="seed").refunds


def test_config_errors_name_the_file_and_field(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("dolphin:\n  max_hold_bar: 60\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'max_hold_bar'.*max_hold_bars"):
        load_engine_config(bad)
    bad.write_text("dolphin:\n  fraction: high\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: .*fraction"):
        load_engine_config(bad)
    bad.write_text("dolphin:\n  vel_div_threshold: -0.06\n")
    with pytest.raises(ConfigError, match="vel_div_threshold"):
        load_engine_config(bad)
    bad.write_text("dolphin: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_engine_config(bad)
    with pytest.raises(ConfigError, match="no such DOLPHIN engine config"):
        load_engine_config(tmp_path / "missing.yaml")
    assert CHAMPION_YAML.is_file()


def test_layer_seven_multipliers() -> None:
    assert [R.trend_mult(t, CFG) for t in (-0.02, -0.01, 0.0, 0.01, 0.02, None)] == [1.3, 1.0, 1.0, 1.0, 0.7, 1.0]
    long = engine_config(direction=1)
    assert [R.trend_mult(t, long) for t in (-0.02, 0.02)] == [0.7, 1.3]
    assert [R.streak_mult(n) for n in (5, 4, 3, 2, 1, 0, None)] == [0.5, 0.5, 0.7, 1.0, 1.1, 1.1, 1.0]
    rates = (0.61, 0.60, 0.56, 0.50, 0.44, 0.39, None)
    assert [R.bucket_boost(w) for w in rates] == [1.3, 1.1, 1.1, 1.0, 0.85, 0.7, 1.0]
