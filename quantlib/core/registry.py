"""The registry of strategy kinds: one contract every strategy follows.

A *kind* is a named, declared parameter space plus a pure, causal signal function. The signal
function maps OHLCV data and a validated parameter dict to a float array of **target positions**
in ``[-1, 1]`` (``1`` = fully long, ``-1`` = fully short, ``0`` = flat), one per bar. The value at
bar ``t`` may use rows ``0..t`` only. Engines (vectorbt for signal kinds, the numba grid engine
for ``engine="grid"``) turn targets into fills at the next bar's open; the live runner calls the
very same function on a bounded window of closed candles, so backtest and live share one
implementation.

The data a signal function receives is the kind's choice (``inputs``): ``"frame"`` (default) a
pandas frame in the canonical layout (see :func:`quantlib.data.validate_ohlcv`), convenient for a
kind written in a notebook; ``"bars"`` a :class:`~quantlib.core.bars.Bars` of numpy arrays,
which every built-in kind uses so that the trading process never imports pandas.
:meth:`StrategyKind.signals` accepts either and converts.

New kinds plug in with :func:`register`; nothing in the engines changes.

Examples
--------
>>> import numpy as np
>>> from quantlib.core.registry import Param, StrategyKind, register, get_kind
>>> def always_long(df, params):
...     return np.ones(len(df))
>>> kind = register(StrategyKind("always_long_demo", params=(), signal=always_long), replace=True)
>>> get_kind("always_long_demo").validate({})
{}
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantlib.core.bars import as_bars, is_frame
from quantlib.core.informative import InformativeFn, attach, informative_warmup
from quantlib.errors import ParameterError

# (data, params) -> targets; data is a pandas frame or a Bars, as the kind's ``inputs`` says
SignalFn = Callable[[Any, Mapping[str, Any]], np.ndarray]
WarmupFn = Callable[[Mapping[str, Any]], int]
ConstraintFn = Callable[[Mapping[str, Any]], "str | None"]
GridParamsFn = Callable[[Mapping[str, Any]], dict]
GridAllowedFn = Callable[[Any, Mapping[str, Any]], np.ndarray]
INPUTS = ("frame", "bars")


@dataclass(frozen=True)
class Param:
    """One declared parameter of a strategy kind.

    ``low``/``high`` bound numeric values (inclusive); ``choices`` lists allowed values for
    categorical ones; ``step`` is the default resolution of grid sweeps; ``log`` asks samplers for
    a log scale.
    """

    name: str
    type: type
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    step: float | None = None
    log: bool = False
    doc: str = ""

    def check(self, value: Any, kind: str) -> Any:
        """Coerce ``value`` to the declared type and check its range; raise ParameterError."""
        where = f"strategy kind {kind!r}, parameter {self.name!r}"
        if self.type is bool:
            if not isinstance(value, bool | np.bool_):
                raise ParameterError(f"{where}: expected a bool, got {_short(value)}")
            return bool(value)
        if self.type is int:
            value = self._as_int(value, where)
        elif self.type is float:
            value = self._as_float(value, where)
        elif self.type is str:
            if not isinstance(value, str):
                raise ParameterError(f"{where}: expected a string, got {_short(value)}")
        elif self.type is dict:
            # Nested parameters (e.g. a wrapped kind's params); the owning kind's constraints
            # validate the contents.
            if not isinstance(value, Mapping):
                raise ParameterError(f"{where}: expected a mapping, got {_short(value)}")
            return dict(value)
        elif self.type is list:
            if not isinstance(value, list | tuple):
                raise ParameterError(f"{where}: expected a list, got {_short(value)}")
            return list(value)
        if self.choices is not None and value not in self.choices:
            raise ParameterError(f"{where}: {_short(value)} is not one of {list(self.choices)}")
        if self.low is not None and value < self.low:
            raise ParameterError(f"{where}: {_short(value)} is below the minimum {self.low}")
        if self.high is not None and value > self.high:
            raise ParameterError(f"{where}: {_short(value)} is above the maximum {self.high}")
        return value

    def _expected(self, what: str) -> str:
        # "an integer between 2 and 500": the declared range is part of what is expected.
        if self.low is not None and self.high is not None:
            return f"{what} between {self.low:g} and {self.high:g}"
        if self.low is not None:
            return f"{what} >= {self.low:g}"
        if self.high is not None:
            return f"{what} <= {self.high:g}"
        return what

    def _as_int(self, value: Any, where: str) -> int:
        """``value`` as an int: ints, and floats that are whole and finite (JSON writes 5.0)."""
        expected = self._expected("an integer")
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer | float
                                                                 | np.floating):
            raise ParameterError(f"{where}: expected {expected}, got {_short(value)}")
        if isinstance(value, float | np.floating):
            if not np.isfinite(value):
                raise ParameterError(f"{where}: expected {expected}, got the non-finite "
                                     f"number {float(value)!r}")
            if not float(value).is_integer():
                raise ParameterError(f"{where}: expected {expected}, got {float(value)!r} "
                                     "(not a whole number)")
            if not self._in_range(float(value)):
                # Say it in the user's spelling (1e+30), not as the 31-digit integer it becomes.
                raise ParameterError(f"{where}: expected {expected}, got {float(value)!r}")
        return int(value)

    def _as_float(self, value: Any, where: str) -> float:
        """``value`` as a finite float (a huge int must not raise a raw OverflowError)."""
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer
                                                                 | np.floating):
            raise ParameterError(f"{where}: expected a number, got {_short(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = float("inf")
        if not np.isfinite(number):
            raise ParameterError(f"{where}: expected a finite number, got {_short(value)}")
        return number

    def _in_range(self, value: float) -> bool:
        return ((self.low is None or value >= self.low)
                and (self.high is None or value <= self.high))


def _short(value: Any) -> str:
    """``repr(value)`` cut to a readable length (messages must stay one line)."""
    try:
        text = repr(value)
    except ValueError:  # ints past Python's 4300-digit conversion limit cannot be printed
        return f"an integer of {int(value).bit_length()} bits"
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def _no_warmup(params: Mapping[str, Any]) -> int:
    return 0


@dataclass(frozen=True)
class StrategyKind:
    """A named strategy: declared parameters, a causal signal function and its warm-up.

    Parameters
    ----------
    name : registry name used by specs, CLIs and notebooks.
    params : declared parameters.
    signal : ``signal(data, params) -> np.ndarray`` of target positions in [-1, 1] (see module
        doc); ``data`` is what ``inputs`` names.
    warmup : ``warmup(params) -> int`` bars of history the signal needs before it is meaningful;
        signals at bars past the warm-up must not depend on how much older history is present.
    constraints : callables returning an error message (or None) for invalid combinations,
        e.g. ``fast < slow``.
    engine : ``"signals"`` (vectorbt from target positions) or ``"grid"`` (numba grid engine).
    doc : one-line description.
    grid_params, grid_allowed : for a ``"grid"`` kind that wraps the grid (e.g.
        ``regime_grid``): ``grid_params(params)`` gives the wrapped grid's own parameters and
        ``grid_allowed(data, params)`` a bool per bar, True when buys may rest after bar ``t``
        closes (causal: bars ``<= t`` only). Backtests shift it by one bar into the engine's
        ``active`` mask; the live runner evaluates it on its window. None for the plain grid.
    inputs : ``"frame"`` (a pandas OHLCV frame, the default) or ``"bars"``
        (:class:`~quantlib.core.bars.Bars`: numpy arrays, no pandas in the trading process).
    informative : ``informative(params) -> tuple[InformativeInput, ...]``: other timeframes /
        symbols the signal reads (:mod:`quantlib.core.informative` states the alignment
        rule); the signal gets them aligned via ``informative(bars, name)``. ``"bars"`` kinds
        only. Their history adds to the warm-up: see :meth:`warmup_bars`.
    """

    name: str
    params: tuple[Param, ...]
    signal: SignalFn
    warmup: WarmupFn = _no_warmup
    constraints: tuple[ConstraintFn, ...] = field(default_factory=tuple)
    engine: str = "signals"
    doc: str = ""
    grid_params: GridParamsFn | None = None
    grid_allowed: GridAllowedFn | None = None
    inputs: str = "frame"
    informative: InformativeFn | None = None

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS:
            raise ParameterError(f"strategy kind {self.name!r}: inputs {self.inputs!r} is not one "
                                 f"of {list(INPUTS)}")
        if self.informative is not None and self.inputs != "bars":
            raise ParameterError(f"strategy kind {self.name!r}: informative inputs need "
                                 "inputs='bars'")

    def informative_inputs(self, params: Mapping[str, Any]) -> tuple:
        """The informative inputs declared for validated ``params`` (empty tuple: none)."""
        return () if self.informative is None else tuple(self.informative(params))

    def warmup_bars(self, params: Mapping[str, Any], timeframe: str) -> int:
        """Base bars of history before a bar that its signal needs at base ``timeframe``: the
        declared ``warmup`` and every informative input's history, whichever is longer."""
        return max(int(self.warmup(params)),
                   informative_warmup(self.informative_inputs(params), timeframe))

    def data_for(self, data: Any) -> Any:
        """``data`` (a pandas OHLCV frame or Bars) as this kind's functions take it."""
        if self.inputs == "bars":
            return as_bars(data)
        return data if is_frame(data) else as_bars(data).frame()

    def allowed(self, data: Any, params: Mapping[str, Any]) -> np.ndarray:
        """``grid_allowed`` of a wrapping grid kind on ``data`` (frame or Bars), as bools."""
        if self.grid_allowed is None:
            return np.ones(len(data), dtype=np.bool_)
        return np.asarray(self.grid_allowed(self.data_for(data), params), dtype=np.bool_)

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Fill defaults, coerce types, check ranges and constraints; raise ParameterError."""
        params = dict(params or {})
        declared = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(declared))
        if unknown:
            raise ParameterError(
                f"strategy kind {self.name!r}: unknown parameter(s) {unknown}; "
                f"declared: {sorted(declared)}"
            )
        out = {name: p.check(params.get(name, p.default), self.name) for name, p in declared.items()}
        for constraint in self.constraints:
            problem = constraint(out)
            if problem:
                raise ParameterError(f"strategy kind {self.name!r}: {problem} (params {out})")
        return out

    def signals(self, data: Any, params: Mapping[str, Any] | None = None, *,
                validated: bool = False, informative: Mapping[str, Any] | None = None
                ) -> np.ndarray:
        """Validated target positions for ``data`` (a pandas OHLCV frame or
        :class:`~quantlib.core.bars.Bars`): float array, one per bar, no NaN.

        ``validated=True`` says ``params`` already came out of :meth:`validate` (the live
        runner checks once at start, not on every bar). ``informative`` maps an informative
        input's name to its data (frame or Bars) when it is not the base data resampled.
        """
        checked = dict(params) if validated else self.validate(params)
        inputs = self.informative_inputs(checked)
        if inputs:
            given = attach(data, inputs, informative)
        elif informative:
            raise ParameterError(f"strategy kind {self.name!r}: declares no informative inputs, "
                                 f"got data for {sorted(informative)}")
        else:
            given = self.data_for(data)
        target = np.asarray(self.signal(given, checked), dtype=np.float64)
        if target.shape != (len(data),):
            raise ParameterError(
                f"strategy kind {self.name!r}: signal returned shape {target.shape}, "
                f"expected ({len(data)},)"
            )
        if not np.all(np.isfinite(target)):
            bad = int(np.argmax(~np.isfinite(target)))
            when = data.index[bad] if is_frame(data) else as_bars(data).label(bad)
            raise ParameterError(
                f"strategy kind {self.name!r}: signal is not finite at row {bad} "
                f"({when}); signals must be 0 during warm-up, never NaN"
            )
        return np.clip(target, -1.0, 1.0)


_REGISTRY: dict[str, StrategyKind] = {}


def register(kind: StrategyKind, *, replace: bool = False) -> StrategyKind:
    """Add ``kind`` to the registry and return it; refuses to overwrite unless ``replace``."""
    if kind.name in _REGISTRY and not replace:
        raise ParameterError(f"strategy kind {kind.name!r} is already registered")
    _REGISTRY[kind.name] = kind
    return kind


# Modules whose import registers the built-in kinds (all in core: tests/test_architecture.py).
BUILTIN_KIND_MODULES = ("quantlib.core.kinds", "quantlib.core.trend", "quantlib.core.perp_kinds",
                        "quantlib.core.grid_kind", "quantlib.core.regime_kinds",
                        "quantlib.core.regime_cross", "quantlib.core.xgb_kind")


def _ensure_builtins_loaded() -> None:
    # Importing a kind module registers its kinds; by name, on first look-up, so that this
    # module stays importable from the modules that define kinds.
    for module in BUILTIN_KIND_MODULES:
        importlib.import_module(module)


def get_kind(name: str) -> StrategyKind:
    """Return the registered kind ``name``; raise ParameterError listing known kinds."""
    _ensure_builtins_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParameterError(
            f"unknown strategy kind {name!r}; known kinds: {sorted(_REGISTRY)}"
        ) from None


def list_kinds() -> list[str]:
    """Names of every registered kind, sorted."""
    _ensure_builtins_loaded()
    return sorted(_REGISTRY)


__all__ = ["Param", "StrategyKind", "register", "get_kind", "list_kinds"]
