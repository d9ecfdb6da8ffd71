"""One way to show a metric: the report tables, the notebooks' recorded figures and the index.

Rules (by metric name, see :func:`metric_kind`):

- returns, drawdowns, volatility, rates and shares: percent, 1 decimal (``-64.4 %``);
- counts (``n_trades``, ``*_bars``, ``combos``): integers with thousands separators;
- money (``expectancy``, ``fees_paid``, ``final_equity``): 2 decimals with separators;
- durations in days: 1 decimal and ``d``;
- ratios (Sharpe, beta, profit factor...): 3 significant digits;
- missing or undefined (None, NaN): ``n/a (reason)``, never ``None`` or ``nan``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from quantlib.errors import ParameterError

_PERCENT = re.compile(
    r"(^|_)(return|returns|cagr|drawdown|volatility|vol|win_rate|exposure|alpha|hit_rate|"
    r"accuracy|share|fraction|pct)($|_)")
_COUNT = re.compile(r"(^n_|_bars$|^bars$|combos$|^trials$|_count$|^n$|_trials$|_folds$|^folds$)")
_MONEY = re.compile(r"(expectancy|fees_paid|final_equity|pnl|equity|cash)")
_DAYS = re.compile(r"_days$")

# Why a metric can be undefined, by name; the generic reason otherwise.
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(win_rate|profit_factor|expectancy)$"), "no closed trades"),
    (re.compile(r"(benchmark|excess|alpha|beta|correlation|information_ratio|capture)"),
     "no benchmark"),
    (re.compile(r"(sharpe|sortino|volatility)"), "zero volatility or too few bars"),
    (re.compile(r"calmar"), "no drawdown"),
    (re.compile(r"holdout|oos|out_of_sample"), "no out-of-sample window"),
)


def metric_kind(name: str) -> str:
    """``"percent"``, ``"count"``, ``"money"``, ``"days"`` or ``"ratio"`` for a metric name.

    Examples
    --------
    >>> [metric_kind(n) for n in ("total_return", "n_trades", "fees_paid", "sharpe")]
    ['percent', 'count', 'money', 'ratio']
    """
    key = str(name).lower()
    if _DAYS.search(key):
        return "days"
    if _COUNT.search(key):
        return "count"
    if _PERCENT.search(key) and "ratio" not in key:
        return "percent"
    if _MONEY.search(key):
        return "money"
    return "ratio"


def na_reason(name: str) -> str:
    """Why ``name`` may be undefined (shown as ``n/a (reason)``)."""
    for pattern, reason in _REASONS:
        if pattern.search(str(name).lower()):
            return reason
    return "undefined"


def format_metric(name: str, value: Any, reason: str | None = None) -> str:
    """``value`` of metric ``name`` as a reader should see it (module docstring rules).

    Examples
    --------
    >>> format_metric("total_return", -0.644125)
    '-64.4 %'
    >>> format_metric("n_trades", 76.0), format_metric("max_drawdown_bars", 4942.0)
    ('76', '4,942')
    >>> format_metric("sharpe", 1.23456), format_metric("holdout_sharpe", None)
    ('1.23', 'n/a (zero volatility or too few bars)')
    >>> format_metric("win_rate", float("nan"))
    'n/a (no closed trades)'
    """
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalar
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"n/a ({reason or na_reason(name)})"
    if not isinstance(value, int | float):
        return str(value)
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    kind = metric_kind(name)
    if kind == "percent":
        return f"{100 * value:.1f} %"
    if kind == "count":
        return f"{round(value):,}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "days":
        return f"{value:,.1f} d"
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0:
        return "0"
    # Three significant digits, never scientific notation for the sizes ratios take.
    digits = max(2 - int(math.floor(math.log10(abs(value)))), 0)
    return f"{value:,.{min(digits, 6)}f}"


def format_metrics(metrics: Mapping[str, Any]) -> dict[str, str]:
    """Every metric of ``metrics`` formatted (same keys)."""
    return {str(k): format_metric(str(k), v) for k, v in metrics.items()}


def format_table(table: Any) -> Any:
    """A copy of a metrics table with every value formatted for reading.

    A one-column table indexed by metric name (``BacktestResult.summary(combo)``) is formatted by
    row name; any other table (``result.summary()``, ``result.metrics``) by column name.

    Examples
    --------
    >>> import pandas as pd
    >>> format_table(pd.DataFrame({"sharpe": [1.234], "n_trades": [76.0]})).iloc[0].tolist()
    ['1.23', '76']
    """
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise ParameterError(f"table: expected a DataFrame, got {type(table).__name__}")
    out = table.astype(object).copy()
    if table.shape[1] == 1:
        column = table.columns[0]
        out[column] = [format_metric(str(name), value) for name, value in table[column].items()]
        return out
    for column in table.columns:
        out[column] = [format_metric(str(column), value) for value in table[column]]
    return out


__all__ = ["format_table", "format_metric", "format_metrics", "metric_kind", "na_reason"]
