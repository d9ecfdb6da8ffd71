"""The layers of docs/ARCHITECTURE.md, checked on the real import graph and on the sources.

- The layers are the rows of ARCHITECTURE.md's drawing (read from the file): no module imports
  a layer above its own at its top, and inside a function only where listed (``CORE_LAZY``,
  ``LIVE_LAZY``, ``STRATEGY_LAZY``), each with its reason.
- ``quantlib.core`` is the ground floor: its modules import the standard library, numpy,
  ``quantlib.errors``, ``quantlib.jit`` and each other, nothing else (two lazy exceptions,
  listed in ``CORE_LAZY``).
- ``quantlib.live`` (what trades real money) builds on core alone, plus the spec contract
  (``quantlib.strategy``: spec, approvals, gates); a research-only dependency must not be able to
  break or slow the runner. Lazy imports of research layers in commands that do not trade are
  listed in ``LIVE_LAZY``. Every built-in kind lives in core.
- Numeric kernels (``*_nb.py``) import only numpy, math and numba, through ``quantlib.jit``
  (which binds them to numba's JIT, or to ahead-of-time compiled code in the trading process),
  and other kernel modules.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "quantlib"
# vectorbt (~200 MB and seconds to import) and scikit-learn are research tools too: paper fills
# use quantlib's own order rule, quantlib.core.order_rule_nb (checked against vectorbt's
# Portfolio.from_signals in tests/core/test_order_rule_nb.py), and the xgb kind needs only
# features and model files.
# pandas (and pyarrow, which pandas 3 loads) too: strategy kinds compute on
# quantlib.core.bars.Bars and replay files are parsed in a child process, so the trading
# process needs neither (~100 MB). numba is checked where the process really trades: the
# parity tests of `quantlib live run --kernels aot` (tests/live/test_parity.py).
FORBIDDEN_FOR_LIVE = ("optuna", "papermill", "vectorbt", "sklearn", "plotly", "xgboost",
                      "pandas", "pyarrow")
# What the trading process may load of quantlib: the ground floor, the spec contract, itself
# (and the root console app that starts it, which loads only the sub-command asked for).
LIVE_MAY_LOAD = ("quantlib", "quantlib._lazy", "quantlib.errors", "quantlib.jit", "quantlib.cli",
                 "quantlib.core", "quantlib.live", "quantlib.strategy",
                 "quantlib.strategy.spec", "quantlib.strategy.approvals",
                 "quantlib.strategy.gates")
# Imports inside functions of quantlib.live that reach above core, each on a path that does not
# trade: (file, module) -> why.
LIVE_LAZY = {
    ("live/replay_feeds.py", "quantlib.data"): "replay files parsed (in a child when pandas is absent)",
    ("live/replay_feeds.py", "quantlib.data.perp"): "a replayed funding file validated",
    ("live/cli.py", "quantlib.report.live_drift"): "`live report` writes the drift page",
    ("live/status_board.py", "quantlib.backtest.metrics"): "`live status` computes the run's metrics",
}
# Imports inside functions of quantlib.core that reach above it: (file, module) -> why.
CORE_LAZY = {
    ("core/bars.py", "pandas"): "Bars.frame() for a kind written on frames",
    ("core/informative.py", "quantlib.data"): "research: an input declared by a source string",
}


def _modules_after_import(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def _within(module: str, roots: tuple[str, ...] | set[str]) -> bool:
    return any(module == r or module.startswith(r + ".") for r in roots)


def _live_offenders(modules: set[str]) -> list[str]:
    """Modules the trading process must not load: research libraries, and any quantlib module
    outside core, the spec contract, live itself and the listed kinds above core."""
    ours = {m for m in modules if m == "quantlib" or m.startswith("quantlib.")}
    above = sorted(m for m in ours if not _within(m, ("quantlib.core", "quantlib.live"))
                   and m not in LIVE_MAY_LOAD)
    return above + sorted(m for m in modules if _within(m, FORBIDDEN_FOR_LIVE))


EVERY_KIND = "from quantlib.core import get_kind, list_kinds\n[get_kind(k) for k in list_kinds()]"


def test_live_loads_only_core_the_spec_contract_and_itself():
    modules = _modules_after_import(
        "import quantlib.live.runner, quantlib.live.cli, quantlib.live.brokers.ccxt_broker\n"
        "import quantlib.live.grid_exchange, quantlib.live.watch, quantlib.live.status_board\n"
        + EVERY_KIND)  # every built-in kind's module, grid and xgb too
    assert "quantlib.live.runner" in modules and "quantlib.core.kinds" in modules
    assert _live_offenders(modules) == []


def test_the_live_command_line_loads_only_the_live_commands():
    # `quantlib live run` is a process that trades: the console script must not import the
    # other sub-commands' modules (report pipeline, optimizers) to build its parser.
    modules = _modules_after_import(
        "from quantlib.cli import _command_name, build_app\n"
        "app = build_app(_command_name(['live', 'run', '--mode', 'paper']))\n" + EVERY_KIND)
    assert "quantlib.live.cli" in modules
    assert _live_offenders(modules) == []


def test_the_check_can_fail():
    # Control: importing the optimizer is caught by the same check ...
    modules = _modules_after_import("import quantlib.optimize.sweep")
    assert "quantlib.optimize" in _live_offenders(modules)
    assert "pandas" in _live_offenders(modules)
    # ... and so is the full command line, which registers the report and optimize commands,
    modules = _modules_after_import("from quantlib.cli import build_app\nbuild_app()")
    assert {"quantlib.report", "quantlib.optimize"} <= set(_live_offenders(modules))
    # ... and so is a module of the backtest layer, however light.
    assert _live_offenders({"quantlib.backtest", "quantlib.core.kinds"}) == ["quantlib.backtest"]


CORE = sorted(PACKAGE.glob("core/*.py"))


def _imports(path: Path) -> list[tuple[str, bool]]:
    """``(module, at_top_level)`` of every import statement of ``path`` (``from X import y``
    counts as ``X.y`` when ``X.y`` is a module of quantlib, else as ``X``)."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").exists()
                found.append((sub if is_module else node.module, id(node) in top))
    return found


