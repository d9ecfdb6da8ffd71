"""Regime features as a frame: the research side of :mod:`quantlib.core.regime_features`
(which the regime kinds use on Bars, without pandas)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from quantlib.core.regime_features import FEATURES, feature_warmup, regime_feature_array


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
    values = regime_feature_array(df, features, vol_window)
    out = pd.DataFrame(values, index=df.index, columns=list(features))
    return out.iloc[feature_warmup(features, vol_window):] if dropna else out


__all__ = ["FEATURES", "feature_warmup", "regime_features"]
