"""Features: causal (truncation), finite-memory (last W bars), and equal to independent
computations (pandas/numpy/hmmlearn)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.errors import ParameterError
from quantlib.ml import FeatureConfig, compute_features
from tests.support.frames import assert_bad_bars_named


@pytest.fixture(scope="module")
def full(market, regime_config):
    return compute_features(market, regime_config)


def test_names_are_stable(regime_config):
    assert FeatureConfig().names == [
        "ret_1", "ret_4", "ret_12", "ret_24", "vol_24", "rsi_14", "macd", "macd_signal",
        "macd_hist", "bb_pctb_20", "atr_14", "volume_z_24", "hour_sin", "hour_cos", "dow_sin",
        "dow_cos"]
    assert regime_config.names[-2:] == ["regime_p0", "regime_p1"]
    assert FeatureConfig(time_features=False).names[-1] == "volume_z_24"


def test_warmup_rows_nan_then_all_finite(full, regime_config):
    w = regime_config.window
    assert full.iloc[: w - 1].isna().all().all()
    assert np.isfinite(full.iloc[w - 1:].to_numpy()).all()


@pytest.mark.parametrize("t", [None, 700, 1499])
def test_truncation_and_bounded_window_identical_for_every_feature(market, regime_config, full, t):
    w = regime_config.window
    t = w - 1 if t is None else t
    truncated = compute_features(market.iloc[: t + 1], regime_config).iloc[-1]
    bounded = compute_features(market.iloc[t - w + 1: t + 1], regime_config).iloc[-1]
    for name in regime_config.names:
        # Exact equality, feature by feature: finite-window kernels must not drift by one ulp.
        assert truncated[name] == full[name].iloc[t], f"{name} changes when rows after {t} drop"
        assert bounded[name] == full[name].iloc[t], f"{name} differs on the last {w} bars"


def test_bounded_window_shorter_than_window_is_all_nan(market, regime_config):
    w = regime_config.window
    assert compute_features(market.iloc[: w - 1], regime_config).isna().all().all()


def _ewm_last(values: np.ndarray, alpha: float) -> float:
    # pandas adjust=True EWM over exactly the window == our truncated EMA at its last bar.
    return float(pd.Series(values).ewm(alpha=alpha, adjust=True).mean().iloc[-1])


def test_against_pandas_and_numpy(market):
    cfg = FeatureConfig(time_features=True)
    X = compute_features(market, cfg)
    close, high, low, vol = (market[c] for c in ("close", "high", "low", "volume"))
    t = 900
    m = cfg.memory_factor
    for h in cfg.return_horizons:
        assert X[f"ret_{h}"].iloc[t] == pytest.approx(np.log(close.iloc[t] / close.iloc[t - h]))
    r1 = np.log(close).diff()
    assert X["vol_24"].iloc[t] == pytest.approx(r1.rolling(24).std(ddof=0).iloc[t], rel=1e-9)
    d = close.diff().to_numpy()
    window = slice(t - m * 14 + 1, t + 1)
    g = _ewm_last(np.clip(d[window], 0, None), 1 / 14)
    lo = _ewm_last(np.clip(-d[window], 0, None), 1 / 14)
    assert X["rsi_14"].iloc[t] == pytest.approx(100 * g / (g + lo), rel=1e-9)
    c = close.to_numpy()

    def macd_at(i):
        fast = _ewm_last(c[i - m * 12 + 1: i + 1], 2 / 13)
        slow = _ewm_last(c[i - m * 26 + 1: i + 1], 2 / 27)
        return (fast - slow) / c[i]

    assert X["macd"].iloc[t] == pytest.approx(macd_at(t), rel=1e-9)
    line = np.array([macd_at(i) for i in range(t - m * 9 + 1, t + 1)])
    assert X["macd_signal"].iloc[t] == pytest.approx(_ewm_last(line, 2 / 10), rel=1e-8)
    ma, sd = close.rolling(20).mean().iloc[t], close.rolling(20).std(ddof=0).iloc[t]
    assert X["bb_pctb_20"].iloc[t] == pytest.approx((close.iloc[t] - ma + 2 * sd) / (4 * sd))
    tr = pd.concat([high - low, (high - close.shift()).abs(), (low - close.shift()).abs()],
                   axis=1).max(axis=1)
    assert X["atr_14"].iloc[t] == pytest.approx(tr.rolling(14).mean().iloc[t] / close.iloc[t])
    vz = (vol - vol.rolling(24).mean()) / vol.rolling(24).std(ddof=0)
    assert X["volume_z_24"].iloc[t] == pytest.approx(vz.iloc[t], rel=1e-9)
    ts = market.index[t]
    assert X["hour_sin"].iloc[t] == pytest.approx(np.sin(2 * np.pi * ts.hour / 24))
    assert X["dow_cos"].iloc[t] == pytest.approx(np.cos(2 * np.pi * ts.dayofweek / 7))


def test_regime_proba_equals_hmmlearn_on_the_window(market, regime_config, full):
    """Filtered prob at the last bar of a window == hmmlearn's posterior at that bar."""
    from hmmlearn.hmm import GaussianHMM

    reg = regime_config.regime
    k = reg.n_states
    trans = np.array(reg.transmat)
    vals, vecs = np.linalg.eig(trans.T)
    stationary = np.real(vecs[:, np.argmin(abs(vals - 1))])
    model = GaussianHMM(n_components=k, covariance_type="diag", init_params="", params="")
    model.startprob_ = stationary / stationary.sum()
    model.transmat_ = trans
    model.means_ = np.array(reg.means).reshape(k, 1)
    model.covars_ = np.array(reg.variances).reshape(k, 1)
    r = np.diff(np.log(market["close"].to_numpy()))
    for t in (400, 1200):
        x = r[t - reg.window: t].reshape(-1, 1)  # returns of bars t-window+1..t
        expected = model.predict_proba(x)[-1]  # smoothed == filtered at the last bar
        got = full[["regime_p0", "regime_p1"]].iloc[t].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)


def test_bad_input_is_a_clear_error(market):
    assert_bad_bars_named(compute_features, market, "volume", row=50)
    with pytest.raises(ParameterError, match="rsi_window"):
        FeatureConfig.from_dict({"rsi_window": 0})
    with pytest.raises(ParameterError, match="unknown field"):
        FeatureConfig.from_dict({"rsi": 14})
    with pytest.raises(ParameterError, match="macd"):
        FeatureConfig.from_dict({"macd": [26, 12, 9]})


def test_config_json_round_trip(regime_config):
    import json

    text = json.dumps(regime_config.to_dict())
    assert FeatureConfig.from_dict(json.loads(text)) == regime_config
