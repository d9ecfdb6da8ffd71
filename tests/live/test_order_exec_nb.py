"""The live runner's port of vectorbt's order arithmetic is bit-identical to vectorbt's own.

``quantlib.live.brokers.order_exec_nb`` exists so the runner does not import vectorbt; paper
fills must still equal the backtest's to the bit. Each test runs the port and vectorbt 1.2's
numba functions on the same random account states and orders and compares every output bit
(NaN included) or the error raised.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit
from vectorbt.portfolio import enums
from vectorbt.portfolio import nb as vbt_nb

from quantlib.live.brokers import order_exec_nb as port
from quantlib.live.brokers.paper_fill_nb import NO_ORDER, paper_fill_nb

SETTINGS = settings(max_examples=400, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# Amounts around vectorbt's tolerances (1e-12 absolute, 1e-9 relative) exercise its snapping.
amounts = st.one_of(st.just(0.0), st.floats(1e-13, 1e-11), st.floats(1e-3, 1e6),
                    st.sampled_from([1.0, 100.0, 10_000.0]))
signed = st.one_of(amounts, amounts.map(lambda x: -x))
prices = st.one_of(st.floats(1e-3, 1e5), st.sampled_from([1.0, 100.0, 20_000.0]))
fees = st.one_of(st.just(0.0), st.floats(0.0, 0.01), st.floats(-0.001, 0.0))
slippages = st.one_of(st.just(0.0), st.floats(0.0, 0.01))


def _same(a: float, b: float) -> bool:
    """Bit equality for floats and ints, NaN equal to NaN."""
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a)(a) == b and (not isinstance(a, float) or math.copysign(1, a) ==
                                math.copysign(1, b))


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except ValueError as exc:
        return ("error", str(exc))


def _assert_same_outcome(ours, theirs) -> None:
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "error":
        assert ours[1] == theirs[1]
        return
    flat_ours = list(_flatten(ours[1]))
    flat_theirs = list(_flatten(theirs[1]))
    assert len(flat_ours) == len(flat_theirs)
    for a, b in zip(flat_ours, flat_theirs, strict=True):
        assert _same(float(a), float(b)), (ours[1], theirs[1])


def _flatten(value):
    if isinstance(value, tuple):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


@njit
def _vbt_execute(cash, position, debt, free_cash, val_price, value, size, price, size_type,
                 direction, fees, slippage):
    state = enums.ProcessOrderState(cash=cash, position=position, debt=debt,
                                    free_cash=free_cash, val_price=val_price, value=value,
                                    oidx=0, lidx=0)
    order = vbt_nb.order_nb(size=size, price=price, size_type=size_type, direction=direction,
                            fees=fees, slippage=slippage)
    new, result = vbt_nb.execute_order_nb(state, order)
    return ((new.cash, new.position, new.debt, new.free_cash),
            (result.status, result.status_info, result.size, result.price, result.fees,
             result.side))


@njit
def _vbt_paper_fill(cash, position, debt, free_cash, long_entry, long_exit, short_entry,
                    short_exit, order_size, size_type, price, fees, slippage):
    """What the paper broker did before the port: vectorbt's own functions."""
    accumulate = enums.AccumulationMode.Disabled
    if long_entry or short_entry:
        long_entry, long_exit, short_entry, short_exit, accumulate = \
            vbt_nb.resolve_opposite_entry_nb(position, long_entry, long_exit, short_entry,
                                             short_exit, enums.OppositeEntryMode.ReverseReduce,
                                             accumulate)
    size, size_type, direction = vbt_nb.signals_to_size_nb(
        position, long_entry, long_exit, short_entry, short_exit, order_size, size_type,
        accumulate, price)
    if size == 0:
        return (NO_ORDER, 0, 0.0, 0.0, 0.0, 0, cash, position, debt, free_cash)
    if direction == enums.Direction.ShortOnly:
        size = -size
    order = vbt_nb.order_nb(size=size, price=price, size_type=size_type, direction=direction,
                            fees=fees, slippage=slippage)
    value = cash + position * price if position != 0 else cash
    state = enums.ProcessOrderState(cash=cash, position=position, debt=debt,
                                    free_cash=free_cash, val_price=price, value=value, oidx=0,
                                    lidx=0)
    new, result = vbt_nb.execute_order_nb(state, order)
    return (result.status, result.status_info, result.size, result.price, result.fees,
            result.side, new.cash, new.position, new.debt, new.free_cash)


