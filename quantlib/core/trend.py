"""``htf_trend``: any signal kind, traded only in the direction of a higher-timeframe trend.

``target_t = inner_t`` when the inner kind's direction agrees with the trend of the last
**closed** ``trend_timeframe`` bar visible at ``t`` (the alignment rule of
:mod:`quantlib.core.informative`), else ``0``. The trend is up when that bar's close is above
its ``trend_kind`` (``ma``: simple, ``ema``: finite-window exponential, as the built-in kinds
compute them) moving average over ``trend_window`` higher-timeframe bars, down when below; until
the average exists (and on equality) neither direction may trade.

The higher timeframe is the base data resampled (complete periods only) unless the caller
passes its own bars for the input named ``"trend"``.

Examples
--------
>>> from quantlib.data import load
>>> from quantlib.core import get_kind
>>> kind = get_kind("htf_trend")
>>> data = load("sample:bars=600,timeframe=1h")
>>> params = {"inner_kind": "ma_cross", "inner_params": {"fast": 5, "slow": 20},
...           "trend_timeframe": "4h", "trend_window": 10}
>>> target = kind.signals(data, params)
>>> inner = get_kind("ma_cross").signals(data, {"fast": 5, "slow": 20})
>>> bool(((target == 0) | (target == inner)).all())
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from quantlib.core.bars import Bars
from quantlib.core.informative import (
    InformativeInput,
    handed_down,
    informative,
    nest,
    timeframe_ns,
)
from quantlib.core.kinds import ema, ema_length, sma
from quantlib.core.registry import Param, StrategyKind, get_kind, register
from quantlib.errors import ParameterError

TREND_INPUT = "trend"


def _inner(p: Mapping[str, Any]) -> tuple[StrategyKind, dict[str, Any]]:
    inner = get_kind(p["inner_kind"])
    if inner.engine != "signals":
        raise ParameterError(f"parameter 'inner_kind': {inner.name!r} uses the {inner.engine!r} "
                             "engine; htf_trend wraps 'signals' kinds")
    return inner, inner.validate(p["inner_params"])


def _checks(p: Mapping[str, Any]) -> str | None:
    try:
        _inner(p)
        timeframe_ns(p["trend_timeframe"])
    except ParameterError as exc:
        return str(exc)
    return None


def trend_history(p: Mapping[str, Any]) -> int:
    """Higher-timeframe bars the trend average reads at each bar."""
    window = int(p["trend_window"])
    return window if p["trend_kind"] == "ma" else ema_length(window)


def _nested(p: Mapping[str, Any]) -> tuple[tuple[InformativeInput, ...], dict[str, str]]:
    # the trend input, then the wrapped kind's own inputs (a regime filter's other symbol...):
    # declared here, the warm-up covers them and the caller's data reaches the wrapped kind
    inner, inner_params = _inner(p)
    own = (InformativeInput(TREND_INPUT, timeframe=p["trend_timeframe"],
                            history=trend_history(p)),)
    return nest(own, inner.informative_inputs(inner_params))


def _inputs(p: Mapping[str, Any]) -> tuple[InformativeInput, ...]:
    return _nested(p)[0]


def trend_direction(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    """Per base bar: +1 trend up, -1 down, 0 unknown/flat (from the last closed HTF bar)."""
    trend = informative(bars, TREND_INPUT)
    average = sma(trend.bars, p["trend_window"]) if p["trend_kind"] == "ma" else \
        ema(trend.bars, p["trend_window"])
    with np.errstate(invalid="ignore"):
        direction = np.sign(trend.bars.close - average)
    return np.nan_to_num(trend.at_base(direction), nan=0.0)


def _signal(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    inner, inner_params = _inner(p)
    target = inner.signals(bars, inner_params, validated=True,
                           informative=handed_down(bars, _nested(p)[1]))
    return np.where(np.sign(target) == trend_direction(bars, p), target, 0.0)


HTF_TREND = register(StrategyKind(
    "htf_trend",
    params=(Param("inner_kind", str, "ma_cross", doc="the signal kind traded"),
            Param("inner_params", dict, {}, doc="its parameters"),
            Param("trend_timeframe", str, "4h", doc="timeframe of the trend (>= the base's)"),
            Param("trend_kind", str, "ma", choices=("ma", "ema"), doc="trend average"),
            Param("trend_window", int, 20, low=2, high=1000, step=1,
                  doc="trend average window (trend-timeframe bars)")),
    signal=_signal, warmup=lambda p: _inner(p)[0].warmup(_inner(p)[1]), constraints=(_checks,),
    doc="a signal kind traded only in the direction of a higher-timeframe moving-average trend",
    inputs="bars", informative=_inputs,
), replace=True)

__all__ = ["HTF_TREND", "TREND_INPUT", "trend_direction", "trend_history"]
