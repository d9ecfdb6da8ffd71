"""docs/ARCHITECTURE.md: ONE indicator module (``core/indicators_nb.py``) that kinds, ML features,
the sweeps and both grids use; true range once.

Checked on the sources (ast): each user imports the module, and no other module defines an
indicator function of the shared names (true range, ATR, rolling mean/std, the finite-window EMA
and RSI) without delegating to it. The numbers themselves are checked in tests/core/test_indicators_nb.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "quantlib"
HOME = "core/indicators_nb.py"
USERS = ("core/kinds.py", "core/ml_features_nb.py", "core/grid_nb.py", "live/grid_exchange.py",
         "backtest/sweep_nb.py", "backtest/sweep_rows_nb.py")
# An indicator defined outside HOME under one of these names is a second copy of the maths.
SHARED = re.compile(r"(true_range|rolling_(mean|std)|fir_(ema|rsi)|(^|_)atr(_|$))")


def _tree(rel: str) -> ast.Module:
    return ast.parse((PACKAGE / rel).read_text())


@pytest.mark.parametrize("rel", USERS)
def test_each_user_takes_its_indicators_from_the_one_module(rel):
    imported = set()
    for node in ast.walk(_tree(rel)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    assert "quantlib.core.indicators_nb" in imported, f"{rel} no longer uses {HOME}"


def _from_home(tree: ast.Module) -> set[str]:
    """Names bound to the indicator module or its functions by the module's imports."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "quantlib.core.indicators_nb":
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "quantlib.core":
            names |= {a.asname or a.name for a in node.names if a.name == "indicators_nb"}
        elif isinstance(node, ast.Import):
            names |= {a.asname or a.name for a in node.names
                      if a.name == "quantlib.core.indicators_nb"}
    return names


def copies(tree: ast.Module, rel: str) -> list[str]:
    """Functions named like a shared indicator that do not delegate to the indicator module."""
    home = _from_home(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and SHARED.search(node.name):
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            if not used & home:
                found.append(f"{rel}: {node.name}")
    return found


def test_no_other_module_defines_the_shared_indicators():
    found = [copy for path in sorted(PACKAGE.rglob("*.py"))
             if str(path.relative_to(PACKAGE)) != HOME
             for copy in copies(ast.parse(path.read_text()), str(path.relative_to(PACKAGE)))]
    assert found == []


def test_the_copy_check_can_fail():
    tree = ast.parse("from quantlib.core.indicators_nb import mean_true_range_nb\n"
                     "def true_range_nb(h, l, c):\n    pass\ndef _atr_nb(x):\n    pass\n"
                     "def atr_at(x):\n    return mean_true_range_nb(x)\n"
                     "def target_matrix(x):\n    pass\n")
    assert copies(tree, "x.py") == ["x.py: true_range_nb", "x.py: _atr_nb"]
