"""PARITY: replaying a file through the paper runner reproduces the backtest's fills exactly.

The independent computation is :func:`quantlib.backtest.run_backtest` (vectorbt for signal kinds,
the numba grid kernel for grid) on the whole file; the runner only ever sees a bounded window of
closed bars, one at a time, and must agree on every fill's time, side, price and size exactly,
and on the equity to a relative ``EQUITY_RTOL`` (1e-9: the paper account adds each fill's cash to
the running cash, the backtest adds the summed cash flows to the initial cash, so the two can
differ in the last ulp; a regime_filter case on the recalibrated synthetic data does, with
fills and paper cash bit-identical to vectorbt's own).

Every case runs twice: a ``LiveRunner`` in this process (numba's JIT), and the real trading
process, ``quantlib live run --kernels aot``, which runs ahead-of-time compiled kernels and must
load neither pandas, numba (LLVM), pyarrow nor vectorbt.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest.engine import run_backtest
from quantlib.core.config import BacktestConfig
from quantlib.data import load_ohlcv
from quantlib.live.brokers import PaperBroker
from quantlib.live.replay_feeds import ReplayFeed
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from quantlib.strategy.spec import save_spec
from tests.live._trader import heavy_modules, run_trader
from tests.live.conftest import make_spec

CONFIG = BacktestConfig(fees=0.001, slippage_bps=5.0)
EQUITY_RTOL = 1e-9
HOW = ("in-process", "trading-process")


@pytest.fixture(scope="session", autouse=True)
def _aot_kernels():
    """Build the ahead-of-time kernels once (the trading process would build them itself)."""
    from quantlib import jit

    jit.ensure_built()


def _backtest_fills(res) -> list[tuple]:
    f = res.fills
    times = pd.DatetimeIndex(f["time"]).as_unit("ms").asi8
    return [(int(t), int(s), float(p), float(z)) for t, s, p, z in
            zip(times, f["side"], f["price"], f["size"], strict=True)]


def _assert_replay_is_the_backtest(replayed: tuple, res, expected: list[tuple],
                                   n_bars: int) -> None:
    """A ``_replay`` result saw ``n_bars`` bars, made the ``expected`` fills exactly (time,
    side, price, size) and ended on ``res``'s equity, bar by bar (the grid kernel sums cash and
    inventory value in another order, hence the last-ulp tolerance)."""
    bars, equity, fills, store = replayed
    assert bars == n_bars
    assert fills == expected
    assert equity == pytest.approx(float(res.equity.iloc[-1, 0]), rel=EQUITY_RTOL, abs=0)
    curve = np.array([row.equity for row in store.bars()])
    np.testing.assert_allclose(curve, res.equity.iloc[:, 0].to_numpy(), rtol=1e-12, atol=0)


def _replay(spec, path, tmp_path, how="in-process"):
    """Replay ``path`` through the paper runner; ``(bars processed, final equity, fills, store)``."""
    if how == "trading-process":
        return _replay_in_the_trading_process(spec, path, tmp_path)
    store = StateStore(tmp_path / "state.db")
    summary = LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(path)).run()
    fills = [(t, s, p, z) for _, t, s, p, z, _ in store.fills()]
    return summary.bars_processed, summary.equity, fills, store


def _replay_in_the_trading_process(spec, path, tmp_path):
    spec_path = save_spec(spec, tmp_path / "spec.json")
    state = tmp_path / "trader.db"
    done, loaded = run_trader(["live", "run", "--strategy", str(spec_path), "--mode", "paper",
                               "--feed", f"replay:{path}", "--state", str(state),
                               "--kernels", "aot", "--log-file", str(tmp_path / "log.jsonl")],
                              tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert heavy_modules(loaded) == [], f"the trading process loaded {heavy_modules(loaded)}"
    assert any(m.startswith("_quantlib_kernels_") for m in loaded)  # kernels from the extension
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    store = StateStore(state)
    fills = [(t, s, p, z) for _, t, s, p, z, _ in store.fills()]
    return summary["bars_processed"], summary["equity"], fills, store


CASES = [
    ("ma_cross", {"fast": 5, "slow": 20}),
    ("ema_cross", {"fast": 5, "slow": 12}),
    ("rsi_reversion", {}),
    ("bollinger_reversion", {}),
    ("donchian_breakout", {}),
    ("macd", {}),
    ("grid", {"n_levels": 8, "lower_pct": 0.08, "upper_pct": 0.08}),
    ("grid", {"spacing": "volatility", "n_levels": 8, "atr_k": 0.3, "atr_period": 10}),
]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(("kind", "params"), CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)])
def test_paper_replay_matches_backtest(kind, params, how, replay_file, tmp_path):
    data = load_ohlcv(replay_file)
    res = run_backtest(kind, data, params, CONFIG)
    expected = _backtest_fills(res)
    assert len(expected) >= 4, "the case must trade to prove anything"
    replayed = _replay(make_spec(kind, params), replay_file, tmp_path, how)
    _assert_replay_is_the_backtest(replayed, res, expected, len(data))


@pytest.mark.parametrize("how", HOW)
def test_xgb_classifier_parity(how, tmp_path):
    from quantlib.core.ml_features import FeatureConfig
    from quantlib.core.xgb_kind import make_params
    from quantlib.data import save_ohlcv, synthetic_ohlcv
    from quantlib.ml.artifacts import save_model
    from quantlib.ml.model import XGBSignalClassifier, build_dataset

    # Longer than the shared replay: the model needs enough training rows to vary its output
    # (seed 5: the calibrated synthetic default gives seed 3 only four fills here).
    data = synthetic_ohlcv(n_bars=600, seed=5).ohlcv
    replay_file = save_ohlcv(data, tmp_path / "xgb_replay.csv")
    ds = build_dataset(data.iloc[:400], FeatureConfig(), horizon=4)
    clf = XGBSignalClassifier(n_estimators=40, max_depth=3, random_state=0).fit(ds.X, ds.y)
    ref = save_model(clf.booster_, tmp_path / "m.model.json")
    params = make_params(ref, FeatureConfig(), entry=0.6, exit=0.5, memory=12)
    res = run_backtest("xgb_classifier", data, params, CONFIG)
    expected = _backtest_fills(res)
    assert len(expected) >= 10, "the case must trade to prove anything"
    _, equity, fills, _ = _replay(make_spec("xgb_classifier", params), replay_file, tmp_path,
                                  how)
    assert fills == expected
    assert equity == pytest.approx(float(res.equity.iloc[-1, 0]), rel=EQUITY_RTOL, abs=0)


def test_window_is_bounded_and_signal_is_the_registry_function(replay_file, tmp_path):
    # The runner must not accumulate history: the window holds warmup + 1 bars, no more.
    from quantlib.core.registry import get_kind

    spec = make_spec("ma_cross", {"fast": 5, "slow": 20})
    store = StateStore(tmp_path / "s.db")
    runner = LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(replay_file))
    runner.run()
    kind = get_kind("ma_cross")
    assert runner.window.size == kind.warmup(kind.validate(spec.params)) + 1
    assert len(runner.window.rows) == runner.window.size


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("kind", ["regime_filter", "regime_grid"])
def test_regime_kinds_parity(kind, how, tmp_path):
    """The regime-wrapped kinds from a JSON spec: the runner's bounded window reproduces the
    backtest's regime mask (filter window and features included) and so its fills."""
    from quantlib.core.regime_kinds import regime_filter_params
    from quantlib.data import save_ohlcv, synthetic_ohlcv
    from quantlib.regime import GaussianHMMRegime, regime_features

    data = synthetic_ohlcv(n_bars=700, seed=5).ohlcv
    replay_file = save_ohlcv(data, tmp_path / "regime_replay.csv")
    hmm = GaussianHMMRegime(2, n_restarts=1, random_state=0).fit(
        regime_features(data.iloc[:400], ["returns"]))
    inner = ("ma_cross", {"fast": 5, "slow": 20}) if kind == "regime_filter" else \
        ("grid", {"n_levels": 10, "lower_pct": 0.4, "upper_pct": 0.4})
    # regimes chosen so that each case trades and its mask switches (asserted below)
    allowed = [0] if kind == "regime_filter" else [1]
    params = regime_filter_params(hmm, *inner, allowed_regimes=allowed, filter_window=48)
    res = run_backtest(kind, data, params, CONFIG)
    expected = _backtest_fills(res)
    assert len(expected) >= 4, "the case must trade to prove anything"
    if kind == "regime_grid":  # the mask must really switch for the parity to mean anything
        active = res.extras["active"].iloc[:, 0].to_numpy()
        assert 0.05 < active.mean() < 0.95
    _, equity, fills, store = _replay(make_spec(kind, params), replay_file, tmp_path, how)
    assert fills == expected
    assert equity == pytest.approx(float(res.equity.iloc[-1, 0]), rel=EQUITY_RTOL, abs=0)
    if kind == "regime_grid":  # bar by bar, the runner allowed buys exactly when the backtest did
        runner_active = np.array([row.note != "buys off" for row in store.bars()])
        np.testing.assert_array_equal(runner_active, active)


