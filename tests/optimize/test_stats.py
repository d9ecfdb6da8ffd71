"""PSR, DSR and PBO against hand-worked values from the published formulas."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import quantlib.optimize.stats as stats
from quantlib.errors import ParameterError


def _phi(z: float) -> float:
    # Standard normal CDF written out, independent of scipy.
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_psr_hand_worked():
    # SR = 0.1 per bar, T = 101, skew = -1, kurtosis = 5, benchmark 0.02:
    # denom = 1 - (-1)(0.1) + (5 - 1)/4 * 0.01 = 1 + 0.1 + 0.01 = 1.11
    # z = (0.1 - 0.02) * sqrt(100) / sqrt(1.11) = 0.8 / 1.0535654 = 0.7593262
    z = 0.8 / math.sqrt(1.11)
    assert z == pytest.approx(0.7593262, abs=1e-6)
    expected = _phi(z)  # ~= 0.77617
    psr = stats.probabilistic_sharpe_ratio(0.1, 101, -1.0, 5.0, 0.02)
    assert psr == pytest.approx(expected, 1e-12)
    assert expected == pytest.approx(0.77617, abs=1e-4)


def test_dsr_matches_bailey_lopez_de_prado_2014_example():
    # The paper's numerical example: N = 100 trials, V[SR] = 1/2 (annualised, 250 days/yr),
    # annualised SR 2.5, T = 1250 daily returns, skew -3, kurtosis 10 -> SR0 = 0.1132, DSR = 0.9004.
    # Phi^-1(1 - 1/100) = 2.3263479, Phi^-1(1 - 1/(100 e)) = 2.6802104 (normal tables).
    gamma = 0.5772156649
    sr0 = math.sqrt(0.5 / 250) * ((1 - gamma) * 2.3263479 + gamma * 2.6802104)
    # = 0.0447214 * (0.4227843 * 2.3263479 + 0.5772157 * 2.6802104) = 0.0447214 * 2.5306 = 0.11317
    assert sr0 == pytest.approx(0.11317, abs=1e-5)
    assert stats.expected_max_sharpe(100, 0.5 / 250) == pytest.approx(sr0, abs=1e-6)
    sr = 2.5 / math.sqrt(250)  # 0.1581139 per day
    z = (sr - sr0) * math.sqrt(1249) / math.sqrt(1 + 3 * sr + (10 - 1) / 4 * sr**2)
    # = 0.0449419 * 35.341194 / sqrt(1 + 0.4743416 + 0.05625) = 1.588288 / 1.237171 = 1.28382
    assert z == pytest.approx(1.2838, abs=1e-3)
    dsr = stats.deflated_sharpe_ratio(sr, 1250, 100, 0.5 / 250, -3.0, 10.0)
    assert dsr == pytest.approx(_phi(z), abs=1e-6)
    assert dsr == pytest.approx(0.9004, abs=5e-4)  # value printed in the paper


def test_dsr_deflates_with_more_trials():
    # One trial: no deflation, DSR == PSR against 0.
    assert stats.deflated_sharpe_ratio(0.05, 500, 1, 0.001) == pytest.approx(
        stats.probabilistic_sharpe_ratio(0.05, 500))
    values = [stats.deflated_sharpe_ratio(0.05, 500, n, 0.001) for n in (2, 10, 100, 1000)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_pbo_hand_worked_overfit_case():
    # 3 trials, 4 bars, S = 2 blocks: A = rows 0-1, B = rows 2-3. Sharpe = mean / std(ddof=1).
    # t0: A [1, 3] -> 2/sqrt2 = 1.4142 ; B [0, 2] -> 1/sqrt2 = 0.7071
    # t1: A [0, 2] -> 0.7071           ; B [2, 4] -> 3/sqrt2 = 2.1213
    # t2: A [-1, 1] -> 0               ; B [1, 3] -> 1.4142
    # J = A: IS best t0; OOS (B) Sharpes [0.7071, 2.1213, 1.4142] -> t0 ranks 1 -> w = 1/4,
    #        logit = log(1/3) = -1.0986 (<= 0: overfit)
    # J = B: IS best t1; OOS (A) Sharpes [1.4142, 0.7071, 0] -> t1 ranks 2 -> w = 2/4,
    #        logit = log(1) = 0 (<= 0: overfit)            => PBO = 2 / 2 = 1
    m = np.array([[1, 0, -1], [3, 2, 1], [0, 2, 1], [2, 4, 3]], dtype=float)
    res = stats.probability_of_backtest_overfitting(m, n_splits=2)
    assert res.pbo == 1.0
    assert sorted(res.logits) == pytest.approx([math.log(1 / 3), 0.0])
    assert sorted(res.is_performance) == pytest.approx([2 / math.sqrt(2), 3 / math.sqrt(2)])


def test_pbo_hand_worked_robust_case():
    # t1 best in both halves: A [2, 4] (2.1213) and B [2, 4] (2.1213); others as below.
    # J = A: IS best t1; OOS B [0.7071, 2.1213, 1.4142] -> rank 3 -> w = 3/4 -> logit log 3
    # J = B: IS best t1; OOS A [1.4142, 2.1213, 0]      -> rank 3 -> logit log 3  => PBO = 0
    m = np.array([[1, 2, -1], [3, 4, 1], [0, 2, 1], [2, 4, 3]], dtype=float)
    res = stats.probability_of_backtest_overfitting(m, n_splits=2)
    assert res.pbo == 0.0
    assert res.logits == pytest.approx([math.log(3), math.log(3)])


def _pbo_bruteforce(m: np.ndarray, s: int) -> float:
    # Direct transcription of the CSCV algorithm (loops, row concatenation, np.std).
    t = (m.shape[0] // s) * s
    m = m[m.shape[0] - t:]
    blocks = np.split(m, s)
    n = m.shape[1]
    logits = []
    for combo in itertools.combinations(range(s), s // 2):
        train = np.vstack([blocks[i] for i in combo])
        test = np.vstack([blocks[i] for i in range(s) if i not in combo])
        sr_is = train.mean(0) / train.std(0, ddof=1)
        sr_oos = test.mean(0) / test.std(0, ddof=1)
        best = int(np.argmax(sr_is))
        rank = 1 + np.sum(sr_oos < sr_oos[best])
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
    return float(np.mean(np.array(logits) <= 0))


def test_pbo_equals_bruteforce_cscv():
    rng = np.random.default_rng(3)
    m = rng.normal(0, 1, size=(125, 7)) + np.linspace(-0.1, 0.1, 7)
    assert stats.probability_of_backtest_overfitting(m, n_splits=6).pbo == pytest.approx(
        _pbo_bruteforce(m, 6))


def test_pbo_noise_near_half_and_planted_edge_low():
    noise = [stats.probability_of_backtest_overfitting(
        np.random.default_rng(seed).normal(0, 0.01, size=(1600, 40))).pbo for seed in range(12)]
    assert 0.35 <= float(np.mean(noise)) <= 0.65
    rng = np.random.default_rng(99)
    edge = rng.normal(0, 0.01, size=(1600, 40))
    edge[:, 7] += 0.003  # a real edge: per-bar Sharpe ~0.3 on one trial
    res = stats.probability_of_backtest_overfitting(edge)
    assert res.pbo < 0.05
    report = stats.overfitting_report(stats.ReturnMoments.from_returns(edge))
    assert report.best_index == 7 and report.dsr > 0.95


def test_report_on_noise_has_low_dsr():
    m = np.random.default_rng(5).normal(0, 0.01, size=(800, 200))
    rep = stats.overfitting_report(stats.ReturnMoments.from_returns(m))
    assert rep.n_trials == 200
    # Best noise Sharpe sits near E[max]; the raw PSR looks great, the DSR does not.
    assert rep.psr > 0.95
    assert rep.dsr < 0.8
    assert "overfit" in rep.verdict()


def test_moments_concat_matches_whole_matrix():
    m = np.random.default_rng(2).normal(size=(200, 9))
    whole = stats.ReturnMoments.from_returns(m, 4)
    parts = stats.ReturnMoments.concat([stats.ReturnMoments.from_returns(m[:, :4], 4),
                                  stats.ReturnMoments.from_returns(m[:, 4:], 4)])
    np.testing.assert_allclose(parts.block_sum, whole.block_sum)
    np.testing.assert_allclose(parts.sharpe, stats.sharpe_ratio(m))


def test_bad_inputs_raise_parameter_errors():
    with pytest.raises(ParameterError, match="row 2"):
        stats.probability_of_backtest_overfitting(
            np.array([[0.1, 0.2]] * 2 + [[np.nan, 0]] + [[0, 0]] * 40))
    with pytest.raises(ParameterError, match="even"):
        stats.ReturnMoments.from_returns(np.zeros((100, 3)), n_splits=5)
    with pytest.raises(ParameterError, match="n_trials"):
        stats.expected_max_sharpe(0, 0.1)


@pytest.mark.parametrize("table_bytes", [0, 256 * 2**20], ids=["gathered", "subset-tables"])
def test_pbo_paths_equal_bruteforce_on_every_split(monkeypatch, table_bytes):
    # Both ways of summing the IS blocks (per-split gathers; two half-subset tables) give the
    # brute force's PBO and the same logit for every split, ties included (duplicate trials).
    monkeypatch.setattr(stats, "_SUBSET_TABLE_BYTES", table_bytes)
    rng = np.random.default_rng(11)
    m = rng.normal(0, 1, size=(203, 9)) + np.linspace(-0.15, 0.15, 9)
    m[:, 4] = m[:, 2]  # an exact tie out of sample for every split
    res = stats.probability_of_backtest_overfitting(m, n_splits=8)
    assert res.pbo == pytest.approx(_pbo_bruteforce(m, 8))
    t = (m.shape[0] // 8) * 8
    blocks = np.split(m[m.shape[0] - t:], 8)
    for k, combo in enumerate(itertools.combinations(range(8), 4)):
        train = np.vstack([blocks[i] for i in combo])
        sr_is = train.mean(0) / train.std(0, ddof=1)
        assert res.is_performance[k] == pytest.approx(sr_is.max(), rel=1e-12)
