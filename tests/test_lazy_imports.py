"""The lazy-import rule, checked statically on the sources of ``quantlib/`` (ast only, no
process started).

An ``import`` inside a function or method hides a dependency and runs on every call, so it must
say why it is not at the top of its file. It may stay inside the function only if

(a) it loads a library of :data:`HEAVY` (each with its reason: what importing it costs, or
    that the trading process must not load it) that the importing module does not load already
    when it is imported: the library itself, or a quantlib module whose static top-level import
    closure loads it (followed through top-level imports and package ``__init__``s; the names a
    package loads on first use through ``quantlib._lazy`` are followed only when the import
    statement names them), or
(b) it imports a quantlib module on a layer above the importer's (as docs/ARCHITECTURE.md
    draws them: core < strategy < live < data, backtest < optimize, ml, regime < report,
    plotting; every ``cli`` module is on top), or
(c) it is listed in :data:`EXCEPTIONS` with its reason.

Every other function-level import is reported as ``file:line``, with the module, and "move it to
the top".

A kernel module (``quantlib.jit.KERNEL_MODULES``) counts as loading numba: its ``@njit``
decorators import numba as the module loads (in the research processes), and the trading process
must import kernels only after :func:`quantlib.jit.use_aot` chose how they are bound.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.test_architecture import ARCHITECTURE, documented_layers

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "quantlib"

# Libraries an import inside a function may name: root module -> why it is not at the top.
# Import times in a fresh interpreter on this project's machine (2 CPUs): measured quiet where
# given to two digits; the "~1 s" ones from CPU time on a loaded machine, scaled by pandas'
# quiet/loaded ratio. vectorbt: benchmarks/bench_startup.py.
HEAVY = {
    "pandas": "~0.35 s and ~100 MB (loads pyarrow); never in the trading process",
    "pyarrow": "~0.16 s; only Parquet caches and pandas need it, never the trading process",
    "numba": "~0.30 s and ~100 MB of LLVM; the trading process runs ahead-of-time kernels",
    "vectorbt": "~5 s (loads plotly widgets, ccxt, nbformat); only the vectorbt engine needs it",
    "ccxt": "~0.33 s (100+ exchange classes); only commands that talk to an exchange",
    "optuna": "~0.18 s, loads sqlalchemy; research only",
    "papermill": "~1.3 s (nbformat, nbclient, jupyter_client); report pipeline only",
    "nbformat": "~1.1 s (jsonschema's grammars); report pipeline only",
    "nbconvert": "~1.4 s (jinja2, mistune, bleach); report pipeline only",
    "jupyter*": "notebook kernel machinery; report pipeline only",
    "IPython": "the notebook's display; only inside a running notebook",
    "ipywidgets": "notebook widgets; only inside a running notebook",
    "plotly": "figures only (graph_objects loads its figure classes on first use)",
    "sklearn": "~1 s and ~60 MB; research (regime, ml) only",
    "xgboost": "~1.2 s and its shared library; training and model files only",
    "scipy": "~0.12 s and more per sub-package; statistics in research only",
    "statsmodels": "~1.4 s (scipy, pandas, patsy); switching models only",
    "hmmlearn": "~1.2 s (scikit-learn, scipy); HMM fits only",
    "sqlalchemy": "~0.18 s; optuna's storages only",
    "distributed": "~0.48 s (dask, tornado); the distributed sweep only",
    "dask": "~0.15 s, pandas on many paths; the distributed sweep only",
    "apprise": "~0.11 s and 100+ plugins; only when the run asks to notify (--notify)",
    "rich": "~0.04 s (console, live rendering); only a download's progress bar, not the commands "
            "that read files (`quantlib data validate`, `quantlib backtest --strategy`)",
    "prometheus_client": "only when a run serves /metrics (--metrics-port); keeps the trading "
                         "process small otherwise",
}

# Layers as docs/ARCHITECTURE.md draws them, bottom up (quantlib.<name> -> floor); every `cli`
# module is on the floor above all of them, the top.
LAYERS = documented_layers(ARCHITECTURE.read_text())
TOP = max(LAYERS.values()) + 1

# Function-level imports allowed for another reason: (file, imported module) -> why.
EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass
class Source:
    """One module of quantlib: its top-level imports and its function-level ones."""

    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    lazy: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LazyImport:
    """An import statement inside a function: where, what it names, what it loads."""

    file: str
    line: int
    named: str
    loads: frozenset[str]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _lazy_names(tree: ast.Module) -> dict[str, str]:
    """The ``{name: submodule}`` a package hands to ``lazy_exports`` (empty if none)."""
    assigned = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lazy_exports":
            mapping = node.args[1]
            mapping = assigned.get(mapping.id, mapping) if isinstance(mapping, ast.Name) else mapping
            return dict(ast.literal_eval(mapping))
    return {}


def _sources(root: Path = PACKAGE) -> dict[str, Source]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        name = _module_name(path)
        found[name] = Source(name, path, path.name == "__init__.py", tree, _lazy_names(tree))
    return found


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _top_level_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module loads: outside functions and outside
    ``if TYPE_CHECKING:`` blocks (class bodies and other blocks run)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        elif _is_type_checking(node):
            found += _top_level_imports(node.orelse)
        else:
            for child in ("body", "orelse", "finalbody", "handlers"):
                for sub in getattr(node, child, []):
                    found += _top_level_imports(getattr(sub, "body", [])
                                                if isinstance(sub, ast.ExceptHandler) else [sub])
    return found


def _function_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: dict[int, ast.Import | ast.ImportFrom] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    found[id(sub)] = sub
    return sorted(found.values(), key=lambda n: n.lineno)


def _with_parents(module: str, sources: dict[str, Source]) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(sources)


def _loads(node: ast.Import | ast.ImportFrom, importer: Source,
           sources: dict[str, Source]) -> tuple[str, set[str]]:
    """What one import statement names (for messages) and what it loads: quantlib modules by
    their dotted names, other libraries by their root module."""
    if isinstance(node, ast.Import):
        loaded: set[str] = set()
        for alias in node.names:
            root = alias.name.split(".")[0]
            loaded |= _with_parents(alias.name, sources) if root == "quantlib" else {root}
        return ", ".join(a.name for a in node.names), loaded
    base = node.module or ""
    if node.level:
        package = importer.name.split(".")
        package = package if importer.is_package else package[:-1]
        base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
    if base.split(".")[0] != "quantlib":
        return base, {base.split(".")[0]}
    loaded = _with_parents(base, sources)
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in sources:
            loaded.add(sub)
        elif base in sources and alias.name in sources[base].lazy:
            loaded.add(f"{base}.{sources[base].lazy[alias.name]}")
    named = max(loaded, key=len) if loaded else base
    return named, loaded


def _kernel_modules() -> set[str]:
    return {_module_name(p) for p in PACKAGE.rglob("*_nb.py")}


def closure(start: set[str], sources: dict[str, Source]) -> set[str]:
    """Every quantlib module and outside library root that importing ``start`` loads, through
    top-level imports (a kernel module adds numba: its decorators import it)."""
    kernels = _kernel_modules()
    seen, todo, libraries = set(), list(start), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if not name.startswith("quantlib"):
            libraries.add(name)
            continue
        seen.add(name)
        if name in kernels:
            libraries.add("numba")
        source = sources[name]
        todo += [m for node in _top_level_imports(source.tree.body)
                 for m in _loads(node, source, sources)[1]]
    return seen | libraries


def heavy_reason(library: str) -> str | None:
    """Why ``library`` may be imported inside a function (its HEAVY entry), or None."""
    for name, why in HEAVY.items():
        if library == name or (name.endswith("*") and library.startswith(name[:-1])):
            return why
    return None


def is_heavy(library: str) -> bool:
    return heavy_reason(library) is not None


def layer(module: str) -> int:
    parts = module.split(".")
    if parts[-1] in ("cli", "__main__"):
        return TOP
    return 0 if len(parts) == 1 else LAYERS[parts[1]]


def lazy_imports(source: Source, sources: dict[str, Source]) -> list[LazyImport]:
    rel = str(source.path.relative_to(PACKAGE))
    found = []
    for node in _function_imports(source.tree):
        named, loads = _loads(node, source, sources)
        found.append(LazyImport(rel, node.lineno, named, frozenset(loads)))
    return found


def why_lazy(item: LazyImport, importer: str, sources: dict[str, Source]) -> str | None:
    """The rule's reason for ``item`` to stay inside its function, or None: move it up."""
    already = closure(_with_parents(importer, sources), sources)
    heavy = sorted(lib for lib in closure(set(item.loads), sources) - already
                   if not lib.startswith("quantlib") and is_heavy(lib))
    if heavy:
        return f"loads {heavy[0]}: {heavy_reason(heavy[0])}"
    above = [m for m in item.loads if m.startswith("quantlib") and layer(m) > layer(importer)]
    if above:
        return f"{max(above, key=len)} is on a layer above {importer}"
    return EXCEPTIONS.get((item.file, item.named))


