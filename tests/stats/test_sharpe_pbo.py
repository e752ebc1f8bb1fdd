"""Overfitting statistics (Bailey & Lopez de Prado): PSR, SR0, DSR, MinTRL, moments and CSCV/PBO."""

from __future__ import annotations

import math
from itertools import combinations, pairwise

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from vibe_quant.stats.pbo import cscv, probability_of_backtest_overfitting
from vibe_quant.stats.sharpe import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    min_track_record_length,
    probabilistic_sharpe_ratio,
    return_moments,
)

# -- DSR worked example (Bailey & Lopez de Prado 2014) -----------------------------------------------

PAPER_SR = 2.5 / math.sqrt(250)  # annualised 2.5 over 250 days per year, per period
PAPER_VAR = 0.5 / 250  # annualised variance of the trial Sharpes, per period


def test_paper_expected_max_sharpe() -> None:
    """SR0 of the paper's example is 0.1132 per period."""
    assert round(expected_max_sharpe(100, PAPER_VAR), 4) == 0.1132


def test_paper_deflated_sharpe_ratio() -> None:
    """DSR of the paper's example is 0.9004."""
    dsr = deflated_sharpe_ratio(PAPER_SR, n_trials=100, sr_variance=PAPER_VAR, n_obs=1250, skew=-3.0, kurtosis=10.0)
    assert round(dsr, 4) == 0.9004


def test_dsr_is_psr_against_sr0() -> None:
    """DSR equals PSR with SR0 as the benchmark, and sr_mean shifts SR0."""
    sr0 = expected_max_sharpe(100, PAPER_VAR, sr_mean=0.01)
    assert sr0 == pytest.approx(0.01 + expected_max_sharpe(100, PAPER_VAR), abs=1e-15)
    dsr = deflated_sharpe_ratio(PAPER_SR, 100, PAPER_VAR, 1250, -3.0, 10.0, sr_mean=0.01)
    assert dsr == probabilistic_sharpe_ratio(PAPER_SR, sr0, 1250, -3.0, 10.0)
    assert dsr < deflated_sharpe_ratio(PAPER_SR, 100, PAPER_VAR, 1250, -3.0, 10.0)


# -- PSR ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sr", "skew", "kurt"), [(0.1, 0.0, 3.0), (0.05, -1.0, 6.0), (-0.2, 0.5, 4.0)])
def test_psr_half_at_the_benchmark(sr: float, skew: float, kurt: float) -> None:
    """PSR is exactly 0.5 when the Sharpe equals its benchmark."""
    assert probabilistic_sharpe_ratio(sr, sr, 250, skew, kurt) == 0.5


def test_psr_increases_with_observations() -> None:
    """More observations make a Sharpe above the benchmark more certain."""
    values = [probabilistic_sharpe_ratio(0.08, 0.02, n, -0.5, 5.0) for n in (2, 10, 50, 250, 1000, 5000)]
    assert all(a < b for a, b in pairwise(values))
    assert values[0] > 0.5
    assert values[-1] > 0.999


def test_psr_decreases_with_observations_below_benchmark() -> None:
    """Below the benchmark, more observations push PSR towards 0."""
    values = [probabilistic_sharpe_ratio(0.01, 0.05, n, 0.0, 3.0) for n in (10, 100, 1000)]
    assert all(a > b for a, b in pairwise(values))
    assert values[-1] < 0.5


def test_psr_matches_hand_computation_for_normal_moments() -> None:
    """Skew 0 / kurtosis 3: PSR = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 + SR^2 / 2))."""
    sr, bench, n = 0.1, 0.03, 500
    expected = sps.norm.cdf((sr - bench) * math.sqrt(n - 1) / math.sqrt(1 + sr * sr / 2))
    assert probabilistic_sharpe_ratio(sr, bench, n, 0.0, 3.0) == pytest.approx(expected, rel=1e-12)
    assert 0.9 < expected < 1  # the example is not degenerate


def test_psr_penalises_negative_skew_and_fat_tails() -> None:
    """Negative skew and excess kurtosis lower the PSR of a positive Sharpe."""
    normal = probabilistic_sharpe_ratio(0.1, 0.0, 200, 0.0, 3.0)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 200, -2.0, 3.0) < normal
    assert probabilistic_sharpe_ratio(0.1, 0.0, 200, 0.0, 12.0) < normal


