"""Committed notebooks are clean: no outputs, no execution counts, a tagged parameters cell,
the `quantlib` kernel, and a `source` parameter the report pipeline can set."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from quantlib.report.config import notebook_parameters

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
KERNELSPEC = {"name": "quantlib", "display_name": "quantlib", "language": "python"}


def check_notebook(path: Path) -> list[str]:
    """Every hygiene problem of one notebook, as messages naming the cell."""
    nb = nbformat.read(str(path), as_version=4)
    problems = []
    if dict(nb.metadata.get("kernelspec", {})) != KERNELSPEC:
        problems.append(f"metadata.kernelspec is {nb.metadata.get('kernelspec')}, expected {KERNELSPEC}")
    code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for index, cell in code_cells:
        if cell.get("outputs"):
            problems.append(f"cell {index} has {len(cell.outputs)} output(s); strip outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {index} has execution_count {cell.execution_count}")
    if not code_cells:
        problems.append("no code cell")
    else:
        index, first = code_cells[0]
        if "parameters" not in first.metadata.get("tags", []):
            problems.append(f"first code cell (cell {index}) is not tagged 'parameters'")
        elif "source" not in notebook_parameters(path):
            problems.append(f"parameters cell (cell {index}) declares no `source` parameter")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_is_clean(path):
    assert check_notebook(path) == [], f"{path.name}: " + "; ".join(check_notebook(path))


def test_checker_catches_outputs_counts_and_missing_tag(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    params = nbformat.v4.new_code_cell("source = 'sample'")
    params.metadata["tags"] = ["parameters"]
    dirty = nbformat.v4.new_code_cell("1 + 1", execution_count=3,
                                      outputs=[nbformat.v4.new_output("execute_result",
                                                                      {"text/plain": "2"},
                                                                      execution_count=3)])
    nb.cells = [params, dirty]
    path = tmp_path / "dirty.ipynb"
    nbformat.write(nb, str(path))
    assert check_notebook(path) == ["cell 1 has 1 output(s); strip outputs",
                                    "cell 1 has execution_count 3"]
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nb.metadata["kernelspec"] = {"name": "python3"}
    nbformat.write(nb, str(path))
    problems = check_notebook(path)
    assert "first code cell (cell 0) is not tagged 'parameters'" in problems
    assert problems[0].startswith("metadata.kernelspec is")
