"""The signal order rule: how one entry or exit signal becomes a fill on a cash account.

This docstring is the rule; the functions below implement it and nothing else. The paper broker
fills with it; the backtest simulates the same rule through vectorbt's ``Portfolio.from_signals``
and ``tests/core/test_order_rule_nb.py`` checks that both agree (relative 1e-9) on random
accounts and on real data.

Account
    ``cash`` (quote currency, >= 0), ``position`` (base units, signed: > 0 long, < 0 short),
    ``debt`` (what the open short units were sold for, >= 0) and ``free_cash`` (cash that does
    not back a short: cash minus twice the debt, so a short is backed by its own proceeds plus
    as much again from the trader's money).

Prices and costs
    A buy fills at ``price * (1 + slippage)``, a sale at ``price * (1 - slippage)`` (slippage is
    a fraction in [0, 1)). The fee is ``fees`` (a fraction in [0, 1)) of the traded value, units
    times fill price, paid in cash. There is no fixed fee per order and no rounding to a lot
    size: units are real numbers. An order for fewer than ``MIN_UNITS`` (1e-8) base units,
    after any cut for cash, is not placed (the minimum order size of vectorbt's defaults, which
    the backtest keeps).

Signals (the backtest derives at most one per bar from a change of target position)
    - *enter long*: flat -> buy the entry size; short -> reverse: one buy of the whole short
      plus the entry size; already long -> nothing (entries never add to a position).
    - *exit long*: long -> sell the whole position; otherwise nothing.
    - *enter short* and *exit short*: the mirror image (sales instead of buys).
    When the position is long only *enter short* and *exit long* act, in that order of
    precedence; when short only *enter long* and *exit short*; when flat *enter long* before
    *enter short*.

Entry size
    - ``PERCENT`` (a fraction ``x`` in (0, 1]): a long entry spends ``x`` of the cash, fee
      included: of the budget ``b = x * cash`` the notional is ``b / (1 + fees)``, the units are
      the notional over the buy price and the fee is the rest of the budget. A short entry sells
      ``x`` of the most units free cash can back, ``free_cash / (sell price * (1 + fees))``; it is
      refused when free cash is not positive. A reversal cannot be sized in percent (the
      backtest refuses direction ``both`` with percent sizing): the order is refused.
    - ``VALUE`` (a quote notional ``v``): the entry is ``v / price`` units, valued at the order
      price before slippage; a reversal trades the whole position plus those units.

Cash limits
    A buy whose cost, units times buy price plus fee, exceeds the cash is cut to what the whole
    cash pays for, fee included (a partial fill, sized like a percent entry with ``x = 1``). A
    buy with no cash at all is refused. Sales are never limited by cash: a short entered by
    value may take free cash below zero.

Bookkeeping of a fill
    A buy takes what it spends from cash and from free cash. When it covers a short, the covered
    units release their share of the debt at the short's average entry price (``debt /
    |position|``), and free cash gets twice the released debt back. A sale adds its proceeds net
    of fee to cash; the units it sells short add their value at the sell price to the debt, and
    free cash gets the net proceeds minus twice that value.

Tolerance
    Float sums drift, so amounts are compared with a tolerance: ``a`` and ``b`` agree when
    ``|a - b| <= max(1e-9 * max(|a|, |b|), 1e-12)``. An account field within 1e-12 of zero
    counts as zero; a buy that costs at most the cash within tolerance fills whole; a sum that
    cancels within tolerance (cash after spending it all, a position after closing it) is
    exactly zero; an order of ``MIN_UNITS`` within tolerance is placed.

Domain
    Cash and debt finite and >= 0, position and free cash finite, size > 0 (and <= 1 in
    percent), price finite and > 0, fees and slippage in [0, 1). Anything else is not an order
    but a broken account or configuration: the result says which argument (``BAD_INPUT``).

Results are tuples ``(status, detail, side, units, fill_price, fee, cash, position, debt,
free_cash)``: ``status`` one of the constants below, ``detail`` the index of the offending
argument when ``status == BAD_INPUT``, ``side`` +1 buy / -1 sell, and the account after the fill
(unchanged unless ``status == FILLED``).
"""

from __future__ import annotations

import math

from quantlib.jit import njit

REL_TOL = 1e-9
ABS_TOL = 1e-12
MIN_UNITS = 1e-8  # smallest order, in base units

# sizing of an entry
PERCENT = 0
VALUE = 1