@pytest.mark.parametrize("n_obs", [1, 0, -5])
def test_psr_nan_below_two_observations(n_obs: int) -> None:
    """Fewer than 2 observations: undefined."""
    assert math.isnan(probabilistic_sharpe_ratio(0.1, 0.0, n_obs, 0.0, 3.0))


def test_psr_nan_on_nan_input() -> None:
    """A nan moment propagates as nan."""
    assert math.isnan(probabilistic_sharpe_ratio(0.1, 0.0, 100, math.nan, 3.0))
    assert math.isnan(probabilistic_sharpe_ratio(math.nan, 0.0, 100, 0.0, 3.0))


# -- expected maximum Sharpe (SR0) ----------------------------------------------------------------------


def test_expected_max_sharpe_single_trial_is_the_mean() -> None:
    """One trial has nothing to deflate."""
    assert expected_max_sharpe(1, 0.5) == 0.0
    assert expected_max_sharpe(1, 0.5, sr_mean=0.3) == 0.3


def test_expected_max_sharpe_increases_with_trials() -> None:
    """More trials, a larger expected maximum."""
    values = [expected_max_sharpe(n, 0.01) for n in (1, 2, 5, 10, 100, 1000, 10_000)]
    assert all(a < b for a, b in pairwise(values))


@pytest.mark.parametrize("n_trials", [2, 10, 100, 1000])
def test_expected_max_sharpe_scales_with_sqrt_variance(n_trials: int) -> None:
    """SR0 - mean is proportional to the cross-trial standard deviation."""
    base = expected_max_sharpe(n_trials, 0.01)
    assert base > 0
    assert expected_max_sharpe(n_trials, 0.04) == pytest.approx(2 * base, rel=1e-12)
    assert expected_max_sharpe(n_trials, 0.09) == pytest.approx(3 * base, rel=1e-12)
    assert expected_max_sharpe(n_trials, 0.0, sr_mean=0.2) == pytest.approx(0.2, abs=1e-15)


@pytest.mark.parametrize(("n_trials", "variance"), [(0, 0.1), (-3, 0.1), (10, -0.01)])
def test_expected_max_sharpe_rejects_bad_input(n_trials: int, variance: float) -> None:
    """No trials or a negative variance is an error."""
    with pytest.raises(ValueError, match="must be >= "):
        expected_max_sharpe(n_trials, variance)


@pytest.mark.parametrize("n_trials", [10, 100, 1000])
def test_expected_max_sharpe_matches_monte_carlo(n_trials: int) -> None:
    """The mean maximum of N iid N(0, V) draws is within 2.5% of the approximation (measured <= 2.1%)."""
    variance = 0.5
    rng = np.random.default_rng(20140101 + n_trials)
    simulated = rng.normal(0.0, math.sqrt(variance), (20_000, n_trials)).max(axis=1).mean()
    tolerance = 0.025 if n_trials == 10 else 0.015  # the approximation improves with N (measured 2.1%, 0.8%, 0.4%)
    assert simulated == pytest.approx(expected_max_sharpe(n_trials, variance), rel=tolerance)


# -- MinTRL -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sr", "bench"), [(0.05, 0.05), (0.01, 0.05), (-0.1, 0.0)])
def test_min_track_record_length_infinite_without_edge(sr: float, bench: float) -> None:
    """A Sharpe that does not beat the benchmark never gets there."""
    assert min_track_record_length(sr, bench, 0.0, 3.0) == math.inf


def test_min_track_record_length_hand_value() -> None:
    """Normal moments: 1 + (1 + SR^2 / 2) (z / (SR - SR*))^2."""
    z = sps.norm.ppf(0.95)
    expected = 1 + (1 + 0.1**2 / 2) * (z / 0.1) ** 2
    assert min_track_record_length(0.1, 0.0, 0.0, 3.0, 0.95) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 1.5])
def test_min_track_record_length_rejects_bad_confidence(confidence: float) -> None:
    """Confidence must lie strictly between 0 and 1."""
    with pytest.raises(ValueError, match="confidence"):
        min_track_record_length(0.1, 0.0, 0.0, 3.0, confidence)


