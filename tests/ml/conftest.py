"""Shared fixtures for the ml tests: one small synthetic market and one trained model."""

from __future__ import annotations

import pytest

from quantlib.data import load
from quantlib.ml import FeatureConfig, XGBSignalClassifier, build_dataset, fit_regime_params


@pytest.fixture(scope="session")
def market():
    return load("sample:seed=1,bars=1500")


@pytest.fixture(scope="session")
def regime_config(market):
    # Fitted on the first 800 bars only, as a training split would be.
    reg = fit_regime_params(market.iloc[:800], n_states=2, window=48, seed=0)
    return FeatureConfig(return_horizons=(1, 3, 8), vol_window=12, rsi_window=7, macd=(5, 13, 4),
                         bb_window=10, atr_window=7, volume_window=12, regime=reg)


@pytest.fixture(scope="session")
def trained(market, regime_config, tmp_path_factory):
    """(dataset, classifier, ModelRef) with the model saved as native JSON."""
    ds = build_dataset(market.iloc[:1000], regime_config, horizon=6, dead_zone=0.0005)
    # n_jobs=1 in tests: with 8 processes on 2 cores, 2 OpenMP threads spin and run ~10x slower.
    clf = XGBSignalClassifier(n_estimators=40, validation_gap=6, n_jobs=1).fit(ds.X, ds.y)
    ref = clf.save(str(tmp_path_factory.mktemp("model") / "xgb.model.json"))
    return ds, clf, ref