def _standard(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names or module == "__future__"


@pytest.mark.parametrize("path", CORE, ids=[p.name for p in CORE])
def test_core_imports_numpy_and_itself_only(path):
    rel = str(path.relative_to(PACKAGE))
    bad = [m for m, _ in _imports(path)
           if not (_standard(m) or _within(m, ("numpy", "quantlib.core", "quantlib.errors",
                                                "quantlib.jit")) or m == "quantlib")
           and (rel, m) not in CORE_LAZY]
    assert bad == [], f"{rel} imports {bad}: core builds on numpy alone"


def test_core_lazy_exceptions_are_inside_functions_and_still_needed():
    for (rel, module), why in CORE_LAZY.items():
        found = dict(_imports(PACKAGE / rel))
        assert module in found, f"{rel} no longer imports {module} ({why}): drop the exception"
        assert found[module] is False, f"{rel} imports {module} at the top"


def test_importing_all_of_core_loads_numpy_and_nothing_of_the_upper_layers():
    names = ", ".join(f"quantlib.core.{p.stem}" for p in CORE if p.stem != "__init__")
    before = _modules_after_import("import numpy, numba, quantlib.errors, quantlib.jit")
    after = _modules_after_import(f"import numpy, numba, quantlib.errors, quantlib.jit\n"
                                  f"import {names}")
    new = {m for m in after - before if not _standard(m)}
    ours = {m for m in new if _within(m, ("quantlib",))}
    assert "quantlib.core.kinds" in ours and all(_within(m, ("quantlib.core",)) for m in ours), \
        sorted(ours)
    assert all(_within(m, ("numpy", "numba", "llvmlite")) for m in new - ours), sorted(new - ours)


def test_every_built_in_kind_lives_in_core():
    from quantlib.core import registry

    outside = [m for m in registry.BUILTIN_KIND_MODULES if not _within(m, ("quantlib.core",))]
    assert outside == []


LIVE = sorted(PACKAGE.glob("live/**/*.py"))


def _unlisted_live_imports(path: Path, rel: str) -> list[str]:
    bad = [(m, top) for m, top in _imports(path)
           if m.startswith("quantlib") and not _within(m, ("quantlib.core", "quantlib.live"))
           and m not in LIVE_MAY_LOAD]
    return [m for m, top in bad if top or (rel, m) not in LIVE_LAZY]


@pytest.mark.parametrize("path", LIVE, ids=[str(p.relative_to(PACKAGE)) for p in LIVE])
def test_live_modules_import_core_the_spec_contract_and_live_only(path):
    rel = str(path.relative_to(PACKAGE))
    unlisted = _unlisted_live_imports(path, rel)
    assert unlisted == [], f"{rel} imports {unlisted} (top level, or lazily but not listed)"


def test_the_source_check_can_fail(tmp_path):
    # Control: a listed lazy import moved to the top, and an unlisted lazy one, are caught.
    source = tmp_path / "feeds.py"
    source.write_text("from quantlib.data import load_ohlcv\n"
                      "def f():\n    from quantlib.backtest.engine import run_backtest\n")
    assert _unlisted_live_imports(source, "live/feeds.py") == ["quantlib.data",
                                                               "quantlib.backtest.engine"]


def test_live_lazy_exceptions_are_still_needed():
    for (rel, module), why in LIVE_LAZY.items():
        assert module in dict(_imports(PACKAGE / rel)), f"{rel}: {module} ({why}) is gone"


KERNELS = sorted(PACKAGE.glob("**/*_nb.py"))


@pytest.mark.parametrize("path", KERNELS, ids=[p.name for p in KERNELS])
def test_kernels_import_only_numpy_and_numba(path):
    from quantlib.jit import KERNEL_MODULES

    imported = {m for m, _ in _imports(path)}
    allowed = {"numpy", "__future__", "math", "quantlib.jit", *KERNEL_MODULES}
    assert imported - allowed == set(), imported


def uncached_kernels(path: Path) -> list[str]:
    """Public functions of a kernel module that are not ``@njit(cache=True)`` (a private helper
    without the decorator runs at import time, e.g. a table of constants)."""
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            jit = [d for d in node.decorator_list if "njit" in ast.unparse(d)]
            cached = any(isinstance(d, ast.Call) and any(
                k.arg == "cache" and getattr(k.value, "value", None) is True for k in d.keywords)
                for d in jit)
            if (jit or not node.name.startswith("_")) and not cached:
                found.append(node.name)
    return found


@pytest.mark.parametrize("path", KERNELS, ids=[p.name for p in KERNELS])
def test_every_kernel_is_compiled_once_and_cached(path):
    assert uncached_kernels(path) == []


def test_the_cache_check_can_fail(tmp_path):
    source = tmp_path / "x_nb.py"
    source.write_text("@njit\ndef a_nb(x):\n    return x\n@njit(cache=True)\ndef b_nb(x):\n"
                      "    return x\ndef c_nb(x):\n    return x\ndef _table():\n    return 1\n")
    assert uncached_kernels(source) == ["a_nb", "c_nb"]


def test_every_kernel_module_is_listed_for_the_aot_build():
    from quantlib.jit import KERNEL_MODULES

    found = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in KERNELS}
    assert found == set(KERNEL_MODULES)


