"""Causal regime features from an OHLCV frame.

Every feature at bar t uses closes up to t only and a *finite* window (so the strategy kind can
recompute it on a bounded live window): ``returns`` (log return), ``volatility`` (rolling standard
deviation of log returns over ``vol_window`` bars), ``abs_returns``, ``range`` (log high/low).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from quantlib.errors import DataError, ParameterError

FEATURES = ("returns", "volatility", "abs_returns", "range")


def feature_warmup(features: Sequence[str], vol_window: int = 24) -> int:
    """Bars of history consumed before the first complete feature row."""
    _check_features(features, vol_window)
    return vol_window if "volatility" in features else 1


def regime_features(df: pd.DataFrame, features: Sequence[str] = ("returns",),
                    vol_window: int = 24, dropna: bool = True) -> pd.DataFrame:
    """Feature matrix for the regime models, one row per bar (warm-up rows dropped).

    Parameters
    ----------
    df : canonical OHLCV frame (needs ``close``; ``high``/``low`` for ``range``).
    features : names from :data:`FEATURES`, in column order (put ``returns`` first: models order
        regimes by the variance of column 0 by default).
    vol_window : bars of the trailing volatility window.
    dropna : drop the leading warm-up rows (otherwise they are NaN).

    Examples
    --------
    >>> from quantlib.data import synthetic_ohlcv
    >>> X = regime_features(synthetic_ohlcv(100).ohlcv, ["returns", "volatility"], vol_window=10)
    >>> list(X.columns), len(X)
    (['returns', 'volatility'], 90)
    """
    _check_features(features, vol_window)
    if "close" not in df:
        raise DataError("regime_features: the frame has no 'close' column")
    close = df["close"].to_numpy(dtype=float)
    if np.any(~np.isfinite(close)) or np.any(close <= 0):
        row = int(np.argmax(~np.isfinite(close) | (close <= 0)))
        raise DataError(f"regime_features: column 'close', row {row} ({df.index[row]}) is not a "
                        "positive finite price")
    log_ret = pd.Series(np.r_[np.nan, np.diff(np.log(close))], index=df.index)
    columns = {}
    for name in features:
        if name == "returns":
            columns[name] = log_ret
        elif name == "abs_returns":
            columns[name] = log_ret.abs()
        elif name == "volatility":
            # ddof=0 keeps a fixed-weight finite window; min_periods = the full window.
            columns[name] = log_ret.rolling(vol_window, min_periods=vol_window).std(ddof=0)
        elif name == "range":
            if "high" not in df or "low" not in df:
                raise DataError("regime_features: feature 'range' needs 'high' and 'low' columns")
            columns[name] = np.log(df["high"] / df["low"])
    out = pd.DataFrame(columns, index=df.index)
    return out.iloc[feature_warmup(features, vol_window):] if dropna else out


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