def violations(sources: dict[str, Source], only: dict[str, Source] | None = None) -> list[str]:
    """One message per function-level import that the rule rejects."""
    found, everything = [], sources | (only or {})
    for source in (only or sources).values():
        for item in lazy_imports(source, everything):
            if why_lazy(item, source.name, everything) is None:
                found.append(f"quantlib/{item.file}:{item.line}: `{item.named}` loads no heavy "
                             "library this module does not load already and is on its layer or "
                             "below: move it to the top")
    return found


SOURCES = _sources()


def test_every_function_level_import_has_a_reason():
    found = violations(SOURCES)
    assert found == [], f"{len(found)} import(s) inside functions:\n" + "\n".join(found)


def _checked_alone(rel: str, text: str) -> list[str]:
    """The rule run on one synthetic module ``rel`` (e.g. ``data/fake.py``) of the real tree."""
    fake = Source(".".join(("quantlib", *Path(rel).with_suffix("").parts)), PACKAGE / rel,
                  False, ast.parse(text))
    return violations(SOURCES, {fake.name: fake})


def test_the_check_flags_light_imports_and_accepts_heavy_ones():
    # Control, in a module of live (a light package): the standard library, core's timeframes,
    # the errors and the package itself are light: flagged; pandas, a module above (optimize) and one whose closure
    # loads numba (core.kinds: its kernels) are accepted.
    text = ("import numpy as np\n"
            "def f():\n"
            "    import json\n"
            "    import pandas as pd\n"
            "    from quantlib.core.timeframes import timeframe_to_seconds\n"
            "    from quantlib.optimize.sweep import sweep\n"
            "    from quantlib.core.kinds import MA_CROSS\n"
            "    from quantlib.errors import LiveError\n"
            "    from . import CANCEL_ORDERS\n")
    found = _checked_alone("live/fake.py", text)
    assert [f.split(": ")[0] for f in found] == ["quantlib/live/fake.py:3",
                                                  "quantlib/live/fake.py:5",
                                                  "quantlib/live/fake.py:8",
                                                  "quantlib/live/fake.py:9"]
    assert "`json`" in found[0] and "move it to the top" in found[0]
    assert "`quantlib.core.timeframes`" in found[1]


