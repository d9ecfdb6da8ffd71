"""Machine-learning signals: causal finite-memory features, labels with their window ends,
purged walk-forward CV, the XGBoost classifier, its ``xgb_classifier`` strategy kind, model
files (native JSON + SHA-256, no pickle) and explainability.

Examples
--------
>>> from quantlib.data import load
>>> from quantlib.ml import FeatureConfig, compute_features
>>> X = compute_features(load("sample:bars=300"), FeatureConfig())
>>> X.shape[1] == len(FeatureConfig().names)
True
"""

from quantlib._lazy import lazy_exports
from quantlib.core.ml_features import RegimeFeatureParams
from quantlib.core.model_files import ModelRef, load_tree_model
from quantlib.core.xgb_kind import make_params, predict_proba_bars

# The kind's side (features on Bars, model files, the kind) is numpy-only and lives in
# quantlib.core; the rest loads on first use: training, CV and evaluation pull in scikit-learn
# (~0.6 s, ~60 MB), the backtest engine and pandas.
_LAZY = {
    "file_sha256": "artifacts", "load_booster": "artifacts",
    "save_model": "artifacts", "FeatureConfig": "features",
    "compute_features": "features",
    "PurgedWalkForwardCV": "cv", "forward_return_labels": "labels", "make_labels": "labels",
    "triple_barrier_labels": "labels", "Dataset": "model", "XGBSignalClassifier": "model",
    "build_dataset": "model", "fit_regime_params": "regime_features",
    "walk_forward_evaluate": "evaluate", "WalkForwardResult": "evaluate",
    "gain_importance": "explain",
    "permutation_importance": "explain", "calibration_table": "explain", "fit_strategy": "train",
    "FittedStrategy": "train", "ExperimentSetup": "train", "setup_experiment": "train",
    "HoldoutResult": "train", "holdout_evaluate": "train", "holdout_start": "train",
    "export_holdout_spec": "train",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "Dataset", "ExperimentSetup", "FeatureConfig", "FittedStrategy", "HoldoutResult", "ModelRef",
    "PurgedWalkForwardCV", "RegimeFeatureParams", "WalkForwardResult", "XGBSignalClassifier",
    "build_dataset", "calibration_table", "compute_features", "export_holdout_spec",
    "file_sha256", "fit_regime_params", "fit_strategy", "forward_return_labels",
    "gain_importance", "holdout_evaluate", "holdout_start", "load_booster", "load_tree_model",
    "make_labels",
    "make_params", "permutation_importance", "predict_proba_bars", "save_model",
    "setup_experiment", "triple_barrier_labels", "walk_forward_evaluate",
]
