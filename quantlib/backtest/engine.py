"""Backtests of registered kinds: signal kinds on vectorbt, grid kinds on the numba grid engine.

Signal kinds produce target positions (``+1/0/-1``). Their *changes* become vectorbt signals:
entering a long target is an entry, leaving it an exit (same for shorts), so a stop that closes a
position does not re-open it until the target changes again. With ``execution="next_open"`` a
target decided at bar t's close is filled at bar t+1's open (plus slippage and fees); the last
bar's decision is never filled. All parameter combinations (and all symbols) are columns of ONE
``vectorbt.Portfolio.from_signals`` call; several symbols share one cash account per
combination (``cash_sharing=True``, grouped by combination), settled within a bar in
column (symbol) order. Stop-loss, take-profit and trailing exits follow the rule stated in
``quantlib/core/stop_rule.py``, which paper and live trading apply.

How vectorbt is made to follow the rule where a signal exit is due at the open
    ``from_signals`` checks a bar's stops before its orders, against the bar's open, low and
    high; it cannot be told to let an order go first. The rule wants, on a bar whose open fills
    an order that closes or reverses the position (``execution="next_open"`` only), the stops
    checked against the open alone. vectorbt's simulator reads ``high`` and ``low`` for nothing
    but that check and the trailing base that follows it (``simulate_from_signals_nb`` in
    ``vectorbt/portfolio/nb.py``: the "Resolve current bar" block; ``open`` also bounds the
    valuation price, so it is passed unchanged). So on exactly those bars and columns
    :func:`_stop_check_range` hands vectorbt the open as high and low: its own stop code then
    applies the rule (a gap still exits at the open), and on every other bar it stays the
    independent reference it was. ``tests/backtest/test_stop_open_order.py`` checks the fills
    against a plain-Python reference of the rule with the engine vectorbt picks (its Rust
    simulator when ``vectorbt-rust`` is installed; the numba one gave the same fills when
    forced with ``vbt.settings["engine"] = "numba"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from quantlib.backtest.grid import run_grid, run_wrapped_grid
from quantlib.backtest.metrics import compute_metrics_frame, pnl_per_combo
from quantlib.backtest.orders_nb import positions_and_flows_nb, single_asset_equity_nb
from quantlib.backtest.result import FILL_COLUMNS, BacktestResult
from quantlib.core.config import BacktestConfig
from quantlib.core.kinds import indicator_cache
from quantlib.core.registry import StrategyKind, get_kind
from quantlib.data import validate_ohlcv
from quantlib.data.timeframes import infer_timeframe
from quantlib.errors import DataError, ParameterError


def resolve_kind(kind: str | StrategyKind) -> StrategyKind:
    """A registered kind by name, or the kind object itself."""
    if isinstance(kind, StrategyKind):
        return kind
    if not isinstance(kind, str):
        raise ParameterError(f"kind: expected a kind name or StrategyKind, got {kind!r}")
    return get_kind(kind)


def validate_params_list(
    kind: StrategyKind, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    """Validated parameter dicts: None -> defaults, a dict -> one combination, a list -> many."""
    if params is None:
        return [kind.validate({})]
    if isinstance(params, Mapping):
        return [kind.validate(params)]
    if isinstance(params, pd.DataFrame):
        params = params.to_dict("records")
    if not isinstance(params, Sequence) or isinstance(params, str) or len(params) == 0:
        raise ParameterError(
            f"params: expected None, a dict or a non-empty list of dicts, got {params!r}"
        )
    out = []
    for i, p in enumerate(params):
        if not isinstance(p, Mapping):
            raise ParameterError(f"params[{i}]: expected a dict, got {p!r}")
        try:
            out.append(kind.validate(p))
        except ParameterError as exc:
            raise ParameterError(f"params[{i}]: {exc}") from None
    return out


def as_frames(data: pd.DataFrame | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Validate one frame or a ``{symbol: frame}`` mapping; align symbols on common bars."""
    if isinstance(data, pd.DataFrame):
        frames = {str(data.attrs.get("symbol", "asset")): data}
    elif isinstance(data, Mapping) and data:
        frames = dict(data)
    else:
        raise DataError(f"data: expected an OHLCV DataFrame or a non-empty {{symbol: DataFrame}} "
                        f"mapping, got {type(data).__name__}")
    for symbol, df in frames.items():
        validate_ohlcv(df, name=f"data[{symbol!r}]" if len(frames) > 1 else None)
    if len(frames) > 1:
        common = None
        for df in frames.values():
            common = df.index if common is None else common.intersection(df.index)
        if len(common) < 2:
            raise DataError(f"data: symbols {list(frames)} share fewer than 2 timestamps")
        aligned = {}
        for symbol, df in frames.items():
            attrs = dict(df.attrs)
            aligned[symbol] = df.loc[common]
            aligned[symbol].attrs.update(attrs)
        frames = aligned
    return frames


