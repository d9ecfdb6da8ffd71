"""regime_filter_cross: another symbol's regime gating a kind, aligned by the informative rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import check_lookahead, check_recursive, run_backtest
from quantlib.core.regime_kinds import regime_ok
from quantlib.core.registry import get_kind
from quantlib.errors import DataError
from tests.support.cross_markets import eth_btc_fixtures

INNER = {"fast": 5, "slow": 30}
REGIME = {"vol_window": 12, "filter_window": 30, "allowed_regimes": [0], "min_proba": 0.5}

# BTC's history starts 100 bars after ETH's: those ETH bars have no regime yet (flat)
eth, btc = eth_btc_fixtures(800, btc_start=100)


def _params(**extra) -> dict:
    return {"inner_kind": "ma_cross", "inner_params": INNER, **REGIME, **extra}


def test_targets_are_the_inner_kind_gated_by_btc_regime_on_matching_times(eth, btc):
    target = get_kind("regime_filter_cross").signals(eth, _params(), informative={"regime": btc})
    gate = pd.Series(regime_ok(btc, get_kind("regime_filter").validate(_params())),
                     index=btc.index).reindex(eth.index, fill_value=False).to_numpy()
    expected = get_kind("ma_cross").signals(eth, INNER) * gate
    np.testing.assert_array_equal(target, expected)
    assert 0 < np.count_nonzero(target) < np.count_nonzero(get_kind("ma_cross").signals(eth, INNER))
    assert not target[:100].any()


def test_own_symbol_without_data_is_the_plain_regime_filter(eth):
    own = get_kind("regime_filter_cross").signals(eth, _params(regime_symbol="ETH/USDT"))
    np.testing.assert_array_equal(own, get_kind("regime_filter").signals(eth, _params()))


def test_bias_checks_and_backtest_with_the_other_symbol(eth, btc):
    given = {"regime": btc}
    assert check_lookahead("regime_filter_cross", eth, _params(), n_checks=30,
                           informative=given).passed
    result = check_recursive("regime_filter_cross", eth, _params(), n_checks=8,
                             extra_history=(0, 5), informative=given)
    assert result.passed, result.details
    res = run_backtest("regime_filter_cross", eth, _params(), informative=given)
    replay = get_kind("regime_filter_cross").signals(eth, _params(), informative=given)
    # position changes of the replayed targets = the fills vectorbt made (long only)
    entries = np.flatnonzero(np.diff(np.r_[0.0, np.clip(replay, 0, 1)]) > 0)
    buys = res.fills[res.fills["side"] > 0]
    assert len(buys) == len(entries[entries < len(eth) - 1])


def test_a_gap_in_btc_is_an_error_naming_it(eth, btc):
    holed = btc.drop(btc.index[300])
    holed.attrs.update(btc.attrs)
    with pytest.raises(DataError, match=r"BTC/USDT 1h\): bar .* is missing"):
        get_kind("regime_filter_cross").signals(eth, _params(), informative={"regime": holed})


def test_a_regime_source_string_is_loaded_once_per_sweep(eth, monkeypatch):
    import quantlib.data

    source = "sample:bars=800,timeframe=1h,seed=2"
    calls = []
    real_load = quantlib.data.load

    def counting_load(text):
        calls.append(text)
        return real_load(text)

    monkeypatch.setattr(quantlib.data, "load", counting_load)
    grid = [_params(regime_source=source, min_proba=m) for m in (0.4, 0.5, 0.6)]
    result = run_backtest("regime_filter_cross", eth, grid)
    assert calls == [source]
    # the same as passing the frame itself
    given = run_backtest("regime_filter_cross", eth, grid[1],
                         informative={"regime": real_load(source)})
    np.testing.assert_array_equal(result.equity.iloc[:, 1].to_numpy(),
                                  given.equity.iloc[:, 0].to_numpy())
