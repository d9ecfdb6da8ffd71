"""The architecture's one-way dependencies, checked on the real import graph.

- ``quantlib.live`` (what trades real money) loads strategy, data and the backtest's kernels,
  never optimizers, plotting, reports or notebooks: a research-only dependency must not be able
  to break or slow the runner.
- Numeric kernels (``*_nb.py``) import only numpy, math and numba, through ``quantlib.jit``
  (which binds them to numba's JIT, or to ahead-of-time compiled code in the trading process),
  and other kernel modules.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# vectorbt (~200 MB and seconds to import) and scikit-learn are research tools too: paper fills
# use quantlib's own order rule, quantlib.core.order_rule_nb (checked against vectorbt's
# Portfolio.from_signals in tests/live/test_order_rule_nb.py), and the xgb kind needs only
# features and model files.
# pandas (and pyarrow, which pandas 3 loads) too: strategy kinds compute on
# quantlib.core.bars.Bars and replay files are parsed in a child process, so the trading
# process needs neither (~100 MB). numba is checked where the process really trades: the
# parity tests of `quantlib live run --kernels aot` (tests/live/test_parity.py).
FORBIDDEN_FOR_LIVE = ("quantlib.optimize", "quantlib.plotting", "quantlib.report", "optuna",
                      "papermill", "vectorbt", "sklearn", "plotly", "xgboost", "pandas",
                      "pyarrow")


def _modules_after_import(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def _offenders(modules: set[str]) -> list[str]:
    return sorted(m for m in modules
                  if any(m == f or m.startswith(f + ".") for f in FORBIDDEN_FOR_LIVE))


def test_live_runner_never_loads_research_packages():
    modules = _modules_after_import(
        "import quantlib.live.runner, quantlib.live.cli, quantlib.live.brokers.ccxt_broker\n"
        "from quantlib.core import get_kind, list_kinds\n"
        "[get_kind(k) for k in list_kinds()]"  # every built-in kind's module, grid and xgb too
    )
    assert "quantlib.live.runner" in modules and "quantlib.core.kinds" in modules
    assert _offenders(modules) == []


def test_the_live_command_line_loads_only_the_live_commands():
    # `quantlib live run` is a process that trades: the console script must not import the
    # other sub-commands' modules (report pipeline, optimizers) to build its parser.
    modules = _modules_after_import(
        "import sys\n"
        "from quantlib.cli import _command_name, build_app\n"
        "app = build_app(_command_name(['live', 'run', '--mode', 'paper']))\n"
        "from quantlib.core import get_kind, list_kinds\n"
        "[get_kind(k) for k in list_kinds()]"
    )
    assert "quantlib.live.cli" in modules
    assert _offenders(modules) == []
    assert "quantlib.data.cli" not in modules


def test_the_check_can_fail():
    # Control: importing the optimizer is caught by the same check.
    modules = _modules_after_import("import quantlib.optimize.sweep")
    assert "quantlib.optimize" in _offenders(modules)
    # ... and so is the full command line, which registers the report and optimize commands.
    modules = _modules_after_import("from quantlib.cli import build_app\nbuild_app()")
    assert {"quantlib.report", "quantlib.optimize"} <= set(_offenders(modules))


KERNELS = sorted(ROOT.glob("quantlib/**/*_nb.py"))


@pytest.mark.parametrize("path", KERNELS, ids=[p.name for p in KERNELS])
def test_kernels_import_only_numpy_and_numba(path):
    from quantlib.jit import KERNEL_MODULES

    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    allowed = {"numpy", "__future__", "math", "quantlib.jit", *KERNEL_MODULES}
    assert imported - allowed == set(), imported


def test_the_jit_module_imports_only_numba_numpy_and_the_standard_library():
    tree = ast.parse((ROOT / "quantlib" / "jit.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"numba", "numpy", "quantlib"}, third_party
