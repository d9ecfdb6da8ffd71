"""The exit rule: when a stop-loss, take-profit or trailing stop closes a position, and at what
price. Backtest (vectorbt's ``Portfolio.from_signals`` as ``quantlib/backtest/engine.py`` calls
it), paper runner and live runner follow this one rule; paper and live call the functions below.

The rule, in words
    A stop is *armed* by the fill that opens (or reverses) a position: its base price is that
    fill's price, slippage and all (``stop_entry_price="fillprice"``). The fill's own bar is
    never checked: the check of a bar comes before its orders, and the position did not exist
    yet. From the next bar on, each bar ``t`` is checked once, before any order of bar ``t``,
    against its open, low and high (against its open alone on the bars of the next section):

    - stop-loss level: ``base * (1 - sl)`` for a long, ``base * (1 + sl)`` for a short;
    - take-profit level: ``base * (1 + tp)`` for a long, ``base * (1 - tp)`` for a short;
    - a level the bar *opens* beyond (a gap) fills at the open; a level inside the bar's
      ``low..high`` fills at the level itself; otherwise nothing happens this bar;
    - the stop-loss is checked before the take-profit (a bar that reaches both exits at the
      stop-loss);
    - a trailing stop is a stop-loss whose base is the best price since entry: after the bar's
      check (so a bar never raises the level it is checked against) the base becomes the bar's
      high when above it (long) or its low when below it (short).

    An exit closes the whole position as one order at the exit price with the fee but *no
    slippage* (vectorbt's stop-limit exit), and it replaces the bar's signal: an order decided
    at the previous close that would have filled at this bar's open is dropped. The stops are
    cleared once flat; the target must change again before a new entry (a stopped-out long
    whose signal is still long stays flat).

A signal exit due at the open comes first
    One kind of bar is checked differently: a bar whose open fills an order, decided at the
    previous close, that *closes or reverses* the position (the target was long and is no
    longer long, or was short and is no longer short: :func:`closes_at_open`). Only the open
    of such a bar happens before that order, so the stops of the position it closes are
    checked against the open alone: the bar is seen as ``high = low = open``, for the check
    and for the trailing base. A level the bar opens beyond (a gap) still exits at the open,
    as a stop, without slippage, and still replaces the order (a flip then stays flat); any
    other level is not reached, the order fills at the open as usual, and nothing the bar does
    later concerns the old position. A position the order opens (a flip) is armed by its fill
    and its own bar is not checked, as for any entry. With ``execution="close"`` orders fill
    at the close, after the whole bar: nothing changes there, nor on any bar without such an
    order.

    Why: a stop checked against the whole bar would replace an exit the bot sends at the open
    by a level the bar reaches only later (pessimistic for a stop-loss under the open,
    optimistic for a take-profit above it). No bot knows at the open what the bar will reach;
    live trading sells at the open and cancels its resting exits (``resting_exits.py``). Every
    engine applies this: ``run_backtest`` (by handing vectorbt the open as such bars' high and
    low), the fused sweeps (``sweep_nb.py``, ``sweep_portfolio_nb.py``), the rule engine, the
    paper broker (through :func:`checked_range`) and live trading.

Examples
--------
>>> exit_price(1.0, 100.0, 0.05, 100.0, 0.10, trail=False, open_=99.0, high=101.0, low=94.0)
(95.0, 'sl')
>>> exit_price(1.0, 100.0, 0.05, 100.0, 0.10, trail=False, open_=112.0, high=115.0, low=111.0)
(112.0, 'tp')
"""

from __future__ import annotations

import math


def _level_hit(position: float, base: float, stop: float, open_: float, high: float, low: float,
               below: bool) -> float:
    """Fill price of one stop on a bar (NaN: not hit); ``below`` = a stop-loss."""
    if (position > 0) == below:  # long stop-loss or short take-profit: a level under the base
        level = base * (1 - stop)
        if open_ <= level:
            return open_
        return level if low <= level <= high else math.nan
    level = base * (1 + stop)
    if level <= open_:
        return open_
    return level if low <= level <= high else math.nan


def exit_price(position: float, sl_base: float, sl_stop: float | None, tp_base: float,
               tp_stop: float | None, *, trail: bool, open_: float, high: float,
               low: float) -> tuple[float, str]:
    """``(price, which)`` of the exit bar ``(open_, high, low)`` triggers, ``(nan, "")`` if none.

    ``which`` is ``"sl"``, ``"trail"`` or ``"tp"``. ``trail`` only names the stop-loss; its base
    moves with :func:`trail_base`.
    """
    if position == 0:
        return math.nan, ""
    if sl_stop is not None:
        price = _level_hit(position, sl_base, sl_stop, open_, high, low, True)
        if not math.isnan(price):
            return price, "trail" if trail else "sl"
    if tp_stop is not None:
        price = _level_hit(position, tp_base, tp_stop, open_, high, low, False)
        if not math.isnan(price):
            return price, "tp"
    return math.nan, ""


def closes_at_open(prev_target: float, target: float) -> bool:
    """Whether the order from ``prev_target`` to ``target`` closes or reverses the position.

    Pass the targets clipped to the traded direction (long-only: negatives as 0).

    Examples
    --------
    >>> closes_at_open(1.0, 0.0), closes_at_open(-1.0, 1.0), closes_at_open(0.0, 1.0)
    (True, True, False)
    """
    return (prev_target > 0 and not target > 0) or (prev_target < 0 and not target < 0)


def checked_range(open_: float, high: float, low: float, closing: bool) -> tuple[float, float]:
    """``(high, low)`` the bar's stop check sees: the open alone when an order due at the
    open closes or reverses the position (``closing``), else the bar's own."""
    if closing:
        return open_, open_
    return high, low


def trail_base(position: float, base: float, high: float, low: float) -> float:
    """The trailing stop's base after a checked bar: the best price seen since entry."""
    if position > 0 and high > base:
        return high
    if position < 0 and low < base:
        return low
    return base


def stop_distances(risk) -> tuple[float | None, float | None, bool]:
    """``(stop-loss distance, take-profit distance, trailing?)`` of a spec's risk block."""
    if risk.trail_stop is not None:
        return risk.trail_stop, risk.tp_stop, True
    return risk.sl_stop, risk.tp_stop, False


__all__ = ["exit_price", "trail_base", "stop_distances", "closes_at_open", "checked_range"]
