"""Degenerate grids (grid_nb's *Degenerate grids*): a volatility grid whose step is below
``MIN_STEP_REL`` x its centre is not built (the grid there stays, or the bot stays flat), and the
grid kind refuses a fixed grid whose levels would lie closer than that. Hand-built numbers and
the plain-Python reference (tests/backtest/grid_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from quantlib.core import grid_nb as nb
from quantlib.core.config import BacktestConfig
from quantlib.core.grid_kind import FILL_MODELS, GridState, smallest_step, step_bar
from quantlib.core.registry import get_kind
from quantlib.errors import ParameterError
from tests.backtest.grid_reference import MIN_STEP_REL as REF_MIN_STEP_REL
from tests.backtest.test_grid_reference import _frame, assert_matches_reference

# Found by hypothesis (test_kernel_matches_reference_each_spacing[volatility-touch]): bar 0's
# low is one step of 1.4e-14 under 60, so with atr_period 1 and atr_k 0.5 the grid decided after
# it would be 10 levels 7.1e-15 apart around 60: about one unit in the last place, levels that
# round onto each other. Kernel and reference then broke the ties differently (4 fills at
# levels [3, 2, 2, 3] against 2 at [2, 0, 0, 2]).
FOUND_BARS = ([(60.0, 60.0, 59.999999999999986, 60.0), (60.0, 60.0, 58.153994068580644, 60.0)]
              + [(60.0,) * 4] * 45)
FOUND_PARAMS = {"spacing": "volatility", "n_levels": 10, "lower_pct": 0.5, "upper_pct": 0.5,
                "order_size": 0.5, "stop_out": False, "stop_margin": 0.0, "atr_period": 1,
                "atr_k": 0.5}


_MODE = {"arithmetic": nb.MODE_ARITHMETIC, "geometric": nb.MODE_GEOMETRIC,
         "fibonacci": nb.MODE_FIBONACCI}


def _vol_state(fill_model: str, **extra) -> GridState:
    params = {"spacing": "volatility", "n_levels": 5, "atr_period": 1, "atr_k": 0.5,
              "order_value": 100.0, "fill_model": fill_model, **extra}
    return GridState.start(params, first_open=100.0)


def _has_grid(s: GridState) -> bool:
    return bool(s.state[nb.S_HAS_GRID])


def test_the_reference_states_the_kernels_threshold():
    assert REF_MIN_STEP_REL == nb.MIN_STEP_REL == 1e-10


@pytest.mark.parametrize("fill_model", FILL_MODELS)
def test_the_case_hypothesis_found_matches_the_reference(fill_model):
    params = {**FOUND_PARAMS, "fill_model": fill_model}
    config = BacktestConfig(init_cash=1000.0, fees=0.0, slippage_bps=0.0)
    n_fills = assert_matches_reference(_frame(FOUND_BARS), params, config)
    # By hand: no grid from bar 0's range (step 7.1e-15 < 60e-10); the first grid is built on
    # bar 1's true range 60 - 58.15... (at its close, "bar"; at bar 2's open, "touch"), centred
    # on 60 with step 0.92; every later bar sits at 60, between levels: nothing ever fills.
    assert n_fills == 0


@pytest.mark.parametrize("fill_model", FILL_MODELS)
def test_the_first_real_grid_after_a_near_flat_bar(fill_model):
    s = GridState.start({**FOUND_PARAMS, "fill_model": fill_model}, first_open=60.0)
    for bar in FOUND_BARS[:3]:
        step_bar(s, bar)
        if s.state[nb.S_N_BARS] == 1 or (fill_model == "touch" and s.state[nb.S_N_BARS] == 2):
            assert not _has_grid(s)  # bar 0's range is all the ATR has seen
    step = 0.5 * (60.0 - 58.153994068580644)  # atr_k x bar 1's true range
    expected = [60.0 + (j - 4.5) * step for j in range(10)]
    np.testing.assert_allclose(s.levels, expected, rtol=1e-15)
    assert np.all(np.diff(s.levels) > 0)


@pytest.mark.parametrize("fill_model", FILL_MODELS)
@pytest.mark.parametrize(("true_range", "built"), [(4e-8, True), (1e-8, False)])
def test_the_threshold_is_relative_to_the_centre(fill_model, true_range, built):
    # centre 100 -> threshold 1e-8; atr_k 0.5: a true range of 4e-8 gives a step of 2e-8
    # (built, levels distinct), one of 1e-8 a step of 5e-9 (not built)
    s = _vol_state(fill_model)
    step_bar(s, (100.0, 100.0 + true_range, 100.0, 100.0))
    step_bar(s, (100.0, 100.0, 100.0, 100.0))  # "touch" decides at this bar's open
    assert _has_grid(s) is built
    if built:
        step = 0.5 * ((100.0 + true_range) - 100.0)
        np.testing.assert_allclose(s.levels, [100.0 + (j - 2) * step for j in range(5)],
                                   rtol=1e-15)
        assert np.all(np.diff(s.levels) > 0)


# bar 0's range 2 builds levels 98, 99, 100, 101, 102 (step 0.5 x 2) around 100; bar 1 rises
# to the top level 102 (still inside, nothing held: no fill); bar 2 creeps 1e-12 above it, so the
# price is outside a grid holding nothing, but the ATR (atr_period 1) is that bar's true range,
# 1e-12: a degenerate step ("bar" decides at bar 2's close, "touch" at bar 3's open)
_TOP = 102.0 + 1e-12
_KEEP_BARS = [(100.0, 101.0, 99.0, 100.0), (100.0, 102.0, 100.0, 102.0),
              (102.0, _TOP, 102.0, _TOP), (_TOP, _TOP, _TOP, _TOP), (_TOP, _TOP, _TOP, _TOP)]


@pytest.mark.parametrize("fill_model", FILL_MODELS)
def test_a_degenerate_step_keeps_the_grid_there(fill_model):
    s = _vol_state(fill_model)
    done = 1 if fill_model == "bar" else 2  # "touch": built at bar 1's open on bar 0's range
    for bar in _KEEP_BARS[:done]:
        step_bar(s, bar)
    np.testing.assert_array_equal(s.levels, [98.0, 99.0, 100.0, 101.0, 102.0])
    for bar in _KEEP_BARS[done:]:
        step_bar(s, bar)
    assert s.fills == []
    # the price lies outside and the bot is flat, but the ATR of 1e-12 gives no grid: the old
    # one stays (a grid of levels 5e-13 apart around 102 was built before the rule)
    np.testing.assert_array_equal(s.levels, [98.0, 99.0, 100.0, 101.0, 102.0])
    params = {"spacing": "volatility", "n_levels": 5, "atr_period": 1, "atr_k": 0.5,
              "order_value": 100.0, "fill_model": fill_model}
    assert_matches_reference(_frame(_KEEP_BARS), params, BacktestConfig())


@pytest.mark.parametrize("spacing", ["arithmetic", "geometric", "fibonacci"])
@pytest.mark.parametrize(("lower", "upper", "n"), [(90.0, 110.0, 5), (1.0, 3.0, 40),
                                                   (0.999, 1.001, 64)])
def test_smallest_step_is_the_smallest_gap_of_the_engines_levels(spacing, lower, upper, n):
    levels = np.empty(n)
    nb.grid_levels_nb(_MODE[spacing], lower, upper, n, levels)
    assert smallest_step(spacing, lower, upper, n) == pytest.approx(np.diff(levels).min(),
                                                                     rel=1e-6)


@pytest.mark.parametrize("spacing", ["arithmetic", "geometric", "fibonacci"])
def test_a_fixed_grid_of_bounds_a_hair_apart_is_refused(spacing):
    kind = get_kind("grid")
    # 10 levels within 1e-9 of 100: steps ~1e-10, i.e. 1e-12 of the price
    with pytest.raises(ParameterError, match=r"'lower'/'upper'.*'n_levels' \(10\)"):
        kind.validate({"spacing": spacing, "lower": 100.0, "upper": 100.0 + 1e-9,
                       "n_levels": 10})
    # the same bounds 1e-6 apart: steps ~1e-9 of the price, distinct: accepted
    kind.validate({"spacing": spacing, "lower": 100.0, "upper": 100.0 + 1e-6, "n_levels": 10})


@pytest.mark.parametrize("spacing", ["arithmetic", "geometric", "fibonacci"])
def test_every_relative_grid_in_the_declared_ranges_is_accepted(spacing):
    # the tightest corner of the declared ranges: bounds +-0.1 %, as many levels as allowed
    kind = get_kind("grid")
    n = nb.MAX_FIB_LEVELS if spacing == "fibonacci" else nb.MAX_LEVELS
    p = kind.validate({"spacing": spacing, "lower_pct": 0.001, "upper_pct": 0.001,
                       "n_levels": n})
    levels = np.empty(n)
    nb.grid_levels_nb(_MODE[spacing], 0.999, 1.001, p["n_levels"], levels)
    assert np.diff(levels).min() >= nb.MIN_STEP_REL * 1.001
