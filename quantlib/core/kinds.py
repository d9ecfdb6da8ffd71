"""Built-in signal kinds: ``ma_cross``, ``ema_cross``, ``rsi_reversion``, ``bollinger_reversion``,
``donchian_breakout`` and ``macd``. Importing this module registers them.

Every signal is a *level* (target position held while a condition is true), computed from
finite-window indicators (:mod:`quantlib.core.indicators_nb`) on :class:`~quantlib.core.bars.
Bars` (numpy arrays, no pandas: the live runner's process never loads it): the target at bar
``t`` depends only on rows ``t - warmup .. t``. Exponential filters (EMA, Wilder RSI, MACD) are
truncated to ``EMA_MEMORY`` spans (``alpha = 2 / (span + 1)``; Wilder: ``alpha = 1 / window``) and
renormalised; the truncated weight is ``~exp(-2 * EMA_MEMORY)`` (0.03 % for the default 4).
Targets are ``+1`` long, ``-1`` short, ``0`` flat; the engine's ``direction`` decides whether
shorts are taken (long-only turns ``-1`` into flat).

Examples
--------
>>> from quantlib.data import load
>>> from quantlib.core import get_kind
>>> kind = get_kind("ma_cross")
>>> target = kind.signals(load("sample:bars=300"), {"fast": 5, "slow": 20})
>>> bool((target[:19] == 0).all())  # warm-up bars are flat
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from quantlib.core import indicators_nb as nb
from quantlib.core.bars import Bars, as_bars, cached, indicator_cache
from quantlib.core.registry import Param, StrategyKind, register

EMA_MEMORY = 4  # spans kept by a finite-window EMA


def ema_length(span: float) -> int:
    """Window length of the finite-memory EMA of ``span``."""
    return int(math.ceil(EMA_MEMORY * span))


def sma(bars: Bars, window: int) -> np.ndarray:
    """Finite-window simple moving average of the closes (``bars``: Bars or an OHLCV frame)."""
    return cached("sma", nb.rolling_mean_nb, as_bars(bars).close, int(window))


def ema(bars: Bars, span: int) -> np.ndarray:
    """EMA of the closes truncated to ``ema_length(span)`` bars."""
    return cached("ema", nb.fir_ema_nb, as_bars(bars).close, 2.0 / (span + 1.0),
                  ema_length(span))


def rsi(bars: Bars, window: int) -> np.ndarray:
    """Wilder RSI of the closes, averages truncated to ``2 * ema_length(window)`` changes."""
    return cached("rsi", nb.fir_rsi_nb, as_bars(bars).close, 1.0 / window,
                  ema_length(window) * 2)


def _level(up: np.ndarray, down: np.ndarray, warmup: int) -> np.ndarray:
    target = np.where(up, 1.0, np.where(down, -1.0, 0.0))
    target[: min(warmup, len(target))] = 0.0
    return target


def _fast_below_slow(p: Mapping[str, Any]) -> str | None:
    return None if p["fast"] < p["slow"] else f"fast ({p['fast']}) must be < slow ({p['slow']})"


def _lower_below_upper(p: Mapping[str, Any]) -> str | None:
    return None if p["lower"] < p["upper"] else f"lower ({p['lower']}) must be < upper ({p['upper']})"


# --- ma_cross ---------------------------------------------------------------------------------
def _ma_cross(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    fast, slow = sma(bars, p["fast"]), sma(bars, p["slow"])
    with np.errstate(invalid="ignore"):
        return _level(fast > slow, fast < slow, p["slow"] - 1)


# --- ema_cross --------------------------------------------------------------------------------
def _ema_cross_warmup(p: Mapping[str, Any]) -> int:
    return ema_length(p["slow"]) - 1


def _ema_cross(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    fast, slow = ema(bars, p["fast"]), ema(bars, p["slow"])
    with np.errstate(invalid="ignore"):
        return _level(fast > slow, fast < slow, _ema_cross_warmup(p))


# --- rsi_reversion ----------------------------------------------------------------------------
def _rsi_warmup(p: Mapping[str, Any]) -> int:
    return 2 * ema_length(p["window"])


def _rsi_reversion(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    value = rsi(bars, p["window"])
    with np.errstate(invalid="ignore"):
        return _level(value < p["lower"], value > p["upper"], _rsi_warmup(p))


# --- bollinger_reversion ----------------------------------------------------------------------
def _bollinger(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    close = bars.close
    mid = sma(bars, p["window"])
    std = cached("std", nb.rolling_std_nb, close, int(p["window"]))
    with np.errstate(invalid="ignore"):
        return _level(close < mid - p["k"] * std, close > mid + p["k"] * std, p["window"] - 1)


# --- donchian_breakout ------------------------------------------------------------------------
def _donchian(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    window = p["window"]
    high, low, close = bars.high, bars.low, bars.close
    n = len(close)
    # Channel of the `window` bars BEFORE t (the current bar cannot break its own range).
    upper = np.full(n, np.nan)
    lower = np.full(n, np.nan)
    upper[1:] = cached("max", nb.rolling_max_nb, high, window)[:-1]
    lower[1:] = cached("min", nb.rolling_min_nb, low, window)[:-1]
    with np.errstate(invalid="ignore"):
        event = np.where(close > upper, 1.0, np.where(close < lower, -1.0, np.nan))
    # Hold the latest breakout for at most `window` bars: bounded memory, unlike "hold until the
    # opposite breakout" whose state could depend on arbitrarily old bars.
    held = nb.hold_nb(event, window - 1)
    held[: min(2 * window - 1, n)] = 0.0
    return held


# --- macd -------------------------------------------------------------------------------------
def _macd_warmup(p: Mapping[str, Any]) -> int:
    return ema_length(p["slow"]) - 1 + ema_length(p["signal"]) - 1


def _macd(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    line = ema(bars, p["fast"]) - ema(bars, p["slow"])
    signal_line = nb.fir_ema_nb(line, 2.0 / (p["signal"] + 1.0), ema_length(p["signal"]))
    with np.errstate(invalid="ignore"):
        return _level(line > signal_line, line < signal_line, _macd_warmup(p))


def _fast_slow(fast: int, slow: int, high: int = 1000) -> tuple[Param, Param]:
    return (Param("fast", int, fast, low=1, high=high // 2, step=1, doc="fast window (bars)"),
            Param("slow", int, slow, low=2, high=high, step=1, doc="slow window (bars)"))


def _builtin(name: str, params: tuple[Param, ...], signal: Any, warmup: Any, doc: str,
             constraints: tuple = ()) -> StrategyKind:
    # every kind here computes on Bars and re-registers on a reload of this module
    return register(StrategyKind(name, params=params, signal=signal, warmup=warmup,
                                 constraints=constraints, doc=doc, inputs="bars"), replace=True)


def _window_param(default: int, high: int, doc: str) -> Param:
    return Param("window", int, default, low=2, high=high, step=1, doc=doc)


MA_CROSS = _builtin("ma_cross", _fast_slow(10, 50), _ma_cross, lambda p: p["slow"] - 1,
                    "long when SMA(fast) > SMA(slow), short when below", (_fast_below_slow,))

EMA_CROSS = _builtin(
    "ema_cross", _fast_slow(12, 26, 500), _ema_cross, _ema_cross_warmup,
    "long when EMA(fast) > EMA(slow), short when below (finite-window EMAs)", (_fast_below_slow,))

RSI_REVERSION = _builtin(
    "rsi_reversion",
    (_window_param(14, 200, "Wilder RSI window"),
     Param("lower", float, 30.0, low=1.0, high=50.0, step=5.0, doc="long below this RSI"),
     Param("upper", float, 70.0, low=50.0, high=99.0, step=5.0, doc="short above this RSI")),
    _rsi_reversion, _rsi_warmup,
    "long while RSI < lower (oversold), short while RSI > upper (overbought)",
    (_lower_below_upper,))

BOLLINGER_REVERSION = _builtin(
    "bollinger_reversion",
    (_window_param(20, 1000, "band window"),
     Param("k", float, 2.0, low=0.1, high=5.0, step=0.25, doc="band width in std devs")),
    _bollinger, lambda p: p["window"] - 1,
    "long while close < lower band, short while close > upper band")

DONCHIAN_BREAKOUT = _builtin(
    "donchian_breakout", (_window_param(20, 1000, "channel window"),), _donchian,
    lambda p: 2 * p["window"] - 1,
    "follow a close beyond the prior window's high/low channel, held for up to window bars")

MACD = _builtin(
    "macd",
    (*_fast_slow(12, 26, 500),
     Param("signal", int, 9, low=1, high=200, step=1, doc="signal line span")),
    _macd, _macd_warmup, "long when the MACD line is above its signal line, short when below",
    (_fast_below_slow,))

BUILTIN_KINDS = ("ma_cross", "ema_cross", "rsi_reversion", "bollinger_reversion",
                 "donchian_breakout", "macd")

__all__ = ["BUILTIN_KINDS", "EMA_MEMORY", "ema_length", "indicator_cache", "sma", "ema", "rsi"]