def test_a_lazily_exported_name_is_followed_when_the_import_names_it():
    # `from quantlib.report import render_html` runs the package's lazy __getattr__, which
    # imports report.html (nbconvert); the package alone loads nothing heavy.
    assert "nbconvert" not in closure({"quantlib.report"}, SOURCES)
    assert "nbconvert" in closure({"quantlib.report.html"}, SOURCES)
    assert _checked_alone("core/fake.py",
                          "def f():\n    from quantlib.report import render_html\n") == []
    assert _checked_alone("report/cli.py",
                          "def f():\n    from quantlib.report import render_html\n") == []
    assert len(_checked_alone("report/cli.py",
                              "def f():\n    from quantlib.report import record_data\n")) == 1


def test_a_heavy_library_already_loaded_at_the_top_is_not_a_reason():
    # The cost is paid as the module loads: the same lazy imports are flagged in a module that
    # imports pandas and numba (directly, or through data.ohlcv and a kernel) at the top.
    lazy = "def f():\n    import pandas as pd\n    from quantlib.core.kinds import MA_CROSS\n"
    assert _checked_alone("live/fake.py", lazy) == []
    assert len(_checked_alone("live/fake.py", "import pandas\nimport numba\n" + lazy)) == 2
    assert len(_checked_alone("live/fake.py", "from quantlib.data.ohlcv import find_gaps\n"
                              "from quantlib.core import indicators_nb\n" + lazy)) == 2


