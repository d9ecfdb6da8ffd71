"""Plotly figures for optimization: sweep heatmaps/surfaces, optuna views, PBO, walk-forward.

optuna's own ``optuna.visualization`` functions already return plotly figures; the wrappers here
only pick the target (objective index / metric name) so notebooks stay one-liners.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from quantlib.errors import ParameterError


def _pivot(table: pd.DataFrame, x: str, y: str, metric: str, agg: str) -> pd.DataFrame:
    for col in (x, y, metric):
        if col not in table.columns:
            raise ParameterError(f"column {col!r} is not in the sweep table; expected one of "
                                 f"{[c for c in table.columns if c != 'params']}")
    return table.pivot_table(index=y, columns=x, values=metric, aggfunc=agg)


def plot_sweep_heatmap(sweep_result, x: str, y: str, metric: str | None = None,
                       agg: str = "max") -> go.Figure:
    """Heatmap of ``metric`` over two swept parameters (other parameters aggregated by ``agg``).

    Examples
    --------
    >>> t = pd.DataFrame({"fast": [5, 5, 10, 10], "slow": [20, 40, 20, 40],
    ...                   "sharpe": [0.1, 0.3, -0.2, 0.5]})
    >>> fig = plot_sweep_heatmap(t, "fast", "slow", "sharpe")
    >>> fig.data[0].z.tolist()
    [[0.1, -0.2], [0.3, 0.5]]
    """
    table = getattr(sweep_result, "table", sweep_result)
    metric = metric or getattr(sweep_result, "objective", "sharpe")
    grid = _pivot(table, x, y, metric, agg)
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(), x=grid.columns.tolist(), y=grid.index.tolist(),
                               colorscale="RdYlGn", colorbar={"title": metric}))
    fig.update_layout(title=f"{metric} by {x} and {y}", xaxis_title=x, yaxis_title=y)
    return fig


def plot_sweep_surface(sweep_result, x: str, y: str, metric: str | None = None,
                       agg: str = "max") -> go.Figure:
    """3-D surface of ``metric`` over two swept parameters."""
    table = getattr(sweep_result, "table", sweep_result)
    metric = metric or getattr(sweep_result, "objective", "sharpe")
    grid = _pivot(table, x, y, metric, agg)
    fig = go.Figure(go.Surface(z=grid.to_numpy(), x=grid.columns.tolist(), y=grid.index.tolist(),
                               colorscale="RdYlGn"))
    fig.update_layout(title=f"{metric} surface", scene={"xaxis_title": x, "yaxis_title": y,
                                                         "zaxis_title": metric})
    return fig


def _study(result):
    return getattr(result, "study", result)


def _target(result, objective: int):
    study = _study(result)
    if len(study.directions) == 1:
        return None, None
    names = list(getattr(result, "objectives", [])) or [f"objective {i}" for i in
                                                         range(len(study.directions))]
    return (lambda t: t.values[objective]), names[objective]


def plot_optimization_history(result, objective: int = 0) -> go.Figure:
    """optuna's optimization history (objective per trial and best so far)."""
    from optuna.visualization import plot_optimization_history as _plot

    target, name = _target(result, objective)
    return _plot(_study(result), target=target, target_name=name or "Objective Value")


def plot_param_importances(result, objective: int = 0) -> go.Figure:
    """optuna's parameter importances (fANOVA by default) for one objective."""
    from optuna.visualization import plot_param_importances as _plot

    target, name = _target(result, objective)
    return _plot(_study(result), target=target, target_name=name or "Objective Value")


def plot_parallel_coordinates(result, objective: int = 0) -> go.Figure:
    """optuna's parallel-coordinate view of parameters against the objective."""
    from optuna.visualization import plot_parallel_coordinate as _plot

    target, name = _target(result, objective)
    return _plot(_study(result), target=target, target_name=name or "Objective Value")


def plot_pareto_front(result) -> go.Figure:
    """optuna's Pareto front of a multi-objective study."""
    from optuna.visualization import plot_pareto_front as _plot

    names = list(getattr(result, "objectives", [])) or None
    return _plot(_study(result), target_names=names)


