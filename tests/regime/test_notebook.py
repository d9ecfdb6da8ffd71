"""notebooks/03_regimes.ipynb runs under papermill and records figures we can recompute."""

from __future__ import annotations

import numpy as np
import pytest

from quantlib.backtest import run_backtest
from quantlib.data import load
from quantlib.regime import regime_features
from tests.support.notebooks import run_notebook


def test_notebook_runs_and_records_consistent_metrics(tmp_path):
    params = {"source": "sample:bars=1600,seed=3", "bic_range": [1, 2, 3], "switching_bars": 500,
              "n_restarts": 1}
    metrics = run_notebook("03_regimes.ipynb", tmp_path / "03.ipynb", params)
    assert metrics["model"] == "hmm" and 1 <= metrics["bic_best_n_regimes"] <= 3
    # Recompute the plain-grid figure independently of the notebook's cells.
    df = load(params["source"])
    X = regime_features(df, ["returns"], 24)
    split = X.index[int(len(X) * 0.5)]
    # the notebook's default range: 0.25 x the training bars' log-return std x sqrt(held-out
    # bars), three significant digits (quantlib.report.defaults)
    train_close = df["close"].loc[:split].iloc[:-1].to_numpy()
    width = 0.25 * np.diff(np.log(train_close)).std(ddof=1) * np.sqrt(len(df.loc[split:]))
    width = float(f"{width:.3g}")
    plain = run_backtest("grid", df.loc[split:], {"n_levels": 10, "lower_pct": width,
                                                  "upper_pct": width})
    assert metrics["plain_grid_return"] == pytest.approx(plain.metrics["total_return"].iloc[0])
