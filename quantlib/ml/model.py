"""The XGBoost classifier and the (features, labels) dataset it learns from.

:class:`XGBSignalClassifier` is a scikit-learn estimator wrapping ``xgboost.XGBClassifier``
(2 threads by default) with early stopping on an *inner* validation split: the last
``validation_fraction`` of the (time-ordered) training rows, separated from the inner training
rows by ``validation_gap`` samples so that no inner-training label window reaches into the
validation period. The booster kept (``booster_``) is cut at the best iteration, so what is
saved, backtested and traded is the model that was validated.

Examples
--------
>>> from quantlib.data import load
>>> ds = build_dataset(load("sample:seed=1,bars=1500"), horizon=6)
>>> clf = XGBSignalClassifier(n_estimators=30, validation_gap=6).fit(ds.X, ds.y)
>>> clf.predict_proba(ds.X.iloc[:2]).shape
(2, 2)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from quantlib.core.ml_features import FeatureConfig
from quantlib.core.model_files import ModelRef
from quantlib.errors import NotFittedError, ParameterError
from quantlib.ml.artifacts import save_model
from quantlib.ml.features import compute_features
from quantlib.ml.labels import make_labels


@dataclass
class Dataset:
    """Rows usable for learning: finite features and a non-zero label.

    ``X`` (features), ``y`` (1 = up / take-profit, 0 = down / stop-loss), ``labels`` (the label
    frame rows, with ``t_end`` for purging) and ``positions`` (bar positions in the source frame).
    """

    X: pd.DataFrame
    y: pd.Series
    labels: pd.DataFrame
    positions: np.ndarray
    config: FeatureConfig


def build_dataset(df: pd.DataFrame, features: FeatureConfig | Mapping[str, Any] | None = None,
                  label: str = "forward", horizon: int = 12, dead_zone: float = 0.0,
                  tp: float = 0.02, sl: float = 0.02) -> Dataset:
    """Features and binary labels of every bar where both exist.

    Bars inside the feature warm-up, without a full label window, or with label 0 (dead zone /
    time limit) are dropped: they say nothing about the direction.

    Examples
    --------
    >>> from quantlib.data import load
    >>> ds = build_dataset(load("sample:seed=1,bars=600"), horizon=4, dead_zone=0.001)
    >>> set(ds.y.unique()) <= {0, 1}, bool(ds.labels["t_end"].gt(ds.X.index).all())
    (True, True)
    """
    cfg = FeatureConfig.from_dict(features)
    X = compute_features(df, cfg)
    if label == "forward":
        labels = make_labels(df, "forward", horizon=horizon, dead_zone=dead_zone)
    elif label == "triple_barrier":
        labels = make_labels(df, "triple_barrier", tp=tp, sl=sl, horizon=horizon)
    else:
        raise ParameterError(f"build_dataset: label must be 'forward' or 'triple_barrier', "
                             f"got {label!r}")
    keep = X.notna().all(axis=1).to_numpy() & labels["valid"].to_numpy() & (
        labels["label"].to_numpy() != 0)
    positions = np.flatnonzero(keep)
    if len(positions) < 50:
        raise ParameterError(f"build_dataset: only {len(positions)} labelled rows (need >= 50); "
                             f"use more bars, a shorter horizon or a smaller dead zone")
    lab = labels.iloc[positions]
    y = (lab["label"] > 0).astype(np.int64).rename("y")
    return Dataset(X=X.iloc[positions], y=y, labels=lab, positions=positions, config=cfg)


class XGBSignalClassifier(ClassifierMixin, BaseEstimator):
    """XGBoost binary classifier with early stopping on an inner, gapped validation split.

    Parameters
    ----------
    n_estimators, max_depth, learning_rate, subsample, colsample_bytree, min_child_weight,
    reg_lambda : passed to ``xgboost.XGBClassifier``.
    early_stopping_rounds : stop after this many rounds without validation log-loss gain; None
        trains ``n_estimators`` rounds on all rows (no inner validation split).
    validation_fraction : share of the (time-ordered) training rows used for early stopping.
    validation_gap : samples dropped between inner training and validation rows (use the label
        horizon: it purges inner-training labels that reach into the validation period).
    n_jobs : XGBoost threads (2: the machine is shared).
    random_state : seed.

    Attributes
    ----------
    booster_ : ``xgboost.Booster`` cut at the best iteration; best_iteration_; classes_;
    feature_names_in_; n_features_in_; evals_result_.
    """

    def __init__(self, n_estimators: int = 300, max_depth: int = 3, learning_rate: float = 0.05,
                 subsample: float = 0.8, colsample_bytree: float = 0.8,
                 min_child_weight: float = 5.0, reg_lambda: float = 1.0,
                 early_stopping_rounds: int | None = 20, validation_fraction: float = 0.2,
                 validation_gap: int = 0, n_jobs: int = 2, random_state: int = 0) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.validation_gap = validation_gap
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> XGBSignalClassifier:
        """Fit on time-ordered rows; the last ``validation_fraction`` drives early stopping."""
        import xgboost as xgb

        if not 0.0 < float(self.validation_fraction) < 0.5:
            raise ParameterError(f"XGBSignalClassifier: validation_fraction must be in (0, 0.5), "
                                 f"got {self.validation_fraction!r}")
        if int(self.validation_gap) < 0:
            raise ParameterError(f"XGBSignalClassifier: validation_gap must be >= 0, got "
                                 f"{self.validation_gap!r}")
        names = list(X.columns) if isinstance(X, pd.DataFrame) else None
        arr = np.asarray(X, dtype=np.float64)
        target = np.asarray(y).astype(np.int64)
        if arr.ndim != 2 or len(arr) != len(target):
            raise ParameterError(f"XGBSignalClassifier: X must be 2-D with one row per label; got "
                                 f"X {arr.shape}, y {target.shape}")
        if not np.all(np.isfinite(arr)):
            row = int(np.argmax(~np.isfinite(arr).all(axis=1)))
            raise ParameterError(f"XGBSignalClassifier: X has a non-finite value at row {row}; "
                                 "drop warm-up rows (build_dataset does)")
        if set(np.unique(target)) != {0, 1}:
            raise ParameterError(f"XGBSignalClassifier: y must hold both classes 0 and 1, got "
                                 f"{sorted(set(np.unique(target)))}")
        stopping = self.early_stopping_rounds is not None
        n_val = max(1, int(round(len(arr) * float(self.validation_fraction)))) if stopping else 0
        n_fit = len(arr) - n_val - (int(self.validation_gap) if stopping else 0)
        if n_fit < 20:
            raise ParameterError(f"XGBSignalClassifier: {len(arr)} rows leave {n_fit} for inner "
                                 "training after the validation split and gap (need >= 20)")
        model = xgb.XGBClassifier(
            n_estimators=int(self.n_estimators), max_depth=int(self.max_depth),
            learning_rate=float(self.learning_rate), subsample=float(self.subsample),
            colsample_bytree=float(self.colsample_bytree),
            min_child_weight=float(self.min_child_weight), reg_lambda=float(self.reg_lambda),
            early_stopping_rounds=int(self.early_stopping_rounds) if stopping else None,
            eval_metric="logloss",
            n_jobs=int(self.n_jobs), random_state=int(self.random_state), tree_method="hist")
        if stopping:
            model.fit(arr[:n_fit], target[:n_fit],
                      eval_set=[(arr[-n_val:], target[-n_val:])], verbose=False)
            self.best_iteration_ = int(model.best_iteration)
        else:
            model.fit(arr, target, verbose=False)
            self.best_iteration_ = int(self.n_estimators) - 1
        self.booster_ = model.get_booster()[: self.best_iteration_ + 1]
        if names is not None:
            self.booster_.feature_names = names
        self.evals_result_ = model.evals_result() if stopping else {}
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = arr.shape[1]
        self.feature_names_in_ = np.array(names, dtype=object) if names is not None else None
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise NotFittedError("XGBSignalClassifier is not fitted yet; call fit(X, y) first")

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(n, 2)`` array: P(down), P(up)."""
        self._check_fitted()
        arr = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
        if arr.ndim != 2 or arr.shape[1] != self.n_features_in_:
            raise ParameterError(f"XGBSignalClassifier: X must have {self.n_features_in_} "
                                 f"columns, got shape {arr.shape}")
        up = self.booster_.inplace_predict(arr)
        return np.column_stack([1.0 - up, up])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def gain_importance(self) -> pd.Series:
        """Total gain per feature (0 for features never split on), largest first."""
        self._check_fitted()
        names = (list(self.feature_names_in_) if self.feature_names_in_ is not None
                 else [f"f{i}" for i in range(self.n_features_in_)])
        score = self.booster_.get_score(importance_type="total_gain")
        return pd.Series({n: float(score.get(n, 0.0)) for n in names},
                         name="total_gain").sort_values(ascending=False)

    def save(self, path: str) -> ModelRef:
        """Save the (best-iteration) booster as native JSON; see :func:`save_model`."""
        self._check_fitted()
        return save_model(self.booster_, path)


__all__ = ["Dataset", "build_dataset", "XGBSignalClassifier"]
