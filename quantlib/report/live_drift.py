"""Live drift report: does a live (or paper) run still trade like the backtest that approved it?

``quantlib live report --state STATE.db [--out reports]`` reads the run's state file read-only
(SQLite ``mode=ro``: safe while the runner writes) and backtests the run's own spec (kept in the
state) over the run's own candles (also kept there, one row per stepped bar). The page shows:

* live equity against the backtest's, bar by bar, and their relative gap;
* the fills side by side (n-th live fill next to the n-th backtest fill);
* per live fill, the realised slippage and fee against what the spec models: slippage is
  measured from the open of the bar after the order's decision bar (where the backtest fills);
* time in market of both;
* the shared metrics of both (return, Sharpe, drawdown...) beside buy-and-hold of the traded
  symbol over the same bars (``benchmark_return``, ``excess_return``, alpha, beta);
* (re)starts and risk halts on the equity time line;
* a verdict line: DIVERGED when the equity gap exceeds the stated tolerance anywhere, or any
  fill differs; MATCHES otherwise.

The page is rendered like the notebook reports (:func:`quantlib.report.html.render_html`, same
header, offline plotly.js from ``reports/assets``) into ``OUT/live/<state name>.html``, with a
``.json`` summary beside it that ``reports/index.html`` lists under "Live".
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantlib.errors import ReportError
from quantlib.live.state import (
    BAR_COLUMNS,
    CANDLE_COLUMNS,
    BarRow,
    CandleRow,
    is_state_file,
    select,
)
from quantlib.report.index import update_index
from quantlib.report.live_drift_page import live_index_html, page_header, page_notebook
from quantlib.report.store import atomic_write_text

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
    # live and backtest rows of the shared metrics, against buy-and-hold over the same bars
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)


# -- reading ----------------------------------------------------------------------------------
def read_live_run(state: str | Path) -> LiveRun:
    """Read ``state`` read-only; ReportError when it is missing or holds no reportable run."""
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
            bars = [BarRow._make(row) for row in db.execute(
                select(BAR_COLUMNS, "bars") + " ORDER BY time")]
            candles = [CandleRow._make(row) for row in db.execute(
                select(CANDLE_COLUMNS, "candles") + " ORDER BY symbol, time")]
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


def _bars_frame(rows: list[BarRow]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(BarRow._fields))
    frame.index = _utc(frame.pop("time"))
    return frame


def _candles_frame(rows: list[CandleRow], spec: Any) -> pd.DataFrame:
    frame = pd.DataFrame([r for r in rows if r.symbol == spec.symbol],
                         columns=list(CandleRow._fields)).drop(columns="symbol")
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
    if spec.market != "spot":  # the state keeps no mark or funding: a spot backtest would lie
        raise ReportError(f"{spec.name}: the drift report covers spot runs; this run trades "
                          f"market {spec.market!r} (perp drift needs its mark and funding)")
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
                 max_gap, matching, diverged, verdict,
                 drift_metrics(live.loc[common], backtest.loc[common], run.candles["close"],
                               spec.timeframe))


def drift_metrics(live: pd.Series, backtest: pd.Series, close: pd.Series,
                  timeframe: str | None = None) -> pd.DataFrame:
    """The shared metrics of the live and the backtest equity (rows ``live``, ``backtest``) from
    the first common bar, against buy-and-hold of ``close`` over the same bars (held from that
    bar's close, as both equity curves are measured from their value there).

    Examples
    --------
    >>> idx = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    >>> m = drift_metrics(pd.Series([100.0, 110.0, 99.0], idx), pd.Series([100.0, 100.0, 100.0], idx),
    ...                   pd.Series([10.0, 12.0, 9.0], idx))
    >>> m["benchmark_return"].round(3).tolist(), m["excess_return"].round(3).tolist()
    ([-0.1, -0.1], [0.09, 0.1])
    """
    from quantlib.backtest.metrics import compute_metrics_frame

    if not len(live):
        return pd.DataFrame()
    equity = pd.DataFrame({"live": live.to_numpy(dtype=np.float64),
                           "backtest": backtest.to_numpy(dtype=np.float64)}, index=live.index)
    return compute_metrics_frame(equity, timeframe=timeframe, benchmark=close)


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

    started = time.time()
    run = read_live_run(state)
    drift = compute_drift(run, tolerance)
    out = Path(out)
    target = out / "live" / f"{run.path.name}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    header = page_header(drift, started)
    page = render_html(page_notebook(drift), header, hide_code=True,
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
            **{f"live_{name}": (float(drift.metrics.loc["live", name]) if len(drift.metrics)
                                else None)
               for name in ("total_return", "benchmark_return", "excess_return")},
            "first_bar": run.bars.index[0].isoformat(), "last_bar": run.bars.index[-1].isoformat(),
            "generated": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")}


__all__ = ["DEFAULT_TOLERANCE", "Drift", "LiveRun", "compute_drift", "drift_metrics",
           "live_index_html",
           "read_live_run", "summary", "write_drift_report"]
