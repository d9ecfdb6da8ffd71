"""Promotion evidence and gates: the selection, DSR/PBO and approval each against an
independent computation (separate backtests, the stats functions on the full return matrix)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from quantlib.backtest import run_backtest
from quantlib.core.registry import get_kind
from quantlib.data import synthetic_ohlcv
from quantlib.errors import ParameterError
from quantlib.optimize import export_and_promote, gather_evidence
from quantlib.optimize.stats import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_ratio,
)
from quantlib.strategy.gates import GateConfig
from quantlib.strategy.spec import load_spec

KIND = "ma_cross"
GRID = [{"fast": f, "slow": s} for f in (4, 8, 16) for s in (30, 60)]
SPLIT = 0.7
N_SPLITS = 8
LAX = GateConfig(min_oos_sharpe=-1e9, min_dsr=0.0, max_pbo=1.0, min_trades=0)
# Unreachable thresholds, so each gate fails whatever the data.
STRICT = GateConfig(min_oos_sharpe=1e9, min_dsr=1.1, max_pbo=-1.0, min_trades=10**9)


@pytest.fixture(scope="module")
def data():
    return synthetic_ohlcv(n_bars=1200, timeframe="1h", seed=5).ohlcv


@pytest.fixture(scope="module")
def evidence(data):
    return gather_evidence(KIND, data, GRID, split=SPLIT, n_splits=N_SPLITS)


@pytest.fixture(scope="module")
def singles(data):
    """Each combination backtested on its own on the first 70% of the rows."""
    insample = data.iloc[:int(len(data) * SPLIT)]
    return [run_backtest(KIND, insample, p) for p in GRID]


def test_best_params_are_argmax_of_separate_backtests(evidence, singles, data):
    sharpes = np.array([r.metrics["sharpe"].iloc[0] for r in singles], dtype=float)
    best = int(np.nanargmax(sharpes))
    assert evidence.best_params == get_kind(KIND).validate(GRID[best])
    assert evidence.n_trials == len(GRID)
    cut = int(len(data) * SPLIT)
    assert evidence.split_index == cut
    # The in-sample and out-of-sample results are the winner's backtests on each side of the cut.
    assert evidence.in_sample.metrics["sharpe"].iloc[0] == pytest.approx(sharpes[best], rel=1e-12)
    oos = run_backtest(KIND, data.iloc[cut:], GRID[best])
    assert evidence.out_of_sample.equity.index[0] == data.index[cut]
    np.testing.assert_allclose(evidence.out_of_sample.equity.to_numpy(), oos.equity.to_numpy())


def test_dsr_and_pbo_equal_stats_on_the_return_matrix(evidence, singles):
    equity = np.column_stack([r.equity.iloc[:, 0].to_numpy() for r in singles])
    init_cash = singles[0].config.init_cash
    returns = equity / np.vstack([np.full((1, equity.shape[1]), init_cash), equity[:-1]]) - 1.0
    best = int(np.nanargmax([r.metrics["sharpe"].iloc[0] for r in singles]))
    trial_sharpes = sharpe_ratio(returns)
    column = returns[:, best]
    expected_dsr = deflated_sharpe_ratio(
        float(trial_sharpes[best]), len(column), len(GRID), float(np.var(trial_sharpes, ddof=1)),
        float(sps.skew(column, bias=False)), float(sps.kurtosis(column, fisher=False, bias=False)))
    expected_pbo = probability_of_backtest_overfitting(returns, n_splits=N_SPLITS).pbo
    assert evidence.dsr == pytest.approx(expected_dsr, rel=1e-9)
    assert evidence.pbo == pytest.approx(expected_pbo, abs=1e-12)


def test_lax_gates_approve_and_write_the_spec(evidence, tmp_path):
    spec, results = export_and_promote(evidence, "promo_ok", LAX, tmp_path, by="tester")
    assert results and all(r.passed for r in results)
    assert spec.approval.status == "approved" and spec.approval.by == "tester"
    assert load_spec(tmp_path / "promo_ok.json") == spec
    ev = spec.evidence
    assert spec.params == evidence.best_params and ev.n_trials == len(GRID)
    assert ev.dsr == pytest.approx(evidence.dsr) and ev.pbo == pytest.approx(evidence.pbo)
    assert ev.out_of_sample["sharpe"] == pytest.approx(
        float(evidence.out_of_sample.metrics["sharpe"].iloc[0]))
    assert ev.in_sample["sharpe"] == pytest.approx(
        float(evidence.in_sample.metrics["sharpe"].iloc[0]))
    assert ev.lookahead_passed is True


def test_strict_gates_leave_a_draft_and_write_nothing(evidence, tmp_path):
    spec, results = export_and_promote(evidence, "promo_no", STRICT, tmp_path)
    assert spec.approval.status == "draft"
    assert not (tmp_path / "promo_no.json").exists()
    # Each gate's verdict recomputed from the evidence itself.
    oos = evidence.out_of_sample.metrics.iloc[0]
    expected = {"oos_sharpe": oos["sharpe"] >= STRICT.min_oos_sharpe,
                "dsr": evidence.dsr >= STRICT.min_dsr, "pbo": evidence.pbo <= STRICT.max_pbo,
                "min_trades": oos["n_trades"] >= STRICT.min_trades,
                "lookahead": evidence.lookahead_passed}
    assert {r.name: r.passed for r in results} == expected
    assert not all(expected.values())


@pytest.mark.parametrize("gate", ["min_oos_sharpe", "min_dsr", "max_pbo", "min_trades"])
def test_one_failed_gate_is_enough_to_refuse(evidence, tmp_path, gate):
    strict_one = GateConfig(**{**LAX.__dict__, gate: getattr(STRICT, gate)})
    spec, results = export_and_promote(evidence, "promo_one", strict_one, tmp_path)
    assert [r.passed for r in results].count(False) == 1
    assert spec.approval.status == "draft" and not (tmp_path / "promo_one.json").exists()


def test_single_trial_has_no_pbo_and_fails_that_gate(data, tmp_path):
    ev = gather_evidence(KIND, data, GRID[:1], split=SPLIT, n_splits=N_SPLITS)
    assert ev.n_trials == 1 and math.isnan(ev.pbo)
    spec, results = export_and_promote(ev, "promo_single", LAX, tmp_path)
    assert spec.evidence.pbo is None
    assert [r.name for r in results if not r.passed] == ["pbo"]
    assert not (tmp_path / "promo_single.json").exists()


@pytest.mark.parametrize("split", [0.0, 1.0, -0.5, 0.001, 0.9999])
def test_bad_split_is_refused_naming_the_parameter(data, split):
    with pytest.raises(ParameterError, match="split"):
        gather_evidence(KIND, data, GRID, split=split, n_splits=N_SPLITS)