def test_the_jit_module_imports_only_numba_numpy_and_the_standard_library():
    third_party = {m.split(".")[0] for m, _ in _imports(PACKAGE / "jit.py")
                   if not _standard(m)}
    assert third_party == {"numba", "numpy", "quantlib"}, third_party


ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
# Imports inside functions of quantlib.strategy that reach above it: (file, module) -> why.
STRATEGY_LAZY = {
    ("strategy/evidence.py", "quantlib.backtest.engine"): "promote reruns the signal backtest",
    ("strategy/evidence.py", "quantlib.backtest.perp"): "promote reruns the perp backtest",
    ("strategy/evidence.py", "quantlib.data"): "promote loads the evidence's data",
    ("strategy/evidence.py", "quantlib.data.sources"): "promote parses the evidence's source",
    ("strategy/evidence.py", "quantlib.data.perp"): "promote loads a perp's mark and funding",
    ("strategy/spec.py", "quantlib.backtest.perp"): "Spec.perp_config() builds a PerpConfig",
    ("strategy/spec.py", "quantlib.data"): "export hashes an input named by a source string",
}
UPWARD_LAZY = {**CORE_LAZY, **LIVE_LAZY, **STRATEGY_LAZY}


def documented_layers(text: str) -> dict[str, int]:
    """The layers of ARCHITECTURE.md's drawing (its first fenced block), bottom row = 0:
    ``{"core": 1, "live": 3, "report": 6, ...}``; packages of one row share a layer."""
    block = text.split("```\n", 2)[1]
    rows = []
    for line in block.splitlines():
        head = re.match(r"  ((?:[\w]+(?:/|\.py)\s+)+)", line + " ")
        if head and not line.startswith("  notebooks"):
            rows.append([name.rstrip("/").removesuffix(".py") for name in head.group(1).split()])
    return {name: rank for rank, row in enumerate(reversed(rows)) for name in row}


