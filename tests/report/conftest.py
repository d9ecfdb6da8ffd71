"""Fixtures for the report pipeline: the `quantlib` kernel and tiny throwaway notebooks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

KERNELSPEC = {"name": "quantlib", "display_name": "quantlib", "language": "python"}

# Cells of the tiny notebooks. Each is small; what they compute is checked independently.
PLOT_CELLS = [
    """
    import pandas as pd
    import plotly.graph_objects as go
    from quantlib.report.record import record_data, record_metrics
    prices = pd.DataFrame({"close": [float(x) for x in range(1, n + 1)]},
                          index=pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"))
    prices.attrs.update(source=data_kind, source_string=source, symbol="TOY/USD", timeframe="1h")
    record_data(prices);
    """,
    "MARKER_CODE_TOKEN = 1  # visible only when code is shown",
    """
    fig = go.Figure(go.Scatter(x=prices.index, y=prices["close"], name="close"))
    fig.show()
    go.Figure(go.Bar(x=["a", "b"], y=[n, 2 * n]))
    """,
    "record_metrics({'n': n, 'square': n * n, 'total_close': float(prices['close'].sum())})",
]
FAIL_CELLS = [
    "from quantlib.report.record import record_metrics\nrecord_metrics({'before_error': n})",
    "FAILING_CELL_TOKEN = 1\nraise ValueError('boom at n=%d' % n)",
    "never_reached = True",
]

QUICK_CELLS = ["from quantlib.report.record import record_metrics\nrecord_metrics({'n': n, 'cube': n ** 3})"]


def make_notebook(path: Path, cells: list[str], params: str) -> Path:
    """Write a notebook like the project's: quantlib kernel, first code cell tagged parameters."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    first = nbformat.v4.new_code_cell(textwrap.dedent(params).strip())
    first.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# toy"), first]
    nb.cells += [nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def ensure_quantlib_kernel() -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("quantlib")
    except NoSuchKernel:
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "quantlib",
             "--display-name", "quantlib"], check=True, capture_output=True,
        )


@pytest.fixture
def notebook_factory():
    """``notebook_factory(path, cells, params_source)`` writes a tiny project-style notebook."""
    return make_notebook


@pytest.fixture(scope="session")
def quantlib_kernel():
    ensure_quantlib_kernel()
    return "quantlib"


def write_toy_project(root: Path) -> Path:
    """Tiny notebooks + config under ``root``; returns the config path."""
    make_notebook(root / "plots.ipynb", PLOT_CELLS,
                  "source = 'sample'\nn = 3\ndata_kind = 'synthetic'")
    make_notebook(root / "fails.ipynb", FAIL_CELLS, "source = 'sample'\nn = 2")
    make_notebook(root / "quick.ipynb", QUICK_CELLS, "source = 'sample'\nn = 1")
    config = root / "reports.yaml"
    config.write_text(textwrap.dedent("""
        defaults: {source: "sample:bars=100", hide_code: true, timeout: 60}
        notebooks:
          - name: plots
            params:
              small: {n: 4}
              filedata: {n: 6, data_kind: file}
          - name: fails
            source: "file:/nonexistent.csv"
          - name: quick
            params: {default: {n: 5}}
    """))
    return config


@pytest.fixture(scope="session")
def toy_report(quantlib_kernel, tmp_path_factory):
    """One report run over the toy notebooks (shared by the pipeline and browser tests)."""
    from quantlib.report import run_report

    root = tmp_path_factory.mktemp("toy")
    config = write_toy_project(root / "notebooks")
    run = run_report(config, out=root / "reports")
    return run, config, root / "reports"
