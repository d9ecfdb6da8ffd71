"""Plotly figures for the grid engine: grid levels and fills over price, inventory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from quantlib.backtest.grid import level_history
from quantlib.backtest.result import BacktestResult
from quantlib.errors import ParameterError

_FILL_STYLE = {  # (side, stop-out?) -> name, marker symbol, colour
    (1, False): ("buy", "triangle-up", "#2ca02c"),
    (-1, False): ("sell", "triangle-down", "#d62728"),
    (-1, True): ("stop-out", "x", "#000000"),
}


def _step_points(index: pd.Index, values: np.ndarray) -> tuple[pd.Index, np.ndarray]:
    """The points where a piecewise-constant series changes (and its last bar): drawn with
    ``line_shape="hv"`` they give the very same line as every bar, in far fewer points (a
    grid level changes a few times, not at every bar; the report stores each point as text).

    Examples
    --------
    >>> idx = pd.date_range("2024-01-01", periods=6, freq="1h", tz="UTC")
    >>> x, y = _step_points(idx, np.array([1.0, 1.0, np.nan, np.nan, 2.0, 2.0]))
    >>> [t.hour for t in x], y.tolist()
    ([0, 2, 4, 5], [1.0, nan, 2.0, 2.0])
    """
    if len(values) == 0:
        return index, values
    same = (values[1:] == values[:-1]) | (np.isnan(values[1:]) & np.isnan(values[:-1]))
    keep = np.r_[True, ~same]
    keep[-1] = True
    return index[keep], values[keep]


def plot_grid_fills(data: pd.DataFrame, result: BacktestResult, combo: int = 0, *,
                    max_bars: int = 5000, active: np.ndarray | None = None) -> go.Figure:
    """Close price with the grid levels in force and the fills of one combination, inventory below.

    Parameters
    ----------
    data : the OHLCV frame the grid was run on.
    result : a ``grid`` result from :func:`quantlib.backtest.grid.run_grid`.
    combo : which combination to draw.
    max_bars : draw only the last ``max_bars`` bars (fills and levels are cut the same way).
    active : the ``active`` mask the run used, if any (needed to redraw its levels exactly).

    Examples
    --------
    >>> from quantlib.data import load
    >>> from quantlib.backtest.grid import run_grid
    >>> df = load("sample:bars=300")
    >>> fig = plot_grid_fills(df, run_grid(df, [{"n_levels": 6}]))
    >>> sum(1 for tr in fig.data if tr.name.startswith("level"))
    6
    """
    if result.kind != "grid":
        raise ParameterError(f"result: expected a 'grid' backtest result, got kind {result.kind!r}")
    if not 0 <= combo < result.n_combos:
        raise ParameterError(f"combo: {combo} is out of range (0..{result.n_combos - 1})")
    if len(data) != len(result.equity):
        raise ParameterError(f"data: {len(data)} bars but the result has {len(result.equity)}")
    levels = level_history(data, result.params[combo], result.config, active=active)
    start = max(0, len(data) - max_bars)
    view = data.iloc[start:]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25],
                        vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=view.index, y=view["close"], name="close",
                             line=dict(color="#1f77b4", width=1)), row=1, col=1)
    for name in levels.columns:
        x, y = _step_points(view.index, levels[name].to_numpy(dtype=np.float64)[start:])
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines", line_shape="hv",
                                 line=dict(color="#999999", width=0.7, dash="dot"),
                                 showlegend=False, hoverinfo="skip"), row=1, col=1)
    fills = result.fills_of(combo)
    fills = fills[fills["bar"] >= start]
    for (side, stop), (name, symbol, colour) in _FILL_STYLE.items():
        part = fills[(fills["side"] == side) & ((fills["level"] < 0) == stop)]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["time"], y=part["price"], mode="markers", name=name,
            marker=dict(symbol=symbol, size=8, color=colour), customdata=part["size"],
            hovertemplate=f"{name} %{{y:.4g}}<br>size %{{customdata:.6g}}<extra></extra>"),
            row=1, col=1)
    fig.add_trace(go.Scatter(x=view.index, y=result.positions[combo].iloc[start:],
                             name="inventory", line=dict(color="#9467bd", width=1),
                             fill="tozeroy"), row=2, col=1)
    spacing = result.params[combo].get("spacing", "")
    fig.update_layout(title=f"Grid ({spacing}) levels and fills, combo #{combo}", height=560,
                      margin=dict(l=50, r=20, t=50, b=30))
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="inventory", row=2, col=1)
    return fig


def plot_grid_equity(result: BacktestResult, labels: list[str] | None = None) -> go.Figure:
    """Equity of every combination of a grid result on one chart (e.g. spacing modes or fill
    models side by side); default labels: the spacing, marked "(touch)" under that fill model.

    Examples
    --------
    >>> from quantlib.data import load
    >>> from quantlib.backtest.grid import run_grid
    >>> res = run_grid(load("sample:bars=200"), [{"spacing": "arithmetic"}, {"spacing": "geometric"}])
    >>> len(plot_grid_equity(res).data)
    2
    """
    labels = labels or [p.get("spacing", str(k))
                        + (" (touch)" if p.get("fill_model") == "touch" else "")
                        for k, p in enumerate(result.params)]
    if len(labels) != result.n_combos:
        raise ParameterError(f"labels: expected {result.n_combos} labels, got {len(labels)}")
    fig = go.Figure()
    for k, label in enumerate(labels):
        fig.add_trace(go.Scatter(x=result.equity.index, y=result.equity[k], name=label,
                                 line=dict(width=1)))
    fig.update_layout(title="Grid equity by combination", yaxis_title="equity", height=420)
    return fig


__all__ = ["plot_grid_fills", "plot_grid_equity"]