# -- exits: a notebook's stops exported into the spec -------------------------------------------
EXITS = [
    {"sl_stop": 0.02, "tp_stop": 0.04},
    {"trail_stop": 0.015, "tp_stop": 0.05},
    {"sl_stop": 0.01, "tp_stop": 0.02, "direction": "shortonly"},
]


def _exported_spec(res, data, tmp_path):
    from quantlib.strategy.spec import export

    return export("exits", result=res, data=data, exchange="kraken", symbols=["BTC/USD"],
                  timeframe="1h", path=tmp_path / "exported.json")


def _stop_exits(store) -> int:
    return sum(o.intent.startswith("exit|") and o.status == "filled" for o in store.orders())


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("exits", EXITS, ids=["sl-tp", "trail-tp", "short-sl-tp"])
def test_exits_parity_synthetic(exits, how, replay_file, tmp_path):
    """Stops exported from a backtest: paper replay (and `quantlib backtest --strategy`) give
    the notebook's fills exactly, the stop exits included."""
    from quantlib.strategy.cli import backtest_spec

    data = load_ohlcv(replay_file)
    res = run_backtest("ma_cross", data, {"fast": 5, "slow": 20}, CONFIG.replace(**exits))
    expected = _backtest_fills(res)
    spec = _exported_spec(res, data, tmp_path)
    for key in ("sl_stop", "tp_stop", "trail_stop"):
        assert getattr(spec.risk, key) == exits.get(key)
    again = backtest_spec(tmp_path / "exported.json", f"file:{replay_file}")
    assert _backtest_fills(again) == expected
    _, equity, fills, store = _replay(spec, replay_file, tmp_path, how)
    # (sl-tp on this data: 2; a third came after a signal exit due at the open, which now
    # comes first: stop_rule.py)
    assert _stop_exits(store) >= 2, "the stops must fire to prove anything"
    assert fills == expected
    assert abs(equity - float(res.equity.iloc[-1, 0])) <= 1e-9 * abs(equity)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("exits", EXITS[:2], ids=["sl-tp", "trail-tp"])
