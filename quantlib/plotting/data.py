"""Plotly figures for market data: candlesticks, return distributions, rolling volatility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from quantlib.core.timeframes import bars_per_year


def _title(df: pd.DataFrame, what: str) -> str:
    attrs = df.attrs
    label = f"{attrs.get('exchange', '')} {attrs.get('symbol', '')} {attrs.get('timeframe', '')}"
    synthetic = " (SYNTHETIC)" if attrs.get("source") == "synthetic" else ""
    return f"{what}: {label.strip()}{synthetic}"


def plot_candles(df: pd.DataFrame, *, max_bars: int = 2000, volume: bool = True) -> go.Figure:
    """Candlestick chart with volume, showing the last ``max_bars`` bars (browsers stay fast).

    Examples
    --------
    >>> from quantlib.data import load
    >>> fig = plot_candles(load("sample:bars=100"))
    >>> fig.data[0].type
    'candlestick'
    """
    view = df.iloc[-max_bars:]
    fig = make_subplots(rows=2 if volume else 1, cols=1, shared_xaxes=True,
                        row_heights=[0.75, 0.25] if volume else [1.0], vertical_spacing=0.03)
    fig.add_trace(go.Candlestick(x=view.index, open=view["open"], high=view["high"],
                                 low=view["low"], close=view["close"], name="price"), row=1, col=1)
    if volume:
        fig.add_trace(go.Bar(x=view.index, y=view["volume"], name="volume",
                             marker_color="rgba(100,110,200,0.5)"), row=2, col=1)
    fig.update_layout(title=_title(df, "Price"), xaxis_rangeslider_visible=False, height=520,
                      showlegend=False, margin=dict(l=40, r=20, t=50, b=30))
    return fig


def plot_returns_distribution(df: pd.DataFrame, *, bins: int = 120) -> go.Figure:
    """Histogram of log returns against a normal density with the same mean and std.

    Fat tails show up as mass beyond the normal curve.
    """
    log_ret = np.log(df["close"]).diff().dropna()
    mu, sigma = float(log_ret.mean()), float(log_ret.std())
    grid = np.linspace(log_ret.min(), log_ret.max(), 300)
    density = np.exp(-0.5 * ((grid - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=log_ret, nbinsx=bins, histnorm="probability density",
                               name="log returns", marker_color="steelblue", opacity=0.75))
    fig.add_trace(go.Scatter(x=grid, y=density, name="normal fit", line=dict(color="crimson")))
    fig.update_layout(title=_title(df, "Log-return distribution"), height=380,
                      xaxis_title="log return per bar", yaxis_title="density")
    return fig


def plot_volatility(df: pd.DataFrame, *, window: int = 24 * 7, year_days: float = 365.0) -> go.Figure:
    """Rolling annualised volatility of log returns (trailing window, causal)."""
    timeframe = df.attrs.get("timeframe", "1h")
    log_ret = np.log(df["close"]).diff()
    vol = log_ret.rolling(window).std() * np.sqrt(bars_per_year(timeframe, year_days))
    fig = go.Figure(go.Scatter(x=vol.index, y=vol, name=f"{window}-bar vol", line=dict(width=1)))
    fig.update_layout(title=_title(df, f"Rolling annualised volatility ({window} bars)"),
                      height=320, yaxis_tickformat=".0%")
    return fig


def return_stats(df: pd.DataFrame, *, year_days: float = 365.0) -> pd.Series:
    """Summary statistics of log returns: mean, annualised vol, skew, excess kurtosis, extremes."""
    timeframe = df.attrs.get("timeframe", "1h")
    log_ret = np.log(df["close"]).diff().dropna()
    return pd.Series({
        "bars": len(df),
        "mean_log_return": log_ret.mean(),
        "annualised_vol": log_ret.std() * np.sqrt(bars_per_year(timeframe, year_days)),
        "skew": log_ret.skew(),
        "excess_kurtosis": log_ret.kurt(),
        "worst_bar": log_ret.min(),
        "best_bar": log_ret.max(),
    })


__all__ = ["plot_candles", "plot_returns_distribution", "plot_volatility", "return_stats"]
