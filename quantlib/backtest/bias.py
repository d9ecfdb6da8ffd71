"""Bias checks: prove a kind's signals neither peek at future bars nor depend on old history.

* :func:`check_lookahead` recomputes the signal on truncated prefixes ``data[:t+1]`` and checks
  that the value at every checked bar ``t`` equals the value computed on the full data.
* :func:`check_recursive` recomputes the signal on suffixes that start ``warmup + extra`` bars
  before each checked bar and checks the value at that bar does not change with the amount of
  history beyond the declared warm-up (what a recursive indicator seeded at bar 0 would break).

  Grid kinds (``engine="grid"``) are stateful by design: resting orders and inventory carry
  from the first bar on, so no finite warm-up exists and the live runner carries the engine's
  state instead of re-deriving it from a window. For them the check asks the question that
  matters for that design: stepping bar by bar and resuming from the *persisted* state (the
  JSON the runner stores) at each checked bar must reproduce an uninterrupted run exactly.

Kinds with informative inputs (:mod:`quantlib.core.informative`): every recomputation cuts
the informative data the caller supplied at the same moment as the base data (bars opening
after the last base bar's open are dropped; the alignment then hands over only bars closed by
its close), and inputs resampled from the base are resampled from the cut base. A kind that
reads a still-forming higher-timeframe bar therefore sees a different value on the prefix and
fails. ``check_recursive`` uses the warm-up with every input's history
(:meth:`~quantlib.core.registry.StrategyKind.warmup_bars`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quantlib.core.informative import truncate_supplied
from quantlib.core.registry import StrategyKind
from quantlib.data.timeframes import infer_timeframe
from quantlib.errors import DataError, ParameterError


@dataclass
class BiasCheckResult:
    """Outcome of a bias check.

    Attributes
    ----------
    check : ``"lookahead"`` or ``"recursive"``.
    kind : strategy kind name.
    passed : True when no checked bar differed.
    first_bad_bar : position of the first offending bar (None when passed).
    first_bad_time : its timestamp.
    n_checked : number of bars compared.
    details : human-readable description of the first difference.
    mismatches : every offending bar position.
    """

    check: str
    kind: str
    passed: bool
    first_bad_bar: int | None
    first_bad_time: pd.Timestamp | None
    n_checked: int
    details: str
    mismatches: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed


def _prepare(kind: str | StrategyKind, data: pd.DataFrame, params: Mapping[str, Any] | None):
    from quantlib.backtest.engine import resolve_kind

    kind = resolve_kind(kind)
    if not isinstance(data, pd.DataFrame) or len(data) < 3:
        raise DataError("data: expected an OHLCV DataFrame with at least 3 bars")
    return kind, kind.validate(params)


def _check_points(start: int, n: int, n_checks: int) -> np.ndarray:
    if start >= n:
        raise DataError(f"data: {n} bars is too short to check past the warm-up ({start} bars)")
    return np.unique(np.linspace(start, n - 1, num=min(n_checks, n - start)).astype(int))


def _result(check: str, kind: StrategyKind, data: pd.DataFrame, bad: list[int],
            n_checked: int, describe: dict[int, str]) -> BiasCheckResult:
    if not bad:
        return BiasCheckResult(check, kind.name, True, None, None, n_checked,
                               f"{n_checked} bars identical", [])
    first = bad[0]
    return BiasCheckResult(check, kind.name, False, first, data.index[first], n_checked,
                           describe[first], bad)


def _signals_on(kind: StrategyKind, data: pd.DataFrame, params: Mapping[str, Any],
                informative: Mapping[str, Any] | None) -> np.ndarray:
    """Signals on ``data`` (a slice) with the supplied informative data cut where it ends."""
    if not informative:
        return kind.signals(data, params)
    end = data.index[-1].value + 1  # bars opening after the last base bar's open are future
    return kind.signals(data, params, informative=truncate_supplied(informative, end))


def _base_timeframe(data: pd.DataFrame) -> str:
    timeframe = data.attrs.get("timeframe")
    if timeframe:
        return timeframe

    inferred = infer_timeframe(data.index)
    if not inferred:
        raise DataError("data: cannot tell the timeframe (no 'timeframe' attr, irregular index)")
    return inferred


def check_lookahead(kind: str | StrategyKind, data: pd.DataFrame,
                    params: Mapping[str, Any] | None = None, *, n_checks: int = 60,
                    points: Sequence[int] | None = None,
                    informative: Mapping[str, Any] | None = None) -> BiasCheckResult:
    """Does the signal at bar t change when the bars after t are removed?

    Parameters
    ----------
    kind, data, params : the kind, an OHLCV frame and its parameters.
    n_checks : number of prefix lengths tried (spread evenly from bar 0 to the end).
    points : explicit bar positions to check instead.
    informative : informative input name -> its data (frame), for inputs that are not the base
        data resampled; cut with the base data at every prefix.

    Examples
    --------
    >>> from quantlib.data import load
    >>> check_lookahead("ma_cross", load("sample:bars=300"), {"fast": 5, "slow": 20}).passed
    True
    """
    kind, params = _prepare(kind, data, params)
    full = kind.signals(data, params, informative=informative)
    checks = np.asarray(points) if points is not None else _check_points(0, len(data), n_checks)
    bad, describe = [], {}
    for t in checks:
        t = int(t)
        prefix_value = _signals_on(kind, data.iloc[: t + 1], params, informative)[t]
        if prefix_value != full[t]:
            bad.append(t)
            describe[t] = (f"bar {t} ({data.index[t]}): signal {full[t]:g} with the full data but "
                           f"{prefix_value:g} when data ends at that bar, so it uses later bars")
    return _result("lookahead", kind, data, bad, len(checks), describe)


def check_recursive(kind: str | StrategyKind, data: pd.DataFrame,
                    params: Mapping[str, Any] | None = None, *, n_checks: int = 30,
                    extra_history: Sequence[int] = (0, 1, 7, 50),
                    informative: Mapping[str, Any] | None = None) -> BiasCheckResult:
    """Does the signal at bar t change with the amount of history beyond the declared warm-up?

    For each checked bar ``t >= warmup + max(extra_history)`` the signal is recomputed on
    ``data[t - warmup - e : t + 1]`` for every ``e`` in ``extra_history`` and compared with the
    full-data value.

    Examples
    --------
    >>> from quantlib.data import load
    >>> check_recursive("macd", load("sample:bars=600")).passed
    True
    """
    kind, params = _prepare(kind, data, params)
    if kind.engine == "grid":
        return _check_state_resume(kind, data, params, n_checks)
    warmup = int(kind.warmup(params))
    if kind.informative_inputs(params):
        warmup = kind.warmup_bars(params, _base_timeframe(data))
    if warmup < 0:
        raise ParameterError(f"strategy kind {kind.name!r}: warmup must be >= 0, got {warmup}")
    extras = sorted({int(e) for e in extra_history})
    if not extras or extras[0] < 0:
        raise ParameterError(f"extra_history: expected non-negative integers, got {extra_history}")
    full = kind.signals(data, params, informative=informative)
    checks = _check_points(warmup + extras[-1], len(data), n_checks)
    bad, describe = [], {}
    for t in checks:
        t = int(t)
        for e in extras:
            start = t - warmup - e
            value = _signals_on(kind, data.iloc[start: t + 1], params, informative)[-1]
            if value != full[t]:
                bad.append(t)
                describe[t] = (f"bar {t} ({data.index[t]}): signal {full[t]:g} with all history "
                               f"but {value:g} with only {warmup + e} bars before it (declared "
                               f"warm-up {warmup}); the signal depends on older history")
                break
    return _result("recursive", kind, data, bad, len(checks), describe)


def _grid_inventory_share(grid: Any, close: float) -> float:
    # the grid kinds' signal convention: inventory value / equity
    return grid.inventory * close / grid.equity(close)


def _check_state_resume(kind: StrategyKind, data: pd.DataFrame, params: Mapping[str, Any],
                        n_checks: int) -> BiasCheckResult:
    """Grid kinds: resume from the persisted state at each checked bar; nothing may change."""
    from quantlib.backtest.grid import GridState, step_bar, wrapped_active

    grid_params = params if kind.grid_params is None else kind.grid_params(params)
    active = wrapped_active(kind, data, params)
    bars = data[["open", "high", "low", "close"]].to_numpy(dtype=np.float64)
    checks = set(int(t) for t in _check_points(1, len(data), n_checks))

    def run(resume_at: set[int]) -> list[float]:
        grid = GridState.start(grid_params, first_open=float(bars[0, 0]))
        out = []
        for t, bar in enumerate(bars):
            if t in resume_at:  # a restart: only what the state store holds survives
                grid = GridState.from_dict(json.loads(json.dumps(grid.to_dict())))
            step_bar(grid, bar, active=bool(active[t]))
            out.append(_grid_inventory_share(grid, float(bar[3])))
        return out

    straight, resumed = run(set()), run(checks)
    bad, describe = [], {}
    for t, (a, b) in enumerate(zip(straight, resumed, strict=True)):
        if a != b:
            bad.append(t)
            describe.setdefault(t, f"bar {t} ({data.index[t]}): signal {a:g} uninterrupted but "
                                   f"{b:g} after resuming from the persisted state; the grid's "
                                   "state does not capture everything it depends on")
    result = _result("recursive", kind, data, bad, len(checks), describe)
    if result.passed:
        result.details = (f"stateful grid kind: resuming from the persisted state at "
                          f"{len(checks)} bars reproduces the uninterrupted run exactly")
    return result


__all__ = ["BiasCheckResult", "check_lookahead", "check_recursive"]
