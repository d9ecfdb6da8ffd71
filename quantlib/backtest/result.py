"""The result object every backtest engine returns (vectorbt signals and numba grid alike)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from quantlib.core.config import BacktestConfig
from quantlib.errors import ParameterError

FILL_COLUMNS: tuple[str, ...] = ("combo", "time", "side", "price", "size", "fee")


@dataclass
class BacktestResult:
    """Outcome of :func:`quantlib.backtest.run_backtest` for one or many parameter combinations.

    Attributes
    ----------
    equity : DataFrame, one column per combination (column ``i`` = ``params[i]``), index = bars.
    fills : DataFrame with columns ``combo, time, side (+1 buy / -1 sell), price, size, fee``
        (``price`` includes slippage, ``size`` is base units > 0); engines may add columns such
        as ``symbol`` or ``level``.
    trades : DataFrame of round trips (engine specific columns, always ``combo`` and ``pnl``).
    metrics : DataFrame, one row per combination, columns from
        :data:`quantlib.backtest.metrics.METRIC_NAMES`.
    params : the validated parameter dict of each combination.
    kind : strategy kind name.
    config : the :class:`BacktestConfig` used.
    positions : optional DataFrame of position (base units) per bar and combination.
    extras : engine-specific objects: the signal engine stores the vectorbt ``Portfolio`` under
        ``"portfolio"`` (a lone combination is simulated twice there, so its portfolio has one
        extra duplicate column), ``"targets"`` (target per bar and column) and ``"symbols"``.

    Examples
    --------
    >>> from quantlib.backtest import run_backtest
    >>> from quantlib.data import load
    >>> res = run_backtest("ma_cross", load("sample:bars=500"), {"fast": 5, "slow": 20})
    >>> list(res.metrics.columns)[:3]
    ['total_return', 'cagr', 'ann_volatility']
    """

    equity: pd.DataFrame
    fills: pd.DataFrame
    trades: pd.DataFrame
    metrics: pd.DataFrame
    params: list[dict[str, Any]]
    kind: str = ""
    config: BacktestConfig = field(default_factory=BacktestConfig)
    positions: pd.DataFrame | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.equity.shape[1] != len(self.params):
            raise ParameterError(
                f"BacktestResult: equity has {self.equity.shape[1]} columns but "
                f"{len(self.params)} parameter combinations"
            )
        missing = [c for c in FILL_COLUMNS if c not in self.fills.columns]
        if missing:
            raise ParameterError(f"BacktestResult.fills: missing column(s) {missing}")

    @property
    def n_combos(self) -> int:
        return len(self.params)

    def params_frame(self) -> pd.DataFrame:
        """Parameters as a DataFrame (one row per combination) aligned with ``metrics``."""
        return pd.DataFrame(self.params, index=self.metrics.index)

    def table(self) -> pd.DataFrame:
        """Parameters and metrics side by side, one row per combination."""
        return pd.concat([self.params_frame(), self.metrics], axis=1)

    def best(self, metric: str = "sharpe", *, maximize: bool = True) -> int:
        """Combination index with the best ``metric`` (NaN rows never win)."""
        if metric not in self.metrics.columns:
            raise ParameterError(
                f"metric {metric!r} is unknown; expected one of {list(self.metrics.columns)}"
            )
        col = self.metrics[metric].astype(float)
        if col.isna().all():
            raise ParameterError(f"metric {metric!r} is NaN for every combination")
        return int(col.idxmax() if maximize else col.idxmin())

    def fills_of(self, combo: int = 0) -> pd.DataFrame:
        """Fills of one combination, in time order."""
        return self.fills[self.fills["combo"] == combo].reset_index(drop=True)

    def summary(self, combo: int | None = None) -> pd.DataFrame:
        """Headline table: for one combination a metric/value column, else the ranked table."""
        if combo is not None:
            row = self.metrics.iloc[combo]
            info = {"kind": self.kind, **{f"param.{k}": v for k, v in self.params[combo].items()},
                    "first_bar": self.equity.index[0], "last_bar": self.equity.index[-1],
                    "n_bars": len(self.equity), **row.to_dict()}
            return pd.DataFrame({"value": pd.Series(info, dtype=object)})
        table = self.table()
        if "sharpe" in table and table["sharpe"].notna().any():
            table = table.sort_values("sharpe", ascending=False)
        return table

    def __repr__(self) -> str:
        span = f"{self.equity.index[0]} .. {self.equity.index[-1]}" if len(self.equity) else "empty"
        return (f"BacktestResult(kind={self.kind!r}, combos={self.n_combos}, bars={len(self.equity)},"
                f" fills={len(self.fills)}, span={span})")


__all__ = ["BacktestResult", "FILL_COLUMNS"]
