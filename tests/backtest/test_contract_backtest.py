"""docs/ARCHITECTURE.md "Backtests": the stated defaults, the result's shape, and one metrics
definition, checked where no other test states them."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from quantlib.backtest import BacktestConfig, run_backtest
from quantlib.backtest.metrics import METRIC_NAMES
from quantlib.data import load

PACKAGE = Path(__file__).resolve().parents[2] / "quantlib"

# The defaults as ARCHITECTURE.md states them.
STATED_DEFAULTS = {"init_cash": 10_000, "fees": 0.001, "slippage_bps": 0, "size": 1.0,
                   "size_type": "percent", "sl_stop": None, "tp_stop": None, "trail_stop": None,
                   "direction": "longonly", "execution": "next_open", "year_days": 365}
# Every module that reports backtest metrics, and the function it must take them from.
METRICS_USERS = ("backtest/engine.py", "backtest/rule_engine.py", "backtest/grid.py",
                 "backtest/perp.py", "live/status_board.py", "report/live_drift.py",
                 "optimize/walkforward.py", "ml/evaluate.py")


def test_backtest_config_defaults_are_the_stated_ones():
    config = BacktestConfig()
    assert {name: getattr(config, name) for name in STATED_DEFAULTS} == STATED_DEFAULTS
    assert dataclasses.is_dataclass(config)


@pytest.fixture(scope="module")
def result():
    data = load("sample:seed=9,bars=400")
    grid = [{"fast": 5, "slow": 20}, {"fast": 8, "slow": 40}]
    return data, grid, run_backtest("ma_cross", data, grid, BacktestConfig(fees=0.002))


def test_the_result_has_one_column_and_one_metrics_row_per_combination(result):
    data, grid, res = result
    assert list(res.equity.columns) == [0, 1] and res.equity.index.equals(data.index)
    assert list(res.metrics.index) == [0, 1] and list(res.metrics.columns) == list(METRIC_NAMES)
    assert [{k: p[k] for k in ("fast", "slow")} for p in res.params] == grid
    assert isinstance(res.summary(), str) or res.summary() is not None


def test_fills_columns_and_their_arithmetic(result):
    data, _, res = result
    fills = res.fills
    assert list(fills.columns[:6]) == ["combo", "time", "side", "price", "size", "fee"]
    assert set(fills["combo"]) == {0, 1} and set(fills["side"]) <= {1, -1}
    assert (fills["size"] > 0).all()
    # next_open, no slippage: each fill at its bar's open; the fee is 0.2 % of traded value
    np.testing.assert_allclose(fills["price"], data["open"].reindex(fills["time"]).to_numpy())
    np.testing.assert_allclose(fills["fee"], 0.002 * fills["price"] * fills["size"], rtol=1e-12)


def _imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {f"{node.module}.{alias.name}" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}


@pytest.mark.parametrize("rel", METRICS_USERS)
def test_every_metrics_user_takes_them_from_the_one_metrics_module(rel):
    names = _imported_names(PACKAGE / rel)
    assert names & {"quantlib.backtest.metrics.compute_metrics",
                    "quantlib.backtest.metrics.compute_metrics_frame"}, \
        f"{rel} no longer takes its metrics from quantlib.backtest.metrics"

