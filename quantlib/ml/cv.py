"""Purged, embargoed walk-forward cross-validation (scikit-learn splitter API).

Labels look forward: the label of sample ``j`` depends on bars ``t_j .. e_j`` (its *label
window*, ``e_j`` = ``t_end`` from :mod:`quantlib.ml.labels`). A training sample whose label
window overlaps the test period leaks test information into training, so it is **purged**. The
test period of a fold spans from its first sample's time to the latest label end of its
samples. With ``train_after_test=True`` samples after the test window may train too (purged
k-fold style); then the ``embargo`` samples right after each test window are dropped as well,
because features of those bars overlap the test bars' information (serial correlation). Pure
walk-forward never trains after a test window, so there the embargo has nothing to drop; its
counterpart is ``gap``: the samples right before each test window are left out of training
(whether or not the purge already dropped them).

Examples
--------
>>> import numpy as np
>>> times = np.arange(10)
>>> cv = PurgedWalkForwardCV(n_splits=2, test_size=3, embargo=0)
>>> [(tr.tolist(), te.tolist()) for tr, te in cv.split(times, label_end=times + 1)]
[([0, 1, 2], [4, 5, 6]), ([0, 1, 2, 3, 4, 5], [7, 8, 9])]
>>> gapped = PurgedWalkForwardCV(n_splits=2, test_size=3, gap=2)
>>> [(tr.tolist(), te.tolist()) for tr, te in gapped.split(times, label_end=times + 1)]
[([0, 1], [4, 5, 6]), ([0, 1, 2, 3, 4], [7, 8, 9])]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator

from quantlib.errors import ParameterError


def _as_int64_times(values: Any, name: str, n: int) -> np.ndarray:
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    if isinstance(values, pd.Index):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ParameterError(f"PurgedWalkForwardCV: {name} must have one value per sample "
                             f"({n}), got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.datetime64) or arr.dtype == object:
        arr = pd.to_datetime(arr, utc=True)
        if arr.isna().any():
            bad = int(np.argmax(arr.isna()))
            raise ParameterError(f"PurgedWalkForwardCV: {name} is missing at sample {bad}; drop "
                                 "unlabelled rows (labels['valid']) before splitting")
        return arr.asi8.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number):
        raise ParameterError(f"PurgedWalkForwardCV: {name} must be times or numbers, got {arr.dtype}")
    return arr.astype(np.int64)


class PurgedWalkForwardCV(BaseCrossValidator):
    """Walk-forward splits with purging of overlapping labels and an embargo after each test.

    Parameters
    ----------
    n_splits : number of consecutive test windows at the end of the sample.
    test_size : samples per test window (default ``n_samples // (n_splits + 1)``).
    embargo : samples dropped from training right after each test window (only matters with
        ``train_after_test=True``; in pure walk-forward no training sample follows a test).
    gap : the samples right before each test window are dropped from training (as in
        scikit-learn's ``TimeSeriesSplit``; the purge may drop more).
    max_train_size : keep at most this many of the most recent samples before the test.
    min_train_size : refuse folds whose purged training set is smaller (ParameterError).
    train_after_test : also train on samples after the test window (purged + embargoed).

    Notes
    -----
    ``split(X, y=None, groups=None, label_end=None)``: sample times are ``X.index`` when it is
    a DatetimeIndex, else positions ``0..n-1``; ``label_end`` holds each sample's label-window
    end in the same units (timestamps, e.g. ``labels["t_end"]``, or numbers). Without it, each
    label window is its own sample (no purge beyond the test itself).
    """

    def __init__(self, n_splits: int = 5, test_size: int | None = None, embargo: int = 0,
                 max_train_size: int | None = None, min_train_size: int = 1,
                 train_after_test: bool = False, gap: int = 0) -> None:
        self.n_splits = n_splits
        self.test_size = test_size
        self.embargo = embargo
        self.gap = gap
        self.max_train_size = max_train_size
        self.min_train_size = min_train_size
        self.train_after_test = train_after_test

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return int(self.n_splits)

    def _check_params(self, n: int) -> int:
        def check_int(name: str, value: Any, low: int) -> None:
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ParameterError(f"PurgedWalkForwardCV: {name} must be an integer >= {low}, "
                                     f"got {value!r}")
        check_int("n_splits", self.n_splits, 1)
        check_int("embargo", self.embargo, 0)
        check_int("gap", self.gap, 0)
        check_int("min_train_size", self.min_train_size, 1)
        if self.max_train_size is not None:
            check_int("max_train_size", self.max_train_size, 1)
        test_size = self.test_size if self.test_size is not None else n // (self.n_splits + 1)
        check_int("test_size", test_size, 1)
        if self.n_splits * test_size >= n:
            raise ParameterError(
                f"PurgedWalkForwardCV: {self.n_splits} test windows of {test_size} samples need "
                f"more than {n} samples (nothing would be left to train on)")
        return int(test_size)

    def _iter_test_indices(self, X: Any = None, y: Any = None, groups: Any = None):
        # Required by BaseCrossValidator; split() below is the real implementation.
        for _, test in self.split(X, y, groups):
            yield test

    def split(self, X: Any, y: Any = None, groups: Any = None, label_end: Any = None
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_indices, test_indices)`` (positions into ``X``) per fold, oldest first."""
        n = len(X)
        test_size = self._check_params(n)
        index = getattr(X, "index", None)
        if isinstance(index, pd.DatetimeIndex):
            times = index.tz_convert("UTC").asi8 if index.tz is not None else index.asi8
            times = times.astype(np.int64)
        else:
            times = np.arange(n, dtype=np.int64)
        if np.any(np.diff(times) <= 0):
            raise ParameterError("PurgedWalkForwardCV: sample times must be strictly increasing")
        ends = times.copy() if label_end is None else _as_int64_times(label_end, "label_end", n)
        if np.any(ends < times):
            bad = int(np.argmax(ends < times))
            raise ParameterError(f"PurgedWalkForwardCV: label_end precedes the sample time at "
                                 f"sample {bad}")
        positions = np.arange(n)
        first_test = n - self.n_splits * test_size
        for fold in range(self.n_splits):
            a = first_test + fold * test_size
            b = a + test_size
            test = positions[a:b]
            window_start, window_end = times[a], ends[a:b].max()
            candidate = positions < a - self.gap
            if self.max_train_size is not None:
                candidate &= positions >= a - self.max_train_size
            if self.train_after_test:
                candidate |= positions >= b + self.embargo
            overlaps = (times <= window_end) & (ends >= window_start)
            train = positions[candidate & ~overlaps]
            if len(train) < self.min_train_size:
                raise ParameterError(
                    f"PurgedWalkForwardCV: fold {fold} keeps {len(train)} training samples after "
                    f"purging, fewer than min_train_size={self.min_train_size}")
            yield train, test


__all__ = ["PurgedWalkForwardCV"]