def _pbo(result):
    report = getattr(result, "report", result)
    pbo = getattr(report, "pbo_result", report)
    if pbo is None or not hasattr(pbo, "logits"):
        raise ParameterError("expected a PBOResult, an OverfittingReport or a sweep/study result "
                             "with a PBO (at least 2 trials)")
    return pbo


def plot_pbo_logits(result, nbins: int = 40) -> go.Figure:
    """Histogram of CSCV logits; mass left of 0 is the probability of backtest overfitting.

    Examples
    --------
    >>> from quantlib.optimize.stats import probability_of_backtest_overfitting
    >>> res = probability_of_backtest_overfitting(np.random.default_rng(0).normal(size=(200, 8)),
    ...                                           n_splits=4)
    >>> fig = plot_pbo_logits(res)
    >>> len(fig.data[0].x) == len(res.logits)
    True
    """
    pbo = _pbo(result)
    fig = go.Figure(go.Histogram(x=pbo.logits, nbinsx=nbins, name="logit"))
    fig.add_vline(x=0.0, line_dash="dash", line_color="red")
    fig.update_layout(title=f"CSCV logits (PBO = {pbo.pbo:.2f}, {len(pbo.logits)} combinations)",
                      xaxis_title="logit of the IS-best trial's OOS relative rank",
                      yaxis_title="combinations")
    return fig


def plot_is_vs_oos(result) -> go.Figure:
    """In-sample vs out-of-sample performance: CSCV combinations or walk-forward splits."""
    splits = getattr(result, "splits", None)
    if splits is not None:
        x, y = splits["is_value"].to_numpy(), splits["oos_value"].to_numpy()
        text = [f"split {i}" for i in splits.index]
        title = f"walk-forward: IS vs OOS {getattr(result, 'objective', '')}"
    else:
        pbo = _pbo(result)
        x, y, text = pbo.is_performance, pbo.oos_performance, None
        title = "CSCV: Sharpe (per bar) of the IS-best trial, in vs out of sample"
    fig = go.Figure(go.Scatter(x=x, y=y, mode="markers", text=text, name="IS vs OOS"))
    finite = np.isfinite(x) & np.isfinite(y)
    if finite.sum() >= 2 and np.ptp(x[finite]) > 0:
        slope, intercept = np.polyfit(x[finite], y[finite], 1)
        xs = np.linspace(x[finite].min(), x[finite].max(), 2)
        fig.add_trace(go.Scatter(x=xs, y=slope * xs + intercept, mode="lines",
                                 name=f"fit (slope {slope:.2f})"))
    fig.update_layout(title=title, xaxis_title="in-sample", yaxis_title="out-of-sample")
    return fig


def plot_walk_forward(result) -> go.Figure:
    """Stitched OOS equity with a marker line at every split's test start."""
    fig = go.Figure(go.Scatter(x=result.oos_equity.index, y=result.oos_equity.to_numpy(),
                               mode="lines", name="OOS equity"))
    for i, row in result.splits.iterrows():
        fig.add_vline(x=row["test_start"], line_dash="dot", line_color="grey")
        label = ", ".join(f"{n}={row[f'param_{n}']}" for n in result.param_names)
        fig.add_annotation(x=row["test_start"], y=1.0, yref="paper", text=f"#{i} {label}",
                           showarrow=False, textangle=-90, xanchor="left", font={"size": 9})
    fig.update_layout(title=f"walk-forward OOS equity ({len(result.splits)} splits, "
                            f"efficiency {result.efficiency:.2f})",
                      xaxis_title="time", yaxis_title="equity")
    return fig


__all__ = ["plot_sweep_heatmap", "plot_sweep_surface", "plot_optimization_history",
           "plot_param_importances", "plot_parallel_coordinates", "plot_pareto_front",
           "plot_pbo_logits", "plot_is_vs_oos", "plot_walk_forward"]
