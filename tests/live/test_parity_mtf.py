"""PARITY for a multi-timeframe kind: the paper runner, seeing one closed 1h bar at a time in a
window sized by ``warmup_bars`` (the 4h history included), reproduces the backtest's fills.

The 4h bars are resampled inside the window by the same alignment code the backtest uses; the
independent computation is :func:`quantlib.backtest.run_backtest` on the whole file.
"""

from __future__ import annotations

import pytest

from quantlib.backtest.engine import run_backtest
from quantlib.data import load_ohlcv
from tests.live.conftest import make_spec
from tests.live.test_parity import (
    CONFIG,
    HOW,
    _aot_kernels,
    _assert_replay_is_the_backtest,
    _backtest_fills,
    _replay,
)

__all__ = ["_aot_kernels"]  # the session fixture that builds the AOT kernels once

PARAMS = {"inner_kind": "ma_cross", "inner_params": {"fast": 5, "slow": 20},
          "trend_timeframe": "4h", "trend_kind": "ma", "trend_window": 5}


@pytest.mark.parametrize("how", HOW)
def test_htf_trend_paper_replay_matches_backtest(how, replay_file, tmp_path):
    data = load_ohlcv(replay_file)
    res = run_backtest("htf_trend", data, PARAMS, CONFIG)
    expected = _backtest_fills(res)
    assert len(expected) >= 4, "the case must trade to prove anything"
    replayed = _replay(make_spec("htf_trend", PARAMS), replay_file, tmp_path, how)
    _assert_replay_is_the_backtest(replayed, res, expected, len(data))
