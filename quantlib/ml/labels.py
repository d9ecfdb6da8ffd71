"""Labels for supervised signals, each carrying the end time of its window.

A label at bar ``t`` looks *forward* (that is its job), so every label records ``t_end``, the
last bar its value depends on. :class:`quantlib.ml.cv.PurgedWalkForwardCV` uses ``t_end`` to
purge training samples whose label window overlaps a test window.

Both functions return a DataFrame indexed like the input with columns

``label``      +1 (up / take-profit), -1 (down / stop-loss), 0 (dead zone / time limit)
``t_end``      timestamp of the last bar of the label window (NaT when no label)
``end_pos``    the same as an integer bar position (-1 when no label)
``fwd_return`` simple return from ``close[t]`` to the end of the window (the barrier level
               when a triple barrier is touched)
``valid``      True where the full window exists (the last bars have no label)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlib.core import ml_features_nb as nb
from quantlib.core.bars import Bars, is_frame
from quantlib.core.ml_features import _feature_inputs
from quantlib.errors import DataError, ParameterError


def _check_frame(df: pd.DataFrame) -> Bars:
    # Labels come back as a frame on df's index: a frame is required, not only its bars.
    if not is_frame(df):
        raise DataError(f"labels: expected an OHLCV DataFrame, got {type(df).__name__}")
    return _feature_inputs(df)


def _frame(df: pd.DataFrame, label: np.ndarray, end_pos: np.ndarray, fwd: np.ndarray,
           valid: np.ndarray) -> pd.DataFrame:
    t_end = pd.Series(pd.NaT, index=df.index, dtype=df.index.dtype)
    t_end[valid] = df.index[end_pos[valid]]
    return pd.DataFrame({"label": np.where(valid, label, 0).astype(np.int64), "t_end": t_end,
                         "end_pos": np.where(valid, end_pos, -1).astype(np.int64),
                         "fwd_return": np.where(valid, fwd, np.nan), "valid": valid},
                        index=df.index)


def forward_return_labels(df: pd.DataFrame, horizon: int = 12, dead_zone: float = 0.0
                          ) -> pd.DataFrame:
    """Sign of the ``horizon``-bar forward return, 0 inside ``[-dead_zone, dead_zone]``.

    Parameters
    ----------
    df : OHLCV frame.
    horizon : bars ahead; the label window of bar ``t`` ends at ``t + horizon``.
    dead_zone : returns with ``|r| <= dead_zone`` get label 0 (too small to trade on).

    Examples
    --------
    >>> import pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC")
    >>> df = pd.DataFrame({c: [100.0, 101.0, 100.5, 99.0] for c in
    ...                    ("open", "high", "low", "close")} | {"volume": 1.0}, index=idx)
    >>> forward_return_labels(df, horizon=1, dead_zone=0.006)["label"].tolist()
    [1, 0, -1, 0]
    """
    close = _check_frame(df).close
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ParameterError(f"labels: horizon must be an integer >= 1, got {horizon!r}")
    if not (isinstance(dead_zone, int | float) and 0.0 <= dead_zone < 1.0):
        raise ParameterError(f"labels: dead_zone must be a fraction in [0, 1), got {dead_zone!r}")
    n = len(close)
    pos = np.arange(n)
    valid = pos + horizon < n
    end_pos = np.where(valid, pos + horizon, 0)
    fwd = close[end_pos] / close - 1.0
    label = np.where(fwd > dead_zone, 1, np.where(fwd < -dead_zone, -1, 0))
    return _frame(df, label, end_pos, fwd, valid)


def triple_barrier_labels(df: pd.DataFrame, tp: float = 0.02, sl: float = 0.02,
                          horizon: int = 24) -> pd.DataFrame:
    """Triple-barrier labels: which of take-profit, stop-loss or the time limit comes first.

    Entry at ``close[t]``; bars ``t+1 .. t+horizon`` are scanned with their high and low. The
    upper barrier ``close[t] * (1 + tp)`` gives +1, the lower ``close[t] * (1 - sl)`` gives -1
    (a bar touching both counts as the stop: the intra-bar order is unknown, so assume the
    worse), and reaching ``t + horizon`` first gives 0. ``t_end`` is the touching bar, or
    ``t + horizon``.

    Examples
    --------
    >>> import pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC")
    >>> df = pd.DataFrame({"open": 100.0, "close": 100.0, "volume": 1.0,
    ...                    "high": [100.0, 101.0, 103.0, 100.0],
    ...                    "low": [100.0, 99.5, 99.0, 100.0]}, index=idx)
    >>> triple_barrier_labels(df, tp=0.02, sl=0.02, horizon=2)["label"].tolist()
    [1, 1, 0, 0]
    """
    bars = _check_frame(df)
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ParameterError(f"labels: horizon must be an integer >= 1, got {horizon!r}")
    for name, value in (("tp", tp), ("sl", sl)):
        if not (isinstance(value, int | float) and 0.0 < value < 1.0):
            raise ParameterError(f"labels: {name} must be a fraction in (0, 1), got {value!r}")
    label, end_pos, ret = nb.triple_barrier_nb(bars.close, bars.high, bars.low,
                                               float(tp), float(sl), int(horizon))
    valid = label != -2
    return _frame(df, label, np.where(valid, end_pos, 0), ret, valid)


def make_labels(df: pd.DataFrame, kind: str = "forward", **kwargs) -> pd.DataFrame:
    """Dispatch on ``kind``: ``"forward"`` (:func:`forward_return_labels`) or ``"triple_barrier"``.

    Examples
    --------
    >>> from quantlib.data import load
    >>> make_labels(load("sample:bars=100"), "forward", horizon=4)["valid"].sum()
    np.int64(96)
    """
    if kind == "forward":
        return forward_return_labels(df, **kwargs)
    if kind == "triple_barrier":
        return triple_barrier_labels(df, **kwargs)
    raise ParameterError(f"labels: kind must be 'forward' or 'triple_barrier', got {kind!r}")


__all__ = ["forward_return_labels", "triple_barrier_labels", "make_labels"]
