"""Grid-trading engine: the pandas wrapper over :mod:`quantlib.core.grid_nb` (backtests,
sweeps, level history). The ``grid`` kind and the one-bar stepping API (:class:`GridState`,
:func:`step_bar`) the live runner uses live in :mod:`quantlib.core.grid_kind` (no pandas)
and are re-exported here.

The simulation rule (levels, orders, the default "bar" fill model that paper and exchange trading
follow and the optimistic "touch" option, costs, stop-out, active mask, volatility re-centring) is
documented once, in :mod:`quantlib.core.grid_nb`; :func:`compare_fill_models` runs a grid
under both fill models.

Bounds: ``lower``/``upper`` (absolute prices, > 0) when given, else
``ref * (1 - lower_pct)`` and ``ref * (1 + upper_pct)`` with ``ref`` = **the open of the first bar
of the data** (known before any order is placed, so no lookahead; a live run started on the same
first bar gets the same grid). Order size per level: ``order_value`` (quote notional) when > 0, else
``order_size * config.init_cash``. Fees and slippage come from :class:`BacktestConfig`.

Examples
--------
>>> from quantlib.data import load
>>> from quantlib.backtest.grid import run_grid
>>> res = run_grid(load("sample:bars=300"), [{"spacing": "geometric", "n_levels": 8}])
>>> list(res.fills.columns)[:6]
['combo', 'time', 'side', 'price', 'size', 'fee']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from quantlib.backtest.metrics import compute_metrics_frame, pnl_per_combo
from quantlib.backtest.result import BacktestResult
from quantlib.backtest.trades_nb import grid_round_trips_nb
from quantlib.core import grid_nb as nb
from quantlib.core.config import BacktestConfig
from quantlib.core.grid_kind import (  # noqa: F401 - re-exported: the grid's public API
    FILL_MODELS,
    GRID_KIND,
    GRID_PARAMS,
    SPACINGS,
    GridState,
    grid_bars,
    params_row,
    run_kernel,
    step_bar,
    wrapped_active,
)
from quantlib.core.registry import get_kind
from quantlib.errors import ParameterError

_FILL_CAP = 1024


def _prepare(data, params_list, config, active):
    config = BacktestConfig.coerce(config)
    if isinstance(params_list, Mapping) or params_list is None:
        params_list = [params_list or {}]
    kind = get_kind("grid")
    checked = [kind.validate(p) for p in params_list]
    o, h, lo, c = grid_bars(data)
    rows = np.array([params_row(p, float(o[0]), config) for p in checked]).reshape(-1, nb.N_PARAMS)
    if active is None:
        mask = np.ones(len(c), dtype=np.bool_)
    else:
        mask = np.asarray(active)
        if mask.shape != (len(c),) or mask.dtype != np.bool_:
            raise ParameterError(f"active: expected a bool array of shape ({len(c)},), got "
                                 f"dtype {mask.dtype} shape {mask.shape}")
    return config, checked, (o, h, lo, c), rows, np.ascontiguousarray(mask)


def _round_trips(out: tuple, index: pd.DatetimeIndex, max_levels: int) -> pd.DataFrame:
    # A buy at level i is closed by the next sell of level i, or pro rata by a stop-out (-1).
    combo, level, entry_bar, exit_bar, entry_price, exit_price, size, pnl = \
        grid_round_trips_nb(*out[3:10], max_levels)
    return pd.DataFrame({"combo": combo, "level": level, "entry_time": index[entry_bar],
                         "exit_time": index[exit_bar], "entry_price": entry_price,
                         "exit_price": exit_price, "size": size, "pnl": pnl})


def run_grid(data: pd.DataFrame, params_list: Sequence[Mapping[str, Any]] | Mapping | None = None,
             config: BacktestConfig | dict | None = None, *,
             active: np.ndarray | None = None) -> BacktestResult:
    """Backtest one or many grid parameter combinations in one kernel call.

    Parameters
    ----------
    data : canonical OHLCV frame.
    params_list : ``grid`` kind parameter dicts (or one dict).
    config : fees, slippage, init_cash, year_days.
    active : optional bool per bar; ``active[t]`` must be known before bar ``t`` opens (shift a
        close-based regime signal by one bar). Inactive bars place no buys (see grid_nb).

    Returns
    -------
    BacktestResult with equity, fills (plus ``level`` and ``bar`` columns; stop-out level -1),
    round-trip trades, metrics and ``positions`` (base units held); ``extras["cash"]``.

    Examples
    --------
    >>> from quantlib.data import load
    >>> res = run_grid(load("sample:bars=300"), [{"n_levels": n} for n in (5, 10)])
    >>> res.equity.shape[1]
    2
    """
    config, checked, bars, rows, mask = _prepare(data, params_list, config, active)
    out = run_kernel(bars, mask, rows, config, True, _FILL_CAP)
    n_fills = out[9]
    if n_fills.max(initial=0) > _FILL_CAP:  # rerun with a log large enough for every combo
        out = run_kernel(bars, mask, rows, config, True, int(n_fills.max()))
    cash, inv, equity = out[0], out[1], out[2]
    fb, fs, fp, fz, ff, fl = out[3:9]
    combo_ids = np.repeat(np.arange(len(rows)), n_fills)
    take = np.arange(fb.shape[1])[None, :] < n_fills[:, None]
    index = data.index
    fills = pd.DataFrame({
        "combo": combo_ids, "time": index[fb[take]], "side": fs[take].astype(np.int64),
        "price": fp[take], "size": fz[take], "fee": ff[take], "level": fl[take], "bar": fb[take],
    })
    trades = _round_trips(out, index, int(rows[:, nb.P_N_LEVELS].max()))
    cols = pd.RangeIndex(len(rows))
    equity_df = pd.DataFrame(equity, index=index, columns=cols)
    inv_df = pd.DataFrame(inv, index=index, columns=cols)
    traded = (fills["price"] * fills["size"]).groupby(fills["combo"]).sum()
    metrics = compute_metrics_frame(
        equity_df,
        trade_pnl=pnl_per_combo(trades["combo"].to_numpy(), trades["pnl"].to_numpy(), len(rows)),
        position=inv_df, traded_value=traded.reindex(cols, fill_value=0.0).to_numpy(),
        fees_paid=out[13], timeframe=config.timeframe or data.attrs.get("timeframe"),
        year_days=config.year_days, init_cash=config.init_cash,
        benchmark=data["close"].to_numpy())  # buy and hold of the traded symbol
    return BacktestResult(equity=equity_df, fills=fills, trades=trades, metrics=metrics,
                          params=checked, kind="grid", config=config, positions=inv_df,
                          extras={"cash": pd.DataFrame(cash, index=index, columns=cols)})


def run_wrapped_grid(kind: Any, data: pd.DataFrame, params_list: Sequence[Mapping[str, Any]],
                     config: BacktestConfig | dict | None = None) -> BacktestResult:
    """Backtest a kind that wraps the grid (``kind.grid_params``/``kind.grid_allowed``), one
    kernel call per parameter set (each has its own ``active`` mask); results stacked as combos,
    the masks in ``extras["active"]``."""
    runs = []
    for params in params_list:
        checked = kind.validate(params)
        active = wrapped_active(kind, data, checked)
        runs.append((checked, run_grid(data, [kind.grid_params(checked)], config, active=active),
                     active))
    return stack_results(runs, kind.name)


def stack_results(runs: Sequence[tuple[dict, BacktestResult, np.ndarray]],
                  kind_name: str) -> BacktestResult:
    """One result from single-combo grid results ``(params, result, active mask)``."""
    def stack(attr: str) -> pd.DataFrame:
        parts = []
        for combo, (_, res, _) in enumerate(runs):
            frame = getattr(res, attr).copy()
            if "combo" in frame.columns:
                frame["combo"] = combo
            parts.append(frame)
        return pd.concat(parts, ignore_index=True)

    first = runs[0][1]
    cols = pd.RangeIndex(len(runs))
    index = first.equity.index

    def columns(get) -> pd.DataFrame:
        return pd.DataFrame(np.column_stack([get(r) for r in runs]), index=index, columns=cols)

    return BacktestResult(
        equity=columns(lambda r: r[1].equity.iloc[:, 0]), fills=stack("fills"),
        trades=stack("trades"), metrics=pd.concat([r.metrics for _, r, _ in runs],
                                                  ignore_index=True),
        params=[p for p, _, _ in runs], kind=kind_name, config=first.config,
        positions=columns(lambda r: r[1].positions.iloc[:, 0]),
        extras={"active": columns(lambda r: r[2])})


def sweep_grid(data: pd.DataFrame, params_list: Sequence[Mapping[str, Any]],
               config: BacktestConfig | dict | None = None, *, active: np.ndarray | None = None,
               chunk: int = 2048) -> pd.DataFrame:
    """Final figures of many combinations without storing series (memory O(chunk)).

    Returns one row per combination: ``final_equity, total_return, max_drawdown, n_fills,
    fees_paid, final_inventory``.

    Examples
    --------
    >>> from quantlib.data import load
    >>> sweep_grid(load("sample:bars=300"), [{"n_levels": n} for n in (4, 8)]).shape
    (2, 6)
    """
    config, _, bars, rows, mask = _prepare(data, params_list, config, active)
    parts = []
    for start in range(0, len(rows), chunk):
        out = run_kernel(bars, mask, rows[start:start + chunk], config, False, 0)
        parts.append(np.column_stack([out[12], out[12] / config.init_cash - 1.0, out[14],
                                      out[9], out[13], out[11]]))
    return pd.DataFrame(np.vstack(parts), columns=["final_equity", "total_return", "max_drawdown",
                                                   "n_fills", "fees_paid", "final_inventory"])


def compare_fill_models(data: pd.DataFrame, params: Mapping[str, Any] | None = None,
                        config: BacktestConfig | dict | None = None) -> BacktestResult:
    """The same grid under each fill model, in one kernel call: combination ``k`` runs
    ``FILL_MODELS[k]`` ("bar", then "touch"); summarise it with :func:`fill_model_summary`.

    Examples
    --------
    >>> from quantlib.data import load
    >>> res = compare_fill_models(load("sample:bars=300"), {"n_levels": 8})
    >>> [p["fill_model"] for p in res.params]
    ['bar', 'touch']
    """
    base = dict(params or {})
    return run_grid(data, [dict(base, fill_model=model) for model in FILL_MODELS], config)


def fill_model_summary(result: BacktestResult) -> pd.DataFrame:
    """Round trips, realized pnl (closed round trips, fees included), fills, fees, final equity,
    total return and max drawdown of each combination of a :func:`compare_fill_models` result
    (one column per fill model), and ``touch_vs_bar``: how much larger the optimistic "touch"
    figure is, as a fraction of the "bar" one.

    Examples
    --------
    >>> from quantlib.data import load
    >>> res = compare_fill_models(load("sample:bars=300"), {"n_levels": 8})
    >>> list(fill_model_summary(res).columns)
    ['bar', 'touch', 'touch_vs_bar']
    """
    models = [p.get("fill_model") for p in result.params]
    if result.kind != "grid" or sorted(models) != sorted(FILL_MODELS):
        raise ParameterError(f"result: expected a grid result with one combination per fill "
                             f"model {list(FILL_MODELS)}, got kind {result.kind!r} with "
                             f"fill models {models}")
    columns = {}
    for combo, model in enumerate(models):
        trades = result.trades[result.trades["combo"] == combo]
        metrics = result.metrics.iloc[combo]
        columns[model] = {
            "round_trips": float(len(trades)), "realized_pnl": float(trades["pnl"].sum()),
            "fills": float((result.fills["combo"] == combo).sum()),
            "fees_paid": float(metrics["fees_paid"]),
            "final_equity": float(result.equity[combo].iloc[-1]),
            "total_return": float(metrics["total_return"]),
            "max_drawdown": float(metrics["max_drawdown"])}
    table = pd.DataFrame(columns)[list(FILL_MODELS)]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["touch_vs_bar"] = table["touch"] / table["bar"] - 1.0
    return table


def level_history(data: pd.DataFrame, params: Mapping[str, Any],
                  config: BacktestConfig | dict | None = None, *,
                  active: np.ndarray | None = None) -> pd.DataFrame:
    """Grid levels in force during each bar (one column per level), by stepping :class:`GridState`.

    "bar" fill model: the levels the book resting during bar ``t`` was decided on (at close
    ``t-1``); "touch": the levels after bar ``t``'s open (a volatility grid re-centres there).
    Fixed grids give constant columns; a volatility grid shows its re-centring; NaN before the
    volatility grid exists and after a stop-out.

    Examples
    --------
    >>> from quantlib.data import load
    >>> level_history(load("sample:bars=50"), {"n_levels": 3}).shape
    (50, 3)
    """
    o, h, lo, c = grid_bars(data)
    state = GridState.start(params, float(o[0]), config)
    out = np.full((len(c), len(state.levels)), np.nan)
    decided_at_close = state.params["fill_model"] == "bar"
    for t in range(len(c)):
        if decided_at_close and not state.stopped:
            out[t] = state.levels
        step_bar(state, (o[t], h[t], lo[t], c[t]), active=True if active is None else active[t])
        if not decided_at_close and not state.stopped:
            out[t] = state.levels
    return pd.DataFrame(out, index=data.index, columns=[f"level_{j}" for j in range(out.shape[1])])


__all__ = ["FILL_MODELS", "GRID_KIND", "GRID_PARAMS", "GridState", "SPACINGS",
           "compare_fill_models", "fill_model_summary", "level_history", "params_row", "run_grid",
           "step_bar", "sweep_grid"]
