"""quantlib.report: papermill report pipeline and the notebook recording helpers.

Public names: :func:`run_report` (``quantlib report``), :func:`load_config`,
:func:`prune_runs`, :func:`update_index`, :func:`read_recorded`, :func:`render_html`, and for
notebooks :func:`record_metrics` / :func:`record_data` (in :mod:`quantlib.report.record`).
"""

from quantlib.report.record import DATA_MIME, METRICS_MIME, record_data, record_metrics

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


def __getattr__(name):
    # The pipeline pulls in papermill/nbconvert/plotly; notebooks importing record_* should not.
    if name in ("run_report", "ReportRun"):
        from quantlib.report import pipeline

        return getattr(pipeline, name)
    if name in ("load_config", "ReportConfig", "NotebookJob"):
        from quantlib.report import config

        return getattr(config, name)
    if name == "prune_runs":
        from quantlib.report.store import prune_runs

        return prune_runs
    if name in ("update_index", "read_recorded"):
        from quantlib.report import index

        return getattr(index, name)
    if name == "render_html":
        from quantlib.report.html import render_html

        return render_html
    raise AttributeError(f"module 'quantlib.report' has no attribute {name!r}")
