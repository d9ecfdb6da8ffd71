"""``quantlib backtest --strategy`` runs signal kinds on the project's own order and stop rules
(quantlib/backtest/rule_engine.py), never importing vectorbt; its numbers must equal
``run_backtest`` (vectorbt's ``Portfolio.from_signals``) to 1e-9 relative.

Reference: run_backtest on the same data, kind, params and config; every kind with signals,
exits (fixed, trailing, take-profit), both directions, both execution prices, informative inputs
(a resampled timeframe and another symbol), and portfolios on real files with shared cash.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from quantlib.backtest.engine import run_backtest
from quantlib.backtest.rule_engine import run_signal_rules
from quantlib.data import load, save_ohlcv
from quantlib.errors import ParameterError, SpecError
from quantlib.strategy.spec import StrategySpec, save_spec
from tests.conftest import shared_data_path
from tests.test_cli import _run_main

RTOL = 1e-9
DATA = "sample:bars=700,seed=4"

KINDS = {
    "ma_cross": {"fast": 5, "slow": 20},
    "ema_cross": {"fast": 5, "slow": 20},
    "macd": {},
    "rsi_reversion": {"window": 7},
    "bollinger_reversion": {},
    "donchian_breakout": {},
    "regime_filter": {"inner_params": {"fast": 5, "slow": 20}, "filter_window": 50},
    "htf_trend": {"inner_params": {"fast": 5, "slow": 20}, "trend_window": 10},
}
CONFIGS = {
    "long": {"fees": 0.001, "slippage_bps": 3.0, "size": 0.7},
    "long-sl-tp": {"sl_stop": 0.02, "tp_stop": 0.04},
    "short-trail": {"direction": "shortonly", "trail_stop": 0.03, "tp_stop": 0.05},
    "both-value-tp": {"direction": "both", "size_type": "value", "size": 4000.0,
                      "tp_stop": 0.03, "fees": 0.002},
    "close-sl": {"execution": "close", "sl_stop": 0.015, "slippage_bps": 10.0},
}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)))


def assert_same_backtest(ours, ref, *, min_fills: int = 4) -> None:
    """Fills (time, side, symbol exact; price, size, fee), equity, closed trades and every
    metric agree to RTOL."""
    a, b = ref.fills, ours.fills
    assert len(a) >= min_fills, "the case must trade to prove anything"
    assert len(a) == len(b)
    assert (a["time"].to_numpy() == b["time"].to_numpy()).all()
    assert (a["side"].to_numpy() == b["side"].to_numpy()).all()
    assert (a["symbol"].to_numpy() == b["symbol"].to_numpy()).all()
    for column in ("price", "size", "fee"):
        assert _rel(a[column], b[column]) <= RTOL, column
    assert _rel(ref.equity.to_numpy(), ours.equity.to_numpy()) <= RTOL
    ta, tb = ref.trades[ref.trades["closed"]], ours.trades[ours.trades["closed"]]
    assert len(ta) == len(tb)
    assert _rel(ta["pnl"], tb["pnl"]) <= RTOL
    assert list(ref.metrics.columns) == list(ours.metrics.columns)
    for key, value in ref.metrics.iloc[0].items():
        assert float(ours.metrics.iloc[0][key]) == pytest.approx(float(value), rel=RTOL,
                                                                 abs=1e-12, nan_ok=True), key


@pytest.fixture(scope="module")
def frame():
    return load(DATA)


@pytest.mark.parametrize("config", list(CONFIGS.values()), ids=list(CONFIGS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_rule_engine_equals_vectorbt(kind, config, frame):
    ref = run_backtest(kind, frame, KINDS[kind], config)
    assert_same_backtest(run_signal_rules(kind, frame, KINDS[kind], config), ref)


def test_stops_fire_in_the_exit_cases(frame):
    # control: the exit configurations really exit on stops (fills off the bar opens)
    for name in ("long-sl-tp", "short-trail", "close-sl"):
        res = run_signal_rules("ma_cross", frame, KINDS["ma_cross"], CONFIGS[name])
        prices = frame["close" if name == "close-sl" else "open"].reindex(res.fills["time"])
        off_bar = ~np.isclose(res.fills["price"].to_numpy(), prices.to_numpy(), rtol=2e-3)
        assert off_bar.sum() >= 3, name


def test_other_symbol_input_equals_vectorbt():
    eth = load("sample:bars=600,timeframe=1h,seed=1")
    btc = load("sample:bars=600,timeframe=1h,seed=2")
    btc.attrs["symbol"] = "BTC/USDT"
    params = {"inner_kind": "ma_cross", "inner_params": {"fast": 5, "slow": 30},
              "vol_window": 12, "filter_window": 30, "regime_symbol": "BTC/USDT"}
    for config in (CONFIGS["long"], CONFIGS["long-sl-tp"]):
        ref = run_backtest("regime_filter_cross", eth, params, config, informative={"regime": btc})
        ours = run_signal_rules("regime_filter_cross", eth, params, config,
                                informative={"regime": btc})
        assert_same_backtest(ours, ref)


def test_xgb_classifier_equals_vectorbt(tmp_path):
    from quantlib.core.ml_features import FeatureConfig
    from quantlib.core.xgb_kind import make_params
    from quantlib.ml.artifacts import save_model
    from quantlib.ml.model import XGBSignalClassifier, build_dataset

    data = load("sample:bars=600,seed=5")
    ds = build_dataset(data.iloc[:400], FeatureConfig(), horizon=4)
    clf = XGBSignalClassifier(n_estimators=30, max_depth=3, random_state=0).fit(ds.X, ds.y)
    params = make_params(save_model(clf.booster_, tmp_path / "m.model.json"), FeatureConfig(),
                         entry=0.6, exit=0.5, memory=12)
    for config in (CONFIGS["long"], CONFIGS["long-sl-tp"]):
        ref = run_backtest("xgb_classifier", data, params, config)
        assert_same_backtest(run_signal_rules("xgb_classifier", data, params, config), ref)


def test_refuses_what_the_vectorbt_engine_refuses(frame):
    for config, word in (({"sl_stop": 0.1, "trail_stop": 0.1}, "trail_stop"),
                         ({"direction": "both"}, "size_type")):
        for run in (run_backtest, run_signal_rules):
            with pytest.raises(ParameterError, match=word):
                run("ma_cross", frame, {}, config)
    with pytest.raises(ParameterError, match="grid"):
        run_signal_rules("grid", frame)
    # funding_carry reads a funding column plain OHLCV lacks (a perp backtest's input): both
    # engines say so instead of simulating without it
    for run in (run_backtest, run_signal_rules):
        with pytest.raises(ParameterError, match="funding_rate"):
            run("funding_carry", frame)


# -- the command ------------------------------------------------------------------------------

def _spec(tmp_path, kind="ma_cross", params=None, symbols=("BTC/USD",), **blocks):
    spec = StrategySpec(name="cli", kind=kind, params=params or KINDS["ma_cross"],
                        symbols=list(symbols), timeframe="1h", **blocks)
    return spec, save_spec(spec, tmp_path / "spec.json")


def _cli(*args: str) -> dict:
    from quantlib.cli import app

    out = CliRunner().invoke(app, ["backtest", *args])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def _assert_printed(printed: dict, metrics_row) -> None:
    assert set(printed) == set(metrics_row.index)
    for key, value in metrics_row.items():
        assert float(printed[key]) == pytest.approx(float(value), rel=RTOL, abs=1e-12,
                                                    nan_ok=True), key


@pytest.mark.parametrize("blocks", [
    {"execution": {"fees": 0.002, "slippage_bps": 5.0}, "risk": {"sl_stop": 0.02}},
    {"execution": {"direction": "both"},
     "risk": {"size_type": "value", "order_size": 3000.0, "trail_stop": 0.03, "tp_stop": 0.05}},
], ids=["long-sl", "both-trail-tp"])
def test_cli_prints_run_backtests_metrics(blocks, tmp_path, frame):
    spec, path = _spec(tmp_path, **blocks)
    printed = _cli("--strategy", str(path), "--data", DATA)
    ref = run_backtest("ma_cross", frame, spec.params, spec.backtest_config())
    _assert_printed(printed, ref.metrics.iloc[0])


def test_the_command_process_never_imports_vectorbt(tmp_path):
    # The console entry point in a fresh interpreter, on a spec with exits: metrics printed,
    # and neither vectorbt nor the jsonschema it drags in are loaded.
    _, spec = _spec(tmp_path, risk={"sl_stop": 0.02, "tp_stop": 0.05})
    data = save_ohlcv(load("sample:bars=400,seed=1"), tmp_path / "bars.csv")
    done, modules = _run_main(["backtest", "--strategy", str(spec), "--data", f"file:{data}"])
    *printed, _ = done.stdout.strip().splitlines()
    assert "total_return" in json.loads("\n".join(printed))
    assert "quantlib.backtest.rule_engine" in modules  # control: the check sees our modules
    assert [m for m in modules if m.split(".")[0] in ("vectorbt", "jsonschema", "plotly")] == []


# -- portfolios -------------------------------------------------------------------------------

REAL = {"BTC/USDT": "btc_usdt_1h_2022_2023.csv", "ETH/USDT": "eth_usdt_1h_2022_2023.csv",
        "SOL/USDT": "sol_usdt_1h_2022_2023.csv"}


@pytest.fixture(scope="module")
def real_portfolio():
    paths = {symbol: shared_data_path(name) for symbol, name in REAL.items()}
    return paths, {symbol: load(f"file:{path}") for symbol, path in paths.items()}


@pytest.mark.parametrize("blocks", [
    {"risk": {"order_size": 0.4}},
    {"execution": {"direction": "both", "fees": 0.0005},
     "risk": {"size_type": "value", "order_size": 4000.0, "sl_stop": 0.03, "tp_stop": 0.06}},
], ids=["percent-shared-cash", "both-value-stops"])
def test_portfolio_spec_on_real_files_equals_run_backtest(blocks, real_portfolio, tmp_path):
    from quantlib.strategy.cli import backtest_spec

    paths, frames = real_portfolio
    spec, path = _spec(tmp_path, params={"fast": 12, "slow": 48}, symbols=tuple(REAL), **blocks)
    ref = run_backtest("ma_cross", frames, spec.params, spec.backtest_config())
    assert set(ref.fills["symbol"]) == set(REAL)  # every symbol trades
    ours = backtest_spec(path, [f"{s}=file:{p}" for s, p in paths.items()])
    assert_same_backtest(ours, ref, min_fills=30)
    # the same through the command, with the sources joined in one --data value
    joined = ",".join(f"{s}=file:{p}" for s, p in paths.items())
    _assert_printed(_cli("--strategy", str(path), "--data", joined), ref.metrics.iloc[0])


def test_portfolio_cash_is_shared():
    # With percent sizing a later symbol's entry spends a share of what the earlier ones left:
    # the 3-symbol run is not the sum of three 1-symbol runs (control for the test above).
    frames = {s: load(f"sample:bars=500,seed={k}") for k, s in enumerate(("A/B", "C/D"))}
    together = run_signal_rules("ma_cross", frames, KINDS["ma_cross"], {"size": 0.5})
    alone = run_signal_rules("ma_cross", frames["C/D"], KINDS["ma_cross"], {"size": 0.5})
    first_c = together.fills[together.fills["symbol"] == "C/D"].iloc[0]
    assert first_c["size"] != pytest.approx(float(alone.fills["size"].iloc[0]))


@pytest.mark.parametrize("data, message", [
    (["BTC/USD=sample"], r"no source for \['ETH/USD'\]"),
    (["BTC/USD=sample", "XRP/USD=sample"], r"XRP/USD is not one of the spec's \$\.symbols"),
    (["BTC/USD=sample,BTC/USD=sample"], "BTC/USD is given twice"),
    (["sample"], r"\$\.symbols: the spec trades"),
])
def test_portfolio_sources_are_checked_by_name(data, message, tmp_path):
    from quantlib.strategy.cli import backtest_spec

    _, path = _spec(tmp_path, symbols=("BTC/USD", "ETH/USD"))
    with pytest.raises(SpecError, match=message):
        backtest_spec(path, data)