def test_a_cli_module_is_above_every_layer():
    # The same light-but-upper import is fine in core and flagged in a cli module.
    text = "def f():\n    from quantlib.live.state import StateStore\n"
    assert _checked_alone("core/fake.py", text) == []
    assert len(_checked_alone("report/cli.py", text)) == 1


def test_the_closure_follows_top_level_imports_only():
    # Kernels load numba; a function's imports are not followed (engine loads vectorbt on its
    # first run only); a TYPE_CHECKING block is not followed (report.index: nbformat).
    assert "numba" in closure({"quantlib.core.indicators_nb"}, SOURCES)
    assert "sklearn" in closure({"quantlib.regime.selection"}, SOURCES)
    assert "vectorbt" not in closure({"quantlib.backtest.engine"}, SOURCES)
    assert "pandas" in closure({"quantlib.data.ohlcv"}, SOURCES)
    assert "nbformat" not in closure({"quantlib.report.index"}, SOURCES)
    core = closure({"quantlib.core.kinds", "quantlib.core.registry"}, SOURCES)
    assert {m for m in core if not m.startswith("quantlib") and is_heavy(m)} == {"numba"}


def test_live_run_imports_no_kernel_before_it_chooses_how_kernels_are_bound():
    # The import-order rule of quantlib.jit: use_aot must run before any kernel module loads
    # (tests/test_jit.py::test_use_aot_refuses_once_kernels_are_loaded). So the console script,
    # the live command line and the core package load no kernel at their top; what `live run`
    # builds from is imported inside it, after the choice (allowed above: kernels load numba).
    loaded = closure({"quantlib.cli", "quantlib.live.cli", "quantlib.core"}, SOURCES)
    assert "quantlib.live.cli" in loaded
    assert sorted(loaded & _kernel_modules()) == [] and "numba" not in loaded


def test_the_live_package_is_checked_too():
    assert any(s.path.is_relative_to(PACKAGE / "live") for s in SOURCES.values())
    assert layer("quantlib.live.runner") < layer("quantlib.data.sources") < layer("quantlib.cli")


@pytest.mark.parametrize("library", sorted(h for h in HEAVY if not h.endswith("*")))
def test_every_heavy_library_is_installed(library):
    # A misspelt entry would silently allow nothing; find_spec does not import the library.
    assert importlib.util.find_spec(library) is not None


def test_every_exception_is_still_needed():
    for (rel, named), why in list(EXCEPTIONS.items()):
        source = SOURCES[_module_name(PACKAGE / rel)]
        items = [i for i in lazy_imports(source, SOURCES) if i.named == named]
        assert items, f"{rel} no longer imports {named} in a function ({why}): drop the entry"
        saved = EXCEPTIONS.pop((rel, named))
        try:
            assert all(why_lazy(i, source.name, SOURCES) is None for i in items), \
                f"{rel}: {named} is allowed by the rule itself: drop the entry"
        finally:
            EXCEPTIONS[(rel, named)] = saved
