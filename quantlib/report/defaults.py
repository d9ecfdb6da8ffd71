"""Notebook defaults chosen from the data a notebook gets, not fixed for one synthetic seed.

A grid's range (``lower_pct`` / ``upper_pct`` around the first open) only means something
relative to how far the market moves: +-10 % is wide for a quiet week and leaves the range in
days on a volatile year. The unit used here is the **move scale**

``scale = sigma_bar * sqrt(horizon)``

where ``sigma_bar`` is the standard deviation (ddof=1) of the log close-to-close returns over a
*leading* window of the data (the first ``fit_fraction`` of its bars, at least ``min_fit_bars``)
and ``horizon`` the number of bars the strategy runs (the data's length). For a random walk it
is the typical size of the move from the first bar to the last. Only the leading window is
used so that a width never encodes the volatility of the path it is later judged on; the
length of the data is known before the first bar, so ``horizon`` looks at nothing ahead.

Widths are multiples of the scale, rounded to three significant digits and capped below 1
(``lower_pct`` = 1 would put the lower bound at a price of 0).

Examples
--------
>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2024-01-01", periods=401, freq="1h", tz="UTC")
>>> close = pd.Series(100 * np.exp(np.cumsum(np.r_[0, np.tile([0.01, -0.01], 200)])), idx)
>>> scale = move_scale(pd.DataFrame({"close": close}))
>>> round(scale.bar_volatility, 5), scale.fit_bars, scale.horizon
(0.01005, 100, 401)
>>> scale.widths([0.25, 0.5, 1.0])
[0.0503, 0.101, 0.201]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlib.core.registry import get_kind
from quantlib.errors import DataError, ParameterError

WIDTH_PARAMS = ("lower_pct", "upper_pct")
MAX_WIDTH = 0.9  # below grid_kind's lower_pct limit (0.99): the lower bound stays a real price
MIN_WIDTH = 0.001  # grid_kind's lower limit
# Defaults of the grid notebooks, in move-scale multiples (levels are counts, not data-bound).
SWEEP_LEVELS = (4, 8, 12, 16)
SWEEP_LOWER = (0.125, 0.25, 0.5)
SWEEP_UPPER = (0.25, 0.5)
STUDY_LEVELS = (4, 32)
STUDY_WIDTH = (0.05, 0.75)
GRID_RANGE = 0.25  # one grid's lower_pct = upper_pct
COMPARE_RANGE = 0.15  # the tight grid of notebook 07's fill-rule comparison
SWEEP_WIDTHS = (0.1, 0.2, 0.3, 0.45, 0.6)  # notebook 07's level-count x width sweep


@dataclass(frozen=True)
class MoveScale:
    """How far the data's market typically moves over its length (see the module docstring)."""

    bar_volatility: float
    fit_bars: int
    horizon: int

    @property
    def scale(self) -> float:
        """``bar_volatility * sqrt(horizon)``."""
        return self.bar_volatility * math.sqrt(self.horizon)

    def widths(self, multiples: Sequence[float]) -> list[float]:
        """Range widths (fractions of the first open) for ``multiples`` of the scale: three
        significant digits, within ``[MIN_WIDTH, MAX_WIDTH]``, sorted, duplicates dropped.

        Examples
        --------
        >>> MoveScale(0.01, 100, 10_000).widths([0.5, 2.0, 5.0])  # scale 1.0: capped at 0.9
        [0.5, 0.9]
        """
        values = _multiples(multiples, "multiples")
        out = {min(max(_three_digits(m * self.scale), MIN_WIDTH), MAX_WIDTH) for m in values}
        return sorted(out)

    def width(self, multiple: float) -> float:
        """One width: ``multiple`` x the scale (rounded and capped as :meth:`widths`).

        Examples
        --------
        >>> MoveScale(0.01, 100, 2500).width(0.25)
        0.125
        """
        return self.widths([multiple])[0]

    def describe(self) -> str:
        """One line for a notebook: where the widths come from."""
        return (f"move scale {self.scale:.3g} = bar volatility {self.bar_volatility:.3g} "
                f"(log returns of the first {self.fit_bars} bars) x sqrt({self.horizon} bars)")


