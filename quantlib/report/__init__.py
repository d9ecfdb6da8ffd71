"""quantlib.report: papermill report pipeline and the notebook recording helpers.

Public names: :func:`run_report` (``quantlib report``), :func:`load_config`,
:func:`prune_runs`, :func:`update_index`, :func:`read_recorded`, :func:`render_html`, and for
notebooks :func:`record_metrics` / :func:`record_data` (in :mod:`quantlib.report.record`).
"""

from quantlib._lazy import lazy_exports
from quantlib.report.record import DATA_MIME, METRICS_MIME, record_data, record_metrics

# The pipeline pulls in papermill/nbconvert/plotly; notebooks importing record_* should not.
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
