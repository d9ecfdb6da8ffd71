"""Walk-forward with a multi-timeframe kind: each out-of-sample window gets the 4h history too."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlib.core.registry import StrategyKind, get_kind, register
from quantlib.data import load
from quantlib.optimize.walkforward import WalkForwardSplitter, walk_forward

PARAMS = {"inner_kind": "ma_cross", "inner_params": {"fast": 5, "slow": 20},
          "trend_timeframe": "4h", "trend_kind": "ma", "trend_window": 10}


def test_oos_returns_use_the_full_data_signals_of_htf_trend():
    data = load("sample:bars=1400,timeframe=1h,seed=6")
    kind = get_kind("htf_trend")
    checked = kind.validate(PARAMS)
    warmup = kind.warmup_bars(checked, "1h")
    assert warmup > kind.warmup(checked)  # the 4h history is the longer one here
    full = pd.Series(kind.signals(data, PARAMS), index=data.index)

    def replay(df, p):
        # the full-data targets, flat for the window's first `warmup` bars as htf_trend would be
        target = full.reindex(df.index).to_numpy().copy()
        target[:warmup] = 0.0
        return target

    register(StrategyKind("test_wf_replay", params=(), signal=replay,
                          warmup=lambda p: warmup), replace=True)
    splitter = WalkForwardSplitter(train=600, test=200)
    ours = walk_forward("htf_trend", data, splitter, space=[PARAMS])
    theirs = walk_forward("test_wf_replay", data, splitter, space=[{}])
    assert np.count_nonzero(full.loc[ours.oos_returns.index]) > 50
    np.testing.assert_array_equal(ours.oos_returns.to_numpy(), theirs.oos_returns.to_numpy())
