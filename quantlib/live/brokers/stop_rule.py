"""The exit rule: when a stop-loss, take-profit or trailing stop closes a position, and at what
price. Backtest (vectorbt's ``Portfolio.from_signals`` as ``quantlib/backtest/engine.py`` calls
it), paper runner and live runner follow this one rule; paper and live call the functions below.

The rule, in words
    A stop is *armed* by the fill that opens (or reverses) a position: its base price is that
    fill's price, slippage and all (``stop_entry_price="fillprice"``). The fill's own bar is
    never checked: the check of a bar comes before its orders, and the position did not exist
    yet. From the next bar on, each bar ``t`` is checked once, before any order of bar ``t``,
    against its open, low and high:

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

Where the rule looks inside the bar
    Checking the stops before the bar's orders means a signal exit due at bar ``t``'s open is
    replaced by a level bar ``t`` reaches only *later* (a stop-loss under the open: the backtest
    is pessimistic; a take-profit above it: optimistic). No bot can know at the open what the
    bar will reach: live trading sells at the open there (``resting_exits.py``; measured in the
    README, tested in ``tests/live/test_exits_take_profit.py``).

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


__all__ = ["exit_price", "trail_base", "stop_distances"]
