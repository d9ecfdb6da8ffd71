"""docs/ARCHITECTURE.md: why backtest, regime and report load their names lazily, checked in a
fresh interpreter each (the saving each package's docstring states).

- ``from quantlib.backtest import BacktestConfig`` loads neither vectorbt, pandas nor numba;
- ``from quantlib.report import record_metrics`` (what every notebook imports) loads neither
  papermill, nbconvert nor plotly;
(regime's saving, statsmodels for the switching model alone, is not checked here: any regime
model import costs seconds, more than this suite's budget spares.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = [
    ("from quantlib.backtest import BacktestConfig", ("vectorbt", "pandas", "numba")),
    ("from quantlib.report import record_metrics", ("papermill", "nbconvert", "plotly")),
]


def loaded_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return {name.split(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}


@pytest.mark.parametrize(("light", "heavy"), CASES, ids=["backtest", "report"])
def test_a_light_name_loads_no_heavy_library(light, heavy):
    assert loaded_after(light) & set(heavy) == set()


def test_the_check_sees_a_loaded_library():
    # Control: a statement that loads pandas is seen to (the cheapest of the heavy libraries).
    assert "pandas" in loaded_after("from quantlib.backtest import BacktestConfig\nimport pandas")
