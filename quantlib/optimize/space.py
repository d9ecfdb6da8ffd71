"""Search spaces built from a kind's declared parameters: grids, random samples, optuna suggests.

A :class:`SearchSpace` has one :class:`Dimension` per searched parameter plus fixed values for
the rest. Dimensions default to the kind's ``Param`` declarations (``low``/``high``/``step``,
``choices``, ``log``); callers override any of them. The kind's own constraints (e.g.
``fast < slow``) decide which combinations are valid: the space never re-implements them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantlib.core.registry import Param, StrategyKind, get_kind
from quantlib.errors import ParameterError

_DEFAULT_LEVELS = 10  # grid points per numeric parameter that declares no step


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: either explicit ``values`` or a numeric ``low..high`` range."""

    name: str
    type: type
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    values: tuple | None = None

    def grid_values(self) -> list:
        """Every grid point (explicit values, or ``low, low + step, ..., <= high``)."""
        if self.values is not None:
            return list(self.values)
        step = self.step
        if step is None:
            if self.type is int:
                step = max(1, math.ceil((self.high - self.low) / (_DEFAULT_LEVELS - 1)))
            elif self.log:
                return [float(v) for v in np.geomspace(self.low, self.high, _DEFAULT_LEVELS)]
            else:
                return [float(v) for v in np.linspace(self.low, self.high, _DEFAULT_LEVELS)]
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        points = [self.low + i * step for i in range(count)]
        if self.type is int:
            return [int(round(p)) for p in points]
        return [float(round(p, 12)) for p in points]

    def sample(self, rng: np.random.Generator) -> Any:
        """One random value (uniform over values / the stepped range; log-uniform if ``log``)."""
        if self.values is not None or self.step is not None:
            values = self.grid_values()
            return values[int(rng.integers(len(values)))]
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if self.type is int:
            return int(min(self.high, max(self.low, round(value))))
        return float(value)

    def suggest(self, trial) -> Any:
        """Ask an optuna trial for this parameter."""
        if self.values is not None:
            return trial.suggest_categorical(self.name, list(self.values))
        if self.type is int:
            step = 1 if (self.step is None or self.log) else int(self.step)
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=step,
                                     log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high),
                                   step=None if self.log else self.step, log=self.log)


def _dimension_from_param(p: Param) -> Dimension | None:
    if p.choices is not None:
        return Dimension(p.name, p.type, values=tuple(p.choices))
    if p.type is bool:
        return Dimension(p.name, bool, values=(False, True))
    if p.type in (int, float) and p.low is not None and p.high is not None:
        return Dimension(p.name, p.type, low=p.low, high=p.high, step=p.step, log=p.log)
    return None  # unbounded, str without choices, nested dict/list: held at its default


def _dimension_from_spec(p: Param, spec: Any, kind: str) -> Dimension:
    where = f"search space of kind {kind!r}, parameter {p.name!r}"
    if isinstance(spec, Dimension):
        return spec
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"low", "high", "step", "log", "values"}
        if unknown:
            raise ParameterError(f"{where}: unknown key(s) {sorted(unknown)}; expected "
                                 "low/high/step/log/values")
        if "values" in spec:
            return Dimension(p.name, p.type, values=tuple(spec["values"]))
        try:
            spec = (spec["low"], spec["high"], spec.get("step"), spec.get("log", False))
        except KeyError as exc:
            raise ParameterError(f"{where}: missing {exc.args[0]!r}") from None
        low, high, step, log = spec
    elif isinstance(spec, tuple) and 2 <= len(spec) <= 3:
        low, high, step, log = spec[0], spec[1], (spec[2] if len(spec) == 3 else None), False
    elif isinstance(spec, list | np.ndarray | range):
        if len(spec) == 0:
            raise ParameterError(f"{where}: empty list of values")
        return Dimension(p.name, p.type, values=tuple(spec))
    else:
        raise ParameterError(f"{where}: expected a list of values, a (low, high[, step]) tuple "
                             f"or a dict, got {spec!r}")
    if p.type not in (int, float):
        raise ParameterError(f"{where}: a numeric range needs an int/float parameter")
    if not (isinstance(low, int | float) and isinstance(high, int | float) and low <= high):
        raise ParameterError(f"{where}: expected numbers low <= high, got {low!r}, {high!r}")
    if step is not None and not step > 0:
        raise ParameterError(f"{where}: step must be > 0, got {step!r}")
    if log and low <= 0:
        raise ParameterError(f"{where}: a log range needs low > 0, got {low!r}")
    return Dimension(p.name, p.type, low=low, high=high, step=step, log=bool(log))


