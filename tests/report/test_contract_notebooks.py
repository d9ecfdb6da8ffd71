"""docs/ARCHITECTURE.md "Notebooks": the rules tests/test_notebook_hygiene.py (kernel, tag,
outputs, `source`) and tests/report/test_report_config.py (reports.yaml) do not check.

- the documented list of notebooks is the real one;
- every notebook records its data and its headline metrics (quantlib.report.record);
- cells are thin: no logic longer than a few lines lives in a notebook;
- `make test` runs every notebook as committed (nbval), so the defaults must stay small.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# A notebook function this long is logic that belongs in quantlib.
MAX_FUNCTION_LINES = 3


def code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def documented_notebooks() -> list[str]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split("## Notebooks", 1)[1].split("\n## ", 1)[0]
    listing = re.search(r"Notebooks: (.*?);", section, flags=re.S)
    assert listing, "the Notebooks section lists no notebooks ('Notebooks: 01_data, ...;')"
    return [name.strip() for name in listing.group(1).replace("\n", " ").split(",")]


def test_the_documented_list_is_the_real_one():
    assert documented_notebooks() == [p.stem for p in NOTEBOOKS]


def calls(source: str) -> set[str]:
    """Names of the functions a cell calls (``record_data(df)`` -> ``record_data``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics: not ours to check here
        return set()
    return {node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Name, ast.Attribute))}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_records_its_data_and_metrics(path):
    called = set().union(*map(calls, code_cells(path)))
    assert {"record_data", "record_metrics"} <= called, sorted(called & {"record_data",
                                                                         "record_metrics"})


def long_functions(source: str) -> list[str]:
    """Functions and classes of a cell longer than MAX_FUNCTION_LINES lines."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_cells_are_thin(path):
    found = [name for source in code_cells(path) for name in long_functions(source)]
    assert found == [], f"{path.name} holds logic that belongs in quantlib: {found}"


def test_the_thin_cell_check_can_fail():
    cell = "def helper(x):\n    y = x + 1\n    z = y * 2\n    return z\n\nshort = lambda: 1\n"
    assert long_functions(cell) == ["helper (4 lines)"]
    assert calls("from quantlib.report.record import record_data\nrecord_data(df)\n") == {
        "record_data"}


def test_make_test_runs_every_notebook_as_committed():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test:.*?\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert recipe, "the Makefile has no `test` target"
    assert re.search(r"pytest .*\bnotebooks\b.*--nbval", recipe.group(1)), recipe.group(1)