def test_exits_parity_real_file(exits, how, tmp_path):
    """The same on a real market (BTC/USDT 1h 2022-2023, gaps and all)."""
    from tests.conftest import shared_data_path

    path = shared_data_path("btc_usdt_1h_2022_2023.csv")
    data = load_ohlcv(path)
    res = run_backtest("ma_cross", data, {"fast": 10, "slow": 40}, CONFIG.replace(**exits))
    expected = _backtest_fills(res)
    spec = _exported_spec(res, data, tmp_path)
    _, equity, fills, store = _replay(spec, path, tmp_path, how)
    assert _stop_exits(store) >= 20
    # some exits fill at the open (the bar gapped past the level), most at the level itself
    opens = dict(zip(data.index.as_unit("ms").asi8.tolist(), data["open"], strict=True))
    exit_prices = [(f[1], f[3]) for f in store.fills() if f[0] in
                   {o.client_id for o in store.orders() if o.intent.startswith("exit|")}]
    assert any(price != opens[t] for t, price in exit_prices)
    assert fills == expected
    assert abs(equity - float(res.equity.iloc[-1, 0])) <= 1e-9 * abs(equity)


# -- portfolios: several symbols, one shared cash account ---------------------------------------
PORTFOLIO = ["BTC/USD", "ETH/USD", "SOL/USD"]


def _portfolio_fills(res) -> list[tuple]:
    f = res.fills
    times = pd.DatetimeIndex(f["time"]).as_unit("ms").asi8
    return [(str(sym), int(t), int(s), float(p), float(z)) for sym, t, s, p, z in
            zip(f["symbol"], times, f["side"], f["price"], f["size"], strict=True)]


