"""Causal regime features from OHLCV data, on numpy (the regime kinds' side).

Every feature at bar t uses closes up to t only and a *finite* window (so the strategy kind can
recompute it on a bounded live window): ``returns`` (log return), ``volatility`` (standard
deviation, ddof=0, of log returns over ``vol_window`` bars, computed per window from scratch by
:func:`quantlib.core.indicators_nb.rolling_std_nb`, so its value never depends on older history),
``abs_returns``, ``range`` (log high/low).

:func:`regime_feature_array` works on :class:`~quantlib.core.bars.Bars` without pandas (the
regime kinds in the trading process); :func:`quantlib.regime.features.regime_features` wraps it
in a frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from quantlib.core.bars import as_bars
from quantlib.core.indicators_nb import rolling_std_nb
from quantlib.errors import DataError, ParameterError

FEATURES = ("returns", "volatility", "abs_returns", "range")


def feature_warmup(features: Sequence[str], vol_window: int = 24) -> int:
    """Bars of history consumed before the first complete feature row."""
    _check_features(features, vol_window)
    return vol_window if "volatility" in features else 1


def regime_feature_array(data: Any, features: Sequence[str] = ("returns",),
                         vol_window: int = 24) -> np.ndarray:
    """Feature matrix ``(bars, len(features))`` of ``data`` (Bars or an OHLCV frame); each of
    the first :func:`feature_warmup` rows holds a NaN (warm-up), no later row does.

    Examples
    --------
    >>> from quantlib.data import synthetic_ohlcv
    >>> X = regime_feature_array(synthetic_ohlcv(100).ohlcv, ["returns", "volatility"], 10)
    >>> X.shape, bool(np.isnan(X[:10]).any(axis=1).all()), bool(np.isfinite(X[10:]).all())
    ((100, 2), True, True)
    """
    _check_features(features, vol_window)
    bars = as_bars(data)
    if not bars.has("close"):
        raise DataError("regime_features: the data has no 'close' column")
    close = bars.close
    bad = ~np.isfinite(close) | (close <= 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"regime_features: column 'close', row {row} ({bars.label(row)}) is not "
                        "a positive finite price")
    log_ret = np.empty(len(close))
    log_ret[:1] = np.nan
    log_ret[1:] = np.diff(np.log(close))
    out = np.empty((len(close), len(features)))
    for j, name in enumerate(features):
        if name == "returns":
            out[:, j] = log_ret
        elif name == "abs_returns":
            out[:, j] = np.abs(log_ret)
        elif name == "volatility":
            out[:, j] = rolling_std_nb(log_ret, int(vol_window))
        elif name == "range":
            if not (bars.has("high") and bars.has("low")):
                raise DataError("regime_features: feature 'range' needs 'high' and 'low' columns")
            out[:, j] = np.log(bars.high / bars.low)
    return out


def _check_features(features: Sequence[str], vol_window: int) -> None:
    if isinstance(features, str) or len(features) == 0:
        raise ParameterError(f"features: expected a non-empty list of names from {FEATURES}, "
                             f"got {features!r}")
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ParameterError(f"features: unknown {unknown}; expected names from {FEATURES}")
    if isinstance(vol_window, bool) or not isinstance(vol_window, int | np.integer) or vol_window < 2:
        raise ParameterError(f"vol_window: expected an integer >= 2, got {vol_window!r}")


def digitize_states(arr: np.ndarray, bin_edges: list[np.ndarray], n_bins: int) -> np.ndarray:
    """Mixed-radix state index from per-feature bins (column 0 is the most significant digit)."""
    states = np.zeros(arr.shape[0], dtype=np.int64)
    for j, edges in enumerate(bin_edges):
        states = states * n_bins + np.searchsorted(edges, arr[:, j], side="right")
    return states
