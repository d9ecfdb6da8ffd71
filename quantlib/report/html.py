"""Executed notebook -> offline, interactive HTML report.

Plotly in a Jupyter kernel displays figures as ``application/vnd.plotly.v1+json`` only (the
``plotly_mimetype`` renderer), which nbconvert's HTML exporter cannot draw. Before exporting, each
such output is replaced by a ``text/html`` div built with :func:`plotly.io.to_html` (no plotly.js
inside); the page loads plotly.js once, from the shared offline copy in ``reports/assets/`` (or
inlined with ``self_contained``). The lab template's CDN scripts (require.js, MathJax, mermaid)
are dropped, so a report opens with no network. Cells whose output is an error are tagged and
highlighted; code can be hidden (error cells keep their code visible).
"""

from __future__ import annotations

import copy
import html
import json
from pathlib import Path
from typing import Any

import nbformat
import plotly
import plotly.io as pio
from jinja2 import DictLoader
from nbconvert import HTMLExporter

from quantlib.report.record import provenance_table_html
from quantlib.report.store import atomic_write_text

PLOTLY_MIME = "application/vnd.plotly.v1+json"
ERROR_TAG = "quantlib-error"

_TEMPLATE = r"""
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{{ resources.quantlib.plotly_script }}{%- endblock -%}
{%- block html_head_js_mathjax -%}{%- endblock -%}
{%- block html_head_js_mermaidjs -%}{%- endblock -%}
{%- block extra_css -%}
<style type="text/css">
.quantlib-header {font-family: system-ui, sans-serif; padding: 12px 16px; margin: 0 0 16px;
  border-bottom: 2px solid #334155; background: #f8fafc;}
.quantlib-header h1 {font-size: 1.4em; margin: 0 0 6px;}
.quantlib-header table {border-collapse: collapse; font-size: 0.9em;}
.quantlib-header th {text-align: left; padding: 2px 12px 2px 0; color: #475569;}
.quantlib-header td {padding: 2px 0;} .quantlib-header code {white-space: pre-wrap;
  overflow-wrap: anywhere;}
.quantlib-header table table th {font-weight: normal; padding: 0 10px 0 0;}
.quantlib-metrics th {text-align: left; padding-right: 12px;}
.quantlib-metrics td {text-align: right; font-variant-numeric: tabular-nums;}
.quantlib-badge {display: inline-block; padding: 1px 8px; border-radius: 4px; font-weight: bold;
  font-size: 0.85em; margin-left: 6px;}
.quantlib-badge.synthetic {background: #fde68a; color: #78350f;}
.quantlib-badge.ok {background: #bbf7d0; color: #14532d;}
.quantlib-badge.failed {background: #fecaca; color: #7f1d1d;}
.quantlib-failure {background: #fee2e2; border: 2px solid #dc2626; padding: 8px; margin-top: 8px;}
.jp-Cell.celltag_quantlib-error {border: 3px solid #dc2626; background: #fef2f2;
  border-radius: 4px; padding: 4px;}
</style>
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.quantlib.header_html }}
{%- endblock body_header -%}
"""


def plotly_js_path(out: Path) -> Path:
    """Ensure the shared offline plotly.js copy exists in ``out/assets`` and return its path."""
    target = Path(out) / "assets" / f"plotly-{plotly.__version__}.min.js"
    if not target.exists():
        source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        atomic_write_text(target, source.read_text(encoding="utf-8"))
    return target


def _plotly_div(figure: dict[str, Any]) -> str:
    return pio.to_html(
        dict(figure),
        include_plotlyjs=False,
        full_html=False,
        validate=False,
        default_height="480px",
        config={"responsive": True},
    )


def prepare_notebook(nb: nbformat.NotebookNode, *, hide_code: bool = False) -> nbformat.NotebookNode:
    """A copy of ``nb`` ready for HTML export (plotly divs, error tags, hidden code).

    Examples
    --------
    >>> nb = nbformat.v4.new_notebook()
    >>> len(prepare_notebook(nb).cells)
    0
    """
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        has_error = False
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                has_error = True
            data = output.get("data")
            if data and PLOTLY_MIME in data:
                # Replace every other representation: a notebook-renderer text/html would
                # reach for require.js or a CDN.
                output["data"] = {
                    "text/html": _plotly_div(data[PLOTLY_MIME]),
                    "text/plain": "<plotly figure>",
                }
        tags = list(cell.metadata.get("tags", []))
        if has_error and ERROR_TAG not in tags:
            cell.metadata["tags"] = [*tags, ERROR_TAG]
        elif hide_code:
            cell.metadata["transient"] = {"remove_source": True}
    return nb


