"""quantlib's order rule (``quantlib.core.order_rule_nb``) against vectorbt.

The independent computation is vectorbt's ``Portfolio.from_signals``, called as the backtest
calls it (signals from target changes, ``upon_opposite_entry="reverse"``); our rule is stepped
bar by bar over the same signals, as the paper broker does. Every fill (bar, side, units, price,
fee) and the final cash and position must agree to a relative tolerance of 1e-9: random
accounts from hypothesis, then a year of real hourly data. Hand-built examples check the rule's
own statements (partial fills, debt on covers, reversals) from its docstring alone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlib.core import order_rule_nb as rule
from quantlib.live.brokers.paper import signal_flags

RTOL = 1e-9  # the stated agreement with vectorbt

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def _flags(targets: np.ndarray, direction: str) -> np.ndarray:
    """(bars, 4) signals of a target path, as the runner and the backtest derive them."""
    prev = np.r_[0.0, targets[:-1]]
    return np.array([signal_flags(p, t, direction) for p, t in zip(prev, targets, strict=True)],
                    dtype=bool).reshape(-1, 4)


def _ours(price, flags, size, sizing, fees, slippage, init_cash):
    """Step the rule over the bars; fills as (bar, side, units, price, fee) and the account."""
    cash, position, debt, free_cash = init_cash, 0.0, 0.0, init_cash
    fills = []
    for t in range(len(price)):
        out = rule.signal_fill_nb(cash, position, debt, free_cash, *flags[t], size, sizing,
                                  price[t], fees, slippage)
        assert out[0] != rule.BAD_INPUT, out
        if out[0] == rule.FILLED:
            fills.append((t, out[2], out[3], out[4], out[5]))
            cash, position, debt, free_cash = out[6:]
    return fills, cash, position


def _vectorbt(price, flags, size, sizing, fees, slippage, init_cash):
    import vectorbt as vbt

    pf = vbt.Portfolio.from_signals(
        close=price, price=price, entries=flags[:, 0], exits=flags[:, 1],
        short_entries=flags[:, 2], short_exits=flags[:, 3], size=size,
        size_type="percent" if sizing == rule.PERCENT else "value", fees=fees,
        slippage=slippage, init_cash=init_cash, upon_opposite_entry="reverse")
    rec = pf.orders.values
    fills = [(int(r["idx"]), 1 if r["side"] == 0 else -1, float(r["size"]), float(r["price"]),
              float(r["fees"])) for r in rec]
    return fills, float(pf.cash().to_numpy()[-1]), float(pf.assets().to_numpy()[-1])


def _assert_agree(ours, theirs, scale: float) -> None:
    fills, cash, position = ours
    their_fills, their_cash, their_position = theirs
    assert [(t, s) for t, s, *_ in fills] == [(t, s) for t, s, *_ in their_fills]
    for mine, other in zip(fills, their_fills, strict=True):
        np.testing.assert_allclose(mine[2:], other[2:], rtol=RTOL, atol=0)
    # cash and position can end at zero: absolute tolerance relative to the account's scale
    assert math.isclose(cash, their_cash, rel_tol=RTOL, abs_tol=RTOL * scale)
    assert math.isclose(position, their_position, rel_tol=RTOL, abs_tol=1e-12)


@st.composite
def accounts(draw):
    """A random price path, target path and cost/sizing setup the backtest accepts."""
    n = draw(st.integers(2, 40))
    start = draw(st.floats(0.01, 1e5))
    moves = draw(st.lists(st.floats(-0.2, 0.2), min_size=n, max_size=n))
    price = start * np.exp(np.cumsum(moves))
    direction = draw(st.sampled_from(["longonly", "shortonly", "both"]))
    targets = np.array(draw(st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=n,
                                     max_size=n)))
    init_cash = draw(st.sampled_from([1.0, 100.0, 10_000.0, 1e7]))
    # direction 'both' needs value sizing (the backtest refuses percent reversals)
    sizing = rule.VALUE if direction == "both" else draw(st.sampled_from([rule.PERCENT,
                                                                          rule.VALUE]))
    if sizing == rule.PERCENT:
        size = draw(st.one_of(st.just(1.0), st.floats(0.01, 1.0)))
    else:  # from a sliver of the cash to several times it (partial fills when short of cash)
        size = init_cash * draw(st.one_of(st.floats(1e-4, 0.5), st.floats(0.5, 5.0)))
    fees = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.01)))
    slippage = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.01)))
    return price, _flags(targets, direction), size, sizing, fees, slippage, init_cash


@SETTINGS
@given(case=accounts())
def test_fills_agree_with_vectorbt_on_random_accounts(case):
    _assert_agree(_ours(*case), _vectorbt(*case), scale=case[-1])


# Paths the property above reaches by chance, made certain: (direction, sizing, size, targets,
# prices, init_cash, what our fills must show). Each is also compared with vectorbt.
PATHS = {
    "partial buy": ("longonly", rule.VALUE, 5_000.0, [1, 0], [100.0, 110.0], 1_000.0),
    "reversals": ("both", rule.VALUE, 500.0, [1, -1, 1, 0], [100.0, 90.0, 95.0, 97.0], 1e4),
    "partial cover": ("both", rule.VALUE, 5_000.0, [-1, 0], [100.0, 200.0], 1_000.0),
    "percent short": ("shortonly", rule.PERCENT, 0.5, [-1, 0], [100.0, 80.0], 1_000.0),
    "below minimum": ("longonly", rule.VALUE, 0.5e-8 * 100.0, [1, 0], [100.0, 100.0], 1e3),
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_fills_agree_with_vectorbt_on_each_path_of_the_rule(path):
    direction, sizing, size, targets, prices, init_cash = PATHS[path]
    case = (np.array(prices), _flags(np.array(targets, float), direction), size, sizing, 0.001,
            0.0005, init_cash)
    ours = _ours(*case)
    fills, cash, position = ours
    if path == "partial buy":  # 5,000 asked, 1,000 in cash: all of it spent, fee included
        assert fills[0][1] == rule.BUY and fills[0][2] * fills[0][3] + fills[0][4] == \
            pytest.approx(1_000.0, rel=1e-12)
    elif path == "reversals":  # one order each: the whole position plus the entry
        assert [f[1] for f in fills] == [1, -1, 1, -1]
        assert fills[1][2] == pytest.approx(fills[0][2] + 500.0 / 90.0, rel=1e-12)
    elif path == "partial cover":  # the cover costs more than the cash: still short after it
        assert len(fills) == 2 and cash == 0.0 and position < 0
    elif path == "percent short":
        assert fills[0][2] == pytest.approx(0.5 * init_cash / (fills[0][3] * 1.001), rel=1e-12)
    else:
        assert fills == []
    _assert_agree(ours, _vectorbt(*case), scale=init_cash)


CONFIGS = [
    ("longonly", rule.PERCENT, 1.0),
    ("shortonly", rule.PERCENT, 0.5),
    ("both", rule.VALUE, 5_000.0),
]


@pytest.mark.parametrize(("direction", "sizing", "size"), CONFIGS)
def test_fills_agree_with_vectorbt_on_real_data(direction, sizing, size, shared_data):
    from quantlib.core.registry import get_kind

    frame = shared_data("btc_usdt_1h_2022_2023.csv").iloc[:8760]
    kind = get_kind("ema_cross")
    targets = kind.signals(frame, kind.validate({"fast": 12, "slow": 48}))
    # a target decided at bar t's close is filled at bar t+1's open
    flags = np.vstack([np.zeros((1, 4), bool), _flags(targets, direction)[:-1]])
    case = (frame["open"].to_numpy(), flags, size, sizing, 0.001, 0.0005, 10_000.0)
    ours, theirs = _ours(*case), _vectorbt(*case)
    assert len(ours[0]) > 100  # a year of an EMA cross trades often
    _assert_agree(ours, theirs, scale=10_000.0)


# -- the rule's statements, worked by hand ------------------------------------------------------
def _fill(cash, position, debt, free_cash, signals, size, sizing, price, fees=0.0,
          slippage=0.0):
    flags = [s in signals for s in ("enter_long", "exit_long", "enter_short", "exit_short")]
    return rule.signal_fill_nb(cash, position, debt, free_cash, *flags, size, sizing, price,
                               fees, slippage)


def test_a_percent_entry_spends_its_share_of_cash_fee_included():
    status, _, side, units, price, fee, cash, position, debt, free = _fill(
        1000.0, 0.0, 0.0, 1000.0, {"enter_long"}, 0.5, rule.PERCENT, 100.0, 0.001, 0.001)
    assert (status, side) == (rule.FILLED, rule.BUY)
    assert price == pytest.approx(100.1, rel=1e-15)
    assert units * price + fee == pytest.approx(500.0, rel=1e-15)
    assert fee == pytest.approx(units * price * 0.001, rel=1e-12)
    assert (cash, position, debt, free) == (500.0, units, 0.0, 500.0)


def test_a_buy_short_of_cash_is_cut_to_what_the_cash_pays_for():
    # 20 units at 100 plus 1% fee cost 2020; only 1010 cash: 10 units, fee 10
    out = _fill(1010.0, 0.0, 0.0, 1010.0, {"enter_long"}, 2000.0, rule.VALUE, 100.0, 0.01)
    assert out[0] == rule.FILLED
    assert out[3] == pytest.approx(10.0, rel=1e-15) and out[5] == pytest.approx(10.0, rel=1e-12)
    assert out[6] == 0.0 and out[7] == out[3]


def test_a_short_is_backed_twice_and_its_cover_releases_the_debt():
    # short 2 units by value at 90: proceeds 180 into cash, debt 180, free cash 1000 - 180
    out = _fill(1000.0, 0.0, 0.0, 1000.0, {"enter_short"}, 180.0, rule.VALUE, 90.0)
    assert out[0] == rule.FILLED and out[2] == rule.SELL
    assert out[6:] == (1180.0, -2.0, 180.0, 820.0)
    # cover at 80: pay 160; the debt (180) is released and free cash gets 2 * 180 - 160
    out = _fill(*out[6:], {"exit_short"}, 180.0, rule.VALUE, 80.0)
    assert out[0] == rule.FILLED and out[2] == rule.BUY and out[3] == 2.0
    assert out[6:] == (1020.0, 0.0, 0.0, 1020.0)


def test_a_percent_short_sells_its_share_of_what_free_cash_backs():
    out = _fill(1000.0, 0.0, 0.0, 1000.0, {"enter_short"}, 0.5, rule.PERCENT, 50.0, 0.01)
    assert out[3] == pytest.approx(0.5 * 1000.0 / (50.0 * 1.01), rel=1e-15)
    assert _fill(1000.0, -5.0, 600.0, -200.0, {"enter_short"}, 0.5, rule.PERCENT, 50.0)[0] == \
        rule.NO_ORDER  # already short: entries never add
    assert _fill(1000.0, 0.0, 0.0, 0.0, {"enter_short"}, 0.5, rule.PERCENT, 50.0)[0] == \
        rule.NO_CASH


def test_a_reversal_is_one_order_of_the_position_plus_the_entry():
    # long 3 at entry; reverse to short with a 200 notional at 100: sell 3 + 2 units
    out = _fill(700.0, 3.0, 0.0, 700.0, {"enter_short"}, 200.0, rule.VALUE, 100.0)
    assert out[0] == rule.FILLED and out[3] == 5.0
    assert out[6:] == (1200.0, -2.0, 200.0, 800.0)
    # back to long: buy the 2 short units plus 3 more with a 300 notional at 100
    out = _fill(*out[6:], {"enter_long"}, 300.0, rule.VALUE, 100.0)
    assert out[0] == rule.FILLED and out[3] == 5.0
    assert out[6:] == (700.0, 3.0, 0.0, 700.0)
    # a reversal has no percent size
    assert _fill(700.0, 3.0, 0.0, 700.0, {"enter_short"}, 0.5, rule.PERCENT, 100.0)[0] == \
        rule.PERCENT_REVERSAL


def test_signals_that_do_not_apply_place_nothing():
    for position, signal in ((0.0, "exit_long"), (0.0, "exit_short"), (2.0, "enter_long"),
                             (2.0, "exit_short"), (-2.0, "exit_long")):
        debt = 200.0 if position < 0 else 0.0
        out = _fill(1000.0, position, debt, 1000.0 - 2 * debt, {signal}, 100.0, rule.VALUE, 100.0)
        assert out[0] == rule.NO_ORDER and out[6:] == (1000.0, position, debt, 1000.0 - 2 * debt)


def test_sums_that_cancel_within_tolerance_are_exactly_zero():
    # a position one part in 1e12 off the units sold: closed, not float residue
    out = _fill(0.0, 3.0 * (1 + 1e-12), 0.0, 0.0, {"exit_long"}, 1.0, rule.PERCENT, 10.0)
    assert out[0] == rule.FILLED and out[7] == 0.0
    # and a buy that costs the cash within tolerance fills whole and leaves exactly zero
    out = _fill(100.0 * (1 - 1e-11), 0.0, 0.0, 100.0, {"enter_long"}, 100.0, rule.VALUE, 10.0)
    assert out[3] == 10.0 and out[6] == 0.0


@pytest.mark.parametrize(("index", "value"), [(0, -1.0), (1, math.nan), (2, -5.0), (3, math.inf),
                                              (8, 0.0), (8, 1.5), (9, 7), (10, 0.0), (11, 1.0),
                                              (12, -0.1)])
def test_arguments_outside_the_domain_are_named(index, value):
    args = [1000.0, 0.0, 0.0, 1000.0, True, False, False, False, 0.5, rule.PERCENT, 100.0,
            0.001, 0.0]
    args[index] = value
    out = rule.signal_fill_nb(*args)
    assert (out[0], out[1]) == (rule.BAD_INPUT, index)


def test_the_paper_broker_names_a_corrupt_account(tmp_path):
    from quantlib.errors import LiveError
    from quantlib.live.brokers import PaperBroker
    from quantlib.live.feeds import Bar
    from quantlib.live.state import OrderRow, StateStore
    from tests.live.conftest import make_spec

    store = StateStore(tmp_path / "s.db")
    broker = PaperBroker(store, make_spec("ma_cross", {"fast": 5, "slow": 20}))
    with store.transaction():
        store.set_meta("cash", "-5.0")
        store.add_order(OrderRow(client_id="c1", bar_time=1, symbol="BTC/USD",
                                 intent="signal|0.0|1.0", side=1, amount=0.0, target=1.0,
                                 order_type="market", price=None, status="new",
                                 exchange_id=None, detail="", attempts=0))
    with pytest.raises(LiveError, match=r"account cash = -5\.0 is outside"):
        broker.on_bar({"BTC/USD": Bar(time=2, open=100.0, high=100.0, low=100.0, close=100.0,
                                      volume=1.0)})
