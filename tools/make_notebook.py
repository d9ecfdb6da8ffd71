"""Build a committed notebook (no outputs, first code cell tagged `parameters`) from cell sources.

Used by the notebook-writing scripts in tools/; keeps notebooks consistent and reviewable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def build(path: str | Path, cells: list[tuple[str, str]]) -> Path:
    """``cells`` is a list of ("md" | "params" | "code", source)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "quantlib", "display_name": "quantlib", "language": "python"},
        "language_info": {"name": "python"},
    }
    for kind, source in cells:
        source = source.strip("\n")
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    path = Path(__file__).resolve().parents[1] / path
    nbformat.write(nb, str(path))
    return path


if __name__ == "__main__":  # pragma: no cover
    sys.exit("import build() from this module")