def _header_html(header: dict[str, Any]) -> str:
    esc = html.escape
    status = header.get("status", "ok")
    title = f"{esc(header['notebook'])} / {esc(header['param_set'])}"
    badges = f"<span class='quantlib-badge {esc(status)}'>{esc(status.upper())}</span>"
    if header.get("synthetic"):
        badges += "<span class='quantlib-badge synthetic'>SYNTHETIC DATA</span>"
    provenance = header.get("data") or {}
    if provenance.get("partial_history"):  # shorter history than asked, accepted explicitly
        badges += ("<span class='quantlib-badge synthetic'>PARTIAL HISTORY: "
                   f"{esc(str(provenance['partial_history']))}</span>")
    rows = [
        ("run id", esc(header["run_id"])),
        ("started", esc(str(header.get("started_at", "")))),
        ("duration", f"{header.get('duration_s', 0):.1f} s"),
        ("parameters", f"<code>{esc(json.dumps(header.get('parameters', {}), default=str))}</code>"),
        ("data source", f"<code>{esc(str(header.get('source', '')))}</code>"),
        ("data provenance", provenance_table_html(provenance) if provenance else "n/a (not "
         "recorded: the notebook did not call record_data)"),
        ("quantlib", esc(str(header.get("quantlib_version", "")))),
        ("git commit", esc(str(header.get("git_commit", "")))),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    failure = ""
    if header.get("error"):
        failure = (
            "<div class='quantlib-failure'><b>This run failed:</b> "
            f"<code>{esc(header['error'])}</code> "
            "<a href='#papermill-error-cell'>jump to the failing cell</a></div>"
        )
    return (
        f"<header class='quantlib-header'><h1>{title}{badges}</h1>"
        f"<table>{body}</table>{failure}</header>"
    )


def render_html(
    nb: nbformat.NotebookNode,
    header: dict[str, Any],
    *,
    plotly_script: str,
    hide_code: bool = False,
) -> str:
    """Export an executed notebook to a standalone HTML page.

    Parameters
    ----------
    nb : NotebookNode
        The executed notebook (papermill output).
    header : dict
        Run facts shown on top: run_id, notebook, param_set, parameters, source, data,
        synthetic, status, error, duration_s, started_at, quantlib_version, git_commit.
    plotly_script : str
        The ``<script>`` tag that loads plotly.js (relative src or inlined).
    hide_code : bool
        Hide code cells' source (cells with an error keep theirs).
    """
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({"quantlib_report.html.j2": _TEMPLATE})],
        template_file="quantlib_report.html.j2",
        exclude_output_prompt=hide_code,  # "Out[7]:" means nothing to a reader without code
    )
    resources = {
        "quantlib": {"plotly_script": plotly_script, "header_html": _header_html(header)},
        "metadata": {"name": f"{header['notebook']} / {header['param_set']}"},
    }
    body, _ = exporter.from_notebook_node(prepare_notebook(nb, hide_code=hide_code), resources)
    return body


def plotly_script_tag(report_path: Path, out: Path, *, self_contained: bool = False) -> str:
    """The script tag loading plotly.js for a report written at ``report_path``."""
    asset = plotly_js_path(out)
    if self_contained:
        return f"<script type='text/javascript'>{asset.read_text(encoding='utf-8')}</script>"
    relative = Path("..") / asset.relative_to(Path(out))
    if report_path.parent.resolve() == Path(out).resolve():
        relative = asset.relative_to(Path(out))
    return f"<script type='text/javascript' src='{relative.as_posix()}'></script>"


__all__ = ["render_html", "prepare_notebook", "plotly_js_path", "plotly_script_tag", "PLOTLY_MIME"]
