"""The live drift report's page: the notebook of outputs it is rendered from, its header, and
the "Live" section of ``reports/index.html`` (see :mod:`quantlib.report.live_drift`)."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantlib import __version__ as version
from quantlib.report.format import format_metric, format_table

if TYPE_CHECKING:
    from quantlib.report.live_drift import Drift

# The columns the page shows (all of METRIC_NAMES stay in Drift.metrics).
METRICS_SHOWN = ("total_return", "sharpe", "max_drawdown", "exposure", "benchmark_return",
                 "excess_return", "benchmark_sharpe", "alpha", "beta", "information_ratio")


def page_header(drift: Drift, started: float) -> dict[str, Any]:
    run = drift.run
    return {
        "notebook": "live drift", "param_set": run.spec.name, "run_id": run.path.name,
        "status": "failed" if drift.diverged else "ok",
        "error": drift.verdict if drift.diverged else None,
        "started_at": pd.Timestamp(started, unit="s", tz="UTC").isoformat(timespec="seconds"),
        "duration_s": time.time() - started, "parameters": dict(run.spec.params),
        "source": f"state:{run.path}",
        "data": {"source": "the run's own candles (state file)", "symbol": run.spec.symbol,
                 "timeframe": run.spec.timeframe, "n_bars": len(run.candles),
                 "start": run.candles.index[0].isoformat(),
                 "end": run.candles.index[-1].isoformat()},
        "quantlib_version": version, "git_commit": "",
    }


def page_notebook(drift: Drift):
    """The report as a notebook with outputs (rendered like the notebook reports)."""
    import nbformat

    cells = [
        _markdown(f"## Verdict\n\n**{drift.verdict}**"),
        _html_cell(_verdict_html(drift)),
        _markdown("## Equity: live against the backtest of the same spec on the same bars\n"
                  "Dashed lines: (re)starts of the runner; red: the risk halt."),
        _figure_cell(_equity_figure(drift)),
        _markdown("## Fills side by side (n-th live fill, n-th backtest fill)"),
        _html_cell(_table_html(_fills_display(drift.fills), "quantlib-fills")),
        _markdown("## Costs per live fill: realised against modelled\nSlippage in basis points "
                  "from the open of the bar after the decision (where the backtest fills), "
                  "signed so that positive is worse; fee as a fraction of the fill's value."),
        _html_cell(_table_html(_costs_display(drift.costs), "quantlib-costs")),
        _markdown("## Live and backtest against buy & hold of the same market\nFrom the first "
                  "common bar; buy & hold holds the symbol from that bar's close."),
        _html_cell(_table_html(_metrics_display(drift.metrics), "quantlib-drift-metrics")),
        _markdown("## Time in market"),
        _html_cell(_table_html(pd.DataFrame(
            {"time in market": [f"{drift.time_in_market['live']:.2%}",
                                f"{drift.time_in_market['backtest']:.2%}"]},
            index=["live", "backtest"]), "quantlib-exposure")),
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "quantlib", "display_name": "quantlib",
                                 "language": "python"}
    return nb


def _markdown(text: str):
    import nbformat

    return nbformat.v4.new_markdown_cell(text)


def _output_cell(data: dict[str, Any]):
    import nbformat

    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data=data)]
    return cell


def _html_cell(markup: str):
    return _output_cell({"text/html": markup, "text/plain": "<table>"})


def _figure_cell(figure: Any):
    from quantlib.report.html import PLOTLY_MIME

    return _output_cell({PLOTLY_MIME: json.loads(figure.to_json()), "text/plain": "<figure>"})


def _verdict_html(drift: Drift) -> str:
    css = "failed" if drift.diverged else "ok"
    return (f"<div class='quantlib-verdict quantlib-badge {css}' id='quantlib-verdict' "
            f"style='font-size:1.1em;padding:6px 10px'>{html.escape(drift.verdict)}</div>")


def _equity_figure(drift: Drift):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                        vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=drift.backtest_equity.index, y=drift.backtest_equity.to_numpy(),
                             name="backtest", line={"color": "#64748b"}), row=1, col=1)
    fig.add_trace(go.Scatter(x=drift.live_equity.index, y=drift.live_equity.to_numpy(),
                             name="live", line={"color": "#2563eb", "dash": "dot"}), row=1, col=1)
    fig.add_trace(go.Scatter(x=drift.gap.index, y=drift.gap.to_numpy() * 100,
                             name="gap (%)", line={"color": "#dc2626"}), row=2, col=1)
    for start in drift.run.starts:
        resume = start.get("resume_after")
        at = (pd.Timestamp(resume, unit="ms", tz="UTC") if resume is not None
              else drift.live_equity.index[0])
        fig.add_vline(x=at, line_dash="dash", line_color="#334155")
    halted = drift.run.meta.get("halted_bar")
    if halted:
        fig.add_vline(x=pd.Timestamp(int(halted), unit="ms", tz="UTC"), line_color="#dc2626")
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="live - backtest (%)", row=2, col=1)
    fig.update_layout(height=560, margin={"t": 30, "l": 60, "r": 20, "b": 40},
                      legend={"orientation": "h"})
    return fig


def _fmt_time(ms: Any) -> str:
    if ms != ms or ms is None:  # NaN: no such fill
        return ""
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")


def _fills_display(table: pd.DataFrame) -> pd.DataFrame:
    shown = pd.DataFrame({
        "n": table["n"],
        "live time": table["live_time"].map(_fmt_time), "live side": table["live_side"],
        "live price": table["live_price"], "live size": table["live_size"],
        "backtest time": table["bt_time"].map(_fmt_time), "backtest side": table["bt_side"],
        "backtest price": table["bt_price"], "backtest size": table["bt_size"],
        "price gap (bps)": table["price_gap_bps"].round(3),
        "same": table["match"].map({True: "yes", False: "NO"}),
    })
    return shown.set_index("n")


def _costs_display(costs: pd.DataFrame) -> pd.DataFrame:
    shown = costs.copy()
    shown["time"] = shown["time"].map(_fmt_time)
    for column in ("slippage_bps", "modelled_slippage_bps"):
        shown[column] = shown[column].round(3)
    return shown.rename(columns=lambda c: c.replace("_", " "))


def _metrics_display(metrics: pd.DataFrame) -> pd.DataFrame:
    if not len(metrics):
        return pd.DataFrame({"metrics": ["n/a (no common bar)"]})
    shown = format_table(metrics[list(METRICS_SHOWN)])
    return shown.rename(columns=lambda c: c.replace("_", " "))


def _table_html(frame: pd.DataFrame, css: str) -> str:
    return frame.to_html(classes=f"quantlib-metrics {css}", border=0, na_rep="",
                         float_format=lambda v: f"{v:.8g}")


# -- the index's "Live" section -----------------------------------------------------------------
def live_index_html(out: str | Path) -> str:
    """The "Live" section of ``reports/index.html``: one row per drift report under
    ``OUT/live`` (verdict, largest gap, fills), or "" when there is none."""
    folder = Path(out) / "live"
    rows = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        status = "failed" if info.get("diverged") else "ok"
        label = "DIVERGED" if info.get("diverged") else "MATCHES"
        esc = html.escape
        rows.append(
            f"<tr class='{'failed' if status == 'failed' else ''}'>"
            f"<td>{esc(str(info.get('strategy')))}</td><td><code>{esc(str(info.get('state')))}"
            f"</code></td><td><span class='badge status-{status}'>{label}</span><br><small>"
            f"{esc(str(info.get('verdict')))}</small></td><td>{esc(_vs_hold(info))}</td>"
            f"<td>{esc(str(info.get('last_bar')))}"
            f"</td><td><a href='live/{esc(path.with_suffix('.html').name)}'>report</a></td></tr>")
    if not rows:
        return ""
    return ("<h2 id='live'>Live</h2><p>Live and paper runs against a backtest of their own "
            "spec on their own candles (<code>quantlib live report</code>).</p><table "
            "id='live-runs'><thead><tr><th>strategy</th><th>state file</th><th>verdict</th>"
            "<th>live vs buy &amp; hold</th>"
            f"<th>last bar</th><th>links</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _vs_hold(info: dict[str, Any]) -> str:
    """``+3.1 % (live 5.0 %, hold 1.9 %)`` from a drift summary; n/a for older summaries."""
    excess = info.get("live_excess_return")
    if excess is None:
        return format_metric("excess_return", None)
    sign = "+" if excess > 0 else ""
    return (f"{sign}{format_metric('excess_return', excess)} (live "
            f"{format_metric('total_return', info.get('live_total_return'))}, hold "
            f"{format_metric('benchmark_return', info.get('live_benchmark_return'))})")


__all__ = ["METRICS_SHOWN", "live_index_html", "page_header", "page_notebook"]