def test_enum_values_match_vectorbt() -> None:
    assert tuple(enums.SizeType) == (port.AMOUNT, port.VALUE, port.PERCENT, port.TARGET_AMOUNT,
                                     port.TARGET_VALUE, port.TARGET_PERCENT)
    assert len(enums.SizeType) == port.N_SIZE_TYPES
    assert tuple(enums.Direction) == (port.LONG_ONLY, port.SHORT_ONLY, port.BOTH)
    assert len(enums.Direction) == port.N_DIRECTIONS
    assert tuple(enums.OrderStatus) == (port.FILLED, port.IGNORED, port.REJECTED)
    info = enums.OrderStatusInfo
    assert (info.SizeNaN, info.PriceNaN, info.ValPriceNaN, info.ValueNaN, info.ValueZeroNeg,
            info.SizeZero, info.NoCashShort, info.NoCashLong, info.NoOpenPosition,
            info.CantCoverFees, info.MinSizeNotReached) == (
        port.INFO_SIZE_NAN, port.INFO_PRICE_NAN, port.INFO_VAL_PRICE_NAN, port.INFO_VALUE_NAN,
        port.INFO_VALUE_ZERO_NEG, port.INFO_SIZE_ZERO, port.INFO_NO_CASH_SHORT,
        port.INFO_NO_CASH_LONG, port.INFO_NO_OPEN_POSITION, port.INFO_CANT_COVER_FEES,
        port.INFO_MIN_SIZE_NOT_REACHED)
    assert tuple(enums.OrderSide) == (port.BUY, port.SELL)
    assert tuple(enums.AccumulationMode) == (port.ACC_DISABLED, port.ACC_BOTH,
                                             port.ACC_ADD_ONLY, port.ACC_REMOVE_ONLY)
    assert tuple(enums.OppositeEntryMode) == (port.OPP_IGNORE, port.OPP_CLOSE,
                                              port.OPP_CLOSE_REDUCE, port.OPP_REVERSE,
                                              port.OPP_REVERSE_REDUCE)


@SETTINGS
@given(cash=amounts, position=signed, debt=amounts, free_cash=signed,
       size=st.one_of(signed, st.just(np.inf), st.just(-np.inf), st.just(np.nan)),
       price=prices, size_type=st.integers(0, 5), direction=st.integers(0, 2), fees=fees,
       slippage=slippages)
def test_execute_order_is_bit_identical(cash, position, debt, free_cash, size, price, size_type,
                                        direction, fees, slippage) -> None:
    value = cash + position * price
    args = (cash, position, debt, free_cash, price, value, size, price, size_type, direction,
            fees, slippage)
    _assert_same_outcome(_outcome(port.execute_order_nb, *args),
                         _outcome(_vbt_execute, *args))


@SETTINGS
@given(position=signed, flags=st.tuples(*[st.booleans()] * 4), size=st.one_of(amounts,
       st.just(np.inf), st.just(np.nan)), size_type=st.integers(0, 2),
       accumulate=st.integers(0, 3), opposite=st.integers(0, 4), val_price=prices)
def test_signal_resolution_is_identical(position, flags, size, size_type, accumulate, opposite,
                                        val_price) -> None:
    resolved_ours = port.resolve_opposite_entry_nb(position, *flags, opposite, accumulate)
    resolved_theirs = vbt_nb.resolve_opposite_entry_nb(position, *flags, opposite, accumulate)
    assert tuple(resolved_ours) == tuple(resolved_theirs)
    args = (position, *resolved_ours[:4], size, size_type, resolved_ours[4], val_price)
    _assert_same_outcome(_outcome(port.signals_to_size_nb, *args),
                         _outcome(vbt_nb.signals_to_size_nb, *args))


@SETTINGS
@given(cash=amounts, position=signed, entry_price=prices, flags=st.tuples(*[st.booleans()] * 4),
       order_size=st.one_of(st.floats(0.01, 1.0), st.just(1.0), st.floats(10.0, 5e4),
                            st.just(np.inf)),
       size_type=st.sampled_from([port.PERCENT, port.VALUE]), price=prices, fees=fees,
       slippage=slippages)
def test_paper_fill_is_bit_identical_to_vectorbt(cash, position, entry_price, flags, order_size,
                                                 size_type, price, fees, slippage) -> None:
    # A consistent account: shorts carry debt at their entry price and free cash net of it.
    debt = abs(position) * entry_price if position < 0 else 0.0
    free_cash = cash - 2 * debt if position < 0 else cash
    args = (cash, position, debt, free_cash, *flags, order_size, size_type, price, fees,
            slippage)
    ours, theirs = _outcome(paper_fill_nb, *args), _outcome(_vbt_paper_fill, *args)
    _assert_same_outcome(ours, theirs)


def test_a_hand_built_buy_and_short_cover() -> None:
    """A worked example, independent of vectorbt: buy 50% of 1000 cash at 100 with 0.1% fees
    and 10 bps slippage, then cover a 2-unit short entered at 90."""
    account, result = port.execute_order_nb(1000.0, 0.0, 0.0, 1000.0, 100.0, 1000.0, 0.5,
                                            100.0, port.PERCENT, port.BOTH, 0.001, 0.001)
    adj_price = 100.0 * 1.001
    # cash-limited: spend 500 in total, fees included
    size = (500.0 / 1.001) / adj_price
    assert result[0] == port.FILLED and result[5] == port.BUY
    assert math.isclose(result[2], size, rel_tol=1e-15)
    assert math.isclose(result[3], adj_price, rel_tol=1e-15)
    assert math.isclose(result[4], 500.0 - 500.0 / 1.001, rel_tol=1e-12)
    assert math.isclose(account[0], 500.0, rel_tol=1e-15) and account[1] == result[2]

    # short 2 @ 90: debt 180, free cash = cash - 2*debt; buy 2 @ 80 closes it
    account, result = port.execute_order_nb(1180.0, -2.0, 180.0, 820.0, 80.0, 1020.0, 2.0, 80.0,
                                            port.AMOUNT, port.BOTH, 0.0, 0.0)
    assert result[0] == port.FILLED and result[2] == 2.0 and result[3] == 80.0
    assert account == (1020.0, 0.0, 0.0, 1020.0)
