"""Walk-forward: split arithmetic, OOS = independent backtest slice, stitching, no lookahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import run_backtest
from quantlib.data import load
from quantlib.errors import ParameterError
from quantlib.optimize.sweep import sweep
from quantlib.optimize.walkforward import WalkForwardSplitter, walk_forward

SPACE = {"fast": [3, 8], "slow": [20, 50]}


def test_rolling_and_anchored_splits_by_hand():
    # rolling: train 100, test 40, step 60 over 330 bars:
    # k=0: train [0,100) test [100,140); k=1: [60,160) [160,200); k=2: [120,220) [220,260);
    # k=3: [180,280) [280,320); k=4 would test [340,380) > 330 -> stop.
    assert WalkForwardSplitter(100, 40, 60).split(330) == [
        ((0, 100), (100, 140)), ((60, 160), (160, 200)), ((120, 220), (220, 260)),
        ((180, 280), (280, 320))]
    assert WalkForwardSplitter(100, 40, 60, anchored=True).split(330) == [
        ((0, 100), (100, 140)), ((0, 160), (160, 200)), ((0, 220), (220, 260)),
        ((0, 280), (280, 320))]
    with pytest.raises(ParameterError, match="overlap"):
        WalkForwardSplitter(100, 40, 20).split(330)
    with pytest.raises(ParameterError, match="no split fits"):
        WalkForwardSplitter(100, 40).split(120)


@pytest.fixture(scope="module")
def data():
    return load("sample:seed=4,bars=1400")


@pytest.fixture(scope="module")
def wf(data):
    return walk_forward("ma_cross", data, WalkForwardSplitter(train=500, test=300), space=SPACE,
                        n_splits=4)


def test_in_sample_choice_and_oos_returns_are_independent_backtests(data, wf):
    assert len(wf.splits) == 3  # tests [500,800) [800,1100) [1100,1400)
    for k, ((tr0, tr1), (te0, te1)) in enumerate(WalkForwardSplitter(500, 300).split(len(data))):
        row = wf.splits.iloc[k]
        ref = sweep("ma_cross", data.iloc[tr0:tr1], SPACE, progress=False, n_splits=4)
        assert {"fast": row["param_fast"], "slow": row["param_slow"]} == {
            k2: ref.best_params[k2] for k2 in ("fast", "slow")}
        assert row["is_value"] == pytest.approx(ref.table["sharpe"].max())
        # OOS: backtest from (test start - warm-up - 1), ma_cross warm-up = slow - 1 bars, so
        # the first meaningful target is decided at the last in-sample bar and the test window
        # starts flat (entry fee inside the test window).
        params = {"fast": int(row["param_fast"]), "slow": int(row["param_slow"])}
        start = te0 - (params["slow"] - 1) - 1
        eq = run_backtest("ma_cross", data.iloc[start:te1], params).equity.iloc[:, 0]
        expected = eq.pct_change().iloc[te0 - start:]
        got = wf.oos_returns.loc[data.index[te0]:data.index[te1 - 1]]
        np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-10, atol=1e-14)


def test_stitched_equity_efficiency_and_stability(wf):
    assert wf.oos_returns.index.is_monotonic_increasing and wf.oos_returns.index.is_unique
    np.testing.assert_allclose(wf.oos_equity.to_numpy(),
                               10_000 * np.cumprod(1 + wf.oos_returns.to_numpy()))
    assert wf.efficiency == pytest.approx(wf.splits["oos_value"].mean() / wf.splits["is_value"].mean())
    stab = wf.parameter_stability()
    for name in ("fast", "slow"):
        vals = wf.splits[f"param_{name}"].astype(str)
        assert stab.loc[name, "n_distinct"] == vals.nunique()
        assert stab.loc[name, "change_rate"] == pytest.approx((vals != vals.shift()).iloc[1:].mean())
    assert {"n_trials", "dsr", "pbo"} <= set(wf.splits.columns)
    assert (wf.splits["n_trials"] == 4).all()


def test_no_lookahead_truncating_future_changes_nothing(data, wf):
    # Cut the data right after split 1's test window: splits 0 and 1 must be identical.
    cut = walk_forward("ma_cross", data.iloc[:1100], WalkForwardSplitter(500, 300), space=SPACE,
                       n_splits=4)
    assert len(cut.splits) == 2
    pd.testing.assert_frame_equal(cut.splits, wf.splits.iloc[:2])
    pd.testing.assert_series_equal(cut.oos_returns, wf.oos_returns.iloc[:600])


def test_walk_forward_with_an_optuna_sampler(data):
    res = walk_forward("ma_cross", data, WalkForwardSplitter(700, 350, anchored=True),
                       space={"fast": (2, 10), "slow": (20, 60)}, method="tpe", n_trials=4,
                       n_splits=4)
    assert len(res.splits) == 2 and (res.splits["n_trials"] == 4).all()
    assert len(res.oos_returns) == 700


def test_oos_benchmark_is_buy_and_hold_over_the_test_bars(data, wf):
    """Per split and stitched: buy-and-hold of the same symbol over the OOS bars (closed form
    from the closes), alpha/beta of the stitched OOS returns against it by empyrical."""
    empyrical = pytest.importorskip("empyrical")
    close = data["close"]
    for k, (_, (te0, te1)) in enumerate(WalkForwardSplitter(500, 300).split(len(data))):
        row = wf.splits.iloc[k]
        assert row["oos_benchmark_return"] == pytest.approx(
            close.iloc[te1 - 1] / close.iloc[te0] - 1.0, rel=1e-12)
        assert row["oos_excess_return"] == pytest.approx(
            row["oos_return"] - row["oos_benchmark_return"], rel=1e-12)
    m = wf.oos_metrics().loc["oos"]
    first, last = wf.oos_returns.index[0], wf.oos_returns.index[-1]
    # contiguous test windows: holding over them = holding from the first OOS close to the last
    assert m["benchmark_return"] == pytest.approx(close.loc[last] / close.loc[first] - 1.0,
                                                  rel=1e-12)
    assert m["total_return"] == pytest.approx(np.prod(1.0 + wf.oos_returns) - 1.0, rel=1e-12)
    assert m["excess_return"] == pytest.approx(m["total_return"] - m["benchmark_return"])
    bench = close.pct_change().loc[first:last].to_numpy().copy()
    bench[0] = 0.0
    r = wf.oos_returns.to_numpy()
    assert m["beta"] == pytest.approx(empyrical.beta(r, bench), rel=1e-9)
    hours = 365 * 24
    assert (1 + m["alpha"] / hours) ** hours - 1 == pytest.approx(
        empyrical.alpha(r, bench, annualization=hours), rel=1e-7)
    assert "buy-and-hold over the same bars" in wf.summary()


def test_oos_benchmark_skips_the_bars_between_test_windows(data):
    """step > test leaves bars out of the OOS curve: the holder earns nothing there either."""
    from quantlib.optimize.walkforward import oos_benchmark_values

    wf = walk_forward("ma_cross", data, WalkForwardSplitter(train=500, test=200, step=400),
                      space={"fast": [3], "slow": [20]}, n_splits=4)
    close = data["close"].to_numpy()
    expected = 1.0
    for k, (_, (te0, te1)) in enumerate(WalkForwardSplitter(500, 200, 400).split(len(data))):
        # window k: its first bar earns its own close-to-close return except the very first
        start = te0 + 1 if k == 0 else te0
        expected *= close[te1 - 1] / close[start - 1]
    assert wf.oos_metrics().loc["oos", "benchmark_return"] == pytest.approx(expected - 1.0,
                                                                            rel=1e-12)
    values = oos_benchmark_values(data["close"], wf.oos_returns.index)
    assert values.iloc[-1] == pytest.approx(expected, rel=1e-12)


def test_an_excess_objective_is_judged_out_of_sample_too(data):
    """objective="excess_sharpe": each split's OOS value is the test window's Sharpe minus the
    holder's (both from the bar returns, plain numpy), not NaN."""
    wf = walk_forward("ma_cross", data, WalkForwardSplitter(train=500, test=300),
                      space={"fast": [3, 8], "slow": [20]}, objective="excess_sharpe",
                      n_splits=4)
    close = data["close"].to_numpy()
    for k, (_, (te0, te1)) in enumerate(WalkForwardSplitter(500, 300).split(len(data))):
        r = wf.oos_returns.iloc[k * 300:(k + 1) * 300].to_numpy()
        b = np.r_[0.0, close[te0 + 1:te1] / close[te0:te1 - 1] - 1.0]
        ann = np.sqrt(365 * 24)
        expected = (r.mean() / r.std(ddof=1) - b.mean() / b.std(ddof=1)) * ann
        assert wf.splits["oos_value"].iloc[k] == pytest.approx(expected, rel=1e-9)
