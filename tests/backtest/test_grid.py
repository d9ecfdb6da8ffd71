"""Grid engine: hand-built fills under both fill models ("bar", the default, and "touch"),
truncation (no lookahead), sweeps vs single runs, the one-bar stepping API of the live runner,
the active mask, levels, the registry kind and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest.grid import GridState, run_grid, step_bar, sweep_grid
from quantlib.core.config import BacktestConfig
from quantlib.core.grid_nb import FIB_RATIOS_PRIORITY, grid_levels_nb
from quantlib.core.registry import get_kind
from quantlib.data import load
from quantlib.errors import DataError, ParameterError


def _frame(bars) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(bars), freq="1h", tz="UTC", name="timestamp")
    df = pd.DataFrame(np.array(bars, float), columns=["open", "high", "low", "close"], index=idx)
    df["volume"] = 1.0
    df.attrs["timeframe"] = "1h"
    return df


# levels 90 95 100 105 110, 1000 quote per level, fee 0.1 %; the "touch" model (intrabar)
HAND_PARAMS = {"lower": 90.0, "upper": 110.0, "n_levels": 5, "order_value": 1000.0,
               "stop_out": True, "stop_margin": 0.05,  # stop at 90 * 0.95 = 85.5
               "fill_model": "touch"}
HAND_BARS = [
    (100, 101, 94, 96),   # red: O->H->L->C: falls through 100 and 95 -> two buys
    (97, 106, 97, 105),   # green: O->L->H->C: sells at 100 (of the 95 buy) and 105 (of the 100
                          # buy), then falls back to the 105 close -> buys at 105
    (88, 89, 87, 88.5),   # gap down from 105: buys at 100, 95, 90 all fill at the open 88
    (88, 88, 80, 82),     # falls through the stop 85.5 -> flatten everything at 85.5, stop
    (100, 111, 99, 109),  # stopped: nothing
]


def test_hand_built_fills_and_equity():
    res = run_grid(_frame(HAND_BARS), [HAND_PARAMS], BacktestConfig(init_cash=10_000, fees=0.001))
    f = res.fills
    q95, q100, q105, q90 = 1000 / 95, 1000 / 100, 1000 / 105, 1000 / 90
    expected = [  # bar, side, price, size, level
        (0, 1, 100.0, q100, 2), (0, 1, 95.0, q95, 1),
        (1, -1, 100.0, q95, 1), (1, -1, 105.0, q100, 2), (1, 1, 105.0, q105, 3),
        (2, 1, 88.0, q100, 2), (2, 1, 88.0, q95, 1), (2, 1, 88.0, q90, 0),
        (3, -1, 85.5, q105 + q100 + q95 + q90, -1),
    ]
    assert len(f) == len(expected)
    for row, (bar, side, price, size, level) in zip(f.itertuples(), expected, strict=True):
        assert (row.bar, row.side, row.level) == (bar, side, level)
        assert row.price == pytest.approx(price, rel=1e-12)
        assert row.size == pytest.approx(size, rel=1e-12)
        assert row.fee == pytest.approx(0.001 * price * size, rel=1e-12)
    cash = 10_000.0
    for _, side, price, size, _ in expected:
        cash -= side * price * size + 0.001 * price * size
    assert res.extras["cash"][0].iloc[-1] == pytest.approx(cash, rel=1e-12)
    assert res.equity[0].iloc[-1] == pytest.approx(cash, rel=1e-12)  # flat after the stop
    # equity at bar 2 close: cash + inventory * 88.5
    inv2 = q105 + q100 + q95 + q90
    cash2 = 10_000.0 - sum(s * p * z + 0.001 * p * z for b, s, p, z, _ in expected if b <= 2)
    assert res.equity[0].iloc[2] == pytest.approx(cash2 + inv2 * 88.5, rel=1e-12)
    # round trips: two closed by grid sells, four by the stop-out
    assert len(res.trades) == 6
    assert res.trades["pnl"].iloc[0] == pytest.approx(q95 * 5 - 0.001 * 95 * q95 - 0.001 * 100 * q95)


def test_slippage_moves_fill_prices_against_the_trader():
    cfg = BacktestConfig(fees=0.0, slippage_bps=50)
    f = run_grid(_frame(HAND_BARS[:2]), [HAND_PARAMS], cfg).fills
    assert f["price"].tolist() == pytest.approx([100.5, 95 * 1.005, 100 * 0.995, 105 * 0.995,
                                                 105 * 1.005])


def test_intrabar_path_rule_decides_same_bar_round_trips():
    params = {"lower": 90.0, "upper": 110.0, "n_levels": 5, "order_value": 1000.0,
              "fill_model": "touch"}
    # green bar O->L->H->C: buy at 95, its sell at 100 on the way up, then the fall from 101 to
    # the close 98 buys at 100 (the level is empty again and price was above it)
    green = run_grid(_frame([(97, 101, 94, 98)]), [params], {"fees": 0.0}).fills
    assert green[["side", "price"]].values.tolist() == [[1, 95.0], [-1, 100.0], [1, 100.0]]
    # red bar with the same range O->H->L->C: up first (nothing held), then 101 -> 94 buys at
    # 100 and 95; no sell
    red = run_grid(_frame([(97, 101, 94, 96)]), [params], {"fees": 0.0}).fills
    assert red[["side", "price"]].values.tolist() == [[1, 100.0], [1, 95.0]]


def test_touching_a_level_exactly_fills_it():
    params = {"lower": 100.0, "upper": 110.0, "n_levels": 3, "order_value": 1000.0,
              "fill_model": "touch"}
    f = run_grid(_frame([(106, 107, 105, 106), (106, 110, 106, 110)]), [params]).fills
    assert f[["bar", "side", "price"]].values.tolist() == [[0, 1, 105.0], [1, -1, 110.0]]
    # "bar": nothing rests during bar 0; the buy @105 decided at its close fills when bar 1's
    # low touches 105 exactly, its sell @110 rests from bar 2 and fills on a high of exactly 110
    bars = [(106, 107, 105.5, 106), (106, 107, 105, 106), (106, 110, 106, 110)]
    f = run_grid(_frame(bars), [dict(params, fill_model="bar")]).fills
    assert f[["bar", "side", "price"]].values.tolist() == [[1, 1, 105.0], [2, -1, 110.0]]


# the "bar" model on the same grid: the book decided at close t rests during bar t+1
BAR_PARAMS = dict(HAND_PARAMS, fill_model="bar")
BAR_BARS = [
    (100, 101, 99, 100.5),    # no book yet; at the close: buys rest at 100, 95, 90
    (100.5, 101, 94, 96),     # low 94: the buys at 95 and 100 fill (logged by level)
    (96, 106, 95.5, 105.5),   # sells at 100 (of the 95 buy) and 105 (of the 100 buy); "touch"
                              # would re-buy on the way back, here the buys rest from bar 3
    (104, 104.5, 88, 89),     # opens below the buy at 105: filled at its limit 105, not at the
                              # open; 100, 95 and 90 fill on the way down
    (89, 96, 84, 85),         # the sell of the 90 buy fills at 95; the close 85 < 85.5 stops
                              # the grid: the rest is sold at that close
    (100, 111, 99, 109),      # stopped: nothing
]


def test_bar_model_hand_built_fills_and_equity():
    res = run_grid(_frame(BAR_BARS), [BAR_PARAMS], BacktestConfig(init_cash=10_000, fees=0.001))
    q90, q95, q100, q105 = 1000 / 90, 1000 / 95, 1000 / 100, 1000 / 105
    expected = [  # bar, side, price, size, level
        (1, 1, 95.0, q95, 1), (1, 1, 100.0, q100, 2),
        (2, -1, 100.0, q95, 1), (2, -1, 105.0, q100, 2),
        (3, 1, 90.0, q90, 0), (3, 1, 95.0, q95, 1), (3, 1, 100.0, q100, 2),
        (3, 1, 105.0, q105, 3),
        (4, -1, 95.0, q90, 0), (4, -1, 85.0, q95 + q100 + q105, -1),
    ]
    got = res.fills[["bar", "side", "price", "size", "level"]].to_numpy()
    np.testing.assert_allclose(got, [(b, s, p, z, lv) for b, s, p, z, lv in expected],
                               rtol=1e-12)
    np.testing.assert_allclose(res.fills["fee"], [0.001 * p * z for _, _, p, z, _ in expected],
                               rtol=1e-12)
    cash, equity = 10_000.0, []
    for t, close in enumerate(b[3] for b in BAR_BARS):
        for _, side, price, size, _ in (e for e in expected if e[0] == t):
            cash -= side * price * size + 0.001 * price * size
        held = sum(z * s for b, s, _, z, lv in expected if b <= t and lv >= 0)
        held -= sum(z for b, _, _, z, lv in expected if b <= t and lv < 0)
        equity.append(cash + held * close)
    np.testing.assert_allclose(res.equity[0], equity, rtol=1e-12)
    assert res.equity[0].iloc[-1] == pytest.approx(cash, rel=1e-12)  # flat after the stop
    assert len(res.trades) == 6  # three closed by grid sells, three by the stop-out


def test_bar_model_buys_only_what_the_cash_at_the_close_pays_for():
    # 2,500 cash, 1,000 per level + 0.1 % fee: the close 102 rests the two nearest buys (100,
    # 95); bar 1 reaches 90 too, which had no order. After the sell at 100 the cash pays for one
    # buy: the nearest empty level (95), not 90 below it.
    params = dict(BAR_PARAMS, stop_out=False)
    bars = [(101, 102.5, 100.5, 102), (102, 102, 89, 89.5), (90, 101, 89.5, 100.5),
            (100.5, 101, 89, 90)]
    res = run_grid(_frame(bars), [params], BacktestConfig(init_cash=2_500, fees=0.001))
    assert res.fills[["bar", "side", "price"]].values.tolist() == [
        [1, 1, 95.0], [1, 1, 100.0], [2, -1, 100.0], [3, 1, 95.0]]
    assert (res.extras["cash"][0] >= 0).all()


def test_bar_model_follow_up_orders_wait_for_the_next_bar():
    # the same green bar as the intrabar test: the buy at 95 fills; its sell at 100 is only
    # placed at the close, so the rise to 101 in the same bar sells nothing
    params = {"lower": 90.0, "upper": 110.0, "n_levels": 5, "order_value": 1000.0}
    bars = [(97, 97.5, 96.5, 97), (97, 101, 94, 98), (98, 100.5, 97.5, 99)]
    f = run_grid(_frame(bars), [params], {"fees": 0.0}).fills
    assert f[["bar", "side", "price"]].values.tolist() == [[1, 1, 95.0], [2, -1, 100.0]]


@pytest.mark.parametrize("fill_model", ["bar", "touch"])
@pytest.mark.parametrize("spacing", ["arithmetic", "geometric", "fibonacci", "volatility"])
def test_truncation_leaves_the_past_unchanged(spacing, fill_model):
    df = load("sample:bars=1500,seed=11")
    params = {"spacing": spacing, "n_levels": 12, "lower_pct": 0.15, "upper_pct": 0.15,
              "stop_out": True, "stop_margin": 0.1, "atr_period": 10, "atr_k": 1.5,
              "fill_model": fill_model}
    full = run_grid(df, [params])
    sig_full = get_kind("grid").signals(df, params)
    for t in (200, 777, 1499):
        part = run_grid(df.iloc[:t], [params])
        np.testing.assert_array_equal(part.equity[0].to_numpy(), full.equity[0].to_numpy()[:t])
        pd.testing.assert_frame_equal(part.fills, full.fills[full.fills["bar"] < t])
        np.testing.assert_array_equal(get_kind("grid").signals(df.iloc[:t], params), sig_full[:t])
    assert len(full.fills) > 10


def test_many_combos_in_one_call_equal_single_runs():
    df = load("sample:bars=1200,seed=5")
    combos = [{"spacing": s, "n_levels": n, "lower_pct": w, "upper_pct": w, "stop_out": n == 6,
               "fill_model": "touch" if w == 0.2 else "bar"}
              for s in ("arithmetic", "geometric", "fibonacci", "volatility")
              for n in (6, 15) for w in (0.05, 0.2)]
    active = np.arange(len(df)) % 100 < 80
    together = run_grid(df, combos, active=active)
    swept = sweep_grid(df, combos, active=active, chunk=5)
    for k, params in enumerate(combos):
        alone = run_grid(df, [params], active=active)
        np.testing.assert_array_equal(together.equity[k].to_numpy(), alone.equity[0].to_numpy())
        got = together.fills_of(k).drop(columns="combo")
        pd.testing.assert_frame_equal(got, alone.fills_of(0).drop(columns="combo"))
        assert swept["final_equity"][k] == alone.equity[0].iloc[-1]
        assert swept["n_fills"][k] == len(alone.fills)
    assert together.metrics.shape[0] == len(combos)


@pytest.mark.parametrize("fill_model", ["bar", "touch"])
@pytest.mark.parametrize("spacing", ["geometric", "volatility"])
def test_step_bar_replays_the_backtest(spacing, fill_model):
    df = load("sample:bars=800,seed=2")
    params = {"spacing": spacing, "n_levels": 9, "lower_pct": 0.1, "upper_pct": 0.1,
              "atr_period": 5, "atr_k": 2.0, "fill_model": fill_model}
    active = np.arange(len(df)) % 50 < 40
    res = run_grid(df, [params], active=active)
    state = GridState.start(params, first_open=df["open"].iloc[0])
    equity = []
    for t, bar in enumerate(df[["open", "high", "low", "close"]].itertuples(index=False)):
        step_bar(state, bar, active=bool(active[t]))
        if t in (0, 400):  # a strict-JSON state store round trip changes nothing
            state = GridState.from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)))
        equity.append(state.equity(bar.close))
    np.testing.assert_array_equal(equity, res.equity[0].to_numpy())
    log = res.fills
    assert len(log) > 5
    # fills made after the round trip are in the restored state's log
    after = log[log["bar"] > 400]
    assert [(f["bar"], f["side"], f["price"]) for f in state.fills] == list(
        zip(after["bar"], after["side"], after["price"], strict=True))


def test_inactive_bars_place_no_buys_but_sells_still_fill():
    df = load("sample:bars=1000,seed=4")
    params = {"n_levels": 10, "lower_pct": 0.1, "upper_pct": 0.1}
    active = (np.arange(len(df)) // 100) % 2 == 0
    f = run_grid(df, [params], active=active).fills
    assert (f.loc[f["side"] == 1, "bar"].map(lambda b: active[b])).all()
    assert ((f["side"] == -1) & ~active[f["bar"]]).any()  # inventory unwinds while inactive
    none = run_grid(df, [params], active=np.zeros(len(df), bool))
    assert none.fills.empty and (none.equity[0] == 10_000).all()


def test_level_spacings():
    out = np.empty(7)
    grid_levels_nb(2, 100.0, 200.0, 7, out)  # the classic retracement ratios
    np.testing.assert_allclose(out, [100, 123.6, 138.2, 150, 161.8, 178.6, 200])
    grid_levels_nb(1, 100.0, 400.0, 3, out)
    np.testing.assert_allclose(out[:3], [100, 200, 400])
    grid_levels_nb(0, 100.0, 200.0, 5, out)
    np.testing.assert_allclose(out[:5], [100, 125, 150, 175, 200])
    out9 = np.empty(9)
    grid_levels_nb(2, 0.0, 1.0, 9, out9)  # 9 levels add phi**-4 and 1 - phi**-4
    phi = (1 + 5**0.5) / 2
    assert np.isclose(out9[1], phi**-4) and np.isclose(out9[-2], 1 - phi**-4)
    assert len(set(FIB_RATIOS_PRIORITY)) == len(FIB_RATIOS_PRIORITY)


def test_volatility_grid_uses_only_past_true_ranges():
    # 3 bars of range 2, then bar 3 opens at 100: ATR(3) = 2, spacing = k * ATR = 2
    bars = [(100, 101, 99, 100)] * 3 + [(100, 100, 97.5, 98)]
    params = {"spacing": "volatility", "n_levels": 5, "atr_period": 3, "atr_k": 1.0,
              "order_value": 100.0, "fill_model": "touch"}
    f = run_grid(_frame(bars), [params]).fills
    # levels 96 98 100 102 104 centred on bar 3's open. The open sits on 100 (not above it), so
    # only 98 fills; had bar 3's own range (TR 2.5) leaked into the ATR, the level would be 97.83
    assert f[["bar", "side", "price"]].values.tolist() == [[3, 1, 98.0]]


def test_bar_model_builds_the_volatility_grid_at_a_close():
    # "bar": built at the close of bar 2 (the first with 3 true ranges, all 2): centred on that
    # close 100.5, spacing 2 -> 96.5 98.5 100.5 102.5 104.5. Bar 3 (TR 3.5 with the gap from
    # 100.5) must not enter it: bar 3's low 97 fills the buy at 98.5 only, at its limit
    bars = [(100, 101, 99, 100), (100, 101, 99, 100), (100, 101, 99, 100.5),
            (100.5, 100.5, 97, 98)]
    params = {"spacing": "volatility", "n_levels": 5, "atr_period": 3, "atr_k": 1.0,
              "order_value": 100.0}
    f = run_grid(_frame(bars), [params]).fills
    assert f[["bar", "side", "price"]].values.tolist() == [[3, 1, 98.5]]


def test_grid_signal_is_normalised_inventory():
    df = load("sample:bars=600,seed=1")
    params = {"n_levels": 8}
    res = run_grid(df, [params])
    sig = get_kind("grid").signals(df, params)
    expected = res.positions[0] * df["close"] / res.equity[0]
    np.testing.assert_allclose(sig, expected.to_numpy(), rtol=1e-12)
    assert sig.min() >= 0 and sig.max() <= 1 and sig.max() > 0


def test_bad_input_raises_clear_errors():
    df = load("sample:bars=50")
    with pytest.raises(ParameterError, match="spacing"):
        run_grid(df, [{"spacing": "fractal"}])
    with pytest.raises(ParameterError, match="'upper'"):
        run_grid(df, [{"lower": 100.0, "upper": 90.0}])
    with pytest.raises(ParameterError, match="n_levels"):
        run_grid(df, [{"n_levels": 1}])
    with pytest.raises(ParameterError, match="'n_levels': 1001 is above the maximum 1000"):
        run_grid(df, [{"n_levels": 1001}])
    with pytest.raises(ParameterError, match="'n_levels' \\(65\\) is above 64.*fibonacci"):
        run_grid(df, [{"spacing": "fibonacci", "n_levels": 65}])
    with pytest.raises(ParameterError, match="'fill_model' must be one of \\['bar', 'touch'\\]"):
        run_grid(df, [{"fill_model": "tick"}])
    with pytest.raises(ParameterError, match="unknown parameter"):
        run_grid(df, [{"levels": 3}])
    with pytest.raises(ParameterError, match="active"):
        run_grid(df, [{}], active=np.ones(3, bool))
    bad = df.copy()
    bad.iloc[7, bad.columns.get_loc("low")] = np.nan
    with pytest.raises(DataError, match="'low' at row 7"):
        run_grid(bad, [{}])


def test_level_history_and_fill_plot_show_the_run():
    from quantlib.backtest.grid import level_history
    from quantlib.plotting.grid import plot_grid_fills

    df = load("sample:bars=700,seed=9")
    res = run_grid(df, [{"spacing": "volatility", "n_levels": 6, "atr_period": 8, "atr_k": 2.0},
                        {"lower": 90.0, "upper": 110.0, "n_levels": 5}])
    fixed = level_history(df, res.params[1])
    np.testing.assert_allclose(fixed.iloc[-1], [90, 95, 100, 105, 110])
    vol = level_history(df, res.params[0])
    assert vol.iloc[:8].isna().all().all()  # no ATR yet
    spacing = vol.iloc[8:].diff(axis=1).iloc[:, 1:]  # equal steps within each grid
    assert vol.iloc[8:].notna().all().all()
    assert (spacing.std(axis=1) < 1e-9 * spacing.mean(axis=1) * 1e3).all()
    assert vol.iloc[:, 0].nunique() > 1  # re-centred at least once
    # every buy of the run fills at a level in force (or at the open, after a gap)
    f = res.fills_of(0)
    buys = f[f["side"] == 1]
    assert len(buys) > 0
    fig = plot_grid_fills(df, res, 0)
    markers = [tr for tr in fig.data if tr.mode == "markers"]
    assert sum(len(tr.x) for tr in markers) == len(f)


def _pair_fills_by_dict(fills: pd.DataFrame) -> pd.DataFrame:
    """Round trips by walking the fill log with a dict of open buys (the rule, written plainly)."""
    out = []
    for combo, group in fills.groupby("combo", sort=True):
        open_buys: dict = {}
        for f in group.itertuples(index=False):
            if f.side == 1:
                open_buys[f.level] = f
                continue
            closing = [open_buys.pop(f.level)] if f.level >= 0 else list(open_buys.values())
            if f.level < 0:
                open_buys.clear()
            for b in closing:
                pnl = b.size * (f.price - b.price) - b.fee - f.fee * b.size / f.size
                out.append((combo, b.level, b.time, f.time, b.price, f.price, b.size, pnl))
    return pd.DataFrame(out, columns=["combo", "level", "entry_time", "exit_time", "entry_price",
                                      "exit_price", "size", "pnl"])


def _swings_then_a_crash(n: int = 3000, crash: int = 120) -> pd.DataFrame:
    """Hourly bars swinging +-6 % around 100 (noisy sine), then ``crash`` bars falling 1 %
    each: every grid within 10 % of 100 trades often, and every one with a stop-out is stopped
    while holding inventory."""
    rng = np.random.default_rng(4)
    swing = 100.0 * (1 + 0.06 * np.sin(np.arange(n) / 40.0)) * (1 + rng.normal(0, 0.003, n))
    closes = np.r_[swing, swing[-1] * 0.99 ** np.arange(1, crash + 1)]
    opens = np.r_[100.0, closes[:-1]]
    wick = np.abs(rng.normal(0, 0.002, len(closes)))
    bars = zip(opens, np.maximum(opens, closes) * (1 + wick),
               np.minimum(opens, closes) * (1 - wick), closes, strict=True)
    return _frame(list(bars))


def test_round_trips_equal_a_plain_walk_of_the_fill_log():
    df = _swings_then_a_crash()
    params = [{"n_levels": n, "lower_pct": w, "upper_pct": w, "stop_out": s, "stop_margin": 0.01,
               "fill_model": m}
              for n in (4, 9, 17) for w in (0.03, 0.08) for s in (False, True)
              for m in ("bar", "touch")]
    res = run_grid(df, params, BacktestConfig(fees=0.001, slippage_bps=3))
    assert (res.fills["level"] == -1).any(), "the case must include stop-outs"
    expected = _pair_fills_by_dict(res.fills)
    assert len(expected) > 50
    pd.testing.assert_frame_equal(res.trades.reset_index(drop=True), expected, check_dtype=False)


def test_fill_model_summary_against_the_reference_event_loop(shared_data):
    """Both models on a real file: the summary's figures equal those recomputed from the
    plain-Python event loop's fills (round trips paired by a dict walk of the fill log)."""
    import sys
    from pathlib import Path

    from quantlib.backtest.grid import FILL_MODELS, compare_fill_models, fill_model_summary

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from grid_reference import run_reference

    df = shared_data("eth_usdt_1h_2022_2023.csv").loc["2022-08-01":"2022-09-30"]
    params = {"lower": 1500.0, "upper": 2000.0, "n_levels": 51, "order_value": 100.0}
    table = fill_model_summary(compare_fill_models(df, params, BacktestConfig(fees=0.001)))
    bars = list(df[["open", "high", "low", "close"]].itertuples(index=False, name=None))
    for model in FILL_MODELS:
        ref = run_reference(bars, fill_model=model, spacing="arithmetic", lower=1500.0,
                            upper=2000.0, n_levels=51, order_value=100.0, init_cash=10_000.0,
                            fee=0.001)
        fills = pd.DataFrame(ref.fills, columns=["bar", "side", "price", "size", "fee", "level"])
        fills["combo"], fills["time"] = 0, df.index[fills["bar"]]
        trips = _pair_fills_by_dict(fills)
        column = table[model]
        assert column["round_trips"] == len(trips) > 100
        assert column["realized_pnl"] == pytest.approx(trips["pnl"].sum(), rel=1e-10)
        assert column["fills"] == len(fills)
        assert column["fees_paid"] == pytest.approx(fills["fee"].sum(), rel=1e-10)
        assert column["final_equity"] == pytest.approx(ref.equity[-1], rel=1e-12)
    for row in ("round_trips", "realized_pnl"):
        assert table.loc[row, "touch_vs_bar"] == pytest.approx(
            table.loc[row, "touch"] / table.loc[row, "bar"] - 1.0, rel=1e-12)
    assert table.loc["round_trips", "touch_vs_bar"] > 0.05  # touch is the optimistic one
    with pytest.raises(ParameterError, match="one combination per fill model"):
        fill_model_summary(run_grid(df, [params]))


