"""Read recorded figures back from executed notebooks and build ``reports/index.html``.

The index is rebuilt from every run's ``run.json`` (never edited in place), under a lock, and
written atomically, so concurrent runs and prunes always leave a complete, consistent page.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantlib.report.record import DATA_MIME, METRICS_MIME
from quantlib.report.store import INDEX_LOCK, atomic_write_text, file_lock, is_run_active, list_runs

if TYPE_CHECKING:  # only a type here: importing nbformat costs ~1.7 s (jsonschema's grammars)
    import nbformat


def read_recorded(nb: nbformat.NotebookNode) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(metrics, data)`` recorded by record_metrics / record_data in an executed notebook.

    Several record_metrics calls merge (a later key wins); the last record_data wins.

    Examples
    --------
    >>> import nbformat
    >>> read_recorded(nbformat.v4.new_notebook())
    ({}, {})
    """
    metrics: dict[str, Any] = {}
    data: dict[str, Any] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            bundle = output.get("data") or {}
            if METRICS_MIME in bundle:
                metrics.update(_as_dict(bundle[METRICS_MIME]))
            if DATA_MIME in bundle:
                data = _as_dict(bundle[DATA_MIME])
    return metrics, data


def _as_dict(payload: Any) -> dict[str, Any]:
    if isinstance(payload, str):  # some nbformat writers store JSON mime data as text
        payload = json.loads(payload)
    return dict(payload)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_CSS = """
body {font-family: system-ui, sans-serif; margin: 24px; color: #0f172a;}
table {border-collapse: collapse; width: 100%; font-size: 0.9em;}
th, td {border-bottom: 1px solid #e2e8f0; padding: 6px 8px; text-align: left; vertical-align: top;}
th {background: #f1f5f9;}
tr.failed {background: #fef2f2;}
.badge {display: inline-block; padding: 1px 6px; border-radius: 4px; font-weight: bold; font-size: 0.8em;}
.synthetic {background: #fde68a; color: #78350f;}
.status-ok {background: #bbf7d0; color: #14532d;}
.status-failed {background: #fecaca; color: #7f1d1d;}
.status-running, .status-pending {background: #e0e7ff; color: #312e81;}
code {font-size: 0.85em; white-space: pre-wrap;}
.metrics span {display: inline-block; margin-right: 10px;}
.error {color: #991b1b;}
"""


def _row(run_dir: Path, manifest: dict[str, Any], entry: dict[str, Any], active: bool) -> str:
    esc = html.escape
    status = entry.get("status", "pending")
    if status in ("running", "pending") and not active:
        status = "interrupted"  # the process that owned the run is gone
    source = esc(str(entry.get("source") or "(notebook default)"))
    if entry.get("synthetic"):
        source += " <span class='badge synthetic'>SYNTHETIC</span>"
    metrics = "".join(
        f"<span><b>{esc(str(k))}</b>&nbsp;{esc(_fmt(v))}</span>"
        for k, v in (entry.get("metrics") or {}).items()
    )
    links = []
    for key, label in (("html", "report"), ("ipynb", "notebook")):
        if entry.get(key):
            links.append(f"<a href='{esc(run_dir.name)}/{esc(entry[key])}'>{label}</a>")
    links.append(f"<a href='{esc(run_dir.name)}/run.log'>log</a>")
    error = entry.get("error")
    status_html = f"<span class='badge status-{esc(status)}'>{esc(status.upper())}</span>"
    if error:
        status_html += f"<div class='error'><code>{esc(str(error))}</code></div>"
    duration = entry.get("duration_s")
    cells = [
        f"{esc(run_dir.name)}<br><small>{esc(str(manifest.get('git_commit', '')))}</small>",
        esc(entry["notebook"]),
        f"<b>{esc(entry['param_set'])}</b><br><code>{esc(json.dumps(entry.get('parameters', {}), default=str))}</code>",
        source,
        status_html,
        "" if duration is None else f"{duration:.1f} s",
        f"<div class='metrics'>{metrics}</div>",
        " · ".join(links),
    ]
    css_class = "failed" if status in ("failed", "interrupted") else ""
    return f"<tr class='{css_class}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def render_index(out: Path) -> str:
    """The index page's HTML for every run under ``out`` (newest first)."""
    rows = []
    runs = list_runs(out)
    for run_dir, manifest in runs:
        active = is_run_active(run_dir)
        for entry in manifest.get("entries", []):
            rows.append(_row(run_dir, manifest, entry, active))
    header = "".join(
        f"<th>{h}</th>"
        for h in ("run", "notebook", "parameters", "data source", "status", "duration",
                  "headline metrics", "links")
    )
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    empty = "" if rows else "<p>No report runs yet: run <code>quantlib report</code>.</p>"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>quantlib reports</title>"
        f"<style>{_CSS}</style></head><body><h1>quantlib reports</h1>"
        f"<p>{len(runs)} run(s), {len(rows)} notebook report(s); generated {generated}.</p>{empty}"
        f"<table id='runs'><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</body></html>"
    )


def update_index(out: Path) -> Path:
    """Rebuild ``out/index.html`` from the manifests, under a lock, atomically."""
    out = Path(out)
    with file_lock(out / INDEX_LOCK):
        target = out / "index.html"
        atomic_write_text(target, render_index(out))
    return target


__all__ = ["read_recorded", "render_index", "update_index"]
