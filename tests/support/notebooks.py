"""Run a repository notebook under papermill and read the metrics it recorded.

The notebook tests check recorded figures against an independent recomputation; this module only
runs the notebook and hands back the first ``record_metrics`` payload, so that each test's own
checks stay in its file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quantlib.report.record import METRICS_MIME

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def recorded_metrics(nb: Any) -> dict:
    """The first metrics payload an executed notebook recorded (fails the test if none).

    Parameters
    ----------
    nb : nbformat.NotebookNode
        An executed notebook.

    Returns
    -------
    dict
        The payload of the first output carrying ``METRICS_MIME``.
    """
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if METRICS_MIME in data:
                payload = data[METRICS_MIME]
                return json.loads(payload) if isinstance(payload, str) else dict(payload)
    raise AssertionError("the notebook recorded no metrics")


def run_notebook(name: str, out: Path, params: dict) -> dict:
    """Execute ``notebooks/<name>`` with ``params`` into ``out``; return its recorded metrics.

    Skips the test when papermill is not installed.

    Parameters
    ----------
    name : str
        File name under ``notebooks/``, e.g. ``"03_regimes.ipynb"``.
    out : Path
        Where the executed copy is written.
    params : dict
        Papermill parameters.

    Returns
    -------
    dict
        See :func:`recorded_metrics`.
    """
    papermill = pytest.importorskip("papermill")
    import nbformat  # only here: importing it costs over a second (jsonschema's grammars)

    papermill.execute_notebook(str(NOTEBOOKS / name), str(out), parameters=params,
                               kernel_name="quantlib", progress_bar=False)
    return recorded_metrics(nbformat.read(str(out), as_version=4))
