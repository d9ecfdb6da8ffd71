"""Signal backtests on the project's own order and stop rules, without vectorbt.

``quantlib backtest --strategy`` runs one parameter combination of a spec; importing vectorbt
alone costs longer than the whole command may take. This engine simulates the same thing as
:func:`quantlib.backtest.engine.run_backtest` for signal kinds, with the rules the paper broker
trades with: targets become entry/exit signals as in the engine, each signal is filled by
``quantlib/core/order_rule_nb.py`` and stops follow ``quantlib/core/stop_rule.py``.
Several symbols share one cash account and are settled within a bar in symbol order, each
completely (its stop check, then its signal) before the next, as the engine's grouped
portfolio does; a signal exit or flip due at the open comes before the bar's stops, as
stop_rule.py states. Equity, positions and metrics come from the fills with the engine's own
functions, so a result differs from ``run_backtest``'s only where the fills do (the tests
check agreement to 1e-9 relative).

Examples
--------
>>> from quantlib.data import load
>>> res = run_signal_rules("ma_cross", load("sample:bars=300"), {"fast": 5, "slow": 20})
>>> res.equity.shape, "portfolio" in res.extras
((300, 1), False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quantlib.backtest.engine import (
    _closing_orders,
    _equity_from_orders,
    _orders_from_targets,
    as_frames,
    check_signal_config,
    resolve_kind,
    target_matrix,
)
from quantlib.backtest.metrics import compute_metrics_frame, pnl_per_combo
from quantlib.backtest.result import FILL_COLUMNS, BacktestResult
from quantlib.core.config import BacktestConfig
from quantlib.core.order_rule_nb import BAD_INPUT, FILLED, PERCENT, VALUE, signal_fill_nb
from quantlib.core.stop_rule import checked_range, exit_price, trail_base
from quantlib.data.timeframes import infer_timeframe
from quantlib.errors import ParameterError

# record layout of the fills, the fields _equity_from_orders reads (vectorbt's order records
# carry the same names; side 0 = buy, 1 = sell)
_FILL_DTYPE = np.dtype([("idx", np.int64), ("col", np.int64), ("size", np.float64),
                        ("price", np.float64), ("fees", np.float64), ("side", np.int64)])


@dataclass
class _Leg:
    """One symbol's share of the account and its open trade."""

    position: float = 0.0
    debt: float = 0.0
    sl_base: float = math.nan
    tp_base: float = math.nan
    entry: dict[str, float] | None = None  # open trade: idx, price, size, fees, direction


@dataclass
class _Book:
    """The shared cash account, the fills and the closed trades of a run."""

    cash: float
    free_cash: float
    fills: list[tuple[int, int, float, float, float, int]] = field(default_factory=list)
    trades: list[dict[str, float]] = field(default_factory=list)


def run_signal_rules(
    kind: Any,
    data: pd.DataFrame | Mapping[str, pd.DataFrame],
    params: Mapping[str, Any] | None = None,
    config: BacktestConfig | Mapping[str, Any] | None = None,
    *, informative: Mapping[str, Any] | None = None,
) -> BacktestResult:
    """Backtest one parameter combination of a signal kind with the order and stop rules.

    Parameters
    ----------
    kind : registered signal kind name or :class:`~quantlib.core.registry.StrategyKind`.
    data : canonical OHLCV frame, or ``{symbol: frame}`` for one shared-cash portfolio.
    params : the kind's parameters (None: defaults).
    config : :class:`BacktestConfig` or a dict of its fields.
    informative : informative input name -> its data, as for ``run_backtest``.

    Returns
    -------
    BacktestResult with the columns ``run_backtest`` gives (``extras`` has no vectorbt
    portfolio).

    Examples
    --------
    >>> from quantlib.data import load
    >>> res = run_signal_rules("ma_cross", load("sample:bars=300"), {"fast": 5, "slow": 20},
    ...                        {"fees": 0.002})
    >>> bool((res.fills["fee"] > 0).all())
    True
    """
    kind = resolve_kind(kind)
    if kind.engine != "signals":
        raise ParameterError(f"strategy kind {kind.name!r}: the rule engine simulates signal "
                             f"kinds; this one runs on the {kind.engine!r} engine")
    config = BacktestConfig.coerce(dict(config) if isinstance(config, Mapping) else config)
    check_signal_config(config)  # the same refusals as run_backtest
    params_list = [kind.validate(dict(params or {}))]
    frames = as_frames(data)
    symbols = list(frames)
    index = frames[symbols[0]].index
    target = target_matrix(kind, frames, params_list, informative)
    prices = {name: np.column_stack([frames[s][name].to_numpy(np.float64) for s in symbols])
              for name in ("open", "high", "low", "close")}
    book = _simulate(prices, target, config)
    return _result(kind, symbols, index, params_list, config, target, prices["close"], book)


