"""The docs name only things that exist (issue #16: "check every docstring and ARCHITECTURE.md
line against the code after the move").

Checked without importing quantlib (modules are found by file path and attributes by ``ast``),
so the check is fast and loads no research library:

- every dotted ``quantlib.x.y`` name and every ``from quantlib.x import a, b`` in
  ``docs/ARCHITECTURE.md``, ``README.md``, the docstrings of ``quantlib/**/*.py`` and the
  notebooks names a module and an attribute of it (a definition, an import, a lazily exported
  name, a class member); Sphinx cross-references in docstrings and backticked ``function(`` /
  ``ClassName`` in the docs name something defined;
- every ``quantlib/...py``, ``tests/...py`` and ``benchmarks/...py`` path exists, and so do the
  paths written relative to the package (``core/bars.py``, ``brokers/paper.py`` in live/)
  and the bare file names ARCHITECTURE.md writes.

Each checker is run on a text with stale references in
:func:`test_the_checks_report_stale_references`. The rules' test markers, the lists the docs
share with the code, and the commands: tests/test_contract_docs.py.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "quantlib"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
README = ROOT / "README.md"

DOTTED = re.compile(r"(?<![\w.])quantlib(?:\.[A-Za-z_]\w*)+")
FROM_IMPORT = re.compile(r"from (quantlib(?:\.\w+)*) import ([\w, ]+)")
ROOTED_PATH = re.compile(r"(?<![\w/.-])((?:quantlib|tests|benchmarks)/[\w/.-]*?\.py)\b(?!::)")
# A path the architecture writes relative to the package: `core/bars.py`, `live/brokers/x.py`.
RELATIVE_PATH = re.compile(r"(?<![\w/.~-])((?:[a-z_]+/)+\w+\.py)\b")
BARE_FILE = re.compile(r"(?<![\w/.*-])(\w+\.py)\b")
# `name(` and `CamelCase` in backticks: a function or class the docs name without its module.
CALLED = re.compile(r"`([A-Za-z_]\w*)\(")
CLASS = re.compile(r"`([A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*)`")
ROLE = re.compile(r":(?:func|class|meth|attr|data|mod|obj|exc):`~?([\w.]+)`")
# Names in the docs that are not quantlib's: pandas' index type, CSV header words.
NOT_OURS = {"DatetimeIndex", "Date", "Open"}


# ----------------------------------------------------------------------------------------------
# Modules and their attributes, by ast


@cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _definitions(body: list[ast.stmt]):
    """Every class and function under ``body``, nested ones and those inside if/try/with
    blocks included (the statements that can carry a docstring), without walking expressions."""
    for node in body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], (ast.stmt,
                                                                          ast.excepthandler)):
                yield from _definitions(inner)


def module_file(dotted: str) -> Path | None:
    """The source of module ``dotted`` (``quantlib.a.b``), or None."""
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _top_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """The module-level statements, those inside top-level ``if``/``try`` blocks included
    (``if TYPE_CHECKING:``, an optional import)."""
    found: list[ast.stmt] = []
    for node in body:
        found.append(node)
        if isinstance(node, ast.If):
            found += _top_statements(node.body) + _top_statements(node.orelse)
        elif isinstance(node, ast.Try):
            found += _top_statements(node.body)
            for handler in node.handlers:
                found += _top_statements(handler.body)
    return found


def _absolute(module: str | None, level: int, package: str) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".")[: len(package.split(".")) - level + 1]
    return ".".join(parts + ([module] if module else []))


def _lazy_names(statements: list[ast.stmt]) -> dict[str, str]:
    """Names a package exports through ``quantlib._lazy.lazy_exports``: name -> submodule."""
    dicts = {}
    for node in statements:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    dicts[target.id] = node.value
    found: dict[str, str] = {}
    for call in (n.value for n in statements if isinstance(n, ast.Assign)):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id == "lazy_exports" and len(call.args) == 2):
            mapping = call.args[1]
            if isinstance(mapping, ast.Name):
                mapping = dicts.get(mapping.id)
            if isinstance(mapping, ast.Dict):
                for key, value in zip(mapping.keys, mapping.values, strict=True):
                    if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                        found[key.value] = value.value
    return found


@cache
def module_names(dotted: str) -> dict[str, tuple]:
    """Every top-level name of module ``dotted``: name -> ("def", node) | ("class", node) |
    ("import", target dotted name) | ("lazy", submodule dotted name) | ("value", None)."""
    path = module_file(dotted)
    tree = _parsed(path)
    package = dotted if path.name == "__init__.py" else dotted.rpartition(".")[0]
    statements = _top_statements(tree.body)
    names: dict[str, tuple] = {}
    for node in statements:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = ("def", node)
        elif isinstance(node, ast.ClassDef):
            names[node.name] = ("class", node)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    "import", alias.name if alias.asname else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node.module, node.level, package)
            for alias in node.names:
                names[alias.asname or alias.name] = ("import", f"{source}.{alias.name}")
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        names.setdefault(name.id, ("value", None))
    for name, sub in _lazy_names(statements).items():
        names.setdefault(name, ("lazy", f"{dotted}.{sub}.{name}"))
    for name in _getattr_names(names.get("__getattr__", (None, None))[1]):
        names.setdefault(name, ("value", None))
    return names


def _getattr_names(function: ast.AST | None) -> set[str]:
    """Names a hand-written module ``__getattr__`` answers (``if name == "app":``)."""
    if not isinstance(function, ast.FunctionDef):
        return set()
    return {c.value for node in ast.walk(function) if isinstance(node, ast.Compare)
            for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)}


def _class_members(node: ast.ClassDef) -> set[str]:
    members = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            members.add(item.name)
        elif isinstance(item, ast.Assign):
            members |= {t.id for t in item.targets if isinstance(t, ast.Name)}
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            members.add(item.target.id)
    return members


def _class_has(module: str, node: ast.ClassDef, member: str, depth: int) -> bool:
    """Whether the class (or a base class of quantlib's) defines ``member``; a base class from
    another library is taken to provide it (NamedTuple's ``_replace``, pydantic's methods)."""
    if member in _class_members(node):
        return True
    for base in node.bases:
        if not isinstance(base, ast.Name):
            return True
        kind, target = module_names(module).get(base.id, (None, None))
        if kind == "class":
            if _class_has(module, target, member, depth + 1):
                return True
        elif kind in ("import", "lazy"):
            if not target.startswith("quantlib") or resolve(f"{target}.{member}", depth + 1) is None:
                return True
    return False


def resolve(dotted: str, depth: int = 0) -> str | None:
    """None when ``dotted`` names a quantlib module or an attribute of one, else what is
    missing."""
    if depth > 8:
        return None  # a re-export cycle: not ours to judge here
    parts = dotted.split(".")
    cut = next((i for i in range(len(parts), 0, -1) if module_file(".".join(parts[:i]))), 0)
    if cut == 0:
        return f"no module {parts[0]}"
    module, rest = ".".join(parts[:cut]), parts[cut:]
    if not rest:
        return None
    kind, target = module_names(module).get(rest[0], (None, None))
    if kind is None:
        return f"{module} has no attribute {rest[0]}"
    if kind in ("import", "lazy"):
        if not target.startswith("quantlib."):
            return None  # a third-party name: that library's business
        return resolve(".".join([target, *rest[1:]]), depth + 1)
    if kind == "class" and len(rest) > 1 and not _class_has(module, target, rest[1], depth):
        return f"{module}.{rest[0]} has no member {rest[1]}"
    if kind == "def" and len(rest) > 1:
        return f"{module}.{rest[0]} is a function: no attribute {rest[1]}"
    return None


# ----------------------------------------------------------------------------------------------
# References in a text


def dotted_references(text: str) -> list[str]:
    """Every ``quantlib.x.y`` name of ``text`` and every name a ``from quantlib.x import``
    line of it imports, as dotted names."""
    found = DOTTED.findall(text)
    for module, names in FROM_IMPORT.findall(text):
        found += [f"{module}.{name.split()[0]}" for name in names.split(",") if name.strip()]
    return found


def missing_dotted(text: str) -> list[str]:
    problems = []
    for name in dict.fromkeys(dotted_references(text)):
        why = resolve(name)
        if why is not None:
            problems.append(f"{name}: {why}")
    return problems


def missing_paths(text: str, relative_to: tuple[Path, ...] = ()) -> list[str]:
    """Rooted paths (``quantlib/``, ``tests/``, ``benchmarks/``) of ``text`` that do not exist;
    with ``relative_to``, also ``core/bars.py``-style paths that none of those folders (nor the
    repository) holds. A path into another installed library (``vectorbt/portfolio/nb.py``)
    is that library's business."""
    problems = [f"{p}: no such file" for p in dict.fromkeys(ROOTED_PATH.findall(text))
                if not (ROOT / p).is_file()]
    if relative_to:
        for path in dict.fromkeys(RELATIVE_PATH.findall(text)):
            top = path.split("/")[0]
            if top in ("quantlib", "tests", "benchmarks") or _installed(top):
                continue
            if not any((base / path).is_file() for base in (*relative_to, ROOT)):
                problems.append(f"{path}: no such file under quantlib/")
    return problems


@cache
def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@cache
def _file_names() -> frozenset[str]:
    return frozenset(p.name for top in ("quantlib", "tests", "benchmarks")
                     for p in (ROOT / top).rglob("*.py"))


def missing_bare_files(text: str) -> list[str]:
    """Bare file names (``stop_rule.py``) anywhere in ``text`` that no folder of quantlib/,
    tests/ or benchmarks/ holds."""
    return [f"{name}: no such file" for name in dict.fromkeys(BARE_FILE.findall(text))
            if name not in _file_names()]


@cache
def defined_names() -> frozenset[str]:
    """Every function, class, class field and module-level name defined in quantlib/ and in the
    tests' shared code (conftest fixtures, tests/support)."""
    paths = [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("conftest.py"),
             *(ROOT / "tests" / "support").glob("*.py")]
    names = set()
    for path in paths:
        tree = _parsed(path)
        definitions = list(_definitions(tree.body))
        names |= {n.name for n in definitions}
        names |= {n.target.id for c in definitions if isinstance(c, ast.ClassDef)
                  for n in c.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        top = _top_statements(tree.body)
        names |= {t.id for n in top if isinstance(n, ast.Assign)
                  for t in n.targets if isinstance(t, ast.Name)}
        names |= {n.target.id for n in top
                  if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    return frozenset(names)


def undefined_names(text: str) -> list[str]:
    """Functions (`name(`) and classes (`CamelCase`) named in ``text`` that nothing defines
    (in quantlib/, or the tests' fixtures and support code)."""
    found = dict.fromkeys(CALLED.findall(text) + CLASS.findall(text))
    return [f"{name}: defined nowhere in quantlib/" for name in found
            if name not in defined_names() and name not in NOT_OURS]


def unknown_roles(doc: str) -> list[str]:
    """Sphinx cross-references (``:func:`name```) whose target nothing defines: a dotted
    ``quantlib.`` target is resolved by :func:`resolve`; another library's (``:mod:`ast```,
    ``plotly.io.to_html``) is that library's business."""
    problems = []
    for target in dict.fromkeys(ROLE.findall(doc)):
        head = target.split(".")[0]
        if head == "quantlib" or (head and _installed(head)):  # ".name": a relative target
            continue
        if target.split(".")[-1] not in defined_names():
            problems.append(f"{target}: defined nowhere in quantlib/")
    return problems


def docstrings() -> list[tuple[str, str, tuple[Path, ...]]]:
    """``(file:line, docstring, folders)`` of every module, class and function of quantlib/;
    ``folders``: the file's folder and its parents up to quantlib/, against which a docstring's
    relative path (``brokers/paper.py`` in live/) is resolved."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = _parsed(path)
        rel = path.relative_to(ROOT)
        folders = tuple(p for p in path.parents if p == PACKAGE or PACKAGE in p.parents)
        for node in [tree, *_definitions(tree.body)]:
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((f"{rel}:{node.body[0].lineno}", doc, folders))
    return found


# ----------------------------------------------------------------------------------------------
# The checks


@pytest.mark.parametrize("doc", [ARCHITECTURE, README], ids=["ARCHITECTURE.md", "README.md"])
def test_every_dotted_name_in_the_docs_exists(doc):
    assert missing_dotted(doc.read_text()) == []


@pytest.mark.parametrize("doc", [ARCHITECTURE, README], ids=["ARCHITECTURE.md", "README.md"])
def test_every_path_in_the_docs_exists(doc):
    bases = (PACKAGE,) if doc is ARCHITECTURE else ()
    assert missing_paths(doc.read_text(), relative_to=bases) == []


@pytest.mark.parametrize("doc", [ARCHITECTURE, README], ids=["ARCHITECTURE.md", "README.md"])
def test_every_function_and_class_the_docs_name_is_defined(doc):
    assert undefined_names(doc.read_text()) == []


def test_every_bare_file_name_of_the_architecture_exists():
    assert missing_bare_files(ARCHITECTURE.read_text()) == []


def notebook_imports(path: Path) -> list[str]:
    """``quantlib.x.name`` for every ``from quantlib.x import name`` / ``import quantlib.x`` in
    a notebook's code cells (cells with IPython magics are skipped)."""
    found = []
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("quantlib"):
                found += [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                found += [a.name for a in node.names if a.name.startswith("quantlib")]
    return found


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_name_a_notebook_imports_exists(path):
    names = notebook_imports(path)
    assert names, f"{path.name} imports nothing from quantlib"
    assert [f"{n}: {resolve(n)}" for n in names if resolve(n)] == []


def test_every_reference_in_the_docstrings_exists():
    problems = [f"{where}: {problem}" for where, doc, folders in docstrings()
                for problem in missing_dotted(doc) + missing_paths(doc, folders)
                + missing_bare_files(doc) + unknown_roles(doc)]
    assert problems == []


def test_the_checks_report_stale_references():
    # Control: names and paths that do not exist are reported, real ones are not.
    text = ("`quantlib.data.load` and `quantlib.core.bars.Bars.frame`, `quantlib.data.PerpData`;"
            " stale: `quantlib.backtest.indicators_nb.rsi_nb`, `quantlib.core.bars.Bars.nope`,"
            " `quantlib.data.no_such_loader`, `quantlib.nothing`.\n"
            "from quantlib.backtest import BacktestConfig, run_backtestt\n"
            "`quantlib/core/bars.py`, `quantlib/strategy/kinds.py`, `tests/x/test_gone.py`,"
            " `core/bars.py`, `ml/features_nb.py`, gone_module.py, `vectorbt/portfolio/nb.py`\n"
            "\n")
    assert missing_dotted(text) == [
        "quantlib.backtest.indicators_nb.rsi_nb: quantlib.backtest has no attribute indicators_nb",
        "quantlib.core.bars.Bars.nope: quantlib.core.bars.Bars has no member nope",
        "quantlib.data.no_such_loader: quantlib.data has no attribute no_such_loader",
        "quantlib.nothing: quantlib has no attribute nothing",
        "quantlib.backtest.run_backtestt: quantlib.backtest has no attribute run_backtestt",
    ]
    assert missing_paths(text, relative_to=(PACKAGE,)) == [
        "quantlib/strategy/kinds.py: no such file", "tests/x/test_gone.py: no such file",
        "ml/features_nb.py: no such file under quantlib/"]
    assert missing_bare_files(text) == ["gone_module.py: no such file"]
    assert undefined_names("`run_backtest(kind)`, `BacktestResult`, `run_backtset(x)`,"
                           " `PaperBrokr`, `DatetimeIndex`") == [
        "run_backtset: defined nowhere in quantlib/",
        "PaperBrokr: defined nowhere in quantlib/"]
    assert unknown_roles(":func:`run_backtest`, :class:`~BacktestConfig`, :mod:`ast`,"
                         " :func:`plotly.io.to_html`, :func:`gone_helper`") == [
        "gone_helper: defined nowhere in quantlib/"]
