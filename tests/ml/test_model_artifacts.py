"""XGBoost classifier, native-JSON model files with SHA-256, no pickle anywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

import quantlib.ml
from quantlib.errors import NotFittedError, ParameterError, SpecError
from quantlib.ml import XGBSignalClassifier, file_sha256, load_booster, save_model


def test_early_stopping_keeps_the_best_iteration(trained):
    ds, clf, _ = trained
    n_val = round(len(ds.X) * 0.2)
    n_fit = len(ds.X) - n_val - 6
    # Independent: plain xgboost with the same split, no early stopping, 40 rounds.
    ref = xgb.XGBClassifier(n_estimators=40, max_depth=3, learning_rate=0.05, subsample=0.8,
                            colsample_bytree=0.8, min_child_weight=5.0, n_jobs=1,
                            random_state=0, eval_metric="logloss", tree_method="hist")
    ref.fit(ds.X.iloc[:n_fit], ds.y.iloc[:n_fit],
            eval_set=[(ds.X.iloc[-n_val:], ds.y.iloc[-n_val:])], verbose=False)
    curve = ref.evals_result()["validation_0"]["logloss"]
    assert clf.best_iteration_ == int(np.argmin(curve[: clf.best_iteration_ + 21]))
    assert clf.booster_.num_boosted_rounds() == clf.best_iteration_ + 1
    expected = ref.predict_proba(ds.X.iloc[:50], iteration_range=(0, clf.best_iteration_ + 1))
    np.testing.assert_allclose(clf.predict_proba(ds.X.iloc[:50]), expected, rtol=1e-6)


def test_predict_before_fit_and_bad_input(trained):
    ds, _, _ = trained
    with pytest.raises(NotFittedError):
        XGBSignalClassifier().predict_proba(ds.X)
    with pytest.raises(ParameterError, match="non-finite value at row 0"):
        XGBSignalClassifier().fit(ds.X.iloc[:100].assign(ret_1=np.nan), ds.y.iloc[:100])
    with pytest.raises(ParameterError, match="both classes"):
        XGBSignalClassifier().fit(ds.X.iloc[:100], np.ones(100, dtype=int))


def test_saved_model_round_trips_and_is_native_json(trained):
    ds, clf, ref = trained
    text = Path(ref.path).read_text()
    assert json.loads(text)["learner"]["feature_names"] == list(ds.X.columns)
    assert ref.sha256 == file_sha256(ref.path) and re.fullmatch(r"[0-9a-f]{64}", ref.sha256)
    booster = load_booster(ref.path, ref.sha256)
    np.testing.assert_array_equal(booster.inplace_predict(ds.X.to_numpy()[:30]),
                                  clf.predict_proba(ds.X.iloc[:30])[:, 1])


def test_loading_refuses_a_file_whose_hash_differs(trained, tmp_path):
    _, clf, ref = trained
    copy = tmp_path / "tampered.model.json"
    copy.write_text(Path(ref.path).read_text().replace('"base_score"', '"base_score" ', 1))
    with pytest.raises(SpecError, match="SHA-256 is .* but params.model_sha256 expects"):
        load_booster(copy, ref.sha256)
    with pytest.raises(SpecError, match="does not exist"):
        load_booster(tmp_path / "missing.model.json", ref.sha256)
    with pytest.raises(ParameterError, match=".json"):
        save_model(clf, tmp_path / "model.ubj")


def test_cached_booster_is_rechecked_when_the_file_changes(trained, tmp_path):
    _, clf, _ = trained
    path = tmp_path / "m.model.json"
    ref = save_model(clf, path)
    load_booster(path, ref.sha256)
    path.write_text(path.read_text() + "\n")  # same model, different bytes
    with pytest.raises(SpecError, match="SHA-256"):
        load_booster(path, ref.sha256)


def test_no_pickle_anywhere_in_quantlib_ml():
    root = Path(quantlib.ml.__file__).parent
    for path in [*root.glob("*.py"), root.parent / "plotting" / "ml.py"]:
        source = path.read_text()
        assert not re.search(r"\b(import pickle|import joblib|cloudpickle|\.pkl\b|dill)",
                             source), path


def test_without_early_stopping_every_round_is_kept(trained):
    ds, _, _ = trained
    clf = XGBSignalClassifier(n_estimators=7, early_stopping_rounds=None, n_jobs=1)
    clf.fit(ds.X, ds.y)
    assert clf.booster_.num_boosted_rounds() == 7 == clf.best_iteration_ + 1
    ref = xgb.XGBClassifier(n_estimators=7, max_depth=3, learning_rate=0.05, subsample=0.8,
                            colsample_bytree=0.8, min_child_weight=5.0, n_jobs=1,
                            random_state=0, tree_method="hist").fit(ds.X, ds.y)
    np.testing.assert_allclose(clf.predict_proba(ds.X.iloc[:20]), ref.predict_proba(ds.X.iloc[:20]),
                               rtol=1e-6)


def test_a_raw_early_stopped_xgbclassifier_is_saved_as_it_predicts(tmp_path):
    """XGBoost keeps every tree after early stopping but predicts with the best iteration's;
    the saved file (what the strategy trades with) must predict like the fitted model."""
    from quantlib.core.trees import TreeEnsemble

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] + 2 * rng.normal(size=600) > 0).astype(int)  # noisy: stops early
    clf = xgb.XGBClassifier(n_estimators=300, early_stopping_rounds=5, n_jobs=1)
    clf.fit(X[:400], y[:400], eval_set=[(X[400:], y[400:])], verbose=False)
    assert clf.get_booster().num_boosted_rounds() > clf.best_iteration + 1  # trees to drop

    ref = save_model(clf, tmp_path / "early.model.json")
    saved = TreeEnsemble.from_file(ref.path)
    assert saved.n_trees == clf.best_iteration + 1
    np.testing.assert_allclose(saved.predict_proba(X), clf.predict_proba(X)[:, 1], atol=1e-6)
    np.testing.assert_allclose(load_booster(ref.path, ref.sha256).inplace_predict(X),
                               clf.predict_proba(X)[:, 1], atol=1e-6)
