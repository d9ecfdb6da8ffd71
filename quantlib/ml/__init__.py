"""Machine-learning signals: causal finite-memory features, labels with their window ends,
purged walk-forward CV, the XGBoost classifier, its ``xgb_classifier`` strategy kind, model
files (native JSON + SHA-256, no pickle) and explainability.

Every public name is imported with the package (no lazy names): importing ``quantlib.ml`` is
research that trains or evaluates, which needs scikit-learn and the backtest engine anyway; the
trading process runs the ``xgb_classifier`` kind from :mod:`quantlib.core` and never imports it.

Examples
--------
>>> from quantlib.data import load
>>> from quantlib.ml import FeatureConfig, compute_features
>>> X = compute_features(load("sample:bars=300"), FeatureConfig())
>>> X.shape[1] == len(FeatureConfig().names)
True
"""

from quantlib.core.ml_features import RegimeFeatureParams
from quantlib.core.model_files import ModelRef, load_tree_model
from quantlib.core.xgb_kind import make_params, predict_proba_bars
from quantlib.ml.artifacts import file_sha256, load_booster, save_model
from quantlib.ml.cv import PurgedWalkForwardCV
from quantlib.ml.evaluate import WalkForwardResult, walk_forward_evaluate
from quantlib.ml.explain import calibration_table, gain_importance, permutation_importance
from quantlib.ml.features import FeatureConfig, compute_features
from quantlib.ml.labels import forward_return_labels, make_labels, triple_barrier_labels
from quantlib.ml.model import Dataset, XGBSignalClassifier, build_dataset
from quantlib.ml.regime_features import fit_regime_params
from quantlib.ml.train import (
    ExperimentSetup,
    FittedStrategy,
    HoldoutResult,
    export_holdout_spec,
    fit_strategy,
    holdout_evaluate,
    holdout_start,
    setup_experiment,
)

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