def run_backtest(
    kind: str | StrategyKind,
    data: pd.DataFrame | Mapping[str, pd.DataFrame],
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    config: BacktestConfig | Mapping[str, Any] | None = None,
    *, informative: Mapping[str, Any] | None = None,
) -> BacktestResult:
    """Backtest ``kind`` on ``data`` for one or many parameter combinations.

    Parameters
    ----------
    kind : registered kind name (``"ma_cross"``...) or a :class:`StrategyKind`.
    data : canonical OHLCV frame, or ``{symbol: frame}`` for one shared-cash portfolio per
        combination (signal kinds only).
    params : None (defaults), a dict, or a list of dicts broadcast as columns in one call.
    config : :class:`BacktestConfig` or a dict of its fields.
    informative : informative input name -> its data (frame), for a kind's inputs that are not
        its base data resampled (e.g. another symbol); see :mod:`quantlib.core.informative`.

    Returns
    -------
    BacktestResult with one equity column and one metrics row per combination.

    Examples
    --------
    >>> from quantlib.data import load
    >>> res = run_backtest("ma_cross", load("sample:bars=500"),
    ...                    [{"fast": 5, "slow": 20}, {"fast": 10, "slow": 40}])
    >>> res.equity.shape
    (500, 2)
    """
    kind = resolve_kind(kind)
    config = BacktestConfig.coerce(dict(config) if isinstance(config, Mapping) else config)
    params_list = validate_params_list(kind, params)
    frames = as_frames(data)
    if kind.engine == "grid":
        if len(frames) > 1:
            raise ParameterError(f"strategy kind {kind.name!r}: the grid engine trades one symbol;"
                                 f" got {len(frames)} symbols {list(frames)}")

        frame = next(iter(frames.values()))
        if kind.grid_params is not None:  # a kind wrapping the grid (e.g. regime_grid)
            return run_wrapped_grid(kind, frame, params_list, config)
        return run_grid(frame, params_list, config)
    if kind.engine != "signals":
        raise ParameterError(f"strategy kind {kind.name!r}: unknown engine {kind.engine!r}; "
                             "expected 'signals' or 'grid'")
    return _run_signals(kind, frames, params_list, config, informative)


def target_matrix(kind: StrategyKind, frames: Mapping[str, pd.DataFrame],
                  params_list: Sequence[Mapping[str, Any]],
                  informative: Mapping[str, Any] | None = None) -> np.ndarray:
    """Targets for every (combination, symbol) column, combination-major: shape (bars, C*S)."""
    n_bars = len(next(iter(frames.values())))
    out = np.empty((n_bars, len(params_list) * len(frames)))
    with indicator_cache():  # each distinct indicator window is computed once per symbol
        col = 0
        for p in params_list:
            for df in frames.values():
                out[:, col] = kind.signals(df, p, informative=informative)
                col += 1
    return out


def check_signal_config(config: BacktestConfig) -> None:
    """Refuse the configurations no signal engine simulates (this one and the rule engine).

    Examples
    --------
    >>> check_signal_config(BacktestConfig(direction="both", size_type="value", size=100.0))
    """
    if config.sl_stop is not None and config.trail_stop is not None:
        raise ParameterError("BacktestConfig: sl_stop and trail_stop cannot both be set "
                             "(one stop-loss, fixed or trailing); choose one")
    if config.direction == "both" and config.size_type == "percent":
        # a reversal is one order of the whole position plus the entry: defined for a fixed
        # notional, not for a fraction of cash (splitting it over two bars would misstate fills)
        raise ParameterError("BacktestConfig: direction='both' needs size_type='value' (a fixed "
                             "notional per entry); size_type='percent' cannot reverse a position "
                             "in one order")


def _orders_from_targets(target: np.ndarray, direction: str) -> dict[str, np.ndarray]:
    prev = np.vstack([np.zeros((1, target.shape[1])), target[:-1]])
    if direction == "longonly":
        target, prev = np.maximum(target, 0.0), np.maximum(prev, 0.0)
    elif direction == "shortonly":
        target, prev = np.minimum(target, 0.0), np.minimum(prev, 0.0)
    long_now, long_prev = target > 0, prev > 0
    short_now, short_prev = target < 0, prev < 0
    # A flip long <-> short is one opposite entry (vectorbt reverses the position in one order);
    # exits fire only when the target goes flat.
    flat = target == 0
    return {"entries": long_now & ~long_prev, "exits": flat & long_prev,
            "short_entries": short_now & ~short_prev, "short_exits": flat & short_prev}


