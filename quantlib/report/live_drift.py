"""Live drift report: does a live (or paper) run still trade like the backtest that approved it?

``quantlib live report --state STATE.db [--out reports]`` reads the run's state file read-only
(SQLite ``mode=ro``: safe while the runner writes) and backtests the run's own spec (kept in the
state) over the run's own candles (also kept there, one row per stepped bar). The page shows:

* live equity against the backtest's, bar by bar, and their relative gap;
* the fills side by side (n-th live fill next to the n-th backtest fill);
* per live fill, the realised slippage and fee against what the spec models: slippage is
  measured from the open of the bar after the order's decision bar (where the backtest fills);
* time in market of both;
* (re)starts and risk halts on the equity time line;
* a verdict line: DIVERGED when the equity gap exceeds the stated tolerance anywhere, or any
  fill differs; MATCHES otherwise.

The page is rendered like the notebook reports (:func:`quantlib.report.html.render_html`, same
header, offline plotly.js from ``reports/assets``) into ``OUT/live/<state name>.html``, with a
``.json`` summary beside it that ``reports/index.html`` lists under "Live".
"""

from __future__ import annotations

import html
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantlib.errors import ReportError

DEFAULT_TOLERANCE = 1e-3  # relative equity gap that counts as divergence (0.1 %)
_FILL_RTOL = 1e-9  # a fill "matches" when time and side agree and price/size within this


@dataclass
class LiveRun:
    """What a state file holds about a run (read-only)."""

    path: Path
    spec: Any
    meta: dict[str, str]
    bars: pd.DataFrame  # the runner's equity curve: close target position cash equity note
    candles: pd.DataFrame  # canonical OHLCV of the stepped bars
    fills: pd.DataFrame  # time side price size fee client_id intent bar_time
    starts: list[dict] = field(default_factory=list)


@dataclass
class Drift:
    """The comparison of a run with its backtest."""

    run: LiveRun
    live_equity: pd.Series
    backtest_equity: pd.Series
    gap: pd.Series  # (live - backtest) / backtest on the common bars
    fills: pd.DataFrame  # side by side
    costs: pd.DataFrame  # per live fill: realised vs modelled slippage (bps) and fee rate
    time_in_market: dict[str, float]
    tolerance: float
    max_gap: float
    fills_matching: int
    diverged: bool
    verdict: str


# -- reading ----------------------------------------------------------------------------------
def read_live_run(state: str | Path) -> LiveRun:
    """Read ``state`` read-only; ReportError when it is missing or holds no reportable run."""
    from quantlib.live.state import is_state_file
    from quantlib.strategy.spec import validate_spec

    path = Path(state)
    if not path.exists():
        raise ReportError(f"--state {path}: no such file")
    if not is_state_file(path):
        raise ReportError(f"--state {path}: not a quantlib state file")
    try:
        db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=5.0)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            bars = db.execute("SELECT time, close, target, position, cash, equity, note FROM bars "
                              "ORDER BY time").fetchall()
            candles = db.execute("SELECT symbol, time, open, high, low, close, volume FROM "
                                 "candles ORDER BY symbol, time").fetchall()
            fills = db.execute(
                "SELECT f.time, f.side, f.price, f.size, f.fee, f.client_id, o.intent, "
                "o.bar_time FROM fills f LEFT JOIN orders o ON o.client_id = f.client_id "
                "ORDER BY f.id").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise ReportError(f"--state {path}: cannot read it ({exc}); a state file written "
                          "before quantlib kept candles has no data to backtest") from None
    if "spec" not in meta:
        raise ReportError(f"--state {path}: the state holds no spec (written by an older "
                          "quantlib); the drift report needs the run's own spec")
    spec = validate_spec(json.loads(meta["spec"]), source=f"{path}:meta.spec")
    if len(spec.symbols) > 1:
        raise ReportError(f"--state {path}: spec {spec.name!r} trades a portfolio "
                          f"{spec.symbols}; the drift report covers one-symbol specs")
    if not bars or not candles:
        raise ReportError(f"--state {path}: no bar processed yet; nothing to compare")
    return LiveRun(path, spec, meta, _bars_frame(bars), _candles_frame(candles, spec),
                   _fills_frame(fills), json.loads(meta.get("starts", "[]")))


def _utc(ms: Any) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ms, dtype="int64"), unit="ms", utc=True))


def _bars_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["time", "close", "target", "position", "cash", "equity",
                                        "note"])
    frame.index = _utc(frame.pop("time"))
    return frame


