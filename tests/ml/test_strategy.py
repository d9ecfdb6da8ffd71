"""The xgb_classifier kind: registry, bounded-window identity, engine, JSON spec."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quantlib.core.registry import get_kind, list_kinds
from quantlib.errors import ParameterError
from quantlib.ml import make_params, predict_proba_bars


@pytest.fixture(scope="module")
def params(trained, market, regime_config):
    _, _, ref = trained
    base = make_params(ref, regime_config, entry=0.5, exit=0.5, memory=6)
    proba = predict_proba_bars(market, base)
    # Thresholds at the test data's own quantiles so positions actually change.
    hi, mid = np.nanquantile(proba, [0.7, 0.5])
    return make_params(ref, regime_config, entry=float(hi), exit=float(mid), memory=6)


def _reference_positions(proba, entry, exit_, memory, allow_short=False):
    """Plain-Python state machine, restarted flat `memory` bars back."""
    out = np.zeros(len(proba))
    for t in range(memory - 1, len(proba)):
        pos = 0
        for p in proba[t - memory + 1: t + 1]:
            if np.isnan(p):
                pos = 0
                continue
            if (pos == 1 and p < exit_) or (pos == -1 and p > 1 - exit_):
                pos = 0
            if pos == 0:
                pos = 1 if p >= entry else (-1 if allow_short and p <= 1 - entry else 0)
        out[t] = pos
    return out


def test_registered_and_params_are_json(params):
    assert "xgb_classifier" in list_kinds()
    kind = get_kind("xgb_classifier")
    assert json.loads(json.dumps(params)) == params
    assert kind.warmup(params) == params_window(params) + params["memory"] - 2


def params_window(params):
    from quantlib.ml import FeatureConfig

    return FeatureConfig.from_dict(params["features"]).window


def test_positions_follow_the_threshold_rule(market, params):
    kind = get_kind("xgb_classifier")
    target = kind.signals(market, params)
    proba = predict_proba_bars(market, params)
    expected = _reference_positions(proba, params["entry"], params["exit"], params["memory"])
    expected[: kind.warmup(params)] = 0
    np.testing.assert_array_equal(target, expected)
    assert 0.05 < np.mean(target != 0) < 0.95  # the rule does something on this data
    short = dict(params, allow_short=True, entry=params["entry"], exit=params["exit"])
    got = kind.signals(market, short)
    ref = _reference_positions(proba, short["entry"], short["exit"], short["memory"], True)
    ref[: kind.warmup(short)] = 0
    np.testing.assert_array_equal(got, ref)


def test_signal_identical_on_truncated_data_and_bounded_window(market, params):
    kind = get_kind("xgb_classifier")
    full = kind.signals(market, params)
    warm = kind.warmup(params)
    for t in range(warm, len(market), 53):
        assert kind.signals(market.iloc[: t + 1], params)[-1] == full[t], t
        assert kind.signals(market.iloc[t - warm: t + 1], params)[-1] == full[t], t
    from quantlib.backtest import check_lookahead, check_recursive

    assert check_recursive("xgb_classifier", market, params, n_checks=10).passed
    assert check_lookahead("xgb_classifier", market, params, n_checks=10).passed


def test_backtest_through_the_engine_fills_next_open(market, params):
    from quantlib.backtest import BacktestConfig, run_backtest

    res = run_backtest("xgb_classifier", market, params, BacktestConfig(fees=0.0))
    target = get_kind("xgb_classifier").signals(market, params)
    first = int(np.argmax(target != 0))
    fill = res.fills.iloc[0]
    assert fill["time"] == market.index[first + 1]
    assert fill["price"] == pytest.approx(market["open"].iloc[first + 1])
    n_changes = int(np.count_nonzero(np.diff(np.r_[0.0, target[:-1]])))
    assert len(res.fills) == n_changes  # one fill per target change (last bar never fills)


def test_spec_export_round_trip_with_model_artifact(params, tmp_path):
    from quantlib.strategy.spec import dump_spec, export, load_spec

    spec = export("xgb_demo", kind="xgb_classifier", params=params, symbols=["BTC/USD"],
                  timeframe="1h", artifacts=[params["model_path"]])
    assert spec.artifacts[0].sha256 == params["model_sha256"]
    again = load_spec(dump_spec(spec))
    assert again.params == params and again.kind == "xgb_classifier"


def test_bad_params_are_clear_errors(params, market):
    kind = get_kind("xgb_classifier")
    with pytest.raises(ParameterError, match="exit .* must be <= entry"):
        kind.validate(dict(params, entry=0.55, exit=0.6))
    with pytest.raises(ParameterError, match="model_sha256"):
        kind.validate(dict(params, model_sha256="abc"))
    fewer = dict(params, features=dict(params["features"], time_features=False))
    with pytest.raises(ParameterError, match="expects 17 features"):
        kind.signals(market, fewer)
    swapped = dict(params, features=dict(params["features"], return_horizons=[1, 3, 9]))
    with pytest.raises(ParameterError, match="'ret_8'"):  # same count, other names
        kind.signals(market, swapped)