def _signals(target: np.ndarray, config: BacktestConfig) -> np.ndarray:
    """Per (bar, symbol) the four signal flags acting on that bar (last axis: enter long, exit
    long, enter short, exit short)."""
    orders = _orders_from_targets(target, config.direction)
    flags = np.stack([orders[k] for k in ("entries", "exits", "short_entries", "short_exits")],
                     axis=-1)
    if config.execution == "next_open":  # decided at bar t's close, filled at bar t+1's open
        flags = np.concatenate([np.zeros_like(flags[:1]), flags[:-1]])
    return flags


def _simulate(prices: dict[str, np.ndarray], target: np.ndarray,
              config: BacktestConfig) -> _Book:
    """Every bar, every symbol in order: its stop check, then its signal (module docstring)."""
    flags = _signals(target, config)
    order_price = prices["open"] if config.execution == "next_open" else prices["close"]
    stop_loss = config.trail_stop if config.trail_stop is not None else config.sl_stop
    has_stops = stop_loss is not None or config.tp_stop is not None
    book = _Book(cash=float(config.init_cash), free_cash=float(config.init_cash))
    legs = [_Leg() for _ in range(target.shape[1])]
    active = flags.any(axis=2)
    closing = np.zeros(target.shape, bool)  # an order at the open closes or reverses
    if config.execution == "next_open":
        closing[1:] = _closing_orders(target, config.direction)[:-1]
    n_bars, n_sym = target.shape
    for t in range(n_bars):
        for s in range(n_sym):
            leg = legs[s]
            if has_stops and leg.position != 0 and _stop_exit(book, leg, t, s, prices, config,
                                                              stop_loss, bool(closing[t, s])):
                continue  # the exit replaces the bar's signal
            if active[t, s]:
                _fill(book, leg, t, s, tuple(bool(f) for f in flags[t, s]),
                      float(order_price[t, s]), config.slippage, config)
    _close_open_trades(book, legs, prices["close"])
    return book


def _stop_exit(book: _Book, leg: _Leg, t: int, s: int, prices: dict[str, np.ndarray],
               config: BacktestConfig, stop_loss: float | None, closing: bool) -> bool:
    """Check the leg's stops on bar ``t`` (against its open alone when an order at the open
    closes or reverses the leg: ``closing``); on a hit close it at the exit price (no
    slippage)."""
    bar_open, high, low = (float(prices[k][t, s]) for k in ("open", "high", "low"))
    high, low = checked_range(bar_open, high, low, closing)
    trail = config.trail_stop is not None
    price, _ = exit_price(leg.position, leg.sl_base, stop_loss, leg.tp_base, config.tp_stop,
                          trail=trail, open_=bar_open, high=high, low=low)
    if trail:  # the trailing base moves after the check, whether or not the bar exits
        leg.sl_base = trail_base(leg.position, leg.sl_base, high, low)
    if math.isnan(price):
        return False
    long = leg.position > 0
    _fill(book, leg, t, s, (False, long, False, not long), price, 0.0, config)
    return True


def _fill(book: _Book, leg: _Leg, t: int, s: int, flags: tuple[bool, bool, bool, bool],
          price: float, slippage: float, config: BacktestConfig) -> None:
    """One bar's signals on one leg through the order rule; the book keeps the fill."""
    sizing = PERCENT if config.size_type == "percent" else VALUE
    before = leg.position
    status, detail, side, units, fill_price, fee, cash, position, debt, free_cash = (
        signal_fill_nb(book.cash, before, leg.debt, book.free_cash, *flags, float(config.size),
                       sizing, price, float(config.fees), slippage))
    if status == BAD_INPUT:
        raise ParameterError(f"bar {t}, symbol column {s}: argument {detail} of the order rule "
                             f"is outside its domain (price {price!r}, config {config})")
    if status != FILLED:  # refused for lack of cash or below the minimum size: no order
        return
    book.cash, book.free_cash = float(cash), float(free_cash)
    leg.position, leg.debt = float(position), float(debt)
    book.fills.append((t, s, float(units), float(fill_price), float(fee), 0 if side > 0 else 1))
    _book_trade(book, leg, t, s, before, float(units), float(fill_price), float(fee))
    if leg.position == 0:
        leg.sl_base = leg.tp_base = math.nan
    elif before == 0 or (before > 0) != (leg.position > 0):  # opened or reversed: arm the stops
        leg.sl_base = leg.tp_base = float(fill_price)