def _layer_of(module: str, layers: dict[str, int]) -> int | None:
    """A quantlib module's layer; every command-line module (``cli``) is on top."""
    parts = module.split(".")
    if parts[0] != "quantlib" or len(parts) < 2:
        return None
    if parts[-1] == "cli":
        return max(layers.values()) + 1
    return layers[parts[1]]


def upward_imports(path: Path, layers: dict[str, int], module: str | None = None
                   ) -> list[tuple[str, bool]]:
    """``(module, at_top_level)`` of each import of ``path`` (module ``module``, by default
    named from its path) that reaches a higher layer."""
    module = module or ".".join(path.relative_to(ROOT).with_suffix("").parts)
    me = _layer_of(module.removesuffix(".__init__"), layers)
    if me is None:
        return []
    return [(m, top) for m, top in _imports(path)
            if (_layer_of(m, layers) or 0) > me]


EVERY_MODULE = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.stem not in
                      ("__init__", "cli"))


def test_the_drawing_has_every_package_on_a_layer():
    layers = documented_layers(ARCHITECTURE.read_text())
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "cli")}
    assert packages | modules == set(layers), sorted(set(layers) ^ (packages | modules))
    assert layers["core"] < layers["strategy"] < layers["live"] < layers["backtest"] \
        == layers["data"] < layers["optimize"] < layers["report"]


def test_no_module_imports_a_layer_above_at_its_top():
    layers = documented_layers(ARCHITECTURE.read_text())
    found = [f"{p.relative_to(PACKAGE)}: {m}" for p in EVERY_MODULE
             for m, top in upward_imports(p, layers) if top]
    assert found == []


def test_imports_of_a_layer_above_are_listed():
    layers = documented_layers(ARCHITECTURE.read_text())
    found = {(str(p.relative_to(PACKAGE)), m) for p in EVERY_MODULE
             for m, top in upward_imports(p, layers) if not top}
    assert found - set(UPWARD_LAZY) == set(), "an unlisted import of a layer above"
    assert set(STRATEGY_LAZY) - found == set(), "listed but gone: drop it from STRATEGY_LAZY"


def test_the_layer_check_can_fail(tmp_path):
    # Control: a data module importing the optimizers at its top and the report lazily is
    # caught, its core import is not; the same imports from report are all downward.
    layers = documented_layers(ARCHITECTURE.read_text())
    fake = tmp_path / "probe.py"
    fake.write_text("from quantlib.optimize.sweep import sweep\nfrom quantlib.core import bars\n"
                    "def f():\n    from quantlib.report.format import fmt\n")
    assert upward_imports(fake, layers, "quantlib.data.probe") == [
        ("quantlib.optimize.sweep", True), ("quantlib.report.format", False)]
    assert upward_imports(fake, layers, "quantlib.report.probe") == []
    assert upward_imports(fake, layers, "quantlib.data.cli") == []
