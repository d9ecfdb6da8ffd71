"""Final-model workflow: experiment setup, hold-out backtest, spec export, bounded-window check.

Each figure is checked against an independent computation: the engine run by hand on the
hand-sliced frame, buy-and-hold from raw prices and from an always-long backtest, the spec read
back from disk, and the bounded-window signal recomputed bar by bar.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import BacktestConfig, check_recursive, run_backtest
from quantlib.core.registry import StrategyKind, get_kind, register
from quantlib.data import synthetic_ohlcv
from quantlib.errors import ParameterError
from quantlib.ml import FeatureConfig, file_sha256, fit_regime_params
from quantlib.ml.train import export_holdout_spec, fit_strategy, holdout_evaluate, setup_experiment
from quantlib.strategy.spec import load_spec

SMALL = FeatureConfig(return_horizons=(1, 3, 8), vol_window=12, rsi_window=7, macd=(5, 13, 4),
                      bb_window=10, atr_window=7, volume_window=12)
HOLDOUT = 0.3


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return synthetic_ohlcv(n_bars=900, seed=3).ohlcv


@pytest.fixture(scope="module")
def split(df) -> int:
    return int(len(df) * (1 - HOLDOUT))


@pytest.fixture(scope="module")
def fitted(df, split, tmp_path_factory):
    # entry == exit == 0.5 and a short memory so the model trades often in the hold-out.
    return fit_strategy(df.iloc[:split], tmp_path_factory.mktemp("spec") / "xgb.model.json", SMALL,
                        horizon=6, entry=0.5, exit=0.5, memory=4,
                        model_params={"n_estimators": 20, "n_jobs": 1})


@pytest.fixture(scope="module")
def holdout(df, fitted):
    return holdout_evaluate(df, fitted, holdout=HOLDOUT, config={"fees": 0.002})


def test_setup_splits_the_frame_and_builds_the_configs(df, split):
    setup = setup_experiment(df, holdout=HOLDOUT, features=SMALL.to_dict(), regime_states=2,
                             regime_window=48, backtest={"fees": 0.002})
    pd.testing.assert_frame_equal(setup.train, df.iloc[:split])
    assert setup.split == split and len(setup.data) - split == len(df.loc[df.index[split]:])
    assert setup.features == SMALL
    assert setup.regime == {"n_states": 2, "window": 48}
    assert setup.backtest == BacktestConfig(fees=0.002)
    # the names match those of a config whose regime model was actually fitted
    fitted_cfg = replace(SMALL, regime=fit_regime_params(setup.train, n_states=2, window=48))
    assert setup.feature_names == fitted_cfg.names
    assert f"first {split}, hold-out {len(df) - split}" in setup.describe()
    no_regime = setup_experiment(df, holdout=HOLDOUT, features=SMALL, regime_states=0)
    assert no_regime.regime is None and no_regime.feature_names == SMALL.names
    assert no_regime.backtest == BacktestConfig()


@pytest.mark.parametrize("kwargs, parameter", [
    ({"holdout": 0.0}, "holdout"), ({"holdout": 1.0}, "holdout"), ({"holdout": True}, "holdout"),
    ({"holdout": 0.9999}, "holdout"),  # rounds to an empty training part
    ({"regime_states": 1}, "regime_states"), ({"regime_states": -2}, "regime_states"),
    ({"regime_window": 1}, "regime_window"), ({"backtest": {"feez": 0.1}}, "feez"),
])
def test_setup_rejects_bad_parameters_by_name(df, kwargs, parameter):
    with pytest.raises(ParameterError, match=parameter):
        setup_experiment(df, **kwargs)


def test_holdout_backtest_equals_engine_on_hand_sliced_frame(df, split, fitted, holdout):
    kind = get_kind("xgb_classifier")
    warm = kind.warmup(fitted.params)
    assert holdout.warmup == warm and holdout.split == split
    pd.testing.assert_frame_equal(holdout.data, df.iloc[split - warm:])
    expected = run_backtest("xgb_classifier", df.iloc[split - warm:], fitted.params,
                            BacktestConfig(fees=0.002))
    pd.testing.assert_frame_equal(holdout.backtest.equity, expected.equity)
    pd.testing.assert_frame_equal(holdout.backtest.fills, expected.fills)
    assert holdout.metrics["total_return"] == pytest.approx(
        expected.equity.iloc[-1, 0] / expected.equity.iloc[0, 0] - 1)
    # The warm-up is long enough: from the first hold-out bar on, the signal equals the one
    # computed with all history; before it the signal is 0, so no fill before bar split + 1.
    signal = kind.signals(holdout.data, fitted.params)
    np.testing.assert_array_equal(signal[warm:], kind.signals(df, fitted.params)[split:])
    assert np.count_nonzero(signal[warm:]) > 0  # the model trades in the hold-out
    assert not signal[:warm].any()
    first_fill = holdout.backtest.fills["time"].min()
    assert first_fill >= df.index[split + 1]
    assert (holdout.backtest.equity.loc[:df.index[split], 0] == 10_000).all()


def test_buy_and_hold_matches_prices_and_an_always_long_backtest(df, split, holdout):
    by_hand = df["close"].iloc[-1] / df["open"].iloc[split + 1] - 1
    assert holdout.buy_hold_return == pytest.approx(by_hand, rel=1e-12)
    warm = holdout.warmup
    always_long = StrategyKind("test_ml_always_long", params=(),
                               signal=lambda d, p: np.r_[np.zeros(warm), np.ones(len(d) - warm)])
    res = run_backtest(always_long, holdout.data, None, BacktestConfig(fees=0.0))
    assert holdout.buy_hold_return == pytest.approx(res.metrics["total_return"].iloc[0], rel=1e-9)


def test_holdout_shorter_than_warmup_is_a_parameter_error(df, fitted):
    short = df.iloc[:200]
    warm = get_kind("xgb_classifier").warmup(fitted.params)
    assert int(len(short) * (1 - 0.95)) < warm  # the precondition this test relies on
    with pytest.raises(ParameterError, match="holdout"):
        holdout_evaluate(short, fitted, holdout=0.95)


def test_exported_spec_references_the_model_file(df, fitted, holdout, tmp_path):
    path = tmp_path / "xgb_demo.json"
    export_holdout_spec(holdout, path, symbols=["BTC/USD"])
    spec = load_spec(path)
    assert spec.name == "xgb_demo" and spec.kind == "xgb_classifier"
    assert spec.symbols == ["BTC/USD"]
    assert spec.params == get_kind("xgb_classifier").validate(fitted.params)
    model = fitted.params["model_path"]
    assert [a.path for a in spec.artifacts] == [model]
    assert spec.artifacts[0].sha256 == file_sha256(model) == spec.params["model_sha256"]
    equity = holdout.backtest.equity.iloc[:, 0]
    assert spec.evidence.out_of_sample["total_return"] == pytest.approx(
        equity.iloc[-1] / equity.iloc[0] - 1)
    assert spec.provenance.start == holdout.data.index[0]  # warm-up bars included
    assert spec.provenance.end == df.index[-1]
    assert spec.execution.fees == 0.002


def _bounded_matches(kind_name, data, params, bars) -> bool:
    # What the live runner does: evaluate the signal on the last warmup + 1 bars only.
    kind = get_kind(kind_name)
    warm = kind.warmup(kind.validate(params))
    full = kind.signals(data, params)
    return all(kind.signals(data.iloc[t - warm: t + 1], params)[-1] == full[t] for t in bars)


def test_bounded_window_check_passes_for_the_trained_model(df, fitted):
    result = check_recursive("xgb_classifier", df, fitted.params, n_checks=20, extra_history=(0,))
    assert result.passed, result.details
    assert result.n_checked == 20
    last = range(len(df) - 20, len(df))
    assert _bounded_matches("xgb_classifier", df, fitted.params, last)
    assert np.count_nonzero(get_kind("xgb_classifier").signals(df, fitted.params)[-20:]) > 0


def _peeks_ahead(data, params):
    nxt = data["close"].shift(-1).to_numpy()
    out = np.where(nxt > data["close"].to_numpy(), 1.0, 0.0)  # uses the next bar's close
    out[:10] = 0.0
    return out


def _remembers_everything(data, params):
    # Seeded at bar 0: the value depends on all history, not only the declared 10 bars.
    ema = data["close"].ewm(alpha=0.01, adjust=False).mean().to_numpy()
    out = np.where(data["close"].to_numpy() > ema, 1.0, 0.0)
    out[:10] = 0.0
    return out


register(StrategyKind("test_ml_peeks_ahead", params=(), signal=_peeks_ahead,
                      warmup=lambda p: 10), replace=True)
register(StrategyKind("test_ml_remembers_everything", params=(), signal=_remembers_everything,
                      warmup=lambda p: 10), replace=True)


@pytest.mark.parametrize("name", ["test_ml_peeks_ahead", "test_ml_remembers_everything"])
def test_bounded_window_check_fails_for_leaky_kinds(df, name):
    result = check_recursive(name, df, n_checks=50, extra_history=(0,))
    assert not result.passed
    bad = result.first_bad_bar
    assert not _bounded_matches(name, df, {}, [bad])  # the bar it names really differs
    assert result.first_bad_time == df.index[bad]
