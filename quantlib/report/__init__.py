"""quantlib.report: papermill report pipeline and the notebook recording helpers.

Public names: :func:`run_report` (``quantlib report``), :func:`load_config`,
:func:`prune_runs`, :func:`update_index`, :func:`read_recorded`, :func:`render_html`, and for
notebooks :func:`record_metrics` / :func:`record_data` (in :mod:`quantlib.report.record`).

The pipeline's names load on first use (:mod:`quantlib._lazy`): they import papermill, nbconvert
and plotly, seconds that every report notebook would pay for ``record_metrics`` alone
(``import quantlib.report.record`` takes ~0.04 s; with the pipeline's names, seconds).
"""

from quantlib._lazy import lazy_exports
from quantlib.report.record import DATA_MIME, METRICS_MIME, record_data, record_metrics

_LAZY = {
    "run_report": "pipeline", "ReportRun": "pipeline",
    "load_config": "config", "ReportConfig": "config", "NotebookJob": "config",
    "prune_runs": "store", "update_index": "index", "read_recorded": "index",
    "render_html": "html",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "record_metrics",
    "record_data",
    "METRICS_MIME",
    "DATA_MIME",
    "run_report",
    "ReportRun",
    "load_config",
    "ReportConfig",
    "NotebookJob",
    "prune_runs",
    "update_index",
    "read_recorded",
    "render_html",
]
