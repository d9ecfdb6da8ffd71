"""The perp account rule: a linear USDT-margined perpetual swap on isolated margin.

This docstring is the rule; the functions below implement it and nothing else. The perp
backtest kernel (:mod:`quantlib.backtest.perp_nb`) steps bars with these functions, and the
plain-Python reference loop in ``tests/backtest/test_perp_reference.py`` is written from this
text alone.

Account
    ``cash`` (the wallet balance not posted as margin, USDT), ``qty`` (signed base units: > 0
    long, < 0 short), ``entry_price`` (the fill price of the open position) and ``margin`` (the
    isolated margin posted for it). One position at a time. Equity at a price ``P`` is
    ``cash + margin + qty * (P - entry_price)``.

Prices and costs
    A buy fills at ``price * (1 + slippage)``, a sale at ``price * (1 - slippage)``. Every fill
    pays ``fee`` times its traded notional (units times fill price) from cash. Which rate is
    the caller's choice: the backtest sends market orders at the next open, so it passes the
    taker rate; a limit order would pass the maker rate. An order for fewer than ``MIN_UNITS``
    base units is not placed.

Opening a position (``open_position_nb``)
    Leverage ``L >= 1``. The position's notional at its fill price is ``N``; its initial
    margin ``N / L`` moves from cash to ``margin`` and the fee ``N * fee`` leaves cash, so an
    entry costs ``N * (1 / L + fee)``. Sizing:
    ``PERCENT`` (a fraction ``x`` in (0, 1]): the entry spends ``x`` of the cash, margin and
    fee included: ``N = x * cash / (1 / L + fee)``; ``VALUE`` (a notional ``v``): ``v / price``
    units, valued at the order price before slippage. An entry that would cost more than the
    cash is cut to what the whole cash pays (as ``PERCENT`` with ``x = 1``); with no cash
    (``cash <= 0``) it is refused. With ``L = 1`` and no funding a long (or a short) is
    the same account as the spot order rule's (:mod:`quantlib.core.order_rule_nb`): same units, fees and
    equity at every price (the tests check it against the spot backtest).

Closing a position (``close_position_nb``)
    At market: the position's units are sold (a long) or bought back (a short) at the fill
    price ``F``; cash receives ``margin + qty * (F - entry_price) - fee``, margin becomes 0.

Flips
    A change of target from long to short (or back) is a close then an open at the same order
    price in one bar, each with its own fee (the open sized on the cash after the close).

Funding (``funding_nb``)
    At each funding timestamp an open position pays ``qty * mark * rate`` (``mark`` = the mark
    price at that time, ``rate`` a fraction per interval): a long pays when the rate is
    positive and receives when it is negative; a short the opposite. The payment is taken from
    (or added to) the position's isolated margin, as venues do in isolated mode, so funding
    moves the liquidation price. Flat: nothing.

Maintenance margin and liquidation (``liquidation_price_nb``, ``liquidate_nb``)
    Maintenance margin rate ``mmr`` (a fraction of notional, ``mmr * L < 1``). A position is
    liquidated when its isolated equity ``margin + qty * (mark - entry_price)`` falls to the
    maintenance margin ``mmr * |qty| * mark``, i.e. when the mark reaches the liquidation price
    ``(entry_price - margin / qty) / (1 - mmr)`` for a long and
    ``(entry_price + margin / |qty|) / (1 + mmr)`` for a short (a long whose price is <= 0 is
    never liquidated: at ``L = 1`` its margin covers any fall). Liquidation is triggered by the
    MARK price (its low for a long, its high for a short, and its open for a gap), never by the
    last price. The position is closed at the liquidation price ``P_liq``, never carried, and
    pays the liquidation fee ``liq_fee * |qty| * P_liq``, but never more than the isolated
    equity left, ``mmr * |qty| * P_liq``: the cash gets back ``max(0, (mmr - liq_fee) *
    |qty| * P_liq)``. The loss is therefore capped at the isolated margin.

A gap through the liquidation price
    When the mark opens beyond the liquidation price the outcome is the same: closed at the
    liquidation price with the capped loss. That is what an isolated-margin venue does to the
    trader: its liquidation engine takes the position over, and whatever the close-out
    achieves beyond the bankruptcy price is the insurance fund's gain or loss (or the
    auto-deleveraged counterparty's), never charged to the trader's other funds. Recording
    the fill at the gapped open instead would charge the trader more than the isolated margin,
    which no isolated venue does.

Tolerance
    Closing amounts that cancel within ``max(1e-9 * scale, 1e-12)`` are exactly zero.

Returned tuples name their fields in each function's docstring.
"""

from __future__ import annotations

from quantlib.jit import njit

MIN_UNITS = 1e-8  # smallest order, in base units
REL_TOL = 1e-9
ABS_TOL = 1e-12

# sizing of an entry (the spot rule's codes)
PERCENT = 0
VALUE = 1

# status of an open
OPENED = 1
TOO_SMALL = 2
NO_CASH = 3


@njit(cache=True)
def _clean_nb(value, scale):
    """``value``, exactly 0 when it is float residue relative to ``scale``."""
    return 0.0 if abs(value) <= max(REL_TOL * abs(scale), ABS_TOL) else value


