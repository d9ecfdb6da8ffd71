"""Fused shared-cash portfolio sweeps (``quantlib.backtest.sweep_portfolio_nb`` via
``quantlib.optimize.fused_portfolio``) against ``run_backtest``'s portfolios.

The independent computation is ``run_backtest`` on ``{symbol: frame}``: vectorbt's grouped
``Portfolio.from_signals`` with shared cash (its own stops, order and trade records; on bars
where a signal exit is due at the open it is given the open as high/low: ``stop_rule.py``) and
``compute_metrics_frame`` on the equity it yields, benchmark included. Every metric must agree
to a relative 1e-9 for every built-in signal kind, both directions, value and percent sizing,
stops and trailing stops, on random bars and on real BTC/ETH/SOL hours; so must the return
moments DSR and PBO are computed from. Memory: the kernel makes no bars x combinations array
(peak RSS of a child process barely grows from 10 to 2,000 combinations).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlib.backtest import run_backtest
from quantlib.backtest.metrics import METRIC_NAMES
from quantlib.core import get_kind
from quantlib.errors import ParameterError
from quantlib.optimize.fused_portfolio import portfolio_evaluate
from quantlib.optimize.sweep import sweep
from tests.support.fused_checks import (
    KIND_PARAMS,
    RTOL,
    assert_metrics_agree,
    check_fused,
    random_bars,
)

PARAMS = KIND_PARAMS

CONFIGS = [
    {},  # long only, percent of the shared cash
    {"sl_stop": 0.01, "tp_stop": 0.02, "slippage_bps": 3.0, "size": 0.4},
    {"direction": "shortonly", "trail_stop": 0.015, "size": 0.5, "fees": 0.0005},
    {"direction": "both", "size_type": "value", "size": 2500.0, "sl_stop": 0.02,
     "tp_stop": 0.01, "slippage_bps": 2.0},
    # entries bigger than the cash: later symbols get partial fills or none (order matters)
    {"direction": "both", "size_type": "value", "size": 6000.0, "execution": "close",
     "trail_stop": 0.01},
]


def _random_bars(seed: int, n: int, flat_share: float, level: float) -> pd.DataFrame:
    # named by seed, so that the symbols of one portfolio differ
    return random_bars(seed, n, flat_share, level, symbol=f"S{seed}/USDT")


def _assert_metrics_agree(got: pd.DataFrame, reference: pd.DataFrame, where: str) -> None:
    assert_metrics_agree(got, reference, where, METRIC_NAMES)


def _check(kind: str, data, params: list[dict], config: dict, n_splits: int = 4) -> None:
    check_fused(portfolio_evaluate, METRIC_NAMES, kind, data, params, config, n_splits,
                f"{kind} {config}")


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 3), n=st.integers(120, 500),
       n_sym=st.integers(2, 3), flat=st.sampled_from([0.0, 0.3]),
       kind=st.sampled_from(sorted(PARAMS)), config=st.sampled_from(CONFIGS),
       fees=st.sampled_from([0.0, 0.001, 0.004]))
def test_portfolio_metrics_equal_run_backtest_on_random_bars(seed, n, n_sym, flat, kind,
                                                             config, fees):
    data = {f"S{k}": _random_bars(seed + k, n, flat, level=100.0 * 7.0**k)
            for k in range(n_sym)}
    _check(kind, data, PARAMS[kind], {"fees": fees, **config})


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(c) or "default")
def test_every_kind_and_config_on_random_portfolios(config):
    data = {name: _random_bars(seed, 300, 0.1, level) for name, seed, level in
            (("X", 3, 30_000.0), ("Y", 4, 2_000.0), ("Z", 5, 20.0))}
    for kind, params in PARAMS.items():
        _check(kind, data, params, {"fees": 0.001, **config})


def _real(shared_data, n_bars: int) -> dict[str, pd.DataFrame]:
    return {name: shared_data(f"{name.lower()}_usdt_1h_2022_2023.csv").iloc[:n_bars]
            for name in ("BTC", "ETH", "SOL")}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(c) or "default")
def test_portfolio_metrics_equal_run_backtest_on_real_bars(shared_data, config):
    data = _real(shared_data, 3000)
    for kind, params in PARAMS.items():
        _check(kind, data, params, {"fees": 0.001, **config}, n_splits=8)


def test_symbol_order_is_the_settlement_order():
    """With cash for one entry only, the first symbol of the mapping takes it: reversing
    the mapping changes the result, and both orders match run_backtest's."""
    a, b = _random_bars(21, 300, 0.0, 100.0), _random_bars(22, 300, 0.0, 50.0)
    b.index = a.index
    config = {"size_type": "value", "size": 9000.0, "fees": 0.001}
    params = [{"fast": 3, "slow": 12}]
    forward, _ = portfolio_evaluate(get_kind("ma_cross"), {"A": a, "B": b}, params, config, 4)
    backward, _ = portfolio_evaluate(get_kind("ma_cross"), {"B": b, "A": a}, params, config, 4)
    assert forward["final_equity"].iloc[0] != backward["final_equity"].iloc[0]
    for data, got in (({"A": a, "B": b}, forward), ({"B": b, "A": a}, backward)):
        _assert_metrics_agree(got, run_backtest("ma_cross", data, params, config).metrics,
                             "order")