@settings(max_examples=200, deadline=None)
@given(
    sr=st.floats(0.01, 0.5),
    gap=st.floats(0.005, 0.3),
    skew=st.floats(-1.0, 1.0),
    kurt=st.floats(1.5, 12.0),
    confidence=st.floats(0.6, 0.995),
)
def test_min_track_record_length_consistent_with_psr(
    sr: float, gap: float, skew: float, kurt: float, confidence: float
) -> None:
    """PSR reaches `confidence` at ceil(MinTRL) observations and not at floor(MinTRL) - 1."""
    bench = sr - gap
    mtrl = min_track_record_length(sr, bench, skew, kurt, confidence)
    assume(4 <= mtrl < 1e7)
    assert probabilistic_sharpe_ratio(sr, bench, math.ceil(mtrl), skew, kurt) >= confidence - 1e-12
    assert probabilistic_sharpe_ratio(sr, bench, math.floor(mtrl) - 1, skew, kurt) < confidence


def test_min_track_record_length_paper_example() -> None:
    """The paper's example beats SR0 at 95% confidence only after more than its 1250 observations."""
    sr0 = expected_max_sharpe(100, PAPER_VAR)
    mtrl = min_track_record_length(PAPER_SR, sr0, -3.0, 10.0, 0.95)
    assert mtrl > 1250  # DSR 0.9004 < 0.95 at T = 1250
    assert probabilistic_sharpe_ratio(PAPER_SR, sr0, math.ceil(mtrl), -3.0, 10.0) >= 0.95


# -- return moments -------------------------------------------------------------------------------------

SAMPLE = np.array([0.01, -0.02, 0.03, 0.005, -0.01, 0.02, 0.0, 0.015, -0.04, 0.012])


def test_return_moments_known_sample() -> None:
    """Sharpe with ddof 1, population skewness and raw kurtosis, as scipy and by hand."""
    sr, skew, kurt, n = return_moments(SAMPLE)
    assert n == 10
    assert sr == pytest.approx(SAMPLE.mean() / SAMPLE.std(ddof=1), rel=1e-12)
    assert skew == pytest.approx(sps.skew(SAMPLE), rel=1e-12)
    assert kurt == pytest.approx(sps.kurtosis(SAMPLE, fisher=False), rel=1e-12)
    dev = SAMPLE - SAMPLE.mean()
    m2, m3, m4 = (dev**2).mean(), (dev**3).mean(), (dev**4).mean()
    assert skew == pytest.approx(m3 / m2**1.5, rel=1e-12)
    assert kurt == pytest.approx(m4 / m2**2, rel=1e-12)
    assert skew < 0  # the -0.04 tail


def test_return_moments_normal_sample_is_near_three() -> None:
    """A large normal sample has skew near 0 and raw (not excess) kurtosis near 3."""
    _, skew, kurt, n = return_moments(np.random.default_rng(7).normal(0.001, 0.01, 200_000))
    assert n == 200_000
    assert abs(skew) < 0.03
    assert kurt == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize("sample", [[0.01, 0.02], [], [0.01] * 10])
def test_return_moments_undefined(sample: list[float]) -> None:
    """Fewer than 3 returns or a flat series: nan moments, the count still given."""
    sr, skew, kurt, n = return_moments(np.array(sample))
    assert n == len(sample)
    assert math.isnan(sr)
    assert math.isnan(skew)
    assert math.isnan(kurt)


# -- CSCV / PBO ---------------------------------------------------------------------------------------


def block_sharpes(matrix: np.ndarray, n_splits: int) -> np.ndarray:
    """Per-block, per-trial Sharpe (ddof 1): (S, N)."""
    blocks = matrix.reshape(n_splits, -1, matrix.shape[1])
    return blocks.mean(axis=1) / blocks.std(axis=1, ddof=1)


def test_pbo_zero_for_a_dominant_strategy() -> None:
    """A trial that is best in every block is best in and out of sample: PBO 0."""
    rng = np.random.default_rng(1)
    m = rng.normal(0.0, 0.01, (400, 12))
    m[:, 5] += 0.02
    assert (block_sharpes(m, 8).argmax(axis=1) == 5).all()  # the fixture is what it claims
    result = cscv(m, 8)
    assert result.pbo == 0.0
    assert result.logits == pytest.approx(np.full(result.logits.size, math.log(12)))  # OOS rank N of N: w = N / (N + 1)
    assert result.prob_oos_loss == 0.0