@njit(cache=True, aot="f8(f8, f8, f8, f8)")
def liquidation_price_nb(qty, entry_price, margin, mmr):
    """Mark price at which the isolated position is liquidated (0.0 when flat or never).

    Examples
    --------
    >>> round(liquidation_price_nb(1.0, 100.0, 10.0, 0.005), 6)   # long at 10x
    90.452261
    >>> round(liquidation_price_nb(-1.0, 100.0, 10.0, 0.005), 6)  # short at 10x
    109.452736
    """
    if qty > 0:
        price = (entry_price - margin / qty) / (1.0 - mmr)
        return price if price > 0 else 0.0
    if qty < 0:
        return (entry_price + margin / -qty) / (1.0 + mmr)
    return 0.0


@njit(cache=True, aot="b1(f8, f8, f8, f8)")
def mark_reaches_nb(qty, liq_price, mark_low, mark_high):
    """True when a mark range ``[mark_low, mark_high]`` reaches the liquidation price."""
    if qty > 0:
        return liq_price > 0 and mark_low <= liq_price
    if qty < 0:
        return mark_high >= liq_price
    return False


@njit(cache=True, aot="Tuple((i8, f8, f8, f8, f8, f8, f8, f8))(f8, i8, f8, i8, f8, f8, f8, f8)")
def open_position_nb(cash, side, size, sizing, price, fee, slippage, leverage):
    """Open a position on ``side`` (+1 long, -1 short) from a flat account.

    Returns
    -------
    ``(status, qty, fill_price, fee_paid, cash, entry_price, margin, notional)``; the account
    is unchanged unless ``status == OPENED``.

    Examples
    --------
    >>> out = open_position_nb(1000.0, 1, 1.0, PERCENT, 100.0, 0.0, 0.0, 5.0)
    >>> out[0] == OPENED, out[1], out[4], out[6]
    (True, 50.0, 0.0, 1000.0)
    """
    fill = price * (1.0 + slippage) if side > 0 else price * (1.0 - slippage)
    per_notional = 1.0 / leverage + fee
    if cash <= 0:
        return NO_CASH, 0.0, fill, 0.0, cash, 0.0, 0.0, 0.0
    if sizing == PERCENT:
        notional = size * cash / per_notional
    else:
        notional = size / price * fill
        if notional * per_notional > cash * (1.0 + REL_TOL):  # cut to the whole cash
            notional = cash / per_notional
    units = notional / fill
    if units < MIN_UNITS:
        return TOO_SMALL, 0.0, fill, 0.0, cash, 0.0, 0.0, 0.0
    margin = notional / leverage
    fee_paid = notional * fee
    new_cash = _clean_nb(cash - margin - fee_paid, cash)
    return OPENED, side * units, fill, fee_paid, new_cash, fill, margin, notional


@njit(cache=True, aot="Tuple((f8, f8, f8, f8))(f8, f8, f8, f8, f8, f8, f8)")
def close_position_nb(cash, qty, entry_price, margin, price, fee, slippage):
    """Close the whole position at market.

    Returns
    -------
    ``(fill_price, fee_paid, pnl, cash)``: ``pnl`` is ``qty * (fill - entry_price)`` before
    fees; the new cash includes the released margin.

    Examples
    --------
    >>> close_position_nb(0.0, -2.0, 100.0, 40.0, 90.0, 0.0, 0.0)
    (90.0, 0.0, 20.0, 60.0)
    """
    fill = price * (1.0 - slippage) if qty > 0 else price * (1.0 + slippage)
    fee_paid = abs(qty) * fill * fee
    pnl = qty * (fill - entry_price)
    return fill, fee_paid, pnl, cash + margin + pnl - fee_paid


@njit(cache=True, aot="Tuple((f8, f8))(f8, f8, f8, f8)")
def funding_nb(qty, margin, mark, rate):
    """One funding payment on the open position.

    Returns
    -------
    ``(payment, margin)``: ``payment`` > 0 is paid by the trader, < 0 received; it comes out
    of (goes into) the isolated margin.

    Examples
    --------
    >>> funding_nb(2.0, 50.0, 100.0, 0.001)    # a long pays a positive rate
    (0.2, 49.8)
    >>> funding_nb(-2.0, 50.0, 100.0, 0.001)   # a short receives it
    (-0.2, 50.2)
    """
    payment = qty * mark * rate
    return payment, margin - payment


@njit(cache=True, aot="Tuple((f8, f8, f8, f8))(f8, f8, f8, f8, f8, f8)")
def liquidate_nb(cash, qty, entry_price, margin, mmr, liq_fee):
    """Close the position at its liquidation price, charging the capped liquidation fee.

    Returns
    -------
    ``(liq_price, fee_paid, pnl, cash)``; ``pnl`` is ``qty * (liq_price - entry_price)``.

    Examples
    --------
    >>> out = liquidate_nb(0.0, 1.0, 100.0, 10.0, 0.005, 0.01)   # fee capped at mmr
    >>> round(out[0], 6), round(out[1], 6), out[3]
    (90.452261, 0.452261, 0.0)
    """
    liq_price = liquidation_price_nb(qty, entry_price, margin, mmr)
    pnl = qty * (liq_price - entry_price)
    left = margin + pnl  # = mmr * |qty| * liq_price by the definition of the price
    fee_paid = min(liq_fee * abs(qty) * liq_price, max(left, 0.0))
    returned = _clean_nb(left - fee_paid, margin)
    return liq_price, fee_paid, pnl, cash + max(returned, 0.0)


__all__ = ["MIN_UNITS", "NO_CASH", "OPENED", "PERCENT", "TOO_SMALL", "VALUE",
           "close_position_nb", "funding_nb", "liquidate_nb", "liquidation_price_nb",
           "mark_reaches_nb", "open_position_nb"]