def _book_trade(book: _Book, leg: _Leg, t: int, s: int, before: float, units: float,
                price: float, fee: float) -> None:
    """Close the leg's open trade with the part of the fill that reduces the position, and
    open a new one with the rest; a reversal's fee is split between them by units."""
    closing = min(units, abs(before)) if leg.entry is not None else 0.0
    if closing > 0:
        entry = leg.entry
        exit_fee = fee * closing / units
        if leg.position != 0 and (leg.position > 0) == (before > 0):
            # a cover cut short by cash: a trade for the part closed, with its share of the
            # entry fee; the rest stays open
            share = closing / entry["size"]
            part = {**entry, "size": closing, "fees": entry["fees"] * share}
            book.trades.append(_trade_row(part, s, t, price, exit_fee, closed=True))
            leg.entry = {**entry, "size": entry["size"] - closing,
                         "fees": entry["fees"] - part["fees"]}
            return
        book.trades.append(_trade_row(entry, s, t, price, exit_fee, closed=True))
        leg.entry = None
    opening = units - closing
    if leg.position != 0 and opening > 0:
        leg.entry = {"idx": t, "price": price, "size": opening, "fees": fee - fee * closing / units,
                     "direction": 1.0 if leg.position > 0 else -1.0}


def _trade_row(entry: dict[str, float], s: int, t: int, price: float, exit_fee: float, *,
               closed: bool) -> dict[str, float]:
    """A round trip: pnl net of both fees, return on the entry's traded value."""
    size, direction = entry["size"], entry["direction"]
    fees = entry["fees"] + exit_fee
    pnl = direction * size * (price - entry["price"]) - fees
    return {"symbol": s, "direction": direction, "entry_idx": entry["idx"], "exit_idx": t,
            "size": size, "entry_price": entry["price"], "exit_price": price, "fees": fees,
            "pnl": pnl, "return": pnl / (size * entry["price"]), "closed": closed}


def _close_open_trades(book: _Book, legs: list[_Leg], close: np.ndarray) -> None:
    """Open trades valued at the last close (not closed, so not in the trade metrics)."""
    last = close.shape[0] - 1
    for s, leg in enumerate(legs):
        if leg.entry is not None:
            book.trades.append(_trade_row(leg.entry, s, last, float(close[last, s]), 0.0,
                                          closed=False))


def _result(kind: Any, symbols: list[str], index: pd.DatetimeIndex, params_list: list[dict],
            config: BacktestConfig, target: np.ndarray, close: np.ndarray,
            book: _Book) -> BacktestResult:
    n_sym = len(symbols)
    rec = np.array(book.fills, dtype=_FILL_DTYPE)
    equity_values, position = _equity_from_orders(rec, close, n_sym, n_sym, config.init_cash)
    equity = pd.DataFrame(equity_values, index=index, columns=pd.RangeIndex(1, name="combo"))
    exposed = (np.abs(position) > 0).any(axis=1, keepdims=True)
    names = np.asarray(symbols, dtype=object)
    fills = pd.DataFrame({"combo": np.zeros(len(rec), np.int64), "time": index[rec["idx"]],
                          "side": np.where(rec["side"] == 0, 1, -1), "price": rec["price"],
                          "size": rec["size"], "fee": rec["fees"], "symbol": names[rec["col"]]})
    trades = _trades_frame(book.trades, names, index)
    closed = trades[trades["closed"]]
    metrics = compute_metrics_frame(
        equity, trade_pnl=pnl_per_combo(closed["combo"].to_numpy(), closed["pnl"].to_numpy(), 1),
        position=exposed, traded_value=np.array([float((rec["price"] * rec["size"]).sum())]),
        fees_paid=np.array([float(rec["fees"].sum())]),
        timeframe=config.timeframe or infer_timeframe(index), year_days=config.year_days,
        init_cash=config.init_cash, benchmark=close)
    positions = pd.DataFrame(position[:, :1] if n_sym == 1 else exposed.astype(float),
                             index=index, columns=equity.columns)
    return BacktestResult(
        equity=equity, fills=fills[[*FILL_COLUMNS, "symbol"]], trades=trades, metrics=metrics,
        params=params_list, kind=kind.name, config=config, positions=positions,
        extras={"symbols": symbols, "targets": pd.DataFrame(target, index=index)})


def _trades_frame(rows: list[dict[str, float]], names: np.ndarray,
                  index: pd.DatetimeIndex) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["symbol", "direction", "entry_idx", "exit_idx", "size",
                                        "entry_price", "exit_price", "fees", "pnl", "return",
                                        "closed"])
    table = table.sort_values(["entry_idx", "symbol"], kind="stable")  # as the engine's
    entry_idx = table["entry_idx"].to_numpy(np.int64)
    out = pd.DataFrame({
        "combo": np.zeros(len(table), np.int64),
        "symbol": names[table["symbol"].to_numpy(np.int64)],
        "direction": table["direction"].to_numpy(np.int64),
        "entry_time": index[entry_idx], "exit_time": index[table["exit_idx"].to_numpy(np.int64)],
        "size": table["size"].to_numpy(float), "entry_price": table["entry_price"].to_numpy(float),
        "exit_price": table["exit_price"].to_numpy(float), "fees": table["fees"].to_numpy(float),
        "pnl": table["pnl"].to_numpy(float), "return": table["return"].to_numpy(float),
        "closed": table["closed"].to_numpy(bool)})
    return out


__all__ = ["run_signal_rules"]