def _closing_orders(target: np.ndarray, direction: str) -> np.ndarray:
    """Bars x columns where the target, clipped to ``direction``, stops being long or stops
    being short: the order of that decision closes or reverses the position."""
    side = (target > 0).view(np.int8) - (target < 0).view(np.int8)  # -1, 0, 1
    if direction == "longonly":
        np.maximum(side, 0, out=side)
    elif direction == "shortonly":
        np.minimum(side, 0, out=side)
    out = np.zeros(side.shape, bool)
    # on sides -1/0/1, "was long and is no longer, or was short and is no longer" is
    # "was on a side and is not on that one"
    out[1:] = (side[:-1] != 0) & (side[1:] != side[:-1])
    return out


def _stop_check_range(target: np.ndarray, direction: str, open_: np.ndarray, high: np.ndarray,
                      low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """High and low vectorbt checks stops against (next-open execution, stops set): the open
    on the bars whose open fills an order closing or reversing the position (decided at the
    previous close), the bar's own elsewhere; see the module docstring."""
    closing = _closing_orders(target, direction)
    due = np.vstack([np.zeros((1, closing.shape[1]), bool), closing[:-1]])
    if not due.any():
        return high, low
    return np.where(due, open_, high), np.where(due, open_, low)


def _run_signals(kind: StrategyKind, frames: dict[str, pd.DataFrame],
                 params_list: list[dict[str, Any]], config: BacktestConfig,
                 informative: Mapping[str, Any] | None = None) -> BacktestResult:
    import vectorbt as vbt

    symbols = list(frames)
    n_sym, n_combo = len(symbols), len(params_list)
    first = frames[symbols[0]]
    index = first.index
    target = target_matrix(kind, frames, params_list, informative)
    # With vectorbt's numba engine (the fallback when vectorbt-rust is absent) the simulator is
    # not cached on disk and numba specialises it on array layouts, which differ between one
    # group and several; simulating a lone combination twice keeps one compiled version per
    # process (the duplicate is dropped in _collect). The Rust engine compiles nothing.
    n_sim = max(n_combo, 2)
    sim_target = np.tile(target, (1, 2)) if n_combo == 1 else target
    orders = _orders_from_targets(sim_target, config.direction)

    def wide(column: str) -> np.ndarray:
        block = np.column_stack([frames[s][column].to_numpy(np.float64) for s in symbols])
        # One symbol: a single column that vectorbt broadcasts over every combination without
        # copying it (same 2-D float64 layout, so no extra numba compilation).
        return block if n_sym == 1 else np.tile(block, (1, n_sim))

    close = wide("close")
    if config.execution == "next_open":
        # Decision at bar t's close -> order at bar t+1's open.
        orders = {k: np.vstack([np.zeros((1, v.shape[1]), bool), v[:-1]]) for k, v in orders.items()}
        price = wide("open")
    else:
        price = close
    close_frame = np.broadcast_to(close, (len(index), n_sim * n_sym))
    columns = pd.MultiIndex.from_arrays(
        [np.repeat(np.arange(n_sim), n_sym), np.tile(symbols, n_sim)], names=["combo", "symbol"]
    )
    check_signal_config(config)
    stop_loss = config.trail_stop if config.trail_stop is not None else config.sl_stop
    # Every configuration calls vectorbt with the same argument types (NaN = no stop, direction
    # carried by the four signal arrays, always grouped with shared cash) so a numba simulator
    # compiles once per process instead of once per option combination.
    open_, high, low = wide("open"), wide("high"), wide("low")
    if config.execution == "next_open" and (stop_loss is not None or config.tp_stop is not None):
        # a signal exit due at the open comes before the bar's stops (stop_rule.py)
        high, low = _stop_check_range(sim_target, config.direction, open_, high, low)
    kwargs: dict[str, Any] = dict(
        open=open_, high=high, low=low,
        sl_stop=np.nan if stop_loss is None else stop_loss,
        sl_trail=config.trail_stop is not None,
        tp_stop=np.nan if config.tp_stop is None else config.tp_stop,
        stop_entry_price="fillprice", upon_opposite_entry="reverse",
        cash_sharing=True, group_by=columns.get_level_values("combo"),
    )
    pf = vbt.Portfolio.from_signals(
        # A RangeIndex, not the tz-aware timestamps: vectorbt's wrappers turn a tz-aware index
        # into an object array on every accessor (seconds on large sweeps); results are
        # re-indexed by timestamp in _collect.
        close=pd.DataFrame(close_frame, columns=columns, copy=False),
        price=price,
        **orders,
        size=config.size,
        size_type=config.size_type,
        fees=config.fees,
        slippage=config.slippage,
        init_cash=config.init_cash,
        freq=pd.Timedelta(index[1] - index[0]) if len(index) > 1 else None,
        **kwargs,
    )
    return _collect(pf, kind, symbols, index, params_list, config, target, close)


def _equity_from_orders(rec: np.ndarray, close: np.ndarray, n_cols: int, n_sym: int,
                        init_cash: float) -> tuple[np.ndarray, np.ndarray]:
    """Equity per combination and position per column from the order records.

    Cheaper than ``Portfolio.value()`` on grouped shared-cash portfolios and the same sums:
    cash = init_cash + cumulative cash flow of the group, position = cumulative signed size.
    ``close`` is one column per symbol (single symbol) or already one per column.
    """
    n_bars = close.shape[0]
    signed = np.where(rec["side"] == 0, rec["size"], -rec["size"])
    position, flow = positions_and_flows_nb(rec["idx"], rec["col"], signed,
                                            -signed * rec["price"] - rec["fees"], n_bars, n_cols)
    if n_sym == 1:  # skip the per-group sums (full-size copies) on single-symbol sweeps
        return single_asset_equity_nb(position, flow, np.ascontiguousarray(close),
                                      float(init_cash)), position
    close = close[:, :n_cols]
    cash = init_cash + np.cumsum(flow.reshape(n_bars, -1, n_sym).sum(axis=2), axis=0)
    equity = cash + (position * close).reshape(n_bars, -1, n_sym).sum(axis=2)
    return equity, position


def _collect(pf, kind: StrategyKind, symbols: list[str], index: pd.DatetimeIndex,
             params_list: list[dict[str, Any]], config: BacktestConfig,
             target: np.ndarray, close: np.ndarray) -> BacktestResult:
    n_sym, n_combo = len(symbols), len(params_list)
    n_cols = n_combo * n_sym
    rec = pf.orders.values
    rec = rec[rec["col"] < n_cols]  # drop the duplicate of a lone combination
    value, position = _equity_from_orders(rec, close, n_cols, n_sym, config.init_cash)
    equity = pd.DataFrame(value, index=index, columns=pd.RangeIndex(n_combo, name="combo"),
                          copy=False)
    assets = position.reshape(len(index), n_combo, n_sym)
    exposed = (np.abs(assets) > 0).any(axis=2)

    fills = pd.DataFrame({
        "combo": rec["col"] // n_sym,
        "time": index[rec["idx"]],
        "side": np.where(rec["side"] == 0, 1, -1),
        "price": rec["price"],
        "size": rec["size"],
        "fee": rec["fees"],
        "symbol": np.asarray(symbols, dtype=object)[rec["col"] % n_sym],
    })
    fills = fills.sort_values(["combo", "time"], kind="stable").reset_index(drop=True)
    traded = np.bincount(fills["combo"], weights=fills["price"] * fills["size"], minlength=n_combo)
    fees = np.bincount(fills["combo"], weights=fills["fee"], minlength=n_combo)

    tr = pf.trades.values
    tr = tr[tr["col"] < n_cols]
    trades = pd.DataFrame({
        "combo": tr["col"] // n_sym,
        "symbol": np.asarray(symbols, dtype=object)[tr["col"] % n_sym],
        "direction": np.where(tr["direction"] == 0, 1, -1),
        "entry_time": index[tr["entry_idx"]],
        "exit_time": index[tr["exit_idx"]],
        "size": tr["size"],
        "entry_price": tr["entry_price"],
        "exit_price": tr["exit_price"],
        "fees": tr["entry_fees"] + tr["exit_fees"],
        "pnl": tr["pnl"],
        "return": tr["return"],
        "closed": tr["status"] == 1,
    }).sort_values(["combo", "entry_time"], kind="stable").reset_index(drop=True)
    closed = trades[trades["closed"]]  # sorted by combo
    metrics = compute_metrics_frame(
        equity,
        trade_pnl=pnl_per_combo(closed["combo"].to_numpy(), closed["pnl"].to_numpy(), n_combo),
        position=exposed,
        traded_value=traded,
        fees_paid=fees,
        timeframe=config.timeframe or infer_timeframe(index),
        year_days=config.year_days,
        init_cash=config.init_cash,
        benchmark=close[:, :n_sym],  # buy and hold of the traded symbol(s), equal weight
    )
    # One symbol: base units held; several: 1.0 while any symbol is held (per-symbol units are
    # in extras["portfolio"].assets()).
    positions = pd.DataFrame(assets[:, :, 0] if n_sym == 1 else exposed.astype(float),
                             index=index, columns=equity.columns, copy=False)
    return BacktestResult(
        equity=equity, fills=fills[[*FILL_COLUMNS, "symbol"]], trades=trades, metrics=metrics,
        params=list(params_list), kind=kind.name, config=config, positions=positions,
        extras={"portfolio": pf, "symbols": symbols,
                "targets": pd.DataFrame(target, index=index, copy=False)},
    )


__all__ = ["run_backtest", "resolve_kind", "validate_params_list", "as_frames", "target_matrix",
           "check_signal_config"]