def reversed_ranks_matrix(rows: int, trials: int, seed: int) -> np.ndarray:
    """Columns of +-0.01 with as many + as -: every column sums to zero, so IS mean = -OOS mean."""
    rng = np.random.default_rng(seed)
    base = np.repeat([0.01, -0.01], rows // 2)
    return np.column_stack([rng.permutation(base) for _ in range(trials)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pbo_one_for_reversed_ranks(seed: int) -> None:
    """The in-sample best is the out-of-sample worst in every split: PBO 1."""
    m = reversed_ranks_matrix(400, 10, seed)
    assert np.allclose(m.sum(axis=0), 0.0)
    result = cscv(m, 8)
    assert result.rows_used == 400
    assert result.pbo == 1.0
    assert (result.logits <= 0).all()
    assert np.allclose(result.oos_sharpe, -result.is_sharpe, rtol=1e-9)  # IS mean = -OOS mean, same std
    # recompute each split by hand: the IS argmax has the lowest OOS Sharpe
    blocks = m.reshape(8, 50, 10)
    for i, chosen in enumerate(combinations(range(8), 4)):
        rest = [b for b in range(8) if b not in chosen]
        is_rows, oos_rows = blocks[list(chosen)].reshape(-1, 10), blocks[rest].reshape(-1, 10)
        is_sr = is_rows.mean(axis=0) / is_rows.std(axis=0, ddof=1)
        oos_sr = oos_rows.mean(axis=0) / oos_rows.std(axis=0, ddof=1)
        best = int(np.argmax(is_sr))
        assert result.is_sharpe[i] == pytest.approx(is_sr[best], rel=1e-9)
        assert result.oos_sharpe[i] == pytest.approx(oos_sr[best], rel=1e-9)
        assert oos_sr[best] == pytest.approx(oos_sr.min(), rel=1e-9)


def test_pbo_of_pure_noise_is_about_one_half() -> None:
    """Without skill the IS best is a coin flip out of sample (mean over 30 seeds, measured ~0.51)."""
    pbos = [
        probability_of_backtest_overfitting(np.random.default_rng(s).normal(0, 0.01, (800, 40)), 10) for s in range(30)
    ]
    assert 0.4 <= float(np.mean(pbos)) <= 0.6


@pytest.mark.parametrize("n_splits", [2, 4, 6, 8, 10, 16])
def test_cscv_number_of_logits(n_splits: int) -> None:
    """One logit per split: C(S, S/2)."""
    m = np.random.default_rng(n_splits).normal(0, 0.01, (n_splits * 5 + 3, 4))
    result = cscv(m, n_splits)
    assert len(result.logits) == len(result.is_sharpe) == len(result.oos_sharpe) == math.comb(n_splits, n_splits // 2)
    assert result.n_splits == n_splits
    assert result.n_trials == 4
    assert result.rows_used == (m.shape[0] // n_splits) * n_splits


def test_cscv_drops_the_oldest_rows() -> None:
    """With T not a multiple of S the oldest rows are dropped: garbage in them changes nothing."""
    m = np.random.default_rng(3).normal(0, 0.01, (103, 6))
    tampered = m.copy()
    tampered[:3] = [1.0, -1.0, 5.0, 0.0, 2.0, -3.0]
    a, b = cscv(m, 10), cscv(tampered, 10)
    assert a.rows_used == 100
    assert np.array_equal(a.logits, b.logits)
    assert a.pbo == b.pbo


@pytest.mark.parametrize("n_splits", [3, 7, 0, 1])
def test_cscv_rejects_bad_split_count(n_splits: int) -> None:
    """The split count must be even and >= 2."""
    with pytest.raises(ValueError, match="n_splits"):
        cscv(np.random.default_rng(0).normal(0, 0.01, (200, 5)), n_splits)


def test_cscv_rejects_too_few_rows() -> None:
    """Each block needs at least 2 rows."""
    m = np.random.default_rng(0).normal(0, 0.01, (19, 5))
    with pytest.raises(ValueError, match="blocks"):
        cscv(m, 10)
    assert len(cscv(np.vstack([m, m[:1]]), 10).logits) == math.comb(10, 5)  # 20 rows suffice


@pytest.mark.parametrize("shape", [(200, 1), (200,)])
def test_cscv_rejects_a_single_trial(shape: tuple[int, ...]) -> None:
    """PBO needs at least two trials to rank."""
    with pytest.raises(ValueError, match="trials"):
        cscv(np.random.default_rng(0).normal(0, 0.01, shape), 4)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_cscv_rejects_non_finite_input(bad: float) -> None:
    """nan or inf anywhere is an error."""
    m = np.random.default_rng(0).normal(0, 0.01, (200, 5))
    m[150, 2] = bad
    with pytest.raises(ValueError, match="nan or inf"):
        cscv(m, 4)


def test_cscv_is_deterministic() -> None:
    """Same input, same output."""
    m = np.random.default_rng(11).normal(0, 0.01, (300, 15))
    a, b = cscv(m, 10), cscv(m.copy(), 10)
    assert a.pbo == b.pbo
    assert np.array_equal(a.logits, b.logits)
    assert np.array_equal(a.is_sharpe, b.is_sharpe)
    assert np.array_equal(a.oos_sharpe, b.oos_sharpe)
    assert probability_of_backtest_overfitting(m, 10) == a.pbo


# -- synthetic overfit family vs planted edge ------------------------------------------------------------

T_OBS, N_TRIALS = 1000, 200


def family_dsr(m: np.ndarray, trial: int) -> float:
    """DSR of one trial against the family: N trials, the cross-trial Sharpe variance, its own moments."""
    sharpes = np.array([return_moments(m[:, j])[0] for j in range(m.shape[1])])
    sr, skew, kurt, n = return_moments(m[:, trial])
    return deflated_sharpe_ratio(sr, m.shape[1], float(sharpes.var(ddof=1)), n, skew, kurt)


def test_noise_family_best_trial_is_not_significant() -> None:
    """200 skill-less trials: the best one looks good alone but its DSR is < 0.95 and PBO is high."""
    m = np.random.default_rng(2024).normal(0.0, 0.01, (T_OBS, N_TRIALS))
    sharpes = np.array([return_moments(m[:, j])[0] for j in range(N_TRIALS)])
    best = int(np.argmax(sharpes))
    sr, skew, kurt, n = return_moments(m[:, best])
    assert probabilistic_sharpe_ratio(sr, 0.0, n, skew, kurt) > 0.95  # naive PSR against 0 is fooled
    assert family_dsr(m, best) < 0.95
    assert probability_of_backtest_overfitting(m, 10) > 0.3


def test_planted_edge_is_significant_and_family_not_overfit() -> None:
    """One trial with a real daily edge among noise: its DSR > 0.95 and the family's PBO < 0.1."""
    rng = np.random.default_rng(2024)
    m = rng.normal(0.0, 0.01, (T_OBS, N_TRIALS))
    m[:, 17] = rng.normal(0.002, 0.01, T_OBS)
    sharpes = np.array([return_moments(m[:, j])[0] for j in range(N_TRIALS)])
    assert int(np.argmax(sharpes)) == 17
    assert family_dsr(m, 17) > 0.95
    assert probability_of_backtest_overfitting(m, 10) < 0.1


def test_moments_match_scipy_on_many_samples() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        r = rng.standard_t(df=3, size=int(rng.integers(3, 400))) * 0.01 + rng.normal(0, 0.001)
        _, skew, kurt, _ = return_moments(r)
        assert skew == pytest.approx(sps.skew(r), rel=1e-9, abs=1e-12)
        assert kurt == pytest.approx(sps.kurtosis(r, fisher=False), rel=1e-9)


def test_cscv_ranks_ties_and_flat_trials_as_scipy_rankdata() -> None:
    """The rank of the IS best among all trials out of sample, ties averaged (scipy's rankdata)."""
    from itertools import combinations

    rng = np.random.default_rng(11)
    m = np.round(rng.normal(0.0, 0.01, size=(64, 6)), 3)  # rounded: equal returns, tied Sharpes
    m[:, 4] = m[:, 3]  # two identical trials
    m[:, 5] = 0.0  # a flat trial (never picked, ranked lowest)
    out = cscv(m, n_splits=8)
    blocks = m.reshape(8, 8, -1)
    for k, chosen in enumerate(combinations(range(8), 4)):
        rest = [b for b in range(8) if b not in chosen]

        def sharpe(idx):
            x = blocks[idx].reshape(-1, m.shape[1])
            sd = x.std(axis=0, ddof=1)
            return np.where(sd > 1e-12, x.mean(axis=0) / np.where(sd > 0, sd, 1), -np.inf)

        best = int(np.argmax(sharpe(list(chosen))))
        omega = sps.rankdata(sharpe(rest))[best] / (m.shape[1] + 1)
        assert out.logits[k] == pytest.approx(np.log(omega / (1 - omega)), rel=1e-9)
