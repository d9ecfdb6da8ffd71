"""Labels on hand-built paths, with their window end times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.errors import ParameterError
from quantlib.ml import forward_return_labels, triple_barrier_labels


def _frame(close, high=None, low=None):
    idx = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC", name="timestamp")
    close = np.asarray(close, float)
    return pd.DataFrame({"open": close, "high": close if high is None else high,
                         "low": close if low is None else low, "close": close,
                         "volume": 1.0}, index=idx)


def test_forward_labels_hand_built_with_dead_zone():
    df = _frame([100, 101, 100.5, 99, 99.05, 100])
    lab = forward_return_labels(df, horizon=1, dead_zone=0.004)
    # returns: +1%, -0.495%, -1.49%, +0.05% (dead zone), +0.96%, none
    assert lab["label"].tolist() == [1, -1, -1, 0, 1, 0]
    assert lab["valid"].tolist() == [True] * 5 + [False]
    assert list(lab["t_end"].iloc[:5]) == list(df.index[1:])
    assert pd.isna(lab["t_end"].iloc[5]) and lab["end_pos"].iloc[5] == -1


def test_forward_labels_match_pandas_shift(market):
    h, dz = 7, 0.002
    lab = forward_return_labels(market, horizon=h, dead_zone=dz)
    fwd = market["close"].shift(-h) / market["close"] - 1
    expected = np.sign(fwd.where(fwd.abs() > dz, 0.0)).iloc[:-h].astype(int)
    assert (lab["label"].iloc[:-h] == expected).all()
    np.testing.assert_allclose(lab["fwd_return"].iloc[:-h], fwd.iloc[:-h])
    assert (lab["t_end"].iloc[:-h].to_numpy() == market.index[h:].to_numpy()).all()


def test_triple_barrier_hand_built():
    close = [100, 100, 100, 100, 100, 100, 100]
    high = [100, 100.5, 102.5, 100, 100, 100, 100]
    low = [100, 99.5, 99.0, 97.0, 100, 100, 100]
    lab = triple_barrier_labels(_frame(close, high, low), tp=0.02, sl=0.02, horizon=3)
    # bar 0: bar 2 high 102.5 >= 102 -> +1 ending at bar 2
    # bar 1: bar 2 touches tp (102.5) before bar 3 stop -> +1 at bar 2
    # bar 2: bar 3 low 97 <= 98 -> -1 at bar 3
    # bar 3: nothing in bars 4..6 -> 0 (time limit) ending at bar 6
    assert lab["label"].tolist()[:4] == [1, 1, -1, 0]
    assert lab["end_pos"].tolist() == [2, 2, 3, 6, -1, -1, -1]
    assert lab["fwd_return"].iloc[0] == pytest.approx(0.02)
    assert lab["fwd_return"].iloc[2] == pytest.approx(-0.02)
    assert lab["t_end"].iloc[3] == lab.index[6]


def test_triple_barrier_both_touched_in_one_bar_counts_as_stop():
    lab = triple_barrier_labels(_frame([100, 100, 100], [100, 103, 100], [100, 97, 100]),
                                tp=0.02, sl=0.02, horizon=2)
    assert lab["label"].iloc[0] == -1 and lab["end_pos"].iloc[0] == 1


def test_triple_barrier_against_a_python_loop(market):
    tp, sl, h = 0.01, 0.015, 10
    lab = triple_barrier_labels(market, tp=tp, sl=sl, horizon=h)
    c, hi, lo = (market[k].to_numpy() for k in ("close", "high", "low"))
    for t in range(0, len(c) - h, 37):
        expected, end = 0, t + h
        for i in range(t + 1, t + h + 1):
            if lo[i] <= c[t] * (1 - sl):
                expected, end = -1, i
                break
            if hi[i] >= c[t] * (1 + tp):
                expected, end = 1, i
                break
        assert (lab["label"].iloc[t], lab["end_pos"].iloc[t]) == (expected, end), t


def test_label_parameters_are_checked(market):
    with pytest.raises(ParameterError, match="horizon"):
        forward_return_labels(market, horizon=0)
    with pytest.raises(ParameterError, match="dead_zone"):
        forward_return_labels(market, dead_zone=-0.1)
    with pytest.raises(ParameterError, match="tp"):
        triple_barrier_labels(market, tp=0.0)
