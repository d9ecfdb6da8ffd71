"""Nested wrappers: a kind wrapped twice (a 4h trend filter around another market's regime
filter, and the other way round) declares the inputs of both, so its warm-up covers both.

The check is a truncation test on real bars: at many bars ``t`` the signal computed from only
the last ``warmup_bars + 1`` bars (the runner's window; the other market's data cut to the same
bars) equals the signal at ``t`` computed from all the history. The warm-up the wrapper declared
before (its own input only) fails the same test, so the test can tell.
"""

from __future__ import annotations

import numpy as np
import pytest

from quantlib.core.informative import InformativeInput, informative_warmup, nest
from quantlib.core.registry import get_kind
from quantlib.data import load_ohlcv

N_BARS = 1500
REGIME = {"vol_window": 12, "filter_window": 48, "allowed_regimes": [0], "min_proba": 0.5}
CROSS = {"inner_kind": "ma_cross", "inner_params": {"fast": 8, "slow": 30},
         "regime_symbol": "BTC/USDT", **REGIME}
TREND = {"inner_kind": "ma_cross", "inner_params": {"fast": 8, "slow": 30},
         "trend_timeframe": "4h", "trend_kind": "ema", "trend_window": 24}
OWN_REGIME = {**REGIME, "filter_window": 24}  # the outer regime_filter's own (own symbol)
# kind, params, how many inputs are the wrapper's own (declared first)
NESTED = {
    "trend-around-cross": ("htf_trend", {"inner_kind": "regime_filter_cross",
                                         "inner_params": CROSS, "trend_timeframe": "4h",
                                         "trend_window": 6}, 1),
    "cross-around-trend": ("regime_filter_cross", {**CROSS, "inner_kind": "htf_trend",
                                                   "inner_params": TREND}, 1),
    "regime-around-trend": ("regime_filter", {**OWN_REGIME, "inner_kind": "htf_trend",
                                              "inner_params": TREND}, 0),
    "regime-around-cross": ("regime_filter", {**OWN_REGIME, "inner_kind": "regime_filter_cross",
                                              "inner_params": CROSS}, 0),
}


@pytest.fixture(scope="module")
def markets():
    from tests.conftest import shared_data_path

    return (load_ohlcv(shared_data_path("eth_usdt_1h_2022_2023.csv")).iloc[:N_BARS],
            load_ohlcv(shared_data_path("btc_usdt_1h_2022_2023.csv")).iloc[:N_BARS])


def _window_signal(kind, params, eth, btc, t: int, warmup: int) -> float:
    """The signal at bar t from the last ``warmup + 1`` bars only (both markets)."""
    start = t - warmup
    return float(kind.signals(eth.iloc[start:t + 1], params,
                              informative=_btc(kind, params, btc.iloc[start:t + 1]))[-1])


def _btc(kind, params, btc) -> dict | None:
    reads_btc = any(i.symbol for i in kind.informative_inputs(params))
    return {"regime": btc} if reads_btc else None


def _own_only_warmup(kind, params, n_own: int) -> int:
    """What the wrapper declared before nesting: its own inputs' history and its declared
    warm-up, not the wrapped kind's inputs."""
    own = kind.informative_inputs(params)[:n_own]
    return max(int(kind.warmup(params)), informative_warmup(own, "1h"))


@pytest.mark.parametrize("case", list(NESTED))
def test_warmup_bars_of_history_give_the_full_history_decision(case, markets):
    eth, btc = markets
    name, raw, n_own = NESTED[case]
    kind = get_kind(name)
    params = kind.validate(raw)
    warmup = kind.warmup_bars(params, "1h")
    old = _own_only_warmup(kind, params, n_own)
    assert warmup > old  # the wrapped kind's input needs the longer history
    full = kind.signals(eth, params, informative=_btc(kind, params, btc))
    assert 0.1 < np.mean(full != 0) < 0.9, "the gates must switch for the test to mean much"
    bars = range(warmup + 10, N_BARS, 23)
    windowed = [_window_signal(kind, params, eth, btc, t, warmup) for t in bars]
    assert windowed == [float(full[t]) for t in bars]
    # the warm-up declared without the wrapped kind's input is too short: decisions change
    short = [_window_signal(kind, params, eth, btc, t, old) for t in bars]
    assert short != [float(full[t]) for t in bars]