def _three_digits(value: float) -> float:
    if value <= 0 or not math.isfinite(value):
        return value
    return round(value, 2 - int(math.floor(math.log10(value))))


def _multiples(values: Any, name: str) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ParameterError(f"{name}: expected a list of positive numbers, got {values!r}") from None
    if not out or any(not (v > 0 and math.isfinite(v)) for v in out):
        raise ParameterError(f"{name}: expected a non-empty list of positive numbers, got "
                             f"{values!r}")
    return out


def move_scale(data: pd.DataFrame, *, horizon: int | None = None, fit_fraction: float = 0.25,
               min_fit_bars: int = 50) -> MoveScale:
    """The :class:`MoveScale` of ``data`` (an OHLCV frame; only ``close`` is read).

    Parameters
    ----------
    data : OHLCV frame, oldest bar first.
    horizon : bars the strategy runs (default: ``len(data)``).
    fit_fraction : leading share of the bars whose returns give the volatility.
    min_fit_bars : the leading window has at least this many bars (when the data has them).

    Examples
    --------
    >>> from quantlib.data import load
    >>> s = move_scale(load("sample:seed=1,bars=2000"))
    >>> s.fit_bars, s.horizon, 0.2 < s.scale < 1.0
    (500, 2000, True)
    """
    if not isinstance(data, pd.DataFrame) or "close" not in data.columns:
        raise DataError(f"move_scale: expected an OHLCV frame with a 'close' column, got "
                        f"{type(data).__name__}"
                        + (f" with columns {list(data.columns)}" if hasattr(data, "columns") else ""))
    if not (isinstance(fit_fraction, int | float) and 0 < fit_fraction <= 1):
        raise ParameterError(f"fit_fraction: expected a share in (0, 1], got {fit_fraction!r}")
    n = len(data)
    horizon = n if horizon is None else horizon
    if not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ParameterError(f"horizon: expected a positive bar count, got {horizon!r}")
    fit_bars = min(n, max(int(n * fit_fraction), min_fit_bars))
    close = data["close"].to_numpy(dtype=np.float64)[:fit_bars]
    bad = np.flatnonzero(~np.isfinite(close) | (close <= 0))
    if len(bad):
        raise DataError(f"move_scale: close at row {int(bad[0])} ({data.index[bad[0]]}) is "
                        f"{close[bad[0]]!r}; expected a finite positive price")
    if fit_bars < 3:
        raise DataError(f"move_scale: {n} bars; at least 3 are needed to measure volatility")
    vol = float(np.diff(np.log(close)).std(ddof=1))
    if not vol > 0:
        raise DataError(f"move_scale: the close never moves over the first {fit_bars} bars; "
                        "no volatility to size a range with")
    return MoveScale(vol, fit_bars, int(horizon))


def _is_grid_kind(kind: Any) -> bool:
    names = {p.name for p in get_kind(kind).params}
    return set(WIDTH_PARAMS) <= names


def grid_sweep_space(data: pd.DataFrame, *, n_levels: Sequence[int] = SWEEP_LEVELS,
                     lower: Sequence[float] = SWEEP_LOWER,
                     upper: Sequence[float] = SWEEP_UPPER) -> dict[str, list]:
    """A grid kind's sweep space: ``n_levels`` x ``lower_pct`` x ``upper_pct``, the widths
    being ``lower`` / ``upper`` multiples of the data's :func:`move_scale`.

    Examples
    --------
    >>> from quantlib.data import load
    >>> space = grid_sweep_space(load("sample:seed=1,bars=2000"))
    >>> space["n_levels"], len(space["lower_pct"]), len(space["upper_pct"])
    ([4, 8, 12, 16], 3, 2)
    """
    scale = move_scale(data)
    return {"n_levels": [int(n) for n in n_levels], "lower_pct": scale.widths(lower),
            "upper_pct": scale.widths(upper)}


