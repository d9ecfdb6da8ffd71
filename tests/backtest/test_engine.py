"""vectorbt signal engine against the plain-Python reference loop and hand-worked stop cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import BacktestConfig, run_backtest
from quantlib.core.registry import Param, StrategyKind, get_kind, register
from quantlib.errors import DataError, ParameterError
from tests.backtest.signal_reference import make_frame, reference_backtest

PARAMS = {"fast": 5, "slow": 20}

CASES = [
    dict(direction="longonly", size_type="percent", size=1.0, execution="next_open", fees=0.001,
         slippage_bps=5),
    dict(direction="longonly", size_type="percent", size=0.6, execution="close", fees=0.002,
         slippage_bps=0),
    dict(direction="shortonly", size_type="percent", size=1.0, execution="next_open", fees=0.001,
         slippage_bps=3),
    dict(direction="both", size_type="value", size=3000.0, execution="next_open", fees=0.0005,
         slippage_bps=2),
    dict(direction="longonly", size_type="value", size=2000.0, execution="next_open", fees=0.001,
         slippage_bps=0),
]


def _compare_fills(result_fills: pd.DataFrame, ref_fills: list[dict]) -> None:
    ref = pd.DataFrame(ref_fills)
    assert len(result_fills) == len(ref) > 0
    assert (result_fills["time"].to_numpy() == ref["time"].to_numpy()).all()
    assert (result_fills["side"].to_numpy() == ref["side"].to_numpy()).all()
    for col in ("price", "size", "fee"):
        np.testing.assert_allclose(result_fills[col], ref[col], rtol=1e-9)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['direction']}-{c['size_type']}-{c['execution']}")
def test_single_combo_matches_reference_loop(ohlcv, case):
    kind = get_kind("ema_cross")
    target = kind.signals(ohlcv, PARAMS)
    result = run_backtest("ema_cross", ohlcv, PARAMS, BacktestConfig(**case))
    ref_equity, ref_fills = reference_backtest({"x": ohlcv}, {"x": target}, **case)
    np.testing.assert_allclose(result.equity[0].to_numpy(), ref_equity, rtol=1e-9)
    _compare_fills(result.fills, ref_fills)
    assert result.metrics.loc[0, "fees_paid"] == pytest.approx(sum(f["fee"] for f in ref_fills))
    assert result.metrics.loc[0, "final_equity"] == pytest.approx(ref_equity[-1])


def test_next_open_fills_one_bar_after_the_decision(ohlcv):
    target = get_kind("ma_cross").signals(ohlcv, PARAMS)
    result = run_backtest("ma_cross", ohlcv, PARAMS, BacktestConfig(fees=0.0))
    changes = np.flatnonzero(np.diff(np.r_[0.0, np.clip(target, 0, 1)]) != 0)  # decision bars
    changes = changes[changes < len(ohlcv) - 1]  # the last bar's decision is never filled
    pos = ohlcv.index.get_indexer(result.fills["time"])
    np.testing.assert_array_equal(pos, changes + 1)
    np.testing.assert_allclose(result.fills["price"], ohlcv["open"].to_numpy()[pos])


def test_broadcast_equals_single_runs(ohlcv):
    grid = [{"fast": f, "slow": s} for f, s in [(3, 10), (5, 20), (8, 30), (10, 50)]]
    config = BacktestConfig(fees=0.001, slippage_bps=1, sl_stop=0.03)
    many = run_backtest("ma_cross", ohlcv, grid, config)
    assert many.equity.shape == (len(ohlcv), 4)
    for i, p in enumerate(grid):
        one = run_backtest("ma_cross", ohlcv, p, config)
        np.testing.assert_allclose(many.equity[i].to_numpy(), one.equity[0].to_numpy(), rtol=1e-12)
        mine = many.fills_of(i).drop(columns="combo")
        np.testing.assert_allclose(mine[["price", "size", "fee"]], one.fills[["price", "size", "fee"]])
        pd.testing.assert_series_equal(many.metrics.iloc[i], one.metrics.iloc[0], check_names=False)
    assert many.params == grid


def test_multi_asset_shares_cash(ohlcv, ohlcv_b):
    frames = {"A": ohlcv, "B": ohlcv_b}
    case = dict(size=0.5, size_type="percent", fees=0.001, slippage_bps=2)
    grid = [{"fast": 5, "slow": 20}, {"fast": 8, "slow": 30}]
    result = run_backtest("ma_cross", frames, grid, BacktestConfig(**case))
    assert result.equity.shape == (len(ohlcv), 2)
    kind = get_kind("ma_cross")
    for combo, p in enumerate(grid):
        targets = {s: kind.signals(df, p) for s, df in frames.items()}
        ref_equity, ref_fills = reference_backtest(frames, targets, **case)
        np.testing.assert_allclose(result.equity[combo].to_numpy(), ref_equity, rtol=1e-9)
        got = result.fills_of(combo)
        ref = pd.DataFrame(ref_fills)
        assert list(got["symbol"]) == list(ref["symbol"])
        np.testing.assert_allclose(got["size"], ref["size"], rtol=1e-9)
    # both symbols traded from the one cash account
    assert set(result.fills["symbol"]) == {"A", "B"}


# --- stops on hand-built bars ---------------------------------------------------------------------
def _always_long(df, params):
    return np.ones(len(df))


ALWAYS_LONG = register(StrategyKind("test_always_long", params=(), signal=_always_long),
                       replace=True)


def _stop_run(open_, high, low, close, **stops):
    df = make_frame(open_, high, low, close)
    result = run_backtest(ALWAYS_LONG, df, None, BacktestConfig(fees=0.0, **stops))
    return result.fills


def test_stop_loss_fills_at_the_stop_price():
    # entry at bar 1 open 100; bar 2 trades down to 94: a 5 % stop sells at 95, never re-enters
    fills = _stop_run([100, 100, 99, 97, 96], [101, 101, 99, 98, 97], [99, 99, 94, 96, 95],
                      [100, 99, 96, 97, 96], sl_stop=0.05)
    assert list(fills["side"]) == [1, -1]
    assert fills["price"].tolist() == pytest.approx([100.0, 95.0])
    assert fills["time"].iloc[1] == make_frame([1] * 5, [1] * 5, [1] * 5, [1] * 5).index[2]


def test_stop_loss_gap_fills_at_the_open():
    fills = _stop_run([100, 100, 90, 91], [101, 101, 92, 92], [99, 99, 89, 90], [100, 99, 91, 91],
                      sl_stop=0.05)
    assert fills["price"].tolist() == pytest.approx([100.0, 90.0])


def test_take_profit_fills_at_the_target():
    fills = _stop_run([100, 100, 101, 104], [101, 102, 107, 105], [99, 99, 100, 103],
                      [100, 101, 104, 104], tp_stop=0.05)
    assert fills["price"].tolist() == pytest.approx([100.0, 105.0])


def test_trailing_stop_follows_the_peak():
    # peak high 110 on bar 2; bar 3 falls to 100: 5 % trail from 110 sells at 104.5
    fills = _stop_run([100, 100, 105, 108, 101], [101, 101, 110, 108, 102], [99, 99, 104, 100, 100],
                      [100, 100, 109, 102, 101], trail_stop=0.05)
    assert fills["price"].tolist() == pytest.approx([100.0, 104.5])


def test_errors_name_the_problem(ohlcv):
    with pytest.raises(ParameterError, match="unknown strategy kind 'nope'"):
        run_backtest("nope", ohlcv)
    with pytest.raises(ParameterError, match="'fast'"):
        run_backtest("ma_cross", ohlcv, {"fast": 0, "slow": 20})
    with pytest.raises(ParameterError, match=r"params\[1\].*fast \(30\) must be < slow"):
        run_backtest("ma_cross", ohlcv, [{"fast": 5, "slow": 20}, {"fast": 30, "slow": 20}])
    with pytest.raises(ParameterError, match="sl_stop and trail_stop"):
        run_backtest("ma_cross", ohlcv, None, BacktestConfig(sl_stop=0.1, trail_stop=0.1))
    with pytest.raises(ParameterError, match="direction='both' needs size_type='value'"):
        run_backtest("ma_cross", ohlcv, None, {"direction": "both"})
    with pytest.raises(ParameterError, match="BacktestConfig.fees"):
        BacktestConfig(fees=-0.1)
    with pytest.raises(ParameterError, match="unknown field"):
        run_backtest("ma_cross", ohlcv, None, {"fee": 0.1})
    bad = ohlcv.copy()
    bad.iloc[5, bad.columns.get_loc("close")] = np.nan
    with pytest.raises(DataError):
        run_backtest("ma_cross", bad)


def test_new_kind_plugs_in_without_engine_changes(ohlcv):
    def momentum(df, p):
        ret = df["close"].pct_change(p["lookback"]).to_numpy()
        out = np.where(ret > 0, 1.0, 0.0)
        out[: p["lookback"]] = 0.0
        return out

    kind = register(StrategyKind("test_momentum", params=(Param("lookback", int, 10, low=1, high=100),),
                                 signal=momentum, warmup=lambda p: p["lookback"]), replace=True)
    result = run_backtest("test_momentum", ohlcv, [{"lookback": 5}, {"lookback": 20}])
    target = kind.signals(ohlcv, {"lookback": 20})
    ref_equity, _ = reference_backtest({"x": ohlcv}, {"x": target})
    np.testing.assert_allclose(result.equity[1].to_numpy(), ref_equity, rtol=1e-9)


def test_grid_kind_dispatches_to_the_grid_engine(ohlcv, ohlcv_b):
    from quantlib.backtest.grid import run_grid

    kind = get_kind("grid")
    assert kind.engine == "grid"
    params = [kind.defaults()]
    via_engine = run_backtest("grid", ohlcv, params, BacktestConfig(fees=0.0005))
    direct = run_grid(ohlcv, params, BacktestConfig(fees=0.0005))
    pd.testing.assert_frame_equal(via_engine.equity, direct.equity)
    assert len(via_engine.fills) == len(direct.fills)
    with pytest.raises(ParameterError, match="grid engine trades one symbol"):
        run_backtest("grid", {"A": ohlcv, "B": ohlcv_b}, params)


def test_real_btc_eth_portfolio_matches_reference(shared_data):
    btc = shared_data("btc_usdt_1h_2022_2023.csv").iloc[:4000]
    eth = shared_data("eth_usdt_1h_2022_2023.csv").iloc[:4000]
    frames = {"BTC": btc, "ETH": eth}
    case = dict(size=0.5, size_type="percent", fees=0.001, slippage_bps=3)
    p = {"fast": 12, "slow": 26}
    result = run_backtest("ema_cross", frames, [p], BacktestConfig(**case))
    common = btc.index.intersection(eth.index)
    aligned = {s: df.loc[common] for s, df in frames.items()}
    kind = get_kind("ema_cross")
    targets = {s: kind.signals(df, p) for s, df in aligned.items()}
    ref_equity, ref_fills = reference_backtest(aligned, targets, **case)
    np.testing.assert_allclose(result.equity[0].to_numpy(), ref_equity, rtol=1e-9)
    assert len(result.fills) == len(ref_fills) > 20


ENGINE_CASES = [
    dict(fees=0.001, slippage_bps=3),
    dict(fees=0.001, sl_stop=0.03, tp_stop=0.05),
    dict(fees=0.001, size=1000.0, size_type="value", direction="both", trail_stop=0.04),
]


@pytest.mark.parametrize("case", ENGINE_CASES, ids=["plain", "stops", "both-trailing"])
def test_rust_engine_is_bit_identical_to_numba(ohlcv, case):
    # quantlib depends on vectorbt-rust so a new kernel's first backtest compiles nothing; the
    # paper broker fills with vectorbt's numba order functions, so the Rust simulator must
    # agree with the numba one to the last bit.
    import vectorbt as vbt
    from vectorbt._engine import is_rust_available

    from quantlib.core.config import BacktestConfig as Config

    assert is_rust_available(), "vectorbt-rust is a declared dependency and must load"
    grid = [{"fast": f, "slow": s} for f in (3, 5, 8) for s in (12, 20, 40)]
    results = {}
    before = vbt.settings["engine"]
    try:
        for engine in ("numba", "rust"):
            vbt.settings["engine"] = engine
            results[engine] = run_backtest("ma_cross", ohlcv, grid, Config(**case))
    finally:
        vbt.settings["engine"] = before
    numba_res, rust_res = results["numba"], results["rust"]
    assert len(numba_res.fills) > 50
    np.testing.assert_array_equal(rust_res.equity.to_numpy(), numba_res.equity.to_numpy())
    pd.testing.assert_frame_equal(rust_res.fills, numba_res.fills, check_exact=True)
    pd.testing.assert_frame_equal(rust_res.trades, numba_res.trades, check_exact=True)


def test_a_parameter_grid_is_one_vectorbt_call(monkeypatch):
    """Parameter combinations broadcast as columns of one ``Portfolio.from_signals`` call, not a
    Python loop of backtests (and each column equals its own single backtest)."""
    import vectorbt as vbt

    calls = []
    original = vbt.Portfolio.from_signals

    def counting(cls, *args, **kwargs):
        calls.append(kwargs.get("close", args[0] if args else None))
        return original(*args, **kwargs)

    from quantlib.data import synthetic_ohlcv

    df = synthetic_ohlcv(n_bars=400, seed=11).ohlcv
    grid = [{"fast": f, "slow": s} for f in (3, 5, 8) for s in (20, 30)]
    monkeypatch.setattr(vbt.Portfolio, "from_signals", classmethod(counting))
    res = run_backtest("ma_cross", df, grid)
    assert len(calls) == 1 and res.equity.shape[1] == len(grid)
    monkeypatch.undo()
    for i, params in enumerate(grid):
        single = run_backtest("ma_cross", df, params)
        np.testing.assert_allclose(res.equity.iloc[:, i].to_numpy(),
                                   single.equity.iloc[:, 0].to_numpy(), rtol=1e-12)
