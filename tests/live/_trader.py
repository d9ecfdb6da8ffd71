"""Run the real trading process, ``quantlib live run``, in a child process and report what it
imported (tests of what the process that trades loads, and of its results)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the trading process must never load (each costs tens of MB; numba + LLVM ~150 MB).
NOT_IN_THE_TRADER = ("pandas", "numba", "llvmlite", "pyarrow", "vectorbt", "sklearn", "xgboost",
                     "scipy")

_CHILD = """
import atexit, json, sys
report_to, args = sys.argv[1], sys.argv[2:]
def _report():
    with open(report_to, "w") as fh:
        json.dump(sorted(sys.modules), fh)
atexit.register(_report)
sys.argv = ["quantlib", *args]
from quantlib.cli import main
main()
"""


def run_trader(args: list[str], tmp_path: Path, env: dict[str, str] | None = None,
               timeout: float = 600) -> tuple[subprocess.CompletedProcess, set[str]]:
    """``quantlib ARGS`` in a fresh interpreter; returns the finished process and the top-level
    packages it had imported when it exited."""
    modules = tmp_path / f"modules-{len(list(tmp_path.glob('modules-*')))}.json"
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    done = subprocess.run([sys.executable, "-c", _CHILD, str(modules), *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)
    assert modules.exists(), f"the child did not report its modules: {done.stderr[-2000:]}"
    return done, set(json.loads(modules.read_text()))


def heavy_modules(loaded: set[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in loaded} & set(NOT_IN_THE_TRADER))