def _replay_portfolio(spec, files: dict, tmp_path, how):
    feed = "replay:" + ",".join(f"{s}={p}" for s, p in files.items())
    if how == "trading-process":
        spec_path = save_spec(spec, tmp_path / "spec.json")
        state = tmp_path / "trader.db"
        done, loaded = run_trader(["live", "run", "--strategy", str(spec_path), "--mode",
                                   "paper", "--feed", feed, "--state", str(state), "--kernels",
                                   "aot", "--log-file", str(tmp_path / "log.jsonl")], tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert heavy_modules(loaded) == []
        bars, equity = (json.loads(done.stdout.strip().splitlines()[-1])[k]
                        for k in ("bars_processed", "equity"))
        store = StateStore(state)
    else:
        from quantlib.live.feed_factory import make_feed

        store = StateStore(tmp_path / "state.db")
        summary = LiveRunner(spec, PaperBroker(store, spec), store, make_feed(feed)).run()
        bars, equity = summary.bars_processed, summary.equity
    symbol_of = {o.client_id: o.symbol for o in store.orders()}
    fills = [(symbol_of[c], t, s, p, z) for c, t, s, p, z, _ in store.fills()]
    return bars, equity, fills, store


def _check_portfolio(frames, files, params, config, tmp_path, how):
    from quantlib.strategy.spec import export

    res = run_backtest("ma_cross", frames, params, config)
    expected = _portfolio_fills(res)
    assert {f[0] for f in expected} == set(PORTFOLIO), "every symbol must trade"
    spec = export("folio", result=res, exchange="kraken", symbols=PORTFOLIO, timeframe="1h")
    assert spec.risk.order_size == config.size
    bars, equity, fills, store = _replay_portfolio(spec, files, tmp_path, how)
    assert bars == len(res.equity)
    assert fills == expected  # exact, in the backtest's order within each bar
    final = float(res.equity.iloc[-1, 0])
    assert abs(equity - final) <= 1e-9 * abs(final)
    curve = np.array([row.equity for row in store.bars()])
    np.testing.assert_allclose(curve, res.equity.iloc[:, 0].to_numpy(), rtol=1e-9, atol=0)
    # a real portfolio: at some bar two or more symbols are held at once on the shared cash
    held, most = dict.fromkeys(PORTFOLIO, 0.0), 0
    for symbol, _, side, _, size in fills:
        held[symbol] += side * size
        most = max(most, sum(abs(v) > 1e-12 for v in held.values()))
    assert most >= 2
    return res, store


@pytest.mark.parametrize("how", HOW)
def test_portfolio_parity_synthetic(how, tmp_path):
    """A 3-symbol portfolio on synthetic data (what a user's clone has): paper replay = the
    backtest's {symbol: frame} run, fills and equity."""
    from quantlib.data import save_ohlcv, synthetic_ohlcv

    frames, files = {}, {}
    for seed, symbol in enumerate(PORTFOLIO, start=11):
        frames[symbol] = synthetic_ohlcv(n_bars=400, seed=seed).ohlcv
        files[symbol] = save_ohlcv(frames[symbol], tmp_path / f"s{seed}.csv")
    config = CONFIG.replace(size=0.4, sl_stop=0.03, tp_stop=0.06)
    res, store = _check_portfolio(frames, files, {"fast": 5, "slow": 20}, config, tmp_path, how)
    assert _stop_exits(store) >= 1


@pytest.mark.parametrize("how", HOW)
def test_portfolio_parity_real_files(how, tmp_path):
    """BTC, ETH and SOL 1h 2022-2023 (real files, aligned on the hours all three have)."""
    from tests.conftest import shared_data_path

    names = ("btc_usdt_1h_2022_2023.csv", "eth_usdt_1h_2022_2023.csv",
             "sol_usdt_1h_2022_2023.csv")
    files = {s: shared_data_path(n) for s, n in zip(PORTFOLIO, names, strict=True)}
    frames = {s: load_ohlcv(p) for s, p in files.items()}
    res, _ = _check_portfolio(frames, files, {"fast": 10, "slow": 40},
                              CONFIG.replace(size=0.5), tmp_path, how)
    assert len(res.fills) > 100
