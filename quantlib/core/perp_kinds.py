"""Perp kinds: ``funding_carry``, and the causal alignment of funding rates to bars.

The long/short kind of the perp notebook is the built-in ``ma_cross`` (it already targets +1
and -1); this module adds the kind that needs funding.

Funding alignment (the rule)
    A funding rate is known once its timestamp has passed. The rate visible at bar ``t``, whose
    decision is taken at its close ``close_t = open_t + step``, is the rate of the latest
    funding timestamp ``T <= close_t``; before the first one, none (NaN). Nothing published
    after ``close_t`` is ever seen, so truncating the funding history after ``close_t`` leaves
    the targets up to ``t`` unchanged (tested).

A kind reads the aligned rate from the column :data:`FUNDING_COLUMN` of the
:class:`~quantlib.core.bars.Bars` it is given; :func:`quantlib.backtest.perp.run_perp_backtest`
adds that column (:func:`with_funding`) when it is given funding. This module imports numpy only.

Examples
--------
>>> import numpy as np
>>> hour = 3_600 * 10**9
>>> bar_open = np.arange(10) * hour                    # 1h bars 00:00 .. 09:00
>>> rates = np.array([0.001, -0.002])                   # paid at 00:00 and 08:00
>>> known = last_known_funding(bar_open, hour, np.array([0, 8 * hour]), rates)
>>> known[[0, 6, 7]].tolist()               # the 07:00 bar closes at 08:00
[0.001, 0.001, -0.002]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from quantlib.core.bars import COLUMNS, Bars, as_bars
from quantlib.core.informative import timeframe_ns
from quantlib.core.registry import Param, StrategyKind, register
from quantlib.errors import ParameterError

FUNDING_COLUMN = "funding_rate"


def last_known_funding(bar_open_ns: np.ndarray, step_ns: int, funding_ns: np.ndarray,
                       rates: np.ndarray) -> np.ndarray:
    """The funding rate known at each bar's close (module rule); NaN before the first.

    Parameters
    ----------
    bar_open_ns : int64 bar open times (ns since the epoch), increasing.
    step_ns : bar length in ns.
    funding_ns : int64 funding timestamps, increasing; rates : their rates.
    """
    funding_ns = np.asarray(funding_ns, dtype=np.int64)
    rates = np.asarray(rates, dtype=np.float64)
    if len(funding_ns) != len(rates):
        raise ParameterError(f"funding: {len(funding_ns)} timestamps but {len(rates)} rates")
    visible = np.searchsorted(funding_ns, np.asarray(bar_open_ns, np.int64) + int(step_ns),
                              side="right") - 1
    out = np.full(len(visible), np.nan)
    seen = visible >= 0
    out[seen] = rates[visible[seen]]
    return out


def with_funding(data: Any, funding_ns: np.ndarray, rates: np.ndarray,
                 timeframe: str | None = None) -> Bars:
    """``data`` (frame or Bars) as Bars with the column :data:`FUNDING_COLUMN`: the funding
    rate known at each bar's close (:func:`last_known_funding`).

    ``timeframe`` defaults to the data's ``attrs["timeframe"]``.
    """
    bars = as_bars(data)
    timeframe = timeframe or bars.attrs.get("timeframe")
    if bars.time is None or not timeframe:
        raise ParameterError("funding: the bars need timestamps and a timeframe (attrs "
                             "'timeframe') to align funding rates to their closes")
    known = last_known_funding(bars.time, timeframe_ns(timeframe), funding_ns, rates)
    columns = {name: bars.column(name) for name in COLUMNS if bars.has(name)}
    return Bars(bars.time, {**columns, FUNDING_COLUMN: known}, bars.attrs)


def _funding_carry(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    if not bars.has(FUNDING_COLUMN):
        raise ParameterError(
            f"strategy kind 'funding_carry': needs the column {FUNDING_COLUMN!r} (the last known "
            "funding rate per bar); backtest it with quantlib.backtest.perp.run_perp_backtest("
            "..., funding=...) or add it with quantlib.core.perp_kinds.with_funding")
    rate = bars.column(FUNDING_COLUMN)
    with np.errstate(invalid="ignore"):  # NaN (no rate known yet) compares False: flat
        short = rate > p["threshold"]
        long = p["allow_long"] & (rate < -p["threshold"])
    return np.where(short, -1.0, np.where(long, 1.0, 0.0))


FUNDING_CARRY = register(StrategyKind(
    "funding_carry",
    params=(Param("threshold", float, 0.0001, low=-0.01, high=0.01, step=0.00005,
                  doc="short while the last known funding rate per interval is above this"),
            Param("allow_long", bool, False,
                  doc="also go long while the rate is below -threshold")),
    signal=_funding_carry, inputs="bars",
    doc="short the perp while the last known funding rate is above a threshold (collect "
        "funding), flat (or long below -threshold) otherwise",
), replace=True)

__all__ = ["FUNDING_CARRY", "FUNDING_COLUMN", "last_known_funding", "with_funding"]
