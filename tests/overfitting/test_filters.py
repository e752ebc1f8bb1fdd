"""The filters on hand-made and synthetic return series: thresholds are strict, a noise family
is rejected by DSR and PBO while a planted edge passes, CPCV picks the planted edge, consistency
flags a Sharpe that halves. Plus the configuration's errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from vibe_quant.errors import ConfigError
from vibe_quant.overfitting import filters as F
from vibe_quant.overfitting.config import (
    CPCV,
    PBO,
    DeflatedSharpe,
    OverfittingConfig,
    PurgedKFold,
    WalkForward,
    load_config,
    select_filters,
)


def noise(n_obs: int, n_trials: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.01, (n_obs, n_trials))


def planted(n_obs: int, n_trials: int, seed: int) -> np.ndarray:
    m = noise(n_obs, n_trials, seed)
    m[:, 0] += 0.002  # a real edge: daily mean 0.2%, sd 1% (annualised Sharpe ~3.8)
    return m


# -- walk-forward ---------------------------------------------------------------------------------


def window(is_total: float, oos_total: float, train: int = 10, test: int = 5) -> F.WindowResult:
    """A window whose IS and OOS periods each make one return on their last day."""
    r = np.zeros(train + test)
    r[train - 1], r[-1] = is_total, oos_total
    return F.WindowResult(r, train)


def test_walk_forward_efficiency_is_annualised_oos_over_is_and_thresholds_are_strict() -> None:
    # IS 10 days +2% -> 73% a year; OOS 5 days +1% -> 73% a year: efficiency 1.
    v = F.walk_forward_filter([window(0.02, 0.01), window(0.02, 0.01)], WalkForward())
    assert v.passed
    assert v.figures["efficiency"] == pytest.approx(1.0)
    assert v.figures["profitable_windows_pct"] == 1.0
    # efficiency exactly 0.5 fails (seed: "> 0.5")
    v = F.walk_forward_filter([window(0.02, 0.005), window(0.02, 0.005)], WalkForward())
    assert not v.passed
    assert v.figures["efficiency"] == pytest.approx(0.5)
    assert "efficiency" in v.reason
    # half the OOS windows profitable fails (seed: "> 50%")
    v = F.walk_forward_filter([window(0.02, 0.03), window(0.02, -0.005)], WalkForward())
    assert v.figures["efficiency"] > 0.5
    assert v.figures["profitable_windows_pct"] == 0.5
    assert not v.passed
    assert "profitable" in v.reason
    v = F.walk_forward_filter([window(-0.01, 0.03)], WalkForward())
    assert not v.passed
    assert "no in-sample profit" in v.reason
    assert math.isnan(v.figures["efficiency"])


def test_walk_forward_selection_picks_the_best_in_sample_sharpe_per_window() -> None:
    rng = np.random.default_rng(3)
    good = [F.WindowResult(np.r_[rng.normal(0.003, 0.01, 20), [0.01] * 5], 20) for _ in range(3)]
    bad = [F.WindowResult(np.r_[rng.normal(-0.003, 0.01, 20), [-0.01] * 5], 20) for _ in range(3)]
    sel = F.walk_forward_selection({7: good, 9: bad})
    assert sel["chosen_per_window"] == [7, 7, 7]
    assert sel["profitable_windows_pct"] == 1.0


# -- purged K-fold --------------------------------------------------------------------------------


def test_purged_kfold_passes_a_steady_edge_and_rejects_noise() -> None:
    cfg = PurgedKFold(n_splits=5)
    # An annualised Sharpe measured over n days has a standard error ~ sqrt(365 / n): the seed's
    # "std < 1.0 across 5 folds" needs folds of well over a year, so this edge has 11 years.
    steady = F.purged_kfold_filter(planted(4000, 1, 1)[:, 0], cfg, purge=2, embargo=1)
    assert steady.passed, steady.reason
    assert len(steady.figures["oos_sharpe"]) == 5
    assert steady.figures["mean_oos_sharpe"] > 2
    flat = F.purged_kfold_filter(np.zeros(100), cfg, purge=0, embargo=0)
    assert not flat.passed
    assert flat.figures["mean_oos_sharpe"] == 0.0
    lumpy = np.r_[np.full(200, 0.01), np.full(800, 0.0)] + noise(1000, 1, 2)[:, 0] * 0.1
    v = F.purged_kfold_filter(lumpy, cfg, purge=0, embargo=0)
    assert not v.passed
    assert "std" in v.reason


# -- DSR and PBO on a noise family vs a planted edge (the acceptance test) ---------------------------


def test_dsr_and_pbo_reject_a_noise_family_and_pass_a_planted_edge() -> None:
    fam = noise(1000, 200, 11)
    trials = F.TrialSharpes.of([fam[:, j] for j in range(fam.shape[1])])
    best = int(np.argmax(fam.mean(axis=0) / fam.std(axis=0)))
    assert not F.deflated_sharpe(fam[:, best], trials, DeflatedSharpe()).passed
    pbo = F.pbo_filter(fam, PBO(n_splits=10))
    assert not pbo.passed
    assert pbo.figures["pbo"] > 0.3

    edge = planted(1000, 200, 11)
    trials = F.TrialSharpes.of([edge[:, j] for j in range(edge.shape[1])])
    v = F.deflated_sharpe(edge[:, 0], trials, DeflatedSharpe())
    assert v.passed
    assert v.figures["dsr"] > 0.95
    assert v.figures["n_trials"] == 200
    assert F.pbo_filter(edge, PBO(n_splits=10)).figures["pbo"] < 0.1


def test_dsr_threshold_is_strict() -> None:
    fam = planted(500, 20, 5)
    trials = F.TrialSharpes.of([fam[:, j] for j in range(20)])
    dsr = F.deflated_sharpe(fam[:, 0], trials, DeflatedSharpe()).figures["dsr"]
    assert not F.deflated_sharpe(fam[:, 0], trials, DeflatedSharpe(confidence_threshold=dsr)).passed
    assert F.deflated_sharpe(fam[:, 0], trials, DeflatedSharpe(confidence_threshold=dsr - 1e-9)).passed


def test_cpcv_selects_the_planted_edge_in_every_split() -> None:
    m = planted(1200, 30, 8)
    v = F.cpcv_filter(m, CPCV(n_groups=6, n_test_groups=2), purge=3, embargo=1, ids=list(range(100, 130)))
    assert v.figures["selected"] == {100: 15}
    assert v.figures["paths"] == 5
    assert v.passed
    assert v.figures["mean_path_sharpe"] > 2
    assert not F.cpcv_filter(noise(1200, 30, 8), CPCV(), 3, 1, list(range(30))).passed


# -- screening vs validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("screen", "valid", "degradation", "sensitive"),
    [
        (2.0, 1.5, 0.25, False),
        (2.0, 1.0, 0.5, False),  # exactly 50% is not "more than 50%"
        (2.0, 0.9, 0.55, True),
        (2.0, -1.0, 1.5, True),
        (2.0, math.nan, math.nan, True),  # no trade in validation
        (-0.5, -2.0, math.nan, False),  # nothing to lose
        (None, 1.0, math.nan, False),
    ],
)
def test_execution_degradation_table(screen, valid, degradation, sensitive) -> None:
    got, flagged = F.execution_degradation(screen, valid, 0.5)
    assert flagged is sensitive
    assert (math.isnan(got) and math.isnan(degradation)) or got == pytest.approx(degradation)


# -- configuration ---------------------------------------------------------------------------------


def test_defaults_are_seed_001_values() -> None:
    c = OverfittingConfig()
    assert c.enabled() == ["dsr", "wfa", "pkfold"]
    assert (c.deflated_sharpe.confidence_threshold, c.walk_forward.train_window_days, c.walk_forward.test_window_days,
            c.walk_forward.step_days, c.walk_forward.min_efficiency, c.walk_forward.min_profitable_windows_pct,
            c.purged_kfold.n_splits, c.purged_kfold.min_mean_sharpe, c.purged_kfold.max_sharpe_std) == (
        0.95, 270, 90, 30, 0.5, 0.5, 5, 0.5, 1.0)  # fmt: skip


def test_config_file_errors_name_the_file_and_field(tmp_path: Path) -> None:
    f = tmp_path / "of.yaml"
    f.write_text("overfitting:\n  walk_forward:\n    train_window_dayz: 3\n")
    with pytest.raises(ConfigError, match=r"of\.yaml.*train_window_dayz.*overfitting\.walk_forward"):
        load_config(f)
    f.write_text("overfitting:\n  walkforward: {}\n")
    with pytest.raises(ConfigError, match=r"unknown section overfitting\.walkforward.*walk_forward"):
        load_config(f)
    f.write_text("overfitting:\n  pbo:\n    n_splits: 7\n")
    with pytest.raises(ConfigError, match="even"):
        load_config(f)
    f.write_text("overfitting: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f)
    with pytest.raises(ConfigError, match="no such"):
        load_config(tmp_path / "missing.yaml")
    f.write_text(
        "deflated_sharpe:\n  enabled: false\npbo:\n  enabled: true\n  max_pbo: 0.2\n"
    )  # the block's contents only
    c = load_config(f)
    assert c.enabled() == ["wfa", "pkfold", "pbo"]
    assert c.pbo.max_pbo == 0.2


def test_select_filters() -> None:
    c = OverfittingConfig()
    assert select_filters(c, None) == ["dsr", "wfa", "pkfold"]
    assert select_filters(c, "pbo, DSR") == ["pbo", "dsr"]
    with pytest.raises(ConfigError, match=r"unknown filter 'pko'.*pkfold"):
        select_filters(c, "pko")
    with pytest.raises(ConfigError, match="twice"):
        select_filters(c, "dsr,dsr")


def test_config_file_sets_the_consistency_check(tmp_path: Path) -> None:
    f = tmp_path / "of.yaml"
    f.write_text("overfitting:\n  consistency:\n    enabled: true\n    max_degradation: 0.3\n")
    c = load_config(f)
    assert (c.consistency.enabled, c.consistency.max_degradation) == (True, 0.3)
