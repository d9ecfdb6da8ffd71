"""The exit rule (core/stop_rule.py) against vectorbt's own stop price function on random
bars, and on hand-built cases whose answer is written down."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantlib.core.stop_rule import checked_range, closes_at_open, exit_price, trail_base


def test_each_level_matches_vectorbt_stop_price_on_random_bars():
    from vectorbt.portfolio.nb import get_stop_price_nb

    rng = np.random.default_rng(5)
    for _ in range(3000):
        position = rng.choice([-1.5, 2.0])
        base = rng.uniform(50, 150)
        sl, tp = rng.uniform(0.001, 0.2, size=2)
        open_ = base * rng.uniform(0.8, 1.2)
        low = open_ * rng.uniform(0.85, 1.0)
        high = open_ * rng.uniform(1.0, 1.15)
        want_sl = get_stop_price_nb(position, base, sl, open_, low, high, True)
        want_tp = get_stop_price_nb(position, base, tp, open_, low, high, False)
        price, which = exit_price(position, base, sl, base, tp, trail=False, open_=open_,
                                  high=high, low=low)
        if not math.isnan(want_sl):
            assert (price, which) == (want_sl, "sl")
        elif not math.isnan(want_tp):
            assert (price, which) == (want_tp, "tp")
        else:
            assert math.isnan(price) and which == ""


@pytest.mark.parametrize(("position", "bar", "expected"), [
    (1.0, (99.0, 101.0, 94.0), (95.0, "sl")),      # long: low reaches 95 -> the level
    (1.0, (93.0, 96.0, 90.0), (93.0, "sl")),       # gap below the level -> the open
    (1.0, (99.0, 112.0, 94.0), (95.0, "sl")),      # both reached: the stop-loss first
    (1.0, (112.0, 115.0, 111.0), (112.0, "tp")),   # gap above the take-profit -> the open
    (1.0, (101.0, 109.0, 96.0), (math.nan, "")),   # neither
    (-1.0, (104.0, 106.0, 100.0), (105.0, "sl")),  # short: the high reaches 105
    (-1.0, (95.0, 96.0, 89.0), (90.0, "tp")),
])
def test_hand_built_cases(position, bar, expected):
    open_, high, low = bar
    price, which = exit_price(position, 100.0, 0.05, 100.0, 0.10, trail=False, open_=open_,
                              high=high, low=low)
    assert which == expected[1]
    assert (math.isnan(price) and math.isnan(expected[0])) or price == pytest.approx(
        expected[0], rel=1e-12)


def test_trailing_base_follows_the_best_price_after_the_check():
    # long: entered at 100, trail 5 %: bar highs 104, 110 raise the base; a bar whose low is
    # 104.6 exits at 110 * 0.95 = 104.5 only once the base is 110
    base = 100.0
    for high in (104.0, 110.0):
        assert math.isnan(exit_price(1.0, base, 0.05, math.nan, None, trail=True, open_=high - 1,
                                     high=high, low=high - 2)[0])
        base = trail_base(1.0, base, high, high - 2)
    assert base == 110.0
    assert exit_price(1.0, base, 0.05, math.nan, None, trail=True, open_=107.0, high=108.0,
                      low=104.0) == (pytest.approx(104.5), "trail")
    assert trail_base(-1.0, 100.0, 103.0, 97.0) == 97.0


@pytest.mark.parametrize(("prev", "target", "closing"), [
    (1.0, 0.0, True), (1.0, -1.0, True), (-1.0, 0.0, True), (-1.0, 1.0, True),
    (0.0, 1.0, False), (0.0, -1.0, False), (1.0, 0.5, False), (-0.5, -1.0, False),
])
def test_which_orders_close_or_reverse_the_position(prev, target, closing):
    assert closes_at_open(prev, target) is closing


@pytest.mark.parametrize(("bar", "expected"), [
    ((99.0, 101.0, 94.0), (math.nan, "")),     # the level 95 comes after the open: not seen
    ((93.0, 96.0, 90.0), (93.0, "sl")),        # a gap below 95: the stop exits at the open
    ((101.0, 112.0, 100.0), (math.nan, "")),   # the take-profit 110 comes later: not seen
    ((111.0, 112.0, 100.0), (111.0, "tp")),    # a gap above 110
])
def test_a_bar_whose_open_closes_the_position_is_checked_at_its_open(bar, expected):
    open_, high, low = bar
    high, low = checked_range(open_, high, low, True)
    price, which = exit_price(1.0, 100.0, 0.05, 100.0, 0.10, trail=True, open_=open_,
                              high=high, low=low)
    assert which == expected[1].replace("sl", "trail")
    assert (math.isnan(price) and math.isnan(expected[0])) or price == expected[0]
    # the trailing base sees the same bar: the open, not the high the bar reaches later
    assert trail_base(1.0, 100.0, high, low) == max(100.0, open_)
    assert checked_range(open_, 120.0, 80.0, False) == (120.0, 80.0)