# status of a signal
NO_ORDER = 0  # the signals ask for nothing in this position
FILLED = 1
TOO_SMALL = 2  # fewer than MIN_UNITS units
NO_CASH = 3  # a buy without cash, or a percent short without free cash
PERCENT_REVERSAL = 4  # a reversal sized in percent, which the rule does not define
BAD_INPUT = 5  # an argument out of its domain; detail = its index

BUY, SELL = 1, -1

# argument indices of signal_fill_nb named in BAD_INPUT results
ARG_CASH, ARG_POSITION, ARG_DEBT, ARG_FREE_CASH = 0, 1, 2, 3
ARG_SIZE, ARG_SIZING, ARG_PRICE, ARG_FEES, ARG_SLIPPAGE = 8, 9, 10, 11, 12


@njit(cache=True)
def _agree_nb(a, b):
    """``a`` and ``b`` are the same amount within the rule's tolerance."""
    return abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


@njit(cache=True)
def _at_most_nb(a, b):
    return a < b or _agree_nb(a, b)


@njit(cache=True)
def _sum_nb(a, b):
    """``a + b``, exactly zero when the two cancel within tolerance (so a closed position or a
    fully spent cash balance is 0.0, not float residue)."""
    if _agree_nb(a, -b):
        return 0.0
    return a + b


@njit(cache=True)
def _below_minimum_nb(units):
    return units < MIN_UNITS and not _agree_nb(units, MIN_UNITS)


@njit(cache=True)
def _zeroed_nb(x):
    return 0.0 if abs(x) <= ABS_TOL else x


@njit(cache=True)
def _outcome_nb(status, detail, cash, position, debt, free_cash):
    """A result without a fill: the account as it was."""
    return (status, detail, 0, 0.0, 0.0, 0.0, cash, position, debt, free_cash)


@njit(cache=True)
def _spend_all_nb(budget, buy_price, fee_rate):
    """Units and fee when the whole ``budget`` is spent, fee included (units 0: nothing to
    spend)."""
    notional = _zeroed_nb(budget) / (1.0 + fee_rate)
    if notional <= 0:
        return 0.0, 0.0
    return notional / buy_price, budget - notional


@njit(cache=True)
def _purchase_nb(cash, position, debt, free_cash, units, budget, buy_price, fee_rate):
    """Buy ``units`` (``units < 0``: as many as ``budget`` pays for) within the cash."""
    if cash == 0:
        return _outcome_nb(NO_CASH, 0, cash, position, debt, free_cash)
    if units < 0:
        units, fee = _spend_all_nb(budget, buy_price, fee_rate)
        spent = budget
    else:
        value = units * buy_price
        fee = value * fee_rate
        spent = value + fee
        if not _at_most_nb(spent, cash):  # short of cash: a partial fill with all of it
            units, fee = _spend_all_nb(cash, buy_price, fee_rate)
            spent = cash
    if units == 0:
        return _outcome_nb(NO_CASH, 0, cash, position, debt, free_cash)
    if _below_minimum_nb(units):
        return _outcome_nb(TOO_SMALL, 0, cash, position, debt, free_cash)
    new_position = _sum_nb(position, units)
    new_debt, new_free_cash = debt, _sum_nb(free_cash, -spent)
    if position < 0:  # covering: release the covered units' share of the debt
        covered = units if new_position < 0 else -position
        released = covered * (debt / -position)
        new_debt = _sum_nb(debt, -released)
        new_free_cash = _sum_nb(free_cash + 2.0 * released, -spent)
    return (FILLED, 0, BUY, units, buy_price, fee, _sum_nb(cash, -spent), new_position,
            new_debt, new_free_cash)


@njit(cache=True)
def _sale_nb(cash, position, debt, free_cash, units, sell_price, fee_rate):
    """Sell ``units``; the part beyond a long position is sold short."""
    if _below_minimum_nb(units):
        return _outcome_nb(TOO_SMALL, 0, cash, position, debt, free_cash)
    proceeds = units * sell_price
    fee = proceeds * fee_rate
    net = _sum_nb(proceeds, -fee)
    new_position = _sum_nb(position, -units)
    new_debt, new_free_cash = debt, _sum_nb(free_cash, net)
    if new_position < 0:  # some units sold short: they become debt, backed twice
        shorted = units if position < 0 else -new_position
        short_value = shorted * sell_price
        new_debt = debt + short_value
        new_free_cash = _sum_nb(free_cash, _sum_nb(net, -2.0 * short_value))
    return (FILLED, 0, SELL, units, sell_price, fee, _sum_nb(cash, net), new_position, new_debt,
            new_free_cash)


