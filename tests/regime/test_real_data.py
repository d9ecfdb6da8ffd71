"""Regime models on real BTC/USDT hourly candles (skipped when ../shared/data is absent)."""

from __future__ import annotations

import numpy as np

from quantlib.regime import GaussianHMMRegime, MarkovChainRegime, regime_features


def test_hmm_on_btc_is_causal_and_orders_by_volatility(shared_data):
    df = shared_data("btc_usdt_1h_2022_2023.csv")
    X = regime_features(df, ["returns"]).iloc[:6000]
    model = GaussianHMMRegime(2, n_restarts=2, random_state=0).fit(X)
    full = model.predict_proba(X).to_numpy()
    np.testing.assert_allclose(model.predict_proba(X.iloc[:3001]).to_numpy(), full[:3001],
                               atol=1e-12)
    labels = model.predict(X).to_numpy()
    realised = [X["returns"].to_numpy()[labels == k].std() for k in (0, 1)]
    # Independent check of the canonical order: bars labelled "volatile" really move more.
    assert realised[1] > 1.5 * realised[0]
    # Real volatility clusters: the calm regime is persistent.
    assert model.transmat_[0, 0] > 0.9


def test_chain_on_btc_rejects_independence(shared_data):
    df = shared_data("btc_usdt_1h_2022_2023.csv")
    X = regime_features(df, ["volatility"], vol_window=24)
    chain = MarkovChainRegime(n_bins=3).fit(X)
    assert chain.chi2_[2] < 1e-6 and np.all(np.diag(chain.transmat_) > 0.8)