def grid_study_space(data: pd.DataFrame, *, n_levels: tuple[int, int] = STUDY_LEVELS,
                     width: tuple[float, float] = STUDY_WIDTH) -> dict[str, tuple]:
    """A grid kind's optuna ranges: ``n_levels`` and both widths over ``width`` multiples of
    the data's :func:`move_scale` (low, high).

    Examples
    --------
    >>> from quantlib.data import load
    >>> space = grid_study_space(load("sample:seed=1,bars=2000"))
    >>> space["n_levels"], space["lower_pct"] == space["upper_pct"]
    ((4, 32), True)
    """
    bounds = move_scale(data).widths(width) if len(width) == 2 else []
    if len(bounds) != 2:
        raise ParameterError(f"width: expected two increasing multiples (low, high) that give "
                             f"different widths, got {width!r}")
    return {"n_levels": (int(n_levels[0]), int(n_levels[1])), "lower_pct": tuple(bounds),
            "upper_pct": tuple(bounds)}


def fill_widths(params: dict[str, Any], data: pd.DataFrame, multiple: float = GRID_RANGE,
                **scale_options: Any) -> dict[str, Any]:
    """``params`` with ``lower_pct`` / ``upper_pct`` set to ``multiple`` x the data's move scale
    where they are missing or None (given values are kept). ``scale_options`` go to
    :func:`move_scale` (e.g. the training part as ``data`` with ``fit_fraction=1.0`` and the
    traded part's length as ``horizon``).

    Examples
    --------
    >>> from quantlib.data import load
    >>> data = load("sample:seed=1,bars=800")
    >>> p = fill_widths({"n_levels": 10, "upper_pct": 0.3}, data)
    >>> p["upper_pct"], p["lower_pct"] == move_scale(data).width(GRID_RANGE)
    (0.3, True)
    """
    out = dict(params)
    missing = [name for name in WIDTH_PARAMS if out.get(name) is None]
    if missing:
        width = move_scale(data, **scale_options).width(multiple)
        out.update({name: width for name in missing})
    return out


def grid_notebook_defaults(data: pd.DataFrame, *, range_pct: float | None = None,
                           compare_range_pct: float | None = None,
                           sweep_widths: Sequence[float] | None = None) -> dict[str, Any]:
    """Notebook 07's widths: the given ones, or :data:`GRID_RANGE`, :data:`COMPARE_RANGE` and
    :data:`SWEEP_WIDTHS` x the data's move scale; ``note`` says where they come from.

    Examples
    --------
    >>> from quantlib.data import load
    >>> d = grid_notebook_defaults(load("sample:bars=2000"), range_pct=0.15)
    >>> d["range_pct"], len(d["sweep_widths"]), d["compare_range_pct"] < 0.15
    (0.15, 5, True)
    """
    scale = move_scale(data)
    return {"range_pct": range_pct if range_pct is not None else scale.width(GRID_RANGE),
            "compare_range_pct": (compare_range_pct if compare_range_pct is not None
                                  else scale.width(COMPARE_RANGE)),
            "sweep_widths": (list(sweep_widths) if sweep_widths is not None
                             else scale.widths(SWEEP_WIDTHS)),
            "note": f"range widths not given are multiples of the {scale.describe()}"}


def notebook_space(kind: Any, data: pd.DataFrame, space: Any = None, *,
                   study: bool = False) -> Any:
    """``space`` when given; else the data-chosen default of a grid kind (sweep or study);
    else None (the optimizers then use the kind's declared parameter ranges).

    Examples
    --------
    >>> from quantlib.data import load
    >>> notebook_space("ma_cross", load("sample:bars=500")) is None
    True
    >>> notebook_space("grid", None, {"n_levels": [4]})
    {'n_levels': [4]}
    """
    if space is not None:
        return space
    if not _is_grid_kind(kind):
        return None
    return grid_study_space(data) if study else grid_sweep_space(data)


__all__ = ["COMPARE_RANGE", "GRID_RANGE", "MAX_WIDTH", "MIN_WIDTH", "MoveScale", "SWEEP_WIDTHS",
           "WIDTH_PARAMS", "fill_widths", "grid_notebook_defaults", "grid_study_space",
           "grid_sweep_space", "move_scale", "notebook_space"]
