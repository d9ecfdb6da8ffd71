"""ML features as a frame: the research side of :mod:`quantlib.core.ml_features` (whose
docstring defines every feature; the ``xgb_classifier`` kind computes them on Bars)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from quantlib.core.ml_features import FeatureConfig, feature_array


def compute_features(df: pd.DataFrame, config: FeatureConfig | Mapping[str, Any] | None = None
                     ) -> pd.DataFrame:
    """Causal, finite-memory feature matrix of an OHLCV frame.

    Parameters
    ----------
    df : canonical OHLCV frame (see :mod:`quantlib.data`).
    config : :class:`FeatureConfig` or its dict form; default features when None.

    Returns
    -------
    DataFrame indexed like ``df`` with columns ``config.names``; the first ``config.window - 1``
    rows are NaN (warm-up), the rest finite.

    Examples
    --------
    >>> from quantlib.data import load  # doctest: +SKIP
    >>> X = compute_features(load("sample:seed=1,bars=500"))  # doctest: +SKIP
    """
    cfg = FeatureConfig.from_dict(config)
    return pd.DataFrame(feature_array(df, cfg), index=df.index, columns=cfg.names)


__all__ = ["FeatureConfig", "compute_features"]
