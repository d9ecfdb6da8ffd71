"""One combination of a backtest as a tearsheet: a set of plotly figures and the drawdown table.

Every number comes from :mod:`quantlib.backtest.tearsheet_stats` and the shared metrics; this
module only draws. Long series are decimated for display only (the statistics use every bar).
Each figure carries ``layout.meta = {"tearsheet": NAME}`` so a report (and the browser test)
can tell the tearsheet's charts apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from quantlib.backtest import tearsheet_stats as ts
from quantlib.backtest.benchmark import benchmark_values
from quantlib.backtest.metrics import timeframe_seconds
from quantlib.backtest.result import BacktestResult
from quantlib.errors import ParameterError

CHART_NAMES: tuple[str, ...] = ("cumulative", "underwater", "drawdowns", "monthly", "yearly",
                                "rolling", "distribution", "trades", "exposure")
_STRATEGY, _BENCH = "#1f77b4", "#7f7f7f"


@dataclass
class Tearsheet:
    """The figures of :func:`tearsheet` (keyed by :data:`CHART_NAMES`) and the drawdown table."""

    figures: dict[str, go.Figure]
    drawdowns: pd.DataFrame
    var: float
    cvar: float
    metrics: dict[str, float] = field(default_factory=dict)

    def show(self) -> None:
        """Display every figure in order (in a notebook: one output per chart)."""
        for figure in self.figures.values():
            figure.show()


def decimate(series: pd.Series, max_points: int) -> pd.Series:
    """At most ``max_points`` points of ``series`` for drawing: each bucket keeps its first, min
    and max points so spikes and drawdown valleys survive. Display only.

    Examples
    --------
    >>> s = pd.Series(np.sin(np.arange(10_000) / 50.0))
    >>> d = decimate(s, 600)
    >>> len(d) <= 600, d.min() == s.min(), d.max() == s.max()
    (True, True, True)
    """
    if len(series) <= max_points:
        return series
    n_buckets = max(1, max_points // 3)
    values = series.to_numpy(dtype=np.float64)
    edges = np.linspace(0, len(values), n_buckets + 1).astype(np.int64)
    keep = set()
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi > lo:
            chunk = values[lo:hi]
            keep.update((lo, lo + int(np.argmin(chunk)), lo + int(np.argmax(chunk))))
    keep.add(len(values) - 1)
    return series.iloc[sorted(keep)]


def _x(index: pd.Index) -> np.ndarray:
    # Plotly converts a tz-aware index element by element (~0.2 s per 2,000 points); naive
    # datetime64 in UTC draws the same axis at a tenth of the cost.
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        return index.tz_convert("UTC").tz_localize(None).to_numpy()
    return np.asarray(index)


def _window(index: pd.Index, timeframe: str | None) -> int:
    # About 30 days of bars, but at most a quarter of the series so short samples still show
    # a curve.
    seconds = timeframe_seconds(timeframe) if timeframe else float(
        pd.Series(index[1:] - index[:-1]).median().total_seconds())
    return int(max(2, min(round(30 * 86400 / seconds), len(index) // 4)))


def _meta(fig: go.Figure, name: str, title: str) -> go.Figure:
    fig.update_layout(title=title, meta={"tearsheet": name},
                      margin=dict(l=50, r=20, t=50, b=40), height=380)
    return fig


def _cumulative(equity: pd.Series, bench: pd.Series | None, base: float, log: bool,
                max_points: int) -> go.Figure:
    fig = go.Figure()
    growth = decimate(equity / base, max_points)
    y = growth if log else 100 * (growth - 1)
    fig.add_trace(go.Scatter(x=_x(y.index), y=y, name="strategy", line=dict(color=_STRATEGY)))
    if bench is not None:
        b = decimate(bench, max_points)
        fig.add_trace(go.Scatter(x=_x(b.index), y=b if log else 100 * (b - 1), name="buy & hold",
                                 line=dict(color=_BENCH, dash="dot")))
    fig.update_yaxes(type="log", title="growth of 1") if log else fig.update_yaxes(
        title="cumulative return %")
    return _meta(fig, "cumulative", "Cumulative return vs benchmark")


def _underwater(equity: pd.Series, table: pd.DataFrame, max_points: int) -> go.Figure:
    dd = decimate(ts.underwater(equity), max_points)
    fig = go.Figure(go.Scatter(x=_x(dd.index), y=100 * dd, fill="tozeroy", name="drawdown",
                               line=dict(color="#d62728")))
    for rank, row in table.iterrows():
        end = row["recovery"] if pd.notna(row["recovery"]) else equity.index[-1]
        x0, x1, valley = _x(pd.DatetimeIndex([row["start"], end, row["valley"]]))
        fig.add_vrect(x0=x0, x1=x1, fillcolor="#d62728", opacity=0.08, line_width=0)
        fig.add_annotation(x=valley, y=100 * row["depth"], text=f"{rank + 1}",
                           showarrow=True, arrowhead=2)
    fig.update_yaxes(title="drawdown %")
    return _meta(fig, "underwater", "Underwater curve (five worst drawdowns marked)")


def _drawdown_figure(table: pd.DataFrame) -> go.Figure:
    def day(value: Any) -> str:
        return "not recovered" if pd.isna(value) else str(pd.Timestamp(value).date())

    cells = [
        [str(i + 1) for i in range(len(table))],
        [day(v) for v in table["start"]], [day(v) for v in table["valley"]],
        [day(v) for v in table["recovery"]], [f"{100 * v:.1f} %" for v in table["depth"]],
        [f"{v:.0f}" for v in table["days"]],
    ]
    fig = go.Figure(go.Table(header=dict(values=["#", "peak", "valley", "recovered", "depth",
                                                 "days"]), cells=dict(values=cells)))
    fig = _meta(fig, "drawdowns", "Worst drawdowns")
    fig.update_layout(height=80 + 30 * max(len(table), 1))
    return fig


def _monthly(returns: pd.Series) -> go.Figure:
    table = ts.monthly_returns(returns)
    z = 100 * table.to_numpy()
    text = np.where(np.isnan(z), "", np.vectorize(lambda v: f"{v:.1f}")(np.nan_to_num(z)))
    limit = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(go.Heatmap(
        z=z, x=["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                "Dec"], y=[str(y) for y in table.index], text=text, texttemplate="%{text}",
        colorscale="RdYlGn", zmid=0, zmin=-limit, zmax=limit, colorbar=dict(title="%")))
    fig.update_yaxes(autorange="reversed", type="category")
    return _meta(fig, "monthly", "Monthly returns %")


def _yearly(returns: pd.Series, bench_returns: pd.Series | None) -> go.Figure:
    years = ts.yearly_returns(returns)
    fig = go.Figure(go.Bar(x=[str(y) for y in years.index], y=100 * years, name="strategy",
                           marker_color=_STRATEGY))
    if bench_returns is not None:
        b = ts.yearly_returns(bench_returns)
        fig.add_trace(go.Bar(x=[str(y) for y in b.index], y=100 * b, name="buy & hold",
                             marker_color=_BENCH))
    fig.update_yaxes(title="return %")
    return _meta(fig, "yearly", "Yearly returns")


def _rolling(returns: pd.Series, bench_returns: pd.Series | None, window: int, periods: float,
             max_points: int) -> go.Figure:
    stats = ts.rolling_stats(returns, window, periods, bench_returns)
    rows = list(stats.columns)
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.05,
                        subplot_titles=[f"rolling {c} ({window} bars)" for c in rows])
    for i, column in enumerate(rows, start=1):
        series = decimate(stats[column].dropna(), max_points)
        fig.add_trace(go.Scatter(x=_x(series.index), y=series, name=column, showlegend=False),
                      row=i, col=1)
    fig = _meta(fig, "rolling", "Rolling statistics")
    fig.update_layout(height=220 * len(rows))
    return fig


def _distribution(returns: pd.Series, var: float, cvar: float, level: float) -> go.Figure:
    fig = go.Figure(go.Histogram(x=100 * returns.to_numpy(), nbinsx=100, name="bar returns",
                                 marker_color=_STRATEGY))
    for value, label, colour in ((var, "VaR", "#ff7f0e"), (cvar, "CVaR", "#d62728")):
        if np.isfinite(value):
            fig.add_vline(x=100 * value, line=dict(color=colour, dash="dash"),
                          annotation_text=f"{label} {level:.0%}: {100 * value:.2f} %")
    fig.update_xaxes(title="bar return %")
    return _meta(fig, "distribution", "Return distribution")


def _trades(stats: pd.DataFrame) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=["trade P&L (quote)",
                                                        "trade duration (hours)"])
    fig.add_trace(go.Histogram(x=stats["pnl"], nbinsx=40, name="P&L"), row=1, col=1)
    fig.add_trace(go.Histogram(x=stats["duration_hours"], nbinsx=40, name="duration"),
                  row=1, col=2)
    fig.update_layout(showlegend=False)
    title = f"Closed trades ({len(stats)})" if len(stats) else "Closed trades (none)"
    return _meta(fig, "trades", title)


def _exposure(exposure: pd.Series, max_points: int) -> go.Figure:
    shown = decimate(exposure, max_points)
    fig = go.Figure(go.Scatter(x=_x(shown.index), y=100 * shown, fill="tozeroy", name="exposure",
                               line=dict(shape="hv")))
    fig.update_yaxes(title="% of equity")
    return _meta(fig, "exposure", "Exposure over time")


def _periods_per_year(index: pd.Index, timeframe: str | None, year_days: float) -> float:
    seconds = timeframe_seconds(timeframe) if timeframe else float(
        pd.Series(index[1:] - index[:-1]).median().total_seconds())
    return year_days * 86400.0 / seconds


def _benchmark_parts(benchmark: Any, index: pd.Index) -> tuple[pd.Series | None, pd.Series | None,
                                                               pd.Series | None]:
    """(benchmark growth of 1, its bar returns, traded prices for the exposure) on ``index``."""
    if benchmark is None:
        return None, None, None
    growth = pd.Series(benchmark_values(benchmark, index), index=index)
    prices = None
    if isinstance(benchmark, pd.DataFrame) and "close" in benchmark.columns:
        prices = benchmark["close"]
    elif isinstance(benchmark, pd.Series):
        prices = benchmark
    return growth, ts.bar_returns(growth, 1.0), prices


def tearsheet(result: BacktestResult | pd.Series, combo: int = 0, benchmark: Any = None, *,
              log: bool = False, max_points: int = 2000, window: int | None = None,
              level: float = 0.95, init_cash: float | None = None,
              timeframe: str | None = None) -> Tearsheet:
    """The tearsheet of one combination of ``result``.

    Parameters
    ----------
    result : a backtest result, or an equity Series (e.g. a walk-forward's stitched
        out-of-sample equity; it has no trades or positions, so the ``trades`` and ``exposure``
        charts are left out).
    combo : the combination to show.
    benchmark : prices to hold as the benchmark: the traded OHLCV frame (its close; also used to
        value the position for the exposure chart), a Series, or a data source string. None: no
        benchmark lines and exposure shown as held / flat.
    log : cumulative chart on a log scale (growth of 1).
    max_points : points drawn per line (display only).
    window : rolling window in bars (default about 30 days).
    level : VaR / CVaR confidence level.
    init_cash, timeframe : for an equity Series: the cash before its first bar (default: its
        first value) and the bar timeframe (default: inferred from the index).

    Examples
    --------
    >>> from quantlib.backtest import run_backtest
    >>> from quantlib.data import load
    >>> df = load("sample:bars=600")
    >>> sheet = tearsheet(run_backtest("ma_cross", df, {"fast": 5, "slow": 20}), 0, benchmark=df)
    >>> sorted(sheet.figures) == sorted(CHART_NAMES)
    True
    """
    if not (isinstance(max_points, int) and max_points >= 10):
        raise ParameterError(f"max_points: expected an integer >= 10, got {max_points!r}")
    if isinstance(result, pd.Series):
        equity, trades, position = result.astype(np.float64), None, None
        base = float(init_cash) if init_cash is not None else float(equity.iloc[0])
        year_days, metrics, single_symbol = 365.0, {}, True
    elif isinstance(result, BacktestResult):
        if isinstance(combo, bool) or not isinstance(combo, int | np.integer) or not (
                0 <= combo < result.n_combos):
            raise ParameterError(f"combo: expected 0..{result.n_combos - 1}, got {combo!r}")
        combo = int(combo)
        equity, trades = result.equity[combo], ts.trade_stats(result.trades, combo)
        position = result.positions[combo] if result.positions is not None else pd.Series(
            np.zeros(len(equity)), index=equity.index)
        base, year_days = float(result.config.init_cash), result.config.year_days
        timeframe = timeframe or result.config.timeframe
        metrics = {k: float(v) for k, v in result.metrics.iloc[combo].items()}
        single_symbol = len(result.extras.get("symbols", [None])) <= 1
    else:
        raise ParameterError(f"result: expected a BacktestResult or an equity Series, got "
                             f"{type(result).__name__}")
    if len(equity) < 3:
        raise ParameterError(f"result: a tearsheet needs at least 3 bars, got {len(equity)}")
    timeframe = timeframe or (getattr(benchmark, "attrs", {}) or {}).get("timeframe")
    periods = _periods_per_year(equity.index, timeframe, year_days)
    returns = ts.bar_returns(equity, base)
    bench, bench_returns, prices = _benchmark_parts(benchmark, equity.index)
    win = window if window is not None else _window(equity.index, timeframe)
    table = ts.drawdown_table(equity, top=5)
    var, cvar = ts.var_cvar(returns, level)
    figures = {
        "cumulative": _cumulative(equity, bench, base, log, max_points),
        "underwater": _underwater(equity, table, max_points),
        "drawdowns": _drawdown_figure(table),
        "monthly": _monthly(returns),
        "yearly": _yearly(returns, bench_returns),
        "rolling": _rolling(returns, bench_returns, win, periods, max_points),
        "distribution": _distribution(returns, var, cvar, level),
    }
    if trades is not None:
        figures["trades"] = _trades(trades)
        exposure = ts.exposure_series(position, equity, prices if single_symbol else None)
        figures["exposure"] = _exposure(exposure, max_points)
    return Tearsheet(figures=figures, drawdowns=table, var=var, cvar=cvar, metrics=metrics)


__all__ = ["tearsheet", "Tearsheet", "decimate", "CHART_NAMES"]
