"""Plotly figures for regime models: price coloured by regime, probability ribbon, transition
heatmap, expected durations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from quantlib.errors import DataError

# Calm -> volatile: green, blue, orange, red, then plotly's defaults.
REGIME_COLORS = ("#2ca02c", "#1f77b4", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _color(k: int) -> str:
    return REGIME_COLORS[k % len(REGIME_COLORS)]


def plot_price_regimes(close: pd.Series, regimes: pd.Series, title: str = "Price by regime",
                       log_y: bool = True) -> go.Figure:
    """Close price with each bar's marker coloured by its regime label (NaN labels grey).

    Examples
    --------
    >>> from quantlib.data import synthetic_ohlcv
    >>> m = synthetic_ohlcv(300)
    >>> len(plot_price_regimes(m.ohlcv["close"], m.regimes).data)
    4
    """
    labels = regimes.reindex(close.index)
    fig = go.Figure(go.Scatter(x=close.index, y=close, mode="lines", name="close",
                               line={"color": "lightgrey", "width": 1}))
    for k in sorted(int(v) for v in labels.dropna().unique()):
        mask = (labels == k).to_numpy()
        fig.add_trace(go.Scattergl(x=close.index[mask], y=close[mask], mode="markers",
                                   marker={"color": _color(k), "size": 3}, name=f"regime {k}"))
    fig.update_layout(title=title, yaxis_type="log" if log_y else "linear",
                      legend={"itemsizing": "constant"})
    return fig


def plot_regime_probabilities(proba: pd.DataFrame, title: str = "Filtered regime probabilities"
                              ) -> go.Figure:
    """Stacked ribbon of per-bar regime probabilities (one column per regime, rows sum to 1).

    Examples
    --------
    >>> idx = pd.date_range("2024", periods=3, freq="h", tz="UTC")
    >>> p = pd.DataFrame({"regime_0": [1, 0.5, 0.2], "regime_1": [0, 0.5, 0.8]}, index=idx)
    >>> [t.stackgroup for t in plot_regime_probabilities(p).data]
    ['p', 'p']
    """
    values = proba.to_numpy(dtype=float)
    finite = np.isfinite(values).all(axis=1)
    if finite.any() and not np.allclose(values[finite].sum(axis=1), 1.0, atol=1e-6):
        raise DataError("proba: rows must sum to 1 (one column per regime)")
    fig = go.Figure()
    for k, column in enumerate(proba.columns):
        fig.add_trace(go.Scatter(x=proba.index, y=proba[column], mode="lines", name=str(column),
                                 stackgroup="p", line={"width": 0, "color": _color(k)}))
    fig.update_layout(title=title, yaxis={"range": [0, 1], "title": "probability"})
    return fig


def plot_transition_matrix(transmat: np.ndarray, labels: Sequence[str] | None = None,
                           title: str = "Transition matrix P(next | current)") -> go.Figure:
    """Heatmap of a K x K transition matrix with the probabilities written in the cells.

    Examples
    --------
    >>> fig = plot_transition_matrix(np.array([[0.9, 0.1], [0.2, 0.8]]))
    >>> fig.data[0].z.tolist()
    [[0.9, 0.1], [0.2, 0.8]]
    """
    P = np.asarray(transmat, dtype=float)
    names = list(labels) if labels is not None else [f"regime {k}" for k in range(P.shape[0])]
    fig = go.Figure(go.Heatmap(z=P, x=names, y=names, zmin=0, zmax=1, colorscale="Blues",
                               text=np.round(P, 3), texttemplate="%{text}"))
    fig.update_layout(title=title, xaxis_title="next", yaxis_title="current",
                      yaxis_autorange="reversed")
    return fig


def plot_expected_durations(durations: Sequence[float], bar_hours: float | None = None,
                            title: str = "Expected regime durations") -> go.Figure:
    """Bars (or hours, with ``bar_hours``) expected per visit to each regime: 1 / (1 - P[k, k]).

    Examples
    --------
    >>> plot_expected_durations([10.0, 4.0]).data[0].y.tolist()
    [10.0, 4.0]
    """
    values = np.asarray(durations, dtype=float) * (bar_hours or 1.0)
    names = [f"regime {k}" for k in range(len(values))]
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=[_color(k) for k in range(len(values))],
                           text=np.round(values, 1), textposition="outside"))
    fig.update_layout(title=title, yaxis_title="hours" if bar_hours else "bars")
    return fig


__all__ = ["REGIME_COLORS", "plot_expected_durations", "plot_price_regimes",
           "plot_regime_probabilities", "plot_transition_matrix"]