@dataclass(frozen=True)
class SearchSpace:
    """Searched dimensions and fixed values of one strategy kind.

    Examples
    --------
    >>> from quantlib.core.registry import Param, StrategyKind
    >>> demo = StrategyKind("demo_space", (Param("fast", int, 5, 2, 50, step=1),
    ...                                    Param("slow", int, 20, 5, 200, step=1)),
    ...                     signal=lambda df, p: np.zeros(len(df)),
    ...                     constraints=(lambda p: None if p["fast"] < p["slow"] else "fast<slow",))
    >>> space = SearchSpace.from_kind(demo, {"fast": [5, 10, 20], "slow": (10, 30, 10)})
    >>> [(c["fast"], c["slow"]) for c in space.grid()]
    [(5, 10), (5, 20), (5, 30), (10, 20), (10, 30), (20, 30)]
    """

    kind: StrategyKind
    dimensions: tuple[Dimension, ...]
    fixed: dict[str, Any] = field(default_factory=dict)

    def __reduce__(self):
        # Kinds hold closures; ship the registered name so spawned workers can rebuild the space.
        return (_space_from_name, (self.kind.name, self.dimensions, self.fixed))

    @classmethod
    def from_kind(cls, kind: StrategyKind | str, ranges: Mapping[str, Any] | None = None,
                  fixed: Mapping[str, Any] | None = None, *, only: Iterable[str] | None = None
                  ) -> SearchSpace:
        """Space over ``kind``'s declared params; ``ranges`` override, ``fixed`` pins values.

        With ``ranges`` only those parameters are searched (the rest stay at their defaults);
        without, every declared parameter with bounds or choices is. ``only`` names the
        parameters searched over their declared ranges (in addition to ``ranges``).
        """
        kind = get_kind(kind) if isinstance(kind, str) else kind
        ranges, fixed = dict(ranges or {}), dict(fixed or {})
        declared = {p.name: p for p in kind.params}
        unknown = sorted((set(ranges) | set(fixed)) - set(declared))
        if unknown:
            raise ParameterError(f"search space of kind {kind.name!r}: unknown parameter(s) "
                                 f"{unknown}; declared: {sorted(declared)}")
        keep = set(only) if only is not None else (set(ranges) if ranges else None)
        dims = []
        for name, p in declared.items():
            if name in fixed:
                continue
            if name in ranges:
                dims.append(_dimension_from_spec(p, ranges[name], kind.name))
            elif keep is None or name in keep:
                dim = _dimension_from_param(p)
                if dim is not None:
                    dims.append(dim)
        return cls(kind, tuple(dims), fixed)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def _complete(self, values: Mapping[str, Any]) -> dict[str, Any] | None:
        # Validated full parameter dict, or None when the kind's constraints reject it.
        try:
            return self.kind.validate({**self.fixed, **values})
        except ParameterError:
            return None

    def grid_size(self) -> int:
        """Size of the Cartesian product before constraints."""
        return int(np.prod([len(d.grid_values()) for d in self.dimensions])) if self.dimensions else 1

    def grid(self) -> list[dict[str, Any]]:
        """Every valid grid combination (Cartesian product minus constraint violations)."""
        grids = [d.grid_values() for d in self.dimensions]
        out = []
        for combo in itertools.product(*grids):
            params = self._complete(dict(zip(self.names, combo, strict=True)))
            if params is not None:
                out.append(params)
        if not out:
            raise ParameterError(f"search space of kind {self.kind.name!r}: no combination "
                                 f"satisfies the kind's constraints ({self.grid_size()} tried)")
        return out

    def sample(self, n: int, seed: int = 0, *, max_tries: int = 100) -> list[dict[str, Any]]:
        """``n`` random valid combinations (deterministic for a seed, duplicates possible)."""
        rng = np.random.default_rng(seed)
        out: list[dict[str, Any]] = []
        tries = 0
        while len(out) < n:
            tries += 1
            if tries > max_tries * max(n, 1):
                raise ParameterError(f"search space of kind {self.kind.name!r}: could not draw "
                                     f"{n} valid combinations in {tries - 1} tries")
            params = self._complete({d.name: d.sample(rng) for d in self.dimensions})
            if params is not None:
                out.append(params)
        return out

    def suggest(self, trial) -> dict[str, Any] | None:
        """Params for an optuna trial; None when the kind's constraints reject them."""
        return self._complete({d.name: d.suggest(trial) for d in self.dimensions})


def _space_from_name(name: str, dimensions: tuple[Dimension, ...],
                     fixed: dict[str, Any]) -> SearchSpace:
    return SearchSpace(get_kind(name), dimensions, fixed)


def product_grid(grid: Mapping[str, Iterable[Any]]) -> list[dict[str, Any]]:
    """Every combination of a ``{name: values}`` grid, as parameter dicts (first name slowest).

    Unlike :class:`SearchSpace` it knows no kind: for grids of wrapper parameters (a trend
    filter's settings, a gate's) that a kind validates itself.

    Examples
    --------
    >>> product_grid({"fast": [5, 10], "slow": [50]})
    [{'fast': 5, 'slow': 50}, {'fast': 10, 'slow': 50}]
    """
    columns = {}
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise ParameterError(f"grid parameter {name!r}: expected a list of values, "
                                 f"got {values!r}")
        columns[name] = list(values)
        if not columns[name]:
            raise ParameterError(f"grid parameter {name!r}: the list of values is empty")
    return [dict(zip(columns, combo, strict=True)) for combo in itertools.product(*columns.values())]


def parse_ranges(text: str) -> dict[str, Any]:
    """Parse a CLI range string ``"fast=5:50:5,slow=20:200:10,ma=sma|ema"``.

    ``a:b`` / ``a:b:step`` give a numeric range, ``x|y|z`` explicit values.

    Examples
    --------
    >>> parse_ranges("fast=5:50:5,mode=sma|ema")
    {'fast': (5, 50, 5), 'mode': ['sma', 'ema']}
    """
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise ParameterError(f"--space: expected name=low:high[:step] or name=a|b, got {item!r}")
        name, spec = (s.strip() for s in item.split("=", 1))
        if "|" in spec:
            out[name] = [_number(v) for v in spec.split("|")]
        elif ":" in spec:
            parts = [_number(v) for v in spec.split(":")]
            if len(parts) not in (2, 3) or any(isinstance(v, str) for v in parts):
                raise ParameterError(f"--space {name}: expected low:high[:step], got {spec!r}")
            out[name] = tuple(parts)
        else:
            out[name] = [_number(spec)]
    return out


def _number(text: str) -> Any:
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text in ("true", "false"):
        return text == "true"
    return text


__all__ = ["Dimension", "SearchSpace", "parse_ranges"]
