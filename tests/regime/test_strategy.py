"""regime_filter / regime_grid kinds: JSON params, causality, finite memory, grid active mask."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quantlib.backtest import check_lookahead, check_recursive, run_backtest
from quantlib.backtest.grid import run_grid
from quantlib.core.regime_kinds import grid_active, regime_filter_params, regime_ok
from quantlib.core.registry import get_kind
from quantlib.errors import ParameterError
from quantlib.regime import GaussianHMMRegime, MarkovChainRegime, regime_features
from quantlib.regime.attribution import run_regime_grid

INNER = {"fast": 10, "slow": 40}


@pytest.fixture(scope="module")
def data(market):
    return market.ohlcv.iloc[:2500]


@pytest.fixture(scope="module")
def hmm_params(data):
    X = regime_features(data, ["returns"])
    hmm = GaussianHMMRegime(3, n_restarts=1, random_state=0).fit(X)
    # Round trip through JSON text: the kind must work from a spec file alone.
    return json.loads(json.dumps(regime_filter_params(
        hmm, "ma_cross", INNER, allowed_regimes=[0, 1], filter_window=60)))


def test_signal_is_inner_signal_masked_by_filtered_regime(data, hmm_params):
    kind = get_kind("regime_filter")
    target = kind.signals(data, hmm_params)
    inner = get_kind("ma_cross").signals(data, INNER)
    ok = regime_ok(data, kind.validate(hmm_params))
    np.testing.assert_array_equal(target, inner * ok)
    assert 0.3 < ok.mean() < 0.95  # really filters
    # Independent recomputation of ok at one bar: forward filter over the last 60 feature rows,
    # from the stationary distribution, with the model's own machinery.
    t = 1500
    from quantlib.regime import filter_gaussian
    X = regime_features(data, ["returns"], dropna=False).to_numpy()
    proba, _ = filter_gaussian(X[t - 59 : t + 1], hmm_params["transmat"], hmm_params["means"],
                               hmm_params["covars"])
    assert ok[t] == (proba[-1, [0, 1]].sum() >= 0.5)


def test_causal_and_finite_memory(data, hmm_params):
    kind = get_kind("regime_filter")
    checked = kind.validate(hmm_params)
    full = kind.signals(data, hmm_params)
    warmup = kind.warmup(checked)
    assert warmup == 60  # features need 1 bar, the filter 60 rows; ma_cross needs 40
    for t in (300, 1200, 2499):
        np.testing.assert_array_equal(kind.signals(data.iloc[: t + 1], hmm_params), full[: t + 1])
        assert kind.signals(data.iloc[t - warmup : t + 1], hmm_params)[-1] == full[t]
    assert check_recursive("regime_filter", data, hmm_params, n_checks=8).passed
    assert check_lookahead("regime_filter", data, hmm_params, n_checks=5).passed


def test_chain_model_params_and_all_regimes_equal_inner(data):
    X = regime_features(data, ["volatility"], vol_window=12)
    chain = MarkovChainRegime(n_bins=3).fit(X)
    params = regime_filter_params(chain, "ma_cross", INNER, allowed_regimes=[0, 1, 2],
                                  features=["volatility"], vol_window=12)
    assert params["model"] == "chain" and params["edges"] == [chain.bin_edges_[0].tolist()]
    kind = get_kind("regime_filter")
    target = kind.signals(data, params)
    inner = get_kind("ma_cross").signals(data, INNER)
    np.testing.assert_array_equal(target[12:], inner[12:])  # every regime allowed
    calm = kind.signals(data, {**params, "allowed_regimes": [0]})
    states = chain.predict(X).reindex(data.index).to_numpy()
    np.testing.assert_array_equal(calm[12:], inner[12:] * (states[12:] == 0))


def test_backtest_through_registry(data, hmm_params):
    res = run_backtest("regime_filter", data, [hmm_params, {**hmm_params, "allowed_regimes": [2]}])
    assert res.metrics.shape[0] == 2
    assert res.metrics["exposure"].iloc[1] < res.metrics["exposure"].iloc[0]


def test_regime_grid_uses_active_mask(data, hmm_params):
    params = {**hmm_params, "inner_kind": "grid", "inner_params": {"n_levels": 8},
              "allowed_regimes": [0]}
    checked = get_kind("regime_grid").validate(params)
    active = grid_active(data, checked)
    ok = regime_ok(data, checked)
    assert not active[0] and np.array_equal(active[1:], ok[:-1])  # known before the bar opens
    res = run_regime_grid(data, params)
    ref = run_grid(data, [{"n_levels": 8}], None, active=active)
    np.testing.assert_allclose(res.equity.to_numpy(), ref.equity.to_numpy())
    buys = res.fills[res.fills["side"] == 1]
    assert active[buys["bar"].to_numpy()].all()  # no buy on an inactive bar
    unfiltered = run_grid(data, [{"n_levels": 8}])
    assert len(buys) < (unfiltered.fills["side"] == 1).sum()


def test_bad_params_are_reported():
    kind = get_kind("regime_filter")
    with pytest.raises(ParameterError, match="allowed_regimes"):
        kind.validate({"allowed_regimes": [5]})
    with pytest.raises(ParameterError, match="transmat"):
        kind.validate({"transmat": [[0.5, 0.6], [0.5, 0.5]]})
    with pytest.raises(ParameterError, match="regime_grid"):
        kind.validate({"inner_kind": "grid"})
    with pytest.raises(ParameterError, match="fast"):
        kind.validate({"inner_params": {"fast": 50, "slow": 10}})
    with pytest.raises(ParameterError, match="edges"):
        kind.validate({"model": "chain", "edges": [[0.3, 0.1]]})
