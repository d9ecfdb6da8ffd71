"""Plotly figures for machine-learning signals: importance, calibration, fold metrics."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def plot_gain_importance(table: pd.DataFrame, top: int = 20) -> go.Figure:
    """Horizontal bars of normalised gain importance (mean over folds, fold spread as error).

    ``table`` is :func:`quantlib.ml.explain.gain_importance`'s output.

    Examples
    --------
    >>> t = pd.DataFrame({"fold0": [0.7, 0.3], "fold1": [0.6, 0.4]}, index=["ret_1", "vol_24"])
    >>> plot_gain_importance(t).data[0].orientation
    'h'
    """
    view = table.iloc[:top]
    mean, std = view.mean(axis=1), view.std(axis=1, ddof=0)
    fig = go.Figure(go.Bar(x=mean[::-1], y=list(view.index[::-1]), orientation="h",
                           error_x=dict(type="data", array=std[::-1]), name="gain"))
    fig.update_layout(title="XGBoost gain importance (share of total gain, mean over folds)",
                      height=max(300, 22 * len(view) + 100), margin=dict(l=120, r=20, t=50, b=30))
    return fig


def plot_permutation_importance(table: pd.DataFrame, top: int = 20) -> go.Figure:
    """Horizontal bars of test-fold permutation importance (log-loss increase), fold std as error.

    ``table`` is :func:`quantlib.ml.explain.permutation_importance`'s output.

    Examples
    --------
    >>> t = pd.DataFrame({"mean": [0.01, 0.0], "std": [0.002, 0.001]}, index=["ret_1", "dow_sin"])
    >>> plot_permutation_importance(t).data[0].x[-1]
    np.float64(0.01)
    """
    view = table.iloc[:top]
    fig = go.Figure(go.Bar(x=view["mean"][::-1], y=list(view.index[::-1]), orientation="h",
                           error_x=dict(type="data", array=view["std"][::-1]), name="permutation"))
    fig.update_layout(title="Permutation importance on test folds (increase in log-loss)",
                      height=max(300, 22 * len(view) + 100), margin=dict(l=120, r=20, t=50, b=30))
    return fig


def plot_calibration(table: pd.DataFrame) -> go.Figure:
    """Predicted probability vs realized hit rate (left) and mean realized return (right).

    ``table`` is :func:`quantlib.ml.explain.calibration_table`'s output.

    Examples
    --------
    >>> t = pd.DataFrame({"n": [5, 5], "mean_proba": [0.4, 0.6], "hit_rate": [0.3, 0.7],
    ...                   "mean_return": [-0.01, 0.01]})
    >>> len(plot_calibration(t).data)
    3
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("hit rate vs predicted probability",
                                                        "mean realized return vs probability"))
    fig.add_trace(go.Scatter(x=table["mean_proba"], y=table["hit_rate"], mode="lines+markers",
                             name="hit rate", text=table["n"]), row=1, col=1)
    lo = float(min(table["mean_proba"].min(), table["hit_rate"].min()))
    hi = float(max(table["mean_proba"].max(), table["hit_rate"].max()))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="perfect",
                             line=dict(dash="dash", color="grey")), row=1, col=1)
    fig.add_trace(go.Bar(x=table["mean_proba"], y=table["mean_return"], name="mean return"),
                  row=1, col=2)
    fig.update_xaxes(title_text="predicted P(up)")
    fig.update_layout(title="Calibration on test folds", height=380,
                      margin=dict(l=50, r=20, t=60, b=40))
    return fig


def plot_fold_metrics(folds: pd.DataFrame, metric: str = "auc") -> go.Figure:
    """Grouped bars of one per-fold metric for every model (xgb vs baselines).

    Examples
    --------
    >>> f = pd.DataFrame({"fold": [0, 0], "model": ["xgb", "logreg"], "auc": [0.55, 0.5]})
    >>> [t.name for t in plot_fold_metrics(f).data]
    ['xgb', 'logreg']
    """
    fig = go.Figure()
    for model, group in folds.groupby("model", sort=False):
        fig.add_trace(go.Bar(x=group["fold"].astype(str), y=group[metric], name=model))
    fig.update_layout(barmode="group", title=f"{metric} per walk-forward fold", height=340,
                      xaxis_title="fold", yaxis_title=metric, margin=dict(l=50, r=20, t=50, b=40))
    return fig


__all__ = ["plot_gain_importance", "plot_permutation_importance", "plot_calibration",
           "plot_fold_metrics"]
