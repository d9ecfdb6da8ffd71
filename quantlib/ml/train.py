"""Train the final model and write the ``xgb_classifier`` strategy: model file beside the spec.

Examples
--------
>>> import tempfile, pathlib
>>> from quantlib.data import load
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> fitted = fit_strategy(load("sample:seed=1,bars=1500"), out / "demo.model.json",
...                       horizon=6, model_params={"n_estimators": 20})
>>> fitted.params["model_path"].endswith("demo.model.json")
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from quantlib.ml.features import FeatureConfig
from quantlib.ml.model import XGBSignalClassifier, build_dataset
from quantlib.ml.regime_features import fit_regime_params
from quantlib.ml.strategy import make_params


@dataclass
class FittedStrategy:
    """The trained classifier and the ``xgb_classifier`` params that reference its file."""

    model: XGBSignalClassifier
    params: dict[str, Any]


def fit_strategy(df: pd.DataFrame, model_path: str | Path,
                 features: FeatureConfig | Mapping[str, Any] | None = None, *,
                 label: str = "forward", horizon: int = 12, dead_zone: float = 0.0,
                 tp: float = 0.02, sl: float = 0.02, regime: Mapping[str, Any] | None = None,
                 entry: float = 0.55, exit: float = 0.5, allow_short: bool = False,
                 memory: int = 24, model_params: Mapping[str, Any] | None = None,
                 seed: int = 0) -> FittedStrategy:
    """Fit regime model (optional), features, labels and XGBoost on ``df``; save the model.

    ``df`` is the whole training period (e.g. everything before a final hold-out). The model
    is saved as native JSON at ``model_path`` (put it beside the spec file) and the returned
    params reference it by path and SHA-256.
    """
    cfg = FeatureConfig.from_dict(features)
    if regime is not None:
        reg = dict(regime)
        cfg = replace(cfg, regime=fit_regime_params(df, n_states=int(reg.get("n_states", 2)),
                                                    window=int(reg.get("window", 96)), seed=seed))
    ds = build_dataset(df, cfg, label=label, horizon=horizon, dead_zone=dead_zone, tp=tp, sl=sl)
    model = XGBSignalClassifier(**{"validation_gap": horizon, "random_state": seed,
                                   **dict(model_params or {})}).fit(ds.X, ds.y)
    ref = model.save(str(model_path))
    params = make_params(ref, cfg, entry=entry, exit=exit, allow_short=allow_short, memory=memory)
    return FittedStrategy(model=model, params=params)


__all__ = ["FittedStrategy", "fit_strategy"]
