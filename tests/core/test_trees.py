"""The numba tree evaluator against XGBoost's own predictor, on the very same model files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb

from quantlib.core.model_files import load_tree_model
from quantlib.core.trees import TreeEnsemble
from quantlib.errors import SpecError
from quantlib.ml.artifacts import file_sha256, save_model


def _data(n: int, f: int, seed: int, nan_share: float = 0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    y = (X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + rng.normal(0, 0.5, n) > 0).astype(int)
    if nan_share:
        X[rng.random(X.shape) < nan_share] = np.nan
    return X, y


@pytest.mark.parametrize(("depth", "rounds", "nan_share"), [(1, 3, 0.0), (4, 60, 0.0),
                                                              (6, 150, 0.1)])
def test_probabilities_equal_xgboost(tmp_path, depth, rounds, nan_share):
    X, y = _data(3000, 6, seed=depth, nan_share=nan_share)
    clf = xgb.XGBClassifier(n_estimators=rounds, max_depth=depth, learning_rate=0.3, n_jobs=1,
                            random_state=0).fit(X[:2000], y[:2000])
    ref = save_model(clf, tmp_path / "m.model.json")
    booster = xgb.Booster(model_file=ref.path)
    model = TreeEnsemble.from_file(ref.path)
    test = X[2000:]
    expected = booster.inplace_predict(test)
    got = model.predict_proba(test)
    assert model.n_trees == rounds and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-7)
    # Same decisions on the leaves: the margins agree to float32 rounding of the sum.
    np.testing.assert_allclose(model.predict_margin(test),
                               booster.inplace_predict(test, predict_type="margin"), atol=1e-5)
    if nan_share:
        assert np.isnan(test).any()  # the default directions were exercised


def test_features_exactly_on_a_threshold_go_right(tmp_path):
    # XGBoost sends x < threshold left: a row sitting on a split value must go right.
    X, y = _data(500, 3, seed=3)
    ref = save_model(xgb.XGBClassifier(n_estimators=1, max_depth=1, n_jobs=1).fit(X, y),
                     tmp_path / "stump.model.json")
    model = TreeEnsemble.from_file(ref.path)
    feature, threshold = int(model.feature[0]), float(model.threshold[0])
    rows = np.zeros((3, 3))
    rows[:, feature] = [np.nextafter(threshold, -np.inf, dtype=np.float32), threshold,
                        np.nextafter(threshold, np.inf, dtype=np.float32)]
    expected = xgb.Booster(model_file=ref.path).inplace_predict(rows)
    np.testing.assert_array_equal(model.predict_proba(rows), expected)
    assert expected[0] != expected[1] == expected[2]


def test_loader_checks_the_hash_and_the_model_kind(tmp_path):
    X, y = _data(300, 3, seed=1)
    ref = save_model(xgb.XGBClassifier(n_estimators=2, n_jobs=1).fit(X, y),
                     tmp_path / "m.model.json")
    assert load_tree_model(ref.path, ref.sha256).n_trees == 2
    with pytest.raises(SpecError, match="SHA-256"):
        load_tree_model(ref.path, "0" * 64)
    multi = xgb.XGBClassifier(n_estimators=2, n_jobs=1).fit(X, np.arange(300) % 3)
    path = tmp_path / "multi.model.json"
    multi.get_booster().save_model(str(path))
    with pytest.raises(SpecError, match="objective.name.*binary:logistic"):
        load_tree_model(path, file_sha256(path))
    broken = tmp_path / "broken.model.json"
    broken.write_text(json.dumps({"not": "a model"}))
    with pytest.raises(SpecError, match="broken.model.json"):
        load_tree_model(broken, file_sha256(broken))
    with pytest.raises(SpecError, match="expected rows of 3 features"):
        TreeEnsemble.from_file(ref.path).predict_proba(np.zeros((2, 4)))
