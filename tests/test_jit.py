"""Ahead-of-time kernels (quantlib.jit): every exported kernel computes exactly what numba's JIT
computes, the AOT bindings refuse wrongly typed arrays, and the trading process's kernels come
from the extension, never from numba.

The independent computation is the JIT-compiled kernel itself (the research path) on the same
inputs; AOT results must equal it bit for bit (NaN where it is NaN).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlib import jit
from quantlib.errors import KernelError

ROOT = Path(__file__).resolve().parents[1]

for _module in jit.KERNEL_MODULES:  # register every export (this process runs the JIT)
    importlib.import_module(_module)


@pytest.fixture(scope="session")
def ext():
    return jit.load_extension(jit.ensure_built())


def _prices(n: int = 400, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    volume = 1.0 + rng.random(n) * 10
    return open_, high, low, close, volume


def _tree_arrays() -> tuple:
    import xgboost as xgb

    from quantlib.core.trees import TreeEnsemble

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    booster = xgb.XGBClassifier(n_estimators=12, max_depth=3, n_jobs=1).fit(X, y).get_booster()
    model = TreeEnsemble.from_learner(json.loads(booster.save_raw("json"))["learner"])
    X[::7, 2] = np.nan  # missing values follow each node's default direction
    return (X, model.feature, model.threshold, model.left, model.right, model.default_left,
            model.value, model.roots, np.float32(model.base_margin))


def _emissions() -> tuple:
    rng = np.random.default_rng(2)
    P = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.02, 0.08, 0.9]])
    return rng.normal(size=(250, 3)) * 3, P, np.full(3, 1 / 3)


def _events() -> np.ndarray:
    rng = np.random.default_rng(3)
    event = np.where(rng.random(300) < 0.1, rng.choice([-1.0, 1.0], 300), np.nan)
    return event


# Pure kernels: symbol -> arguments. Outputs are compared directly.
PURE = {
    "core_indicators_nb__rolling_mean_nb": lambda: (_prices()[3], 17, 0),
    "core_indicators_nb__rolling_std_nb": lambda: (_prices()[3], 20, 30),
    "core_indicators_nb__rolling_max_nb": lambda: (_prices()[1], 9),
    "core_indicators_nb__rolling_min_nb": lambda: (_prices()[2], 9),
    "core_indicators_nb__fir_ema_nb": lambda: (_prices()[3], 2 / 13, 48, 0),
    "core_indicators_nb__fir_rsi_nb": lambda: (_prices()[3], 1 / 14, 112, 150),
    "core_indicators_nb__hold_nb": lambda: (_events(), 6),
    "core_ml_features_nb__log_return_nb": lambda: (_prices()[3], 4, 30),
    "core_ml_features_nb__technical_features_nb": lambda: (
        *_prices()[1:], np.array([1, 4, 12, 24]), 24, 14, 56, 12, 26, 9, 4, 20, 14, 24, 150),
    "core_ml_features_nb__hysteresis_window_nb": lambda: (
        np.where(np.arange(300) % 37 == 0, np.nan, np.random.default_rng(4).random(300)),
        0.6, 0.45, True, 18),
    "core_trees_nb__predict_margin_nb": _tree_arrays,
    "core_trees_nb__sigmoid_f32_nb": lambda: (
        np.random.default_rng(5).normal(0, 3, 200).astype(np.float32),),
    "core_regime_filter_nb__windowed_filter_nb": lambda: (*_emissions(), 40),
}

# Paper fills: one scenario per row (cash, position, debt, free_cash, enter_long, exit_long,
# enter_short, exit_short, size, sizing, price, fees, slippage) covering entries, exits,
# reversals, value sizing, partial fills and refusals (no cash, no order, a bad argument).
PAPER_FILLS = [
    (10_000.0, 0.0, 0.0, 10_000.0, True, False, False, False, 1.0, 0, 101.3, 0.001, 0.0005),
    (0.0, 98.5, 0.0, 0.0, False, True, False, False, 1.0, 0, 99.9, 0.001, 0.0005),
    (10_000.0, 0.0, 0.0, 10_000.0, False, False, True, False, 1.0, 0, 50.0, 0.002, 0.0),
    (15_000.0, -100.0, 5_000.0, 5_000.0, False, False, False, True, 1.0, 0, 48.0, 0.001, 0.001),
    (10_000.0, 0.0, 0.0, 10_000.0, True, False, False, False, 2_500.0, 1, 80.0, 0.001, 0.0),
    (10_000.0, 0.0, 0.0, 10_000.0, True, False, False, False, 25_000.0, 1, 80.0, 0.001, 0.0),
    (9_000.0, 10.0, 0.0, 9_000.0, False, False, True, False, 2_500.0, 1, 110.0, 0.001, 0.0),
    (12_000.0, -10.0, 1_000.0, 10_000.0, True, False, False, False, 2_500.0, 1, 95.0, 0.001,
     0.0002),
    (10_000.0, 0.0, 0.0, 10_000.0, False, False, False, False, 1.0, 0, 80.0, 0.001, 0.0),
    (5.0, 0.0, 0.0, 5.0, True, False, False, False, 1.0, 0, 1e9, 0.001, 0.0),
    (0.0, 0.0, 0.0, 0.0, True, False, False, False, 1.0, 0, 80.0, 0.001, 0.0),
    (-1.0, 0.0, 0.0, 10_000.0, True, False, False, False, 1.0, 0, 101.3, 0.001, 0.0005),
]

def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("symbol", sorted(PURE))
def test_aot_kernel_equals_the_jit_bit_for_bit(ext, symbol):
    args = PURE[symbol]()
    jitted = jit.EXPORTS[symbol].dispatcher(*args)
    assert np.isfinite(np.asarray(jitted, dtype=float)).sum() > 10  # the case computes something
    assert _same(getattr(ext, symbol)(*args), jitted)


@pytest.mark.parametrize("period", [1, 14, 400])
def test_aot_mean_true_range_equals_the_jit(ext, period):
    # a scalar kernel (the exchange grid's ATR): the PURE table's arrays do not fit it
    args = (*_prices()[1:4], period)
    jitted = jit.EXPORTS["core_indicators_nb__mean_true_range_nb"].dispatcher(*args)
    assert np.isfinite(jitted) and ext.core_indicators_nb__mean_true_range_nb(*args) == jitted


@pytest.mark.parametrize("case", range(len(PAPER_FILLS)))
def test_aot_paper_fill_equals_the_jit(ext, case):
    args = PAPER_FILLS[case]
    aot = ext.core_order_rule_nb__signal_fill_nb(*args)
    assert _same(aot, jit.EXPORTS["core_order_rule_nb__signal_fill_nb"].dispatcher(*args))
    assert tuple(type(x) for x in aot) == PAPER_FILLS_TYPES


PAPER_FILLS_TYPES = (int,) * 3 + (float,) * 7  # status, detail, side; units ... free_cash


def test_the_paper_fill_cases_cover_every_outcome():
    from quantlib.core import order_rule_nb as rule

    statuses = {rule.signal_fill_nb(*args)[0] for args in PAPER_FILLS}
    assert statuses == {rule.FILLED, rule.NO_ORDER, rule.TOO_SMALL, rule.NO_CASH,
                        rule.BAD_INPUT}


@pytest.mark.parametrize("spacing", ["arithmetic", "geometric", "volatility"])
def test_aot_grid_kernels_step_like_the_jit(ext, spacing):
    # init + 300 steps through both builds in lockstep; every state array must agree each bar
    from quantlib.core import grid_nb as nb
    from quantlib.core.config import BacktestConfig
    from quantlib.core.grid_kind import params_row
    from quantlib.core.registry import get_kind

    o, h, lo, c, _ = _prices(300, seed=7)
    params = get_kind("grid").validate({"spacing": spacing, "n_levels": 8, "lower_pct": 0.06,
                                        "upper_pct": 0.06, "atr_period": 10, "atr_k": 0.5,
                                        "stop_out": True, "stop_margin": 0.1})
    row = params_row(params, float(o[0]), BacktestConfig(fees=0.001, slippage_bps=3))
    builds = {}
    for name, init, step in (("jit", jit.EXPORTS["core_grid_nb__grid_init_nb"].dispatcher,
                              jit.EXPORTS["core_grid_nb__grid_step_nb"].dispatcher),
                             ("aot", ext.core_grid_nb__grid_init_nb,
                              ext.core_grid_nb__grid_step_nb)):
        arrays = [np.empty(nb.N_STATE), np.empty(8), np.empty(8), np.empty(10)]
        init(row, *arrays, 10_000.0)
        cap = 64
        logs = [np.zeros(cap, np.int64), np.zeros(cap, np.int8), np.zeros(cap), np.zeros(cap),
                np.zeros(cap), np.zeros(cap, np.int64)]
        builds[name] = (step, arrays, logs)
    for t in range(len(c)):
        for step, arrays, logs in builds.values():
            arrays[0][nb.S_N_FILLS] = 0.0
            step(o[t], h[t], lo[t], c[t], bool(t % 50 < 40), t, row, *arrays, *logs)
        (_, a_jit, l_jit), (_, a_aot, l_aot) = builds["jit"], builds["aot"]
        assert all(_same(x, y) for x, y in zip(a_jit + l_jit, a_aot + l_aot, strict=True)), t
    assert builds["jit"][1][0][nb.S_CASH] != 10_000.0  # the grid traded


def test_aot_vol_levels_fill_the_same_output(ext):
    outs = [np.empty(9), np.empty(9)]
    jit.EXPORTS["core_grid_nb__vol_levels_nb"].dispatcher(101.7, 0.37, 9, outs[0])
    ext.core_grid_nb__vol_levels_nb(101.7, 0.37, 9, outs[1])
    assert _same(*outs) and outs[0][4] == 101.7


# The perp account rule (quantlib/live/brokers/perp_rule_nb.py): symbol -> argument rows
# (long and short, percent and value sizing, a cut to the cash, no cash, funding both ways, a
# liquidation with the fee capped and one below the cap).
PERP_CASES = {
    "live_brokers_perp_rule_nb__liquidation_price_nb": [
        (1.5, 101.3, 15.2, 0.005), (-2.0, 99.7, 40.0, 0.01), (1.0, 100.0, 100.0, 0.005),
        (0.0, 0.0, 0.0, 0.005)],
    "live_brokers_perp_rule_nb__mark_reaches_nb": [
        (1.0, 90.0, 89.5, 95.0), (1.0, 90.0, 90.5, 95.0), (-1.0, 110.0, 100.0, 110.0),
        (-1.0, 110.0, 100.0, 109.0), (0.0, 0.0, 1.0, 2.0)],
    "live_brokers_perp_rule_nb__open_position_nb": [
        (10_000.0, 1, 1.0, 0, 101.3, 0.0005, 0.0003, 5.0),
        (10_000.0, -1, 0.4, 0, 99.0, 0.0004, 0.0, 20.0),
        (10_000.0, 1, 3_000.0, 1, 101.3, 0.0005, 0.0003, 2.0),
        (1_000.0, -1, 50_000.0, 1, 101.3, 0.0005, 0.0003, 3.0),
        (0.0, 1, 1.0, 0, 101.3, 0.0005, 0.0, 5.0)],
    "live_brokers_perp_rule_nb__close_position_nb": [
        (100.0, 2.0, 101.0, 40.4, 103.7, 0.0005, 0.0002),
        (100.0, -3.0, 99.0, 29.7, 97.1, 0.0005, 0.0002)],
    "live_brokers_perp_rule_nb__funding_nb": [
        (2.0, 40.0, 101.3, 0.0001), (-2.0, 40.0, 101.3, 0.0001), (2.0, 40.0, 101.3, -0.0003)],
    "live_brokers_perp_rule_nb__liquidate_nb": [
        (50.0, 1.0, 100.0, 10.0, 0.005, 0.0125), (50.0, -1.0, 100.0, 10.0, 0.01, 0.004)],
}


@pytest.mark.parametrize(("symbol", "case"), [(s, i) for s, rows in sorted(PERP_CASES.items())
                                              for i in range(len(rows))])
def test_aot_perp_rule_equals_the_jit(ext, symbol, case):
    args = PERP_CASES[symbol][case]
    assert _same(getattr(ext, symbol)(*args), jit.EXPORTS[symbol].dispatcher(*args))


def test_every_export_is_compared_here():
    compared = set(PURE) | set(PERP_CASES) | {"core_order_rule_nb__signal_fill_nb",
                                               "core_indicators_nb__mean_true_range_nb",
                            "core_grid_nb__grid_init_nb", "core_grid_nb__grid_step_nb",
                            "core_grid_nb__vol_levels_nb"}
    assert set(jit.EXPORTS) == compared


@pytest.mark.parametrize("symbol", sorted(jit.EXPORTS))
def test_our_signature_reading_matches_numbas(symbol):
    # AOT mode checks arguments with quantlib.jit's own reading of the signature (numba is not
    # there to parse it): it must agree with numba's on every argument.
    from numba.core import sigutils

    export = jit.EXPORTS[symbol]
    args, _ = sigutils.normalize_signature(export.signature)
    ours = jit.parse_signature(export.signature)
    theirs = [(str(a.dtype) if hasattr(a, "dtype") else str(a), getattr(a, "ndim", 0),
               getattr(a, "layout", "A")) for a in args]
    assert [(np.dtype(jit._DTYPES[c]).name, nd, lay if nd else "A") for c, nd, lay in ours] == \
        [(np.dtype(d).name if d != "bool" else "bool", nd, lay if nd else "A")
         for d, nd, lay in theirs]


@given(st.lists(st.one_of(st.none(), st.sampled_from([-1.0, 1.0, 0.5])), max_size=60),
       st.integers(1, 8))
@settings(max_examples=200, deadline=None)
def test_hold_is_pandas_ffill_with_a_limit(values, limit):
    import pandas as pd

    from quantlib.core.indicators_nb import hold_nb

    event = np.array([np.nan if v is None else v for v in values], dtype=float)
    expected = pd.Series(event, dtype=float).ffill(limit=limit).fillna(0.0).to_numpy()
    np.testing.assert_array_equal(hold_nb(event, limit), expected)


def test_parse_signature_reads_layouts_and_refuses_unknown_types():
    assert jit.parse_signature("Tuple((i8, f8))(f8[:, ::1], b1, i1[:])") == \
        (("f8", 2, "C"), ("b1", 0, "A"), ("i1", 1, "A"))
    with pytest.raises(KernelError, match="unknown type 'c16'"):
        jit.parse_signature("f8(c16)")


def test_kernel_key_changes_with_a_kernel_source(tmp_path, monkeypatch):
    import shutil

    before = jit.kernel_key()
    copy = tmp_path / "quantlib"
    shutil.copytree(ROOT / "quantlib", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(jit, "_PACKAGE_DIR", copy)
    assert jit.kernel_key() == before  # same sources, same key
    with open(copy / "core" / "indicators_nb.py", "a") as fh:
        fh.write("\n# edited\n")
    assert jit.kernel_key() != before


def test_use_aot_refuses_once_kernels_are_loaded():
    # this process imported the kernels through numba: switching now would mix the two builds
    with pytest.raises(KernelError, match="before any kernel is imported"):
        jit.use_aot()
    assert jit.mode() == "jit"


def _aot_child(code: str) -> subprocess.CompletedProcess:
    prelude = "from quantlib import jit\njit.use_aot()\n"
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_aot_process_binds_kernels_without_numba(ext):
    out = _aot_child(
        "import sys, numpy as np\n"
        "from quantlib.core import indicators_nb as nb\n"
        "from quantlib.core import ml_features_nb as f\n"
        "x = np.linspace(1.0, 2.0, 50)\n"
        "print(repr(float(nb.rolling_mean_nb(x, 5)[-1])),\n"
        "      repr(float(f.log_return_nb(x, horizon=3)[-1])))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite')))\n")
    assert out.returncode == 0, out.stderr
    mean, log_ret = out.stdout.split()[:2]
    x = np.linspace(1.0, 2.0, 50)
    acc = 0.0
    for value in x[-5:]:  # the kernel's own summation order, by hand
        acc += float(value)
    assert float(mean) == acc / 5
    assert float(log_ret) == float(np.log(x[-1] / x[-4]))  # the default start=0 was applied
    assert out.stdout.splitlines()[-1] == "[]"


def test_aot_bindings_refuse_wrongly_typed_arrays_and_research_kernels():
    out = _aot_child(
        "import numpy as np\n"
        "from quantlib.errors import KernelError\n"
        "from quantlib.core import indicators_nb as nb\n"
        "from quantlib.core import grid_nb as g\n"
        "for call in (lambda: nb.rolling_mean_nb(np.arange(10), 3),\n"
        "             lambda: nb.rolling_mean_nb(np.ones((3, 3)), 2),\n"
        "             lambda: nb.rolling_mean_nb(np.ones(9), 3.7),\n"
        "             lambda: g.grid_run_nb()):\n"
        "    try:\n"
        "        call()\n"
        "        print('no error')\n"
        "    except KernelError as exc:\n"
        "        print(exc)\n")
    assert out.returncode == 0, out.stderr
    int_array, matrix, fraction, research = out.stdout.strip().splitlines()
    assert "rolling_mean_nb, argument 0 ('x'): expected a float64 array with 1 dimension(s), " \
           "got ndarray of dtype int64" in int_array
    assert "with 2 dimension(s)" in matrix
    # the entry point itself would have truncated 3.7 to a window of 3
    assert "argument 1 ('window'): expected a scalar of type int64, got float 3.7" in fraction
    assert "grid_run_nb is research-only" in research


def test_every_kernel_module_is_listed():
    # a module decorating with quantlib.jit.njit but missing from KERNEL_MODULES would be left
    # out of the AOT build and its kernels would be stubs in the trading process
    import ast

    users = set()
    for path in (ROOT / "quantlib").rglob("*.py"):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.ImportFrom) and n.module == "quantlib.jit"
               and any(a.name == "njit" for a in n.names) for n in ast.walk(tree)):
            users.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    assert users == set(jit.KERNEL_MODULES)