@pytest.mark.parametrize("fill_model", ["bar", "touch"])
def test_state_resume_is_exact_under_both_fill_models(fill_model):
    # what the paper runner relies on after a restart: resuming from the persisted state at a
    # checked bar reproduces the uninterrupted run (the ATR ring, the previous close and, for
    # "bar", the lowest resting sell included)
    from quantlib.backtest.bias import check_recursive

    params = {"spacing": "volatility", "n_levels": 9, "atr_k": 0.5, "atr_period": 10,
              "fill_model": fill_model}
    result = check_recursive("grid", load("sample:bars=700,seed=6"), params, n_checks=12)
    assert result.passed, result.details


def test_export_keeps_the_fill_model_and_the_spec_reproduces_the_backtest(tmp_path):
    from quantlib.backtest.engine import run_backtest
    from quantlib.strategy.spec import export, load_spec

    df = load("sample:bars=600,seed=8")
    config = BacktestConfig(fees=0.001, slippage_bps=3.0)
    res = run_grid(df, [{"n_levels": 15, "lower_pct": 0.08, "upper_pct": 0.08,
                         "fill_model": "touch"}], config)
    spec = export("g", result=res, data=df, exchange="kraken", symbols=["BTC/USD"],
                  timeframe="1h", path=tmp_path / "g.json")
    spec = load_spec(tmp_path / "g.json")
    assert spec.params["fill_model"] == "touch"
    again = run_backtest(spec.kind, df, spec.params, spec.backtest_config())
    assert len(res.fills) > 10
    pd.testing.assert_frame_equal(again.fills, res.fills)
    # the default is exported too, so a spec never depends on a future default
    bar = export("b", result=run_grid(df, [{"n_levels": 15}], config), data=df,
                 symbols=["BTC/USD"], timeframe="1h")
    assert bar.params["fill_model"] == "bar"


def test_equity_plot_tells_the_fill_models_apart():
    from quantlib.backtest.grid import compare_fill_models
    from quantlib.plotting.grid import plot_grid_equity

    res = compare_fill_models(load("sample:bars=400,seed=3"), {"n_levels": 20})
    fig = plot_grid_equity(res)
    assert [tr.name for tr in fig.data] == ["arithmetic", "arithmetic (touch)"]
    for k, trace in enumerate(fig.data):
        np.testing.assert_array_equal(trace.y, res.equity[k].to_numpy())
    assert not np.array_equal(fig.data[0].y, fig.data[1].y)  # the models really differ here
