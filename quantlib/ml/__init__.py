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



def __getattr__(name: str):
    # Every name loads on first use: training, CV and evaluation pull in scikit-learn (~0.6 s,
    # ~60 MB) and the backtest engine, features and model files pandas; the live runner's
    # `xgb_classifier` kind imports quantlib.ml.strategy and must load none of them.
    import importlib

    lazy = {"ModelRef": "quantlib.ml.artifacts", "file_sha256": "quantlib.ml.artifacts",
            "load_booster": "quantlib.ml.artifacts", "load_tree_model": "quantlib.ml.artifacts",
            "save_model": "quantlib.ml.artifacts",
            "FeatureConfig": "quantlib.ml.features",
            "RegimeFeatureParams": "quantlib.ml.features",
            "compute_features": "quantlib.ml.features",
            "PurgedWalkForwardCV": "quantlib.ml.cv",
            "forward_return_labels": "quantlib.ml.labels", "make_labels": "quantlib.ml.labels",
            "triple_barrier_labels": "quantlib.ml.labels",
            "Dataset": "quantlib.ml.model", "XGBSignalClassifier": "quantlib.ml.model",
            "build_dataset": "quantlib.ml.model",
            "fit_regime_params": "quantlib.ml.regime_features",
            "walk_forward_evaluate": "quantlib.ml.evaluate",
            "WalkForwardResult": "quantlib.ml.evaluate",
            "make_params": "quantlib.ml.strategy", "predict_proba_bars": "quantlib.ml.strategy",
            "gain_importance": "quantlib.ml.explain",
            "permutation_importance": "quantlib.ml.explain",
            "calibration_table": "quantlib.ml.explain",
            "fit_strategy": "quantlib.ml.train", "FittedStrategy": "quantlib.ml.train",
            "ExperimentSetup": "quantlib.ml.train", "setup_experiment": "quantlib.ml.train",
            "HoldoutResult": "quantlib.ml.train", "holdout_evaluate": "quantlib.ml.train",
            "holdout_start": "quantlib.ml.train", "export_holdout_spec": "quantlib.ml.train"}
    if name in lazy:
        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(f"module 'quantlib.ml' has no attribute {name!r}")


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
