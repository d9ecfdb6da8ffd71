"""Backtest configuration shared by the vectorbt signal engine and the numba grid engine."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from quantlib.core.costs import FIELDS, MAX_PERCENT_SIZE
from quantlib.errors import ParameterError

_SIZE_TYPES = ("percent", "value")
_DIRECTIONS = ("longonly", "shortonly", "both")
_EXECUTIONS = ("next_open", "close")


@dataclass(frozen=True)
class BacktestConfig:
    """How orders are sized, priced and charged; validated on construction.

    Parameters
    ----------
    init_cash : starting cash in quote currency (per combination; shared by all symbols of a
        multi-asset portfolio).
    fees : fee as a fraction of traded value (``0.001`` = 10 bps per side), at most 0.1.
    slippage_bps : adverse price move applied to every fill, in basis points, at most 1000 (buys pay
        ``price * (1 + bps/1e4)``, sells receive ``price * (1 - bps/1e4)``).
    size : with ``size_type="percent"`` the fraction of available cash used by an entry (``1.0``
        = all of it); with ``size_type="value"`` a fixed quote notional per entry.
    size_type : ``"percent"`` or ``"value"``.
    sl_stop, tp_stop, trail_stop : stop-loss, take-profit and trailing-stop distances as fractions
        of the entry (or running peak) price, or ``None`` for no stop.
    direction : ``"longonly"``, ``"shortonly"`` or ``"both"``.
    execution : ``"next_open"`` (default: a target decided at bar t's close fills at bar t+1's
        open) or ``"close"`` (fills at bar t's own close; optimistic, for comparison only).
    year_days : days per year used for annualisation (365 for crypto, ~252 for equities on
        daily bars).
    timeframe : bar timeframe (``"1h"``...) overriding ``df.attrs["timeframe"]``/index inference.

    Bounds of the cost and sizing fields come from :data:`quantlib.core.costs.FIELDS`, which the
    strategy spec reads too.

    Examples
    --------
    >>> BacktestConfig(fees=0.0005, slippage_bps=2).fees
    0.0005
    """

    init_cash: float = 10_000.0
    fees: float = 0.001
    slippage_bps: float = 0.0
    size: float = 1.0
    size_type: str = "percent"
    sl_stop: float | None = None
    tp_stop: float | None = None
    trail_stop: float | None = None
    direction: str = "longonly"
    execution: str = "next_open"
    year_days: float = 365.0
    timeframe: str | None = None

    def __post_init__(self) -> None:
        # cost and sizing bounds are those of the spec: one definition, quantlib/core/costs.py
        for name in ("init_cash", "fees", "slippage_bps", "size"):
            FIELDS[name].check(getattr(self, name), f"BacktestConfig.{name}")
        for name in ("sl_stop", "tp_stop", "trail_stop"):
            if getattr(self, name) is not None:
                FIELDS[name].check(getattr(self, name), f"BacktestConfig.{name}")
        _check_year_days(self.year_days)
        for name, allowed in (("size_type", _SIZE_TYPES), ("direction", _DIRECTIONS),
                              ("execution", _EXECUTIONS)):
            if getattr(self, name) not in allowed:
                raise ParameterError(
                    f"BacktestConfig.{name}: expected one of {list(allowed)}, "
                    f"got {getattr(self, name)!r}"
                )
        if self.size_type == "percent" and self.size > MAX_PERCENT_SIZE:
            raise ParameterError(
                f"BacktestConfig.size: with size_type='percent' expected a fraction in (0, 1], "
                f"got {self.size!r}"
            )

    @property
    def slippage(self) -> float:
        """Slippage as a fraction of price."""
        return self.slippage_bps / 1e4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> BacktestConfig:
        """A validated copy with ``changes`` applied."""
        return replace(self, **changes)

    @classmethod
    def coerce(cls, config: BacktestConfig | dict | None) -> BacktestConfig:
        """Accept a config, a dict of fields (unknown keys are an error) or None (defaults)."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, dict):
            known = set(cls.__dataclass_fields__)
            unknown = sorted(set(config) - known)
            if unknown:
                raise ParameterError(
                    f"BacktestConfig: unknown field(s) {unknown}; expected some of {sorted(known)}"
                )
            return cls(**config)
        raise ParameterError(
            f"config: expected a BacktestConfig, a dict or None, got {type(config).__name__}"
        )


def _check_year_days(value: Any) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float)
    if not (ok and math.isfinite(value) and 0.0 < value <= 366.0):
        raise ParameterError(f"BacktestConfig.year_days: expected a finite number > 0.0 and "
                             f"<= 366.0, got {value!r}")


__all__ = ["BacktestConfig"]
