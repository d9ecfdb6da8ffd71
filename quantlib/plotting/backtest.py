"""Plotly figures for backtests: equity with drawdown, price with fills, parameter heatmaps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from quantlib.backtest.result import BacktestResult
from quantlib.errors import ParameterError


def _combos(result: BacktestResult, combo: int | Sequence[int] | None) -> list[int]:
    if combo is None:
        combo = list(range(min(result.n_combos, 10)))
    combos = [combo] if isinstance(combo, int | np.integer) else list(combo)
    for c in combos:
        if not 0 <= c < result.n_combos:
            raise ParameterError(f"combo: {c} is out of range; the result has {result.n_combos} "
                                 f"combinations (0..{result.n_combos - 1})")
    return [int(c) for c in combos]


def _label(result: BacktestResult, combo: int) -> str:
    params = ", ".join(f"{k}={v}" for k, v in result.params[combo].items())
    return f"#{combo} {params}" if params else f"#{combo}"


def plot_equity(result: BacktestResult, combo: int | Sequence[int] | None = 0, *,
                benchmark: pd.Series | None = None) -> go.Figure:
    """Equity curve(s) on top, drawdown (percent below the running peak) underneath.

    Parameters
    ----------
    result : a backtest result.
    combo : one combination, several, or None for the first ten.
    benchmark : optional price series drawn as buy-and-hold from the same starting cash.

    Examples
    --------
    >>> from quantlib.backtest import run_backtest
    >>> from quantlib.data import load
    >>> fig = plot_equity(run_backtest("ma_cross", load("sample:bars=300"), {"fast": 5, "slow": 20}))
    >>> [t.name for t in fig.data][:2]
    ['#0 fast=5, slow=20', '#0 drawdown']
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                        vertical_spacing=0.04)
    for c in _combos(result, combo):
        equity = result.equity[c]
        drawdown = equity / equity.cummax() - 1.0
        fig.add_trace(go.Scatter(x=equity.index, y=equity, name=_label(result, c),
                                 legendgroup=str(c)), row=1, col=1)
        fig.add_trace(go.Scatter(x=drawdown.index, y=100 * drawdown, name=f"#{c} drawdown",
                                 legendgroup=str(c), fill="tozeroy", showlegend=False),
                      row=2, col=1)
    if benchmark is not None:
        hold = result.config.init_cash * benchmark / benchmark.iloc[0]
        fig.add_trace(go.Scatter(x=hold.index, y=hold, name="buy & hold",
                                 line=dict(color="grey", dash="dot")), row=1, col=1)
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)
    fig.update_layout(title=f"Equity and drawdown: {result.kind}", height=560,
                      margin=dict(l=50, r=20, t=50, b=30))
    return fig


def plot_trades(result: BacktestResult, data: pd.DataFrame, combo: int = 0, *,
                symbol: str | None = None, max_bars: int = 5000) -> go.Figure:
    """Close price with every fill of one combination (buys ▲ green, sells ▼ red).

    Examples
    --------
    >>> from quantlib.backtest import run_backtest
    >>> from quantlib.data import load
    >>> df = load("sample:bars=300")
    >>> fig = plot_trades(run_backtest("ma_cross", df, {"fast": 5, "slow": 20}), df)
    >>> fig.data[0].name
    'close'
    """
    (c,) = _combos(result, combo)
    fills = result.fills_of(c)
    if symbol is not None and "symbol" in fills:
        fills = fills[fills["symbol"] == symbol]
    view = data.iloc[-max_bars:]
    fills = fills[fills["time"] >= view.index[0]]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=view.index, y=view["close"], name="close",
                             line=dict(color="rgba(60,60,60,0.8)", width=1)))
    for side, name, color, marker in ((1, "buy", "seagreen", "triangle-up"),
                                      (-1, "sell", "crimson", "triangle-down")):
        part = fills[fills["side"] == side]
        fig.add_trace(go.Scatter(
            x=part["time"], y=part["price"], mode="markers", name=name,
            marker=dict(color=color, symbol=marker, size=9),
            hovertemplate="%{x}<br>price %{y:.2f}<br>size %{customdata:.6g}<extra>" + name
            + "</extra>", customdata=part["size"]))
    fig.update_layout(title=f"Fills: {result.kind} {_label(result, c)}", height=460,
                      yaxis_title="price", margin=dict(l=50, r=20, t=50, b=30))
    return fig


def plot_param_heatmap(result: BacktestResult | pd.DataFrame, x: str, y: str,
                       metric: str = "sharpe", *, agg: str = "max") -> go.Figure:
    """Heatmap of ``metric`` over two parameters (other parameters aggregated with ``agg``).

    Parameters
    ----------
    result : a result, or a table with parameter and metric columns (``result.table()``).
    x, y : parameter names for the axes.
    metric : any metric column (``sharpe``, ``total_return``, ``max_drawdown``...).
    agg : how to combine combinations sharing (x, y): ``max``, ``mean``, ``median`` or ``min``.

    Examples
    --------
    >>> table = pd.DataFrame({"fast": [5, 5, 10, 10], "slow": [20, 40, 20, 40],
    ...                       "sharpe": [0.1, 0.3, -0.2, 0.5]})
    >>> plot_param_heatmap(table, "fast", "slow").data[0].z.tolist()
    [[0.1, -0.2], [0.3, 0.5]]
    """
    table = result.table() if isinstance(result, BacktestResult) else result
    for name, what in ((x, "parameter"), (y, "parameter"), (metric, "metric")):
        if name not in table.columns:
            raise ParameterError(f"{what} {name!r} is not a column; available: {list(table.columns)}")
    if agg not in ("max", "mean", "median", "min"):
        raise ParameterError(f"agg: expected 'max', 'mean', 'median' or 'min', got {agg!r}")
    grid = table.pivot_table(index=y, columns=x, values=metric, aggfunc=agg)
    z = grid.to_numpy(dtype=float)
    z = np.where(np.isfinite(z), z, np.nan)  # inf (e.g. profit factor without losses) breaks scales
    fig = go.Figure(go.Heatmap(z=z, x=[str(v) for v in grid.columns],
                               y=[str(v) for v in grid.index], colorscale="RdYlGn",
                               colorbar=dict(title=metric),
                               hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{metric}=%{{z:.4g}}"
                               "<extra></extra>"))
    fig.update_layout(title=f"{metric} by {x} and {y} ({agg} over other parameters)",
                      xaxis_title=x, yaxis_title=y, height=480)
    return fig


__all__ = ["plot_equity", "plot_trades", "plot_param_heatmap"]