def test_sweep_dispatches_portfolios_to_the_fused_kernel():
    data = {"A": _random_bars(31, 600, 0.1, 100.0), "B": _random_bars(32, 600, 0.1, 10.0)}
    data["B"].index = data["A"].index
    space = {"fast": [3, 5, 8], "slow": [20, 40]}
    fused = sweep("ma_cross", data, space, progress=False, n_splits=4, chunk_size=4)
    slow = sweep("ma_cross", data, space, progress=False, n_splits=4, engine="vectorbt")
    assert fused.engine == "fused" and slow.engine.startswith("vectorbt")
    _assert_metrics_agree(fused.table[list(METRIC_NAMES)], slow.table[list(METRIC_NAMES)],
                         "sweep")
    assert fused.best_params == slow.best_params
    assert fused.dsr == pytest.approx(slow.dsr, rel=1e-8)
    assert fused.pbo == slow.pbo


def test_refusals_name_what_is_wrong():
    data = {"A": _random_bars(41, 200, 0.0, 100.0), "B": _random_bars(42, 200, 0.0, 10.0)}
    with pytest.raises(ParameterError, match="not one of the built-in"):
        portfolio_evaluate(get_kind("grid"), data, [{}])
    with pytest.raises(ParameterError, match="direction='both' with size_type='percent'"):
        portfolio_evaluate(get_kind("ma_cross"), data, [{"fast": 3, "slow": 9}],
                           {"direction": "both"})
    with pytest.raises(ParameterError, match="params"):
        portfolio_evaluate(get_kind("ma_cross"), data, [])
    with pytest.raises(ParameterError, match="htf_trend is fused on one symbol"):
        portfolio_evaluate(get_kind("htf_trend"), data, [{}])


_MEMORY_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np, pandas as pd
    from quantlib.optimize.fused_portfolio import portfolio_plan
    from quantlib.core import get_kind

    n = int(sys.argv[1])
    rng = np.random.default_rng(0)
    index = pd.date_range("2020-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    data = {}
    for k in range(3):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
        data[f"S{k}"] = pd.DataFrame({"open": close, "high": close * 1.01,
                                      "low": close * 0.99, "close": close,
                                      "volume": 1.0}, index=index)
    params = [{"fast": f, "slow": s} for f in range(2, 42) for s in range(50, 100)]
    plan = portfolio_plan(get_kind("ma_cross"), data, params, None, 8)
    plan.evaluate(0, 10)  # compiled (or loaded) and run once


    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1])


    # reset the peak to the current RSS (Linux clear_refs 5), so growth is this call's own
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status("VmRSS")
    metrics, _ = plan.evaluate()
    if len(sys.argv) > 2:  # self-check of the measurement: a bars x combinations matrix
        np.ones((n, len(params))).sum()
    after = status("VmHWM")
    print(json.dumps({"before_kib": before, "after_kib": after, "rows": len(metrics)}))
""")


def _peak_growth_mb(tmp_path, n_bars: int, *extra: str) -> float:
    script = tmp_path / "child.py"
    script.write_text(_MEMORY_CHILD)
    out = subprocess.run([sys.executable, str(script), str(n_bars), *extra],
                         capture_output=True, text=True, timeout=600, env=_child_env())
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["rows"] == 2000
    return (figures["after_kib"] - figures["before_kib"]) / 1024.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")
def test_the_kernel_streams_without_a_bars_by_combinations_matrix(tmp_path):
    """2,000 combinations x 6,000 bars: one bars x combinations float array alone would be
    92 MiB; the child's peak RSS (reset before the call) grows by less than a quarter of that
    while the 2,000 combinations run, and the same measurement does see such a matrix."""
    n_bars = 6000
    matrix_mb = n_bars * 2000 * 8 / 2**20
    assert _peak_growth_mb(tmp_path, n_bars) < matrix_mb / 4
    assert _peak_growth_mb(tmp_path, n_bars, "with-matrix") > matrix_mb * 0.9


def _child_env() -> dict[str, str]:
    import os
    from pathlib import Path

    import quantlib

    env = dict(os.environ)
    root = str(Path(quantlib.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.parametrize("config", [CONFIGS[1], CONFIGS[4]], ids=["next_open", "close"])
def test_truncated_portfolios_see_no_future_bars(config):
    """No lookahead: the fused portfolio's final equity on the first k bars equals the full
    run_backtest equity at bar k - 1, for every k tried (a decision or fill that read bar k or
    later would differ)."""
    data = {name: _random_bars(seed, 260, 0.1, level) for name, seed, level in
            (("X", 51, 100.0), ("Y", 52, 8.0))}
    params = [{"window": 6, "lower": 40.0, "upper": 60.0}, {"window": 12, "lower": 45.0,
                                                            "upper": 55.0}]
    full = run_backtest("rsi_reversion", data, params, config).equity.to_numpy()
    assert len(np.unique(full[[39, 96, 149, 210, 258]])) > 5  # positions move the equity
    kind = get_kind("rsi_reversion")
    for k in (40, 97, 150, 211, 259):
        prefix = {name: df.iloc[:k] for name, df in data.items()}
        got, _ = portfolio_evaluate(kind, prefix, params, config, 4)
        np.testing.assert_allclose(got["final_equity"].to_numpy(), full[k - 1], rtol=RTOL,
                                   err_msg=f"first {k} bars")
