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

from quantlib.report.format import format_metric
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


_CSS = """
body {font-family: system-ui, sans-serif; margin: 16px 24px; color: #0f172a; max-width: 1880px;}
table {border-collapse: collapse; width: 100%; font-size: 0.9em; table-layout: fixed;}
th, td {border-bottom: 1px solid #e2e8f0; padding: 6px 8px; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; word-break: break-word;}
th {background: #f1f5f9; cursor: pointer; user-select: none; white-space: nowrap;}
th[aria-sort=ascending]::after {content: " \\25B2";} th[aria-sort=descending]::after {content: " \\25BC";}
col.c-run {width: 11%;} col.c-nb {width: 9%;} col.c-params {width: 14%;} col.c-src {width: 15%;}
col.c-status {width: 7%;} col.c-dur {width: 5%;} col.c-excess {width: 7%;} col.c-metrics {width: 24%;}
col.c-links {width: 8%;}
tr.failed {background: #fef2f2;}
.badge {display: inline-block; padding: 1px 6px; border-radius: 4px; font-weight: bold; font-size: 0.8em;}
.synthetic {background: #fde68a; color: #78350f;}
.status-ok {background: #bbf7d0; color: #14532d;}
.status-failed {background: #fecaca; color: #7f1d1d;}
.status-running, .status-pending {background: #e0e7ff; color: #312e81;}
code {font-size: 0.85em; white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-all;}
.metrics {display: flex; flex-wrap: wrap; gap: 2px 12px;}
.metrics span {white-space: nowrap;} .metrics b {font-weight: 600; color: #475569;}
.pos {color: #166534; font-weight: bold;} .neg {color: #991b1b; font-weight: bold;}
.error {color: #991b1b;}
.controls {display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; margin: 8px 0;}
.controls input {min-width: 240px; padding: 4px 6px;}
"""

# Sorting (click a header; numbers sort as numbers via data-sort) and filtering (free text and
# status), inline and offline.
_JS = """
(function () {
  var table = document.getElementById('runs'); if (!table) return;
  var STATUS = 4, body = table.tBodies[0], text = document.getElementById('filter-text'),
      status = document.getElementById('filter-status'), shown = document.getElementById('shown');
  function key(row, i) {
    var cell = row.cells[i], v = cell.getAttribute('data-sort');
    if (v === null) v = cell.textContent.trim().toLowerCase();
    var n = parseFloat(v); return isNaN(n) || v === '' ? v : n;
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
    th.addEventListener('click', function () {
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) { o.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, i), y = key(b, i);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  function apply() {
    var q = text.value.toLowerCase(), s = status.value, n = 0;
    Array.prototype.forEach.call(body.rows, function (r) {
      var ok = (!q || r.textContent.toLowerCase().indexOf(q) >= 0) &&
               (!s || r.cells[STATUS].getAttribute('data-sort') === s);
      r.style.display = ok ? '' : 'none'; if (ok) n++;
    });
    shown.textContent = n + ' shown';
  }
  text.addEventListener('input', apply); status.addEventListener('change', apply); apply();
})();
"""


def _excess_cell(metrics: dict[str, Any]) -> tuple[str, str]:
    """(html, sort key) of the excess return over buy and hold, when the notebook recorded it."""
    value = metrics.get("excess_return")
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        return "<small>n/a (not recorded)</small>", ""
    css = "pos" if value > 0 else "neg" if value < 0 else ""
    hold = metrics.get("benchmark_return")
    detail = "" if not isinstance(hold, int | float) else (
        f"<br><small>hold {html.escape(format_metric('benchmark_return', hold))}</small>")
    return (f"<span class='{css}'>{html.escape(format_metric('excess_return', value))}</span>"
            f"{detail}", repr(float(value)))


def _row(run_dir: Path, manifest: dict[str, Any], entry: dict[str, Any], active: bool) -> str:
    esc = html.escape
    status = entry.get("status", "pending")
    if status in ("running", "pending") and not active:
        status = "interrupted"  # the process that owned the run is gone
    source = f"<code>{esc(str(entry.get('source') or '(notebook default)'))}</code>"
    if entry.get("synthetic"):
        source += " <span class='badge synthetic'>SYNTHETIC</span>"
    recorded = entry.get("metrics") or {}
    metrics = "".join(
        f"<span><b>{esc(str(k))}</b>&nbsp;{esc(format_metric(str(k), v))}</span>"
        for k, v in recorded.items() if k not in ("excess_return", "benchmark_return")
    )
    excess, excess_key = _excess_cell(recorded)
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
        f"<td>{esc(run_dir.name)}<br><small>{esc(str(manifest.get('git_commit', '')))}</small></td>",
        f"<td>{esc(entry['notebook'])}</td>",
        f"<td><b>{esc(entry['param_set'])}</b><br><code>"
        f"{esc(json.dumps(entry.get('parameters', {}), default=str))}</code></td>",
        f"<td>{source}</td>",
        f"<td data-sort='{esc(status)}'>{status_html}</td>",
        "<td data-sort=''></td>" if duration is None else
        f"<td data-sort='{duration:.3f}'>{duration:.1f} s</td>",
        f"<td data-sort='{excess_key}'>{excess}</td>",
        f"<td><div class='metrics'>{metrics}</div></td>",
        f"<td>{' · '.join(links)}</td>",
    ]
    css_class = "failed" if status in ("failed", "interrupted") else ""
    return f"<tr class='{css_class}'>" + "".join(cells) + "</tr>"


def render_index(out: Path) -> str:
    """The index page's HTML for every run under ``out`` (newest first)."""
    rows = []
    runs = list_runs(out)
    for run_dir, manifest in runs:
        active = is_run_active(run_dir)
        for entry in manifest.get("entries", []):
            rows.append(_row(run_dir, manifest, entry, active))
    columns = ("run", "notebook", "parameters", "data source", "status", "duration",
               "vs buy & hold", "headline metrics", "links")
    classes = ("run", "nb", "params", "src", "status", "dur", "excess", "metrics", "links")
    header = "".join(f"<th scope='col'>{h}</th>" for h in columns)
    colgroup = "".join(f"<col class='c-{c}'>" for c in classes)
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    from quantlib.report.live_drift import live_index_html  # pandas: only when rendering

    live = live_index_html(out)  # `quantlib live report` pages, under "Live"
    empty = "" if rows else "<p>No report runs yet: run <code>quantlib report</code>.</p>"
    controls = (
        "<div class='controls'><label>filter <input id='filter-text' type='search' "
        "placeholder='notebook, source, parameter...'></label><label>status <select "
        "id='filter-status'><option value=''>all</option><option>ok</option><option>failed"
        "</option><option>interrupted</option><option>running</option><option>pending</option>"
        "</select></label><span id='shown'></span><small>click a column header to sort</small>"
        "</div>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>quantlib reports</title>"
        f"<style>{_CSS}</style></head><body><h1>quantlib reports</h1>"
        f"<p>{len(runs)} run(s), {len(rows)} notebook report(s); generated {generated}. "
        "<i>vs buy &amp; hold</i>: the strategy's return minus holding the traded market over "
        f"the same bars.</p>{empty}{controls}"
        f"<table id='runs'><colgroup>{colgroup}</colgroup><thead><tr>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{live}<script>{_JS}</script>"
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
