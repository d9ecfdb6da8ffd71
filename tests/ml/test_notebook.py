"""notebooks/06_ml_xgboost.ipynb runs under papermill; recorded figures and the exported spec
check out against independent recomputation."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantlib.data import load
from quantlib.ml import file_sha256
from tests.support.notebooks import run_notebook


def test_notebook_runs_exports_spec_and_records_metrics(tmp_path):
    params = {"source": "sample:seed=2,bars=1600", "n_splits": 2, "n_estimators": 30,
              "regime_window": 48, "horizon": 6, "spec_dir": str(tmp_path / "spec")}
    metrics = run_notebook("06_ml_xgboost.ipynb", tmp_path / "06.ipynb", params)
    df = load(params["source"])
    split = int(len(df) * 0.75)
    expected_bh = df["close"].iloc[-1] / df["open"].iloc[split + 1] - 1
    assert metrics["holdout_buy_hold_return"] == pytest.approx(expected_bh)
    assert 0.0 <= metrics["wf_auc_xgb"] <= 1.0
    from quantlib.strategy.spec import load_spec

    spec = load_spec(tmp_path / "spec" / "xgb_classifier_demo.json")
    assert spec.kind == "xgb_classifier"
    model = Path(spec.params["model_path"])
    assert model.parent == tmp_path / "spec"  # beside the spec
    assert spec.params["model_sha256"] == file_sha256(model) == spec.artifacts[0].sha256