def _candles_frame(rows: list[tuple], spec: Any) -> pd.DataFrame:
    frame = pd.DataFrame([r[1:] for r in rows if r[0] == spec.symbol],
                         columns=["time", "open", "high", "low", "close", "volume"])
    frame.index = _utc(frame.pop("time")).rename("timestamp")
    frame = frame.astype("float64")
    frame.attrs.update(source="live", source_string="", exchange=spec.exchange,
                       symbol=spec.symbol, timeframe=spec.timeframe)
    return frame


def _fills_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["time", "side", "price", "size", "fee", "client_id",
                                       "intent", "bar_time"])


# -- comparing --------------------------------------------------------------------------------
def compute_drift(run: LiveRun, tolerance: float = DEFAULT_TOLERANCE) -> Drift:
    """Backtest ``run.spec`` on ``run.candles`` and compare equity, fills and costs."""
    from quantlib.backtest.engine import run_backtest

    if not tolerance > 0:
        raise ReportError(f"--tolerance {tolerance}: expected a positive fraction (0.001 = 0.1 %)")
    spec = run.spec
    result = run_backtest(spec.kind, run.candles, dict(spec.params), spec.backtest_config())
    backtest = result.equity.iloc[:, 0]
    live = run.bars["equity"]
    common = live.index.intersection(backtest.index)
    gap = (live.loc[common] - backtest.loc[common]) / backtest.loc[common]
    side_by_side = _side_by_side(run.fills, result.fills)
    matching = int(side_by_side["match"].sum())
    max_gap = float(gap.abs().max()) if len(gap) else 0.0
    in_market = {"live": float((run.bars["position"] != 0).mean()),
                 "backtest": _backtest_time_in_market(result.fills, backtest.index)}
    diverged = max_gap > tolerance or matching != len(side_by_side)
    verdict = _verdict(max_gap, tolerance, matching, len(side_by_side), len(run.fills),
                       len(result.fills), gap)
    return Drift(run, live, backtest, gap, side_by_side, _costs(run), in_market, tolerance,
                 max_gap, matching, diverged, verdict)


def _side_by_side(live: pd.DataFrame, backtest: pd.DataFrame) -> pd.DataFrame:
    """The n-th live fill next to the n-th backtest fill."""
    bt_times = pd.DatetimeIndex(backtest["time"]).as_unit("ms").asi8 if len(backtest) else []
    n = max(len(live), len(backtest))
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"n": i + 1}
        if i < len(live):
            fill = live.iloc[i]
            row.update(live_time=int(fill["time"]), live_side=int(fill["side"]),
                       live_price=float(fill["price"]), live_size=float(fill["size"]),
                       live_fee=float(fill["fee"]))
        if i < len(backtest):
            fill = backtest.iloc[i]
            row.update(bt_time=int(bt_times[i]), bt_side=int(fill["side"]),
                       bt_price=float(fill["price"]), bt_size=float(fill["size"]),
                       bt_fee=float(fill["fee"]))
        rows.append(row)
    table = pd.DataFrame(rows, columns=["n", "live_time", "live_side", "live_price", "live_size",
                                        "live_fee", "bt_time", "bt_side", "bt_price", "bt_size",
                                        "bt_fee"])
    table["price_gap_bps"] = (table["live_price"] / table["bt_price"] - 1.0) * 1e4
    table["match"] = ((table["live_time"] == table["bt_time"])
                      & (table["live_side"] == table["bt_side"])
                      & np.isclose(table["live_price"], table["bt_price"], rtol=_FILL_RTOL, atol=0)
                      & np.isclose(table["live_size"], table["bt_size"], rtol=_FILL_RTOL, atol=0))
    return table