@pytest.mark.parametrize("case", list(NESTED))
def test_the_runner_windows_are_what_the_backtest_needs(case, markets, tmp_path):
    from quantlib.live.brokers import PaperBroker
    from quantlib.live.informative_feeds import InformativeReplayFeed
    from quantlib.live.replay_feeds import ReplayFeed
    from quantlib.live.runner import LiveRunner
    from quantlib.live.state import StateStore
    from quantlib.strategy.spec import StrategySpec

    eth, btc = markets
    name, raw, _ = NESTED[case]
    kind = get_kind(name)
    spec = StrategySpec(name="nested", kind=name, params=raw, symbols=["ETH/USDT"],
                        timeframe="1h")
    store = StateStore(tmp_path / "s.db")
    reads_btc = _btc(kind, kind.validate(raw), btc) is not None
    feed = InformativeReplayFeed({"ETH/USDT": eth, "BTC/USDT": btc}) if reads_btc else \
        ReplayFeed(eth)
    runner = LiveRunner(spec, PaperBroker(store, spec), store, feed)
    need = kind.warmup_bars(kind.validate(raw), "1h") + 1
    assert runner.window.size == need
    assert [w.size for w in runner.windows.values()] == [need] * (1 + reads_btc)
    store.close()


def test_trend_around_trend_keeps_both_timeframes_apart(markets):
    """Two trend filters (4h around 1d): the inner one's input is renamed, not merged into the
    outer's, and the target is the outer filter applied to the inner kind's own target."""
    eth, _ = markets
    inner = {**TREND, "trend_timeframe": "1d", "trend_window": 3, "trend_kind": "ma"}
    outer = {"inner_kind": "htf_trend", "inner_params": inner, "trend_timeframe": "4h",
             "trend_window": 10}
    kind = get_kind("htf_trend")
    params = kind.validate(outer)
    inputs = kind.informative_inputs(params)
    assert [(i.name, i.timeframe, i.history) for i in inputs] == [("trend", "4h", 10),
                                                                 ("inner.trend", "1d", 3)]
    target = kind.signals(eth, params)
    inner_target = kind.signals(eth, inner)
    # the outer 4h trend by hand: the last closed 4h close vs its 10-bar mean
    four = eth.resample("4h", label="left", closed="left").agg({"close": "last", "open": "count"})
    four = four[four["open"] == 4]["close"]
    direction = np.sign(four - four.rolling(10).mean())
    visible = direction.copy()
    visible.index = visible.index + np.timedelta64(3, "h")  # visible from its last 1h bar on
    at_base = visible.reindex(eth.index).ffill().fillna(0.0).to_numpy()
    expected = np.where(np.sign(inner_target) == at_base, inner_target, 0.0)
    np.testing.assert_array_equal(target, expected)
    assert np.any(inner_target != 0) and np.any(target != inner_target)
    # the whole warm-up: the longer of 10 x 4h and 3 x 1d (and the inner ma_cross's)
    assert kind.warmup_bars(params, "1h") == max((10 + 1) * 4 - 2, (3 + 1) * 24 - 2)


def test_nest_merges_the_same_data_and_renames_a_clash():
    own = (InformativeInput("regime", symbol="BTC/USDT", history=10),)
    same = (InformativeInput("regime", symbol="BTC/USDT", history=40),)
    inputs, names = nest(own, same)
    assert inputs == (InformativeInput("regime", symbol="BTC/USDT", history=40),)
    assert names == {"regime": "regime"}
    other = (InformativeInput("regime", symbol="SOL/USDT", history=5),
             InformativeInput("trend", timeframe="4h", history=7))
    inputs, names = nest(own, other)
    assert [(i.name, i.symbol, i.history) for i in inputs] == [
        ("regime", "BTC/USDT", 10), ("inner.regime", "SOL/USDT", 5), ("trend", None, 7)]
    assert names == {"regime": "inner.regime", "trend": "trend"}


@pytest.mark.parametrize("case", list(NESTED))
def test_nested_kinds_pass_the_bias_checks(case, markets):
    """Truncating the traded and the other market's data consistently never changes a past
    decision (check_lookahead), and decisions past the warm-up do not depend on older history
    (check_recursive), for every nesting."""
    from quantlib.backtest import check_lookahead, check_recursive

    eth, btc = markets
    name, raw, _ = NESTED[case]
    kind = get_kind(name)
    given = _btc(kind, kind.validate(raw), btc)
    data = eth.iloc[:900]
    assert check_lookahead(name, data, raw, n_checks=6, informative=given).passed
    result = check_recursive(name, data, raw, n_checks=4, extra_history=(0, 7),
                             informative=given)
    assert result.passed, result.details
