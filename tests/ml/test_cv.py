"""Purged, embargoed walk-forward splits: index sets checked explicitly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from quantlib.errors import ParameterError
from quantlib.ml import PurgedWalkForwardCV


def _splits(cv, X, label_end=None):
    return [(tr.tolist(), te.tolist()) for tr, te in cv.split(X, label_end=label_end)]


def test_walk_forward_purges_labels_overlapping_the_test_window():
    times = np.arange(20)
    ends = times + 3  # each label looks 3 samples ahead
    cv = PurgedWalkForwardCV(n_splits=2, test_size=5)
    # fold 0 tests 10..14 (label span 10..17): samples 7, 8, 9 end at 10, 11, 12 -> purged
    # fold 1 tests 15..19 (span 15..22): samples 12, 13, 14 end at 15..17 -> purged
    assert _splits(cv, times, ends) == [
        (list(range(0, 7)), list(range(10, 15))),
        (list(range(0, 12)), list(range(15, 20))),
    ]


def test_embargo_after_each_test_window_when_training_on_both_sides():
    times = np.arange(20)
    ends = times + 2
    cv = PurgedWalkForwardCV(n_splits=3, test_size=4, embargo=2, train_after_test=True)
    got = _splits(cv, times, ends)
    # fold 0: test 8..11 (span 8..13); before: 0..5 (6, 7 purged); after: purged while the
    # sample starts <= 13 (12, 13), embargo drops the 2 samples after the test (12, 13) -> 14..
    assert got[0] == ([0, 1, 2, 3, 4, 5, *range(14, 20)], [8, 9, 10, 11])
    # fold 1: test 12..15 (span 12..17); embargo drops 16, 17; 18, 19 are > 17 -> kept
    assert got[1] == ([*range(0, 10), 18, 19], [12, 13, 14, 15])
    # fold 2: test 16..19, nothing after
    assert got[2] == (list(range(0, 14)), [16, 17, 18, 19])


def test_embargo_longer_than_the_purge():
    times = np.arange(12)
    cv = PurgedWalkForwardCV(n_splits=2, test_size=3, embargo=3, train_after_test=True)
    got = _splits(cv, times)  # no label_end: windows are the samples themselves
    assert got[0] == ([0, 1, 2, 3, 4, 5], [6, 7, 8])  # 9, 10, 11 embargoed
    assert got[1] == ([0, 1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11])
    cv = PurgedWalkForwardCV(n_splits=3, test_size=3, embargo=3, train_after_test=True)
    got = _splits(cv, np.arange(16))
    assert got[0] == ([0, 1, 2, 3, 4, 5, 6, 13, 14, 15], [7, 8, 9])  # 10, 11, 12 embargoed
    assert got[1] == ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [10, 11, 12])


def test_no_training_label_window_overlaps_any_test_window_random():
    rng = np.random.default_rng(3)
    idx = pd.date_range("2024-01-01", periods=400, freq="1h", tz="UTC")
    keep = np.sort(rng.choice(400, 250, replace=False))  # dead-zone rows removed: gaps
    X = pd.DataFrame({"x": rng.normal(size=250)}, index=idx[keep])
    ends = pd.Series(X.index + pd.to_timedelta(rng.integers(1, 30, 250), unit="h"), index=X.index)
    for after in (False, True):
        cv = PurgedWalkForwardCV(n_splits=4, embargo=5, train_after_test=after)
        for train, test in cv.split(X, label_end=ends):
            start, stop = X.index[test[0]], ends.iloc[test].max()
            tr_start, tr_end = X.index[train], ends.iloc[train]
            overlap = (tr_start <= stop) & (tr_end.to_numpy() >= start)
            assert not overlap.any()
            assert not set(train) & set(test)
            later = train[train > test[-1]]
            assert (later > test[-1] + 5).all()  # embargo: 5 samples after the test skipped


def test_timestamps_and_positions_agree():
    idx = pd.date_range("2024-01-01", periods=30, freq="1h", tz="UTC")
    X = pd.DataFrame({"x": np.arange(30.0)}, index=idx)
    ends_t = pd.Series(idx + pd.Timedelta(hours=4), index=idx)
    cv = PurgedWalkForwardCV(n_splits=3, test_size=6)
    by_time = _splits(cv, X, ends_t)
    by_pos = _splits(cv, np.arange(30), np.arange(30) + 4)
    assert by_time == by_pos


def test_scikit_learn_splitter_api():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = (X[:, 0] > 0).astype(int)
    cv = PurgedWalkForwardCV(n_splits=3)
    scores = cross_val_score(LogisticRegression(), X, y, cv=cv)
    assert len(scores) == cv.get_n_splits() == 3
    assert "n_splits=3" in repr(cv)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ParameterError, match="nothing would be left"):
        list(PurgedWalkForwardCV(n_splits=5, test_size=20).split(np.arange(100)))
    with pytest.raises(ParameterError, match="label_end"):
        list(PurgedWalkForwardCV(n_splits=2).split(np.arange(10), label_end=np.arange(5)))
    with pytest.raises(ParameterError, match="min_train_size"):
        list(PurgedWalkForwardCV(n_splits=2, test_size=4, min_train_size=50).split(np.arange(20)))


def test_gap_drops_the_training_samples_right_before_each_test_window():
    # Walk-forward never trains after a test window (the embargo has nothing to drop there):
    # the gap leaves out the samples just before it, on top of whatever the purge removes.
    times = np.arange(20)
    ends = times + 1  # each label looks 1 sample ahead: the purge drops 1 sample per fold
    plain = PurgedWalkForwardCV(n_splits=2, test_size=5)
    gapped = PurgedWalkForwardCV(n_splits=2, test_size=5, gap=3)
    assert _splits(plain, times, ends) == [(list(range(0, 9)), list(range(10, 15))),
                                           (list(range(0, 14)), list(range(15, 20)))]
    assert _splits(gapped, times, ends) == [(list(range(0, 7)), list(range(10, 15))),
                                            (list(range(0, 12)), list(range(15, 20)))]
    # an embargo without training after the test window changes nothing
    assert _splits(PurgedWalkForwardCV(n_splits=2, test_size=5, embargo=3), times, ends) == \
        _splits(plain, times, ends)
    with pytest.raises(ParameterError, match="gap"):
        list(PurgedWalkForwardCV(n_splits=2, gap=-1).split(times))
