"""Boosted trees from XGBoost's native JSON model files, evaluated by a numba kernel.

The ``xgb_classifier`` kind predicts with :class:`TreeEnsemble` in the backtest and in the live
runner alike (one code path): it reads the very file XGBoost saved (hash-checked), costs a few
microseconds per bar instead of XGBoost's ~0.3 ms per call, and keeps XGBoost (and the
scikit-learn and SciPy it imports) out of the live process. Tests check its probabilities against
``xgboost.Booster.inplace_predict``.

Examples
--------
>>> import numpy as np, xgboost as xgb, tempfile, pathlib
>>> from quantlib.ml.artifacts import save_model
>>> X = np.random.default_rng(0).normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
>>> ref = save_model(xgb.XGBClassifier(n_estimators=5, n_jobs=1).fit(X, y),
...                  pathlib.Path(tempfile.mkdtemp()) / "m.model.json")
>>> model = TreeEnsemble.from_file(ref.path)
>>> bool(np.abs(model.predict_proba(X) - xgb.Booster(model_file=ref.path).inplace_predict(X)).max() < 1e-6)
True
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quantlib.core.trees_nb import predict_margin_nb, sigmoid_f32_nb
from quantlib.errors import SpecError


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """A binary-logistic gradient-boosted tree ensemble as flat node arrays."""

    num_features: int
    feature_names: list[str] | None
    n_trees: int
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    default_left: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    base_margin: float

    @classmethod
    def from_file(cls, path: str | Path) -> TreeEnsemble:
        """Parse an XGBoost native-JSON model file; SpecError names the file and the field."""
        try:
            model = json.loads(Path(path).read_text())
            learner = model["learner"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SpecError(f"model file {path}: not an XGBoost JSON model ({exc})") from None
        return cls.from_learner(learner, str(path))

    @classmethod
    def from_learner(cls, learner: dict, where: str = "model") -> TreeEnsemble:
        def fail(field: str, problem: str) -> SpecError:
            return SpecError(f"model file {where}: learner.{field}: {problem}")

        objective = learner.get("objective", {}).get("name")
        if objective != "binary:logistic":
            raise fail("objective.name", f"expected 'binary:logistic', got {objective!r}")
        booster = learner.get("gradient_booster", {})
        if booster.get("name") != "gbtree":
            raise fail("gradient_booster.name", f"expected 'gbtree', got {booster.get('name')!r}")
        params = learner["learner_model_param"]
        if int(params.get("num_class", 0)) > 1 or int(params.get("num_target", 1)) != 1:
            raise fail("learner_model_param", "expected one binary target")
        base_score = np.float32(str(params["base_score"]).strip("[]"))
        if not 0.0 < base_score < 1.0:
            raise fail("learner_model_param.base_score", f"expected (0, 1), got {base_score}")
        trees = booster["model"]["trees"]
        parts, roots, offset = [], [], 0
        for t, tree in enumerate(trees):
            if any(int(s) != 0 for s in tree.get("split_type", [])):
                raise fail(f"gradient_booster.model.trees[{t}].split_type",
                           "categorical splits are not supported")
            left = np.asarray(tree["left_children"], dtype=np.int64)
            right = np.asarray(tree["right_children"], dtype=np.int64)
            roots.append(offset)
            parts.append((np.asarray(tree["split_indices"], dtype=np.int64),
                          np.asarray(tree["split_conditions"], dtype=np.float32),
                          np.where(left >= 0, left + offset, -1),
                          np.where(right >= 0, right + offset, -1),
                          np.asarray(tree["default_left"], dtype=bool)))
            offset += len(left)
        if not parts:
            raise fail("gradient_booster.model.trees", "the model has no trees")
        feature, threshold, left, right, default_left = (
            np.concatenate(col) for col in zip(*parts, strict=True))
        # Leaves store their value in split_conditions (XGBoost's JSON layout).
        value = np.where(left < 0, threshold, np.float32(0.0)).astype(np.float32)
        # XGBoost's ProbToMargin for binary:logistic, in float32.
        base_margin = np.float32(-math.log(np.float32(1.0) / base_score - np.float32(1.0)))
        names = learner.get("feature_names") or None
        return cls(num_features=int(params["num_feature"]), feature_names=names,
                   n_trees=len(trees), feature=feature, threshold=threshold, left=left,
                   right=right, default_left=default_left, value=value,
                   roots=np.asarray(roots, dtype=np.int64), base_margin=float(base_margin))

    def predict_margin(self, X: np.ndarray) -> np.ndarray:
        """Float32 margin (log-odds) per row."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.num_features:
            raise SpecError(f"tree model: expected rows of {self.num_features} features, got "
                            f"shape {X.shape}")
        return predict_margin_nb(X, self.feature, self.threshold, self.left, self.right,
                                 self.default_left, self.value, self.roots,
                                 np.float32(self.base_margin))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Float32 probability of the positive class per row (XGBoost's ``inplace_predict``)."""
        return sigmoid_f32_nb(self.predict_margin(X))


__all__ = ["TreeEnsemble"]