def _costs(run: LiveRun) -> pd.DataFrame:
    """Per live fill: realised slippage against the open of the bar after the decision bar
    (where the backtest fills, ``execution="next_open"``) and the fee rate paid, beside what
    the spec models."""
    opens = run.candles["open"]
    bar_ms = int(run.candles.index.to_series().diff().min().total_seconds() * 1000) \
        if len(opens) > 1 else 0
    by_time = dict(zip(opens.index.as_unit("ms").asi8, opens.to_numpy(), strict=True))
    rows = []
    for fill in run.fills.itertuples(index=False):
        decided = fill.bar_time if fill.bar_time == fill.bar_time else None  # NaN: unknown
        reference = by_time.get(int(decided) + bar_ms) if decided is not None else None
        notional = fill.price * fill.size
        rows.append({
            "time": int(fill.time), "side": int(fill.side), "price": float(fill.price),
            "reference_open": reference,
            "slippage_bps": (fill.side * (fill.price / reference - 1.0) * 1e4
                             if reference else float("nan")),
            "modelled_slippage_bps": run.spec.execution.slippage_bps,
            "fee_rate": fill.fee / notional if notional else float("nan"),
            "modelled_fee_rate": run.spec.execution.fees,
        })
    return pd.DataFrame(rows, columns=["time", "side", "price", "reference_open", "slippage_bps",
                                       "modelled_slippage_bps", "fee_rate", "modelled_fee_rate"])


def _backtest_time_in_market(fills: pd.DataFrame, index: pd.DatetimeIndex) -> float:
    """Fraction of bars the backtest holds a position after the bar's fills."""
    if not len(fills):
        return 0.0
    change = (fills["side"] * fills["size"]).groupby(pd.DatetimeIndex(fills["time"])).sum()
    position = change.reindex(index, fill_value=0.0).cumsum()
    return float((position.abs() > 1e-12).mean())


def _verdict(max_gap: float, tolerance: float, matching: int, n_rows: int, n_live: int,
             n_backtest: int, gap: pd.Series) -> str:
    fills = (f"{matching} of {n_rows} fills identical (live {n_live}, backtest {n_backtest})")
    if max_gap <= tolerance and matching == n_rows:
        return (f"MATCHES the backtest: largest equity gap {max_gap:.6%} (tolerance "
                f"{tolerance:.4%}); {fills}")
    where = gap.abs().idxmax() if len(gap) else None
    at = f" at {where:%Y-%m-%d %H:%M} UTC" if where is not None else ""
    return (f"DIVERGED from the backtest: largest equity gap {max_gap:.4%}{at} against a "
            f"tolerance of {tolerance:.4%}; {fills}")


# -- the page ---------------------------------------------------------------------------------
def write_drift_report(state: str | Path, out: str | Path = "reports", *,
                       tolerance: float = DEFAULT_TOLERANCE, self_contained: bool = False
                       ) -> Path:
    """Write ``OUT/live/<state name>.html`` (+ ``.json`` summary) and refresh the index."""
    from quantlib.report.html import plotly_script_tag, render_html
    from quantlib.report.index import update_index
    from quantlib.report.store import atomic_write_text

    started = time.time()
    run = read_live_run(state)
    drift = compute_drift(run, tolerance)
    out = Path(out)
    target = out / "live" / f"{run.path.name}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    header = _header(drift, started)
    page = render_html(_notebook(drift), header, hide_code=True,
                       plotly_script=plotly_script_tag(target, out, self_contained=self_contained))
    atomic_write_text(target, page)
    atomic_write_text(target.with_suffix(".json"), json.dumps(summary(drift), default=str))
    update_index(out)
    return target


def summary(drift: Drift) -> dict[str, Any]:
    """The figures the index lists (and tests read)."""
    run = drift.run
    return {"state": str(run.path), "strategy": run.spec.name, "kind": run.spec.kind,
            "verdict": drift.verdict, "diverged": drift.diverged, "max_gap": drift.max_gap,
            "tolerance": drift.tolerance, "fills_live": len(run.fills),
            "fills_matching": drift.fills_matching, "bars": len(run.bars),
            "first_bar": run.bars.index[0].isoformat(), "last_bar": run.bars.index[-1].isoformat(),
            "generated": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")}


def _header(drift: Drift, started: float) -> dict[str, Any]:
    from quantlib import __version__ as version

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


def _notebook(drift: Drift):
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
            f"{esc(str(info.get('verdict')))}</small></td><td>{esc(str(info.get('last_bar')))}"
            f"</td><td><a href='live/{esc(path.with_suffix('.html').name)}'>report</a></td></tr>")
    if not rows:
        return ""
    return ("<h2 id='live'>Live</h2><p>Live and paper runs against a backtest of their own "
            "spec on their own candles (<code>quantlib live report</code>).</p><table "
            "id='live-runs'><thead><tr><th>strategy</th><th>state file</th><th>verdict</th>"
            f"<th>last bar</th><th>links</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


__all__ = ["DEFAULT_TOLERANCE", "Drift", "LiveRun", "compute_drift", "live_index_html",
           "read_live_run", "summary", "write_drift_report"]