@njit(cache=True)
def _bad_argument_nb(cash, position, debt, free_cash, size, sizing, price, fees, slippage):
    """Index of the first argument outside its domain, or -1."""
    if not (cash >= 0 and math.isfinite(cash)):
        return ARG_CASH
    if not math.isfinite(position):
        return ARG_POSITION
    if not (debt >= 0 and math.isfinite(debt)):
        return ARG_DEBT
    if not math.isfinite(free_cash):
        return ARG_FREE_CASH
    if sizing != PERCENT and sizing != VALUE:
        return ARG_SIZING
    if not (size > 0 and math.isfinite(size)) or (sizing == PERCENT and size > 1):
        return ARG_SIZE
    if not (price > 0 and math.isfinite(price)):
        return ARG_PRICE
    if not (0 <= fees < 1):
        return ARG_FEES
    if not (0 <= slippage < 1):
        return ARG_SLIPPAGE
    return -1


@njit(cache=True,
      aot="Tuple((i8, i8, i8, f8, f8, f8, f8, f8, f8, f8))"
          "(f8, f8, f8, f8, b1, b1, b1, b1, f8, i8, f8, f8, f8)")
def signal_fill_nb(cash, position, debt, free_cash, enter_long, exit_long, enter_short,
                   exit_short, size, sizing, price, fees, slippage):
    """Apply the module's order rule to one bar's signals at order ``price``.

    Parameters
    ----------
    cash, position, debt, free_cash : the account before the order.
    enter_long, exit_long, enter_short, exit_short : the bar's signals.
    size : entry size, a fraction of cash (``sizing == PERCENT``) or a quote notional
        (``VALUE``).
    sizing : ``PERCENT`` or ``VALUE``.
    price : the order price before slippage (the next bar's open in the backtest).
    fees, slippage : fractions of traded value and of price.

    Returns
    -------
    ``(status, detail, side, units, fill_price, fee, cash, position, debt, free_cash)``.

    Examples
    --------
    >>> out = signal_fill_nb(1000.0, 0.0, 0.0, 1000.0, True, False, False, False,
    ...                      0.5, PERCENT, 100.0, 0.0, 0.0)
    >>> out[0] == FILLED, out[2] == BUY, out[3], out[6]
    (True, True, 5.0, 500.0)
    """
    bad = _bad_argument_nb(cash, position, debt, free_cash, size, sizing, price, fees,
                           slippage)
    if bad >= 0:
        return _outcome_nb(BAD_INPUT, bad, cash, position, debt, free_cash)
    cash, position = _zeroed_nb(cash), _zeroed_nb(position)
    debt, free_cash = _zeroed_nb(debt), _zeroed_nb(free_cash)
    buy_price, sell_price = price * (1.0 + slippage), price * (1.0 - slippage)
    if position > 0:
        if enter_short:
            if sizing == PERCENT:
                return _outcome_nb(PERCENT_REVERSAL, 0, cash, position, debt, free_cash)
            return _sale_nb(cash, position, debt, free_cash, position + size / price,
                            sell_price, fees)
        if exit_long:
            return _sale_nb(cash, position, debt, free_cash, position, sell_price, fees)
    elif position < 0:
        if enter_long:
            if sizing == PERCENT:
                return _outcome_nb(PERCENT_REVERSAL, 0, cash, position, debt, free_cash)
            return _purchase_nb(cash, position, debt, free_cash, -position + size / price,
                                cash, buy_price, fees)
        if exit_short:
            return _purchase_nb(cash, position, debt, free_cash, -position, cash, buy_price,
                                fees)
    elif enter_long:
        if sizing == PERCENT:  # spend the fraction of cash: units follow from the budget
            return _purchase_nb(cash, position, debt, free_cash, -1.0, size * cash, buy_price,
                                fees)
        return _purchase_nb(cash, position, debt, free_cash, size / price, cash, buy_price,
                            fees)
    elif enter_short:
        if sizing == VALUE:
            return _sale_nb(cash, position, debt, free_cash, size / price, sell_price, fees)
        if free_cash <= 0:
            return _outcome_nb(NO_CASH, 0, cash, position, debt, free_cash)
        most = free_cash / (sell_price * (1.0 + fees))
        return _sale_nb(cash, position, debt, free_cash, size * most, sell_price, fees)
    return _outcome_nb(NO_ORDER, 0, cash, position, debt, free_cash)


__all__ = ["BAD_INPUT", "BUY", "FILLED", "NO_CASH", "NO_ORDER", "PERCENT", "PERCENT_REVERSAL",
           "SELL", "TOO_SMALL", "VALUE", "signal_fill_nb"]
