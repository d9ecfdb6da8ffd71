"""The numba grid kernel agrees trade for trade with the plain-Python event loop
(tests/backtest/grid_reference.py) under both fill models ("bar", the default, and "touch") on
hypothesis-generated bars/params and on real BTC data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlib.backtest.grid import FILL_MODELS, SPACINGS, run_grid
from quantlib.core.config import BacktestConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the reference sits beside the tests
from grid_reference import run_reference  # noqa: E402


def _frame(bars: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    arr = np.array(bars, dtype=np.float64)
    idx = pd.date_range("2024-01-01", periods=len(arr), freq="1h", tz="UTC", name="timestamp")
    df = pd.DataFrame(arr, columns=["open", "high", "low", "close"], index=idx)
    df["volume"] = 1.0
    df.attrs["timeframe"] = "1h"
    return df


def assert_matches_reference(df: pd.DataFrame, params: dict, config: BacktestConfig,
                             active: np.ndarray | None = None) -> int:
    res = run_grid(df, [params], config, active=active)
    full = res.params[0]
    o0 = float(df["open"].iloc[0])
    if full["lower"] > 0:
        lower, upper = full["lower"], full["upper"]
    else:
        lower, upper = o0 * (1 - full["lower_pct"]), o0 * (1 + full["upper_pct"])
    ref = run_reference(
        list(df[["open", "high", "low", "close"]].itertuples(index=False, name=None)),
        fill_model=full["fill_model"], spacing=full["spacing"], lower=lower, upper=upper, n_levels=full["n_levels"],
        order_value=full["order_value"] or full["order_size"] * config.init_cash,
        init_cash=config.init_cash, fee=config.fees, slippage=config.slippage,
        stop_margin=full["stop_margin"] if full["stop_out"] else None,
        atr_k=full["atr_k"], atr_period=full["atr_period"], active=active)
    fills = res.fills
    assert len(fills) == len(ref.fills), (len(fills), len(ref.fills))
    if len(ref.fills):
        bar, side, price, size, fee, level = (np.array(x) for x in zip(*ref.fills, strict=True))
        np.testing.assert_array_equal(fills["bar"].to_numpy(), bar)
        np.testing.assert_array_equal(fills["side"].to_numpy(), side)
        np.testing.assert_array_equal(fills["level"].to_numpy(), level)
        np.testing.assert_allclose(fills["price"].to_numpy(), price, rtol=1e-12)
        np.testing.assert_allclose(fills["size"].to_numpy(), size, rtol=1e-12)
        np.testing.assert_allclose(fills["fee"].to_numpy(), fee, rtol=1e-12, atol=1e-12)
        assert (fills["time"].to_numpy() == df.index[bar].to_numpy()).all()
    np.testing.assert_allclose(res.equity[0].to_numpy(), ref.equity, rtol=1e-10)
    np.testing.assert_allclose(res.positions[0].to_numpy(), ref.inventory, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.extras["cash"][0].to_numpy(), ref.cash, rtol=1e-10)
    return len(fills)


@st.composite
def bars_strategy(draw):
    n = draw(st.integers(3, 60))
    # lattice prices (quarters) hit level prices exactly; continuous ones test the general case
    lattice = draw(st.integers(0, 2)) > 0
    price = draw(st.floats(60, 140)) if not lattice else float(draw(st.integers(300, 560))) / 4
    bars = []
    for _ in range(n):
        if lattice:
            o = max(1.0, price + draw(st.integers(-3, 3)) / 4)
            c = max(1.0, o + draw(st.integers(-10, 10)) / 4)
            h = max(o, c) + draw(st.integers(0, 6)) / 4
            lo = max(0.25, min(o, c) - draw(st.integers(0, 6)) / 4)
            h, lo = max(h, o, c), min(lo, o, c)
        else:
            o = price * float(np.exp(draw(st.floats(-0.05, 0.05))))
            c = o * float(np.exp(draw(st.floats(-0.08, 0.08))))
            h = max(o, c) * float(np.exp(draw(st.floats(0, 0.04))))
            lo = min(o, c) * float(np.exp(-draw(st.floats(0, 0.04))))
        bars.append((o, h, lo, c))
        price = c
    return bars


@st.composite
def case_strategy(draw, spacing=None, fill_model=None):
    """(bars, params): half of the cases put an arithmetic grid on the bars' quarter lattice
    around the first open, so bars touch levels exactly (edges of the touch and path rules)."""
    bars = draw(bars_strategy())
    params = {
        "spacing": spacing or draw(st.sampled_from(SPACINGS)),
        "fill_model": fill_model or draw(st.sampled_from(FILL_MODELS)),
        "n_levels": draw(st.integers(2, 14)),
        "lower_pct": draw(st.floats(0.01, 0.5)),
        "upper_pct": draw(st.floats(0.01, 0.5)),
        "order_size": draw(st.floats(0.02, 0.6)),
        "stop_out": draw(st.booleans()),
        "stop_margin": draw(st.sampled_from([0.0, 0.01, 0.05, 0.2])),
        "atr_period": draw(st.integers(1, 6)),
        "atr_k": draw(st.floats(0.2, 3.0)),
    }
    if draw(st.integers(0, 3)) > 0:
        step = float(draw(st.integers(1, 8))) / 4
        width = (params["n_levels"] - 1) * step
        first = round(bars[0][0] * 4) / 4
        lower = max(0.25, first - float(draw(st.integers(0, int(width * 4)))) / 4)
        params["lower"], params["upper"] = lower, lower + width
    return bars, params


config_strategy = st.builds(
    BacktestConfig, init_cash=st.sampled_from([1_000.0, 10_000.0]),
    fees=st.sampled_from([0.0, 0.001, 0.01]), slippage_bps=st.sampled_from([0.0, 5.0, 30.0]))

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_SETTINGS
@given(case=case_strategy(), config=config_strategy, data=st.data())
def test_kernel_matches_reference_random(case, config, data):
    bars, params = case
    active = None
    if data.draw(st.booleans()):
        active = np.array(data.draw(st.lists(st.booleans(), min_size=len(bars),
                                             max_size=len(bars))), dtype=bool)
    assert_matches_reference(_frame(bars), params, config, active)


@pytest.mark.parametrize("fill_model", FILL_MODELS)
@pytest.mark.parametrize("spacing", SPACINGS)
def test_kernel_matches_reference_each_spacing(spacing, fill_model):
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=case_strategy(spacing, fill_model), config=config_strategy)
    def check(case, config):
        assert_matches_reference(_frame(case[0]), case[1], config)

    check()


# rounding-error moves and real ones weigh double: a grid built on the first then crossed by the
# second is the case where levels that are not distinct prices would show
_NEAR_FLAT_SCALES = (2.2e-16, 2.2e-16, 1e-12, 5e-11, 1e-10, 2e-10, 1e-9, 1e-3, 1e-3)


@st.composite
def near_flat_bars(draw):
    """Bars that move by a few units of a small relative scale: from float rounding (2e-16) over
    the degenerate-grid threshold (1e-10, grid_nb's MIN_STEP_REL) to real moves (1e-3), mixed
    bar by bar, so volatility grids are built, refused and kept around the threshold."""
    price = draw(st.floats(60, 140))
    bars = []
    for _ in range(draw(st.integers(3, 30))):
        scale = draw(st.sampled_from(_NEAR_FLAT_SCALES))
        o, h, lo, c = (price * (1.0 + draw(st.integers(-4, 4)) * scale) for _ in range(4))
        bars.append((o, max(o, h, lo, c), min(o, h, lo, c), c))
        price = c
    return bars


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bars=near_flat_bars(), fill_model=st.sampled_from(FILL_MODELS),
       n_levels=st.integers(2, 12), atr_period=st.integers(1, 3), atr_k=st.floats(0.2, 3.0))
def test_near_flat_volatility_grids_match_reference(bars, fill_model, n_levels, atr_period,
                                                    atr_k):
    params = {"spacing": "volatility", "fill_model": fill_model, "n_levels": n_levels,
              "order_size": 0.05, "atr_period": atr_period, "atr_k": atr_k}
    assert_matches_reference(_frame(bars), params, BacktestConfig(fees=0.001))


@pytest.mark.parametrize("fill_model", FILL_MODELS)
@pytest.mark.parametrize("spacing", SPACINGS)
def test_kernel_matches_reference_on_btc(shared_data, spacing, fill_model):
    df = shared_data("btc_usdt_1h_2022_2023.csv").iloc[:6000]
    params = {"spacing": spacing, "n_levels": 25, "lower_pct": 0.35, "upper_pct": 0.25,
              "order_size": 0.04, "stop_out": spacing == "fibonacci", "stop_margin": 0.02,
              "atr_period": 24, "atr_k": 3.0, "fill_model": fill_model}
    rng = np.random.default_rng(0)
    active = rng.random(len(df)) > 0.1 if spacing == "geometric" else None
    n_fills = assert_matches_reference(df, params, BacktestConfig(fees=0.001, slippage_bps=2.0),
                                       active)
    assert n_fills > 20  # the comparison covers a real trading history, not an idle grid


@pytest.mark.parametrize("fill_model", FILL_MODELS)
def test_fill_log_overflow_rerun_matches_reference(fill_model):
    from quantlib.backtest import grid
    from quantlib.data import load

    df = load("sample:bars=4000,seed=3")
    params = {"n_levels": 120, "lower_pct": 0.3, "upper_pct": 0.3, "order_size": 0.008,
              "fill_model": fill_model}
    n_fills = assert_matches_reference(df, params, BacktestConfig())
    assert n_fills > grid._FILL_CAP  # beyond the first-pass log capacity


@pytest.mark.parametrize("fill_model", FILL_MODELS)
@pytest.mark.parametrize("spacing", ["arithmetic", "geometric", "volatility"])
def test_500_levels_match_the_reference_on_eth(shared_data, spacing, fill_model):
    # a tight 500-level grid (~0.1 % apart) on real 5m bars: many levels per bar, each bar
    # filling several at once (fewer bars for "touch": its reference rescans the whole book)
    df = shared_data("eth_usdt_5m_2021_05.csv").iloc[:1500 if fill_model == "bar" else 500]
    params = {"spacing": spacing, "n_levels": 500, "lower_pct": 0.25, "upper_pct": 0.25,
              "order_value": 15.0, "atr_period": 12, "atr_k": 0.05, "fill_model": fill_model}
    n_fills = assert_matches_reference(df, params, BacktestConfig(fees=0.001))
    assert n_fills > 500
