"""``quantlib live status``: a run's summary (``--state``, :func:`read_status`) or one line per
run of a folder for cron jobs and health checks (``--dir``, :func:`scan`).

With ``--dir``, each quantlib state file in the folder (``*.db``) gives one line: strategy, mode, the last bar's
age, equity, position and health. A run is a *problem* when it is halted by a risk limit or
stale: its last candle closed more than ``stale_after`` seconds ago (default two bar lengths of
the spec kept in the state; for older files, the spacing of the run's last bars). The command exits 1 when any run is a
problem, so ``quantlib live status --dir runs/ || alert`` works from cron or as a container
health check.

Files are read with SQLite's read-only URI mode: safe while the runners write.

Examples
--------
>>> format_age(3725.0)
'1h02m'
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.errors import LiveError, QuantlibError
from quantlib.live.state import (
    BAR_COLUMNS,
    BarRow,
    FillRow,
    StateStore,
    is_state_file,
    select,
    symbol_key,
)


@dataclass
class RunLine:
    state: str
    strategy: str | None
    mode: str | None
    last_bar: int | None  # open time, ms
    age_seconds: float | None  # since the last bar closed
    equity: float | None
    position: float | None
    health: str
    problem: bool


def scan(folder: str | Path, *, now: float | None = None,
         stale_after: float | None = None) -> list[RunLine]:
    """One :class:`RunLine` per state file in ``folder`` (sorted by name)."""
    root = Path(folder)
    if not root.is_dir():
        raise LiveError(f"--dir {root}: not a folder")
    now = time.time() if now is None else now
    return [run_line(path, now=now, stale_after=stale_after)
            for path in sorted(root.glob("*.db")) if is_state_file(path)]


def run_line(path: Path, *, now: float, stale_after: float | None = None) -> RunLine:
    """The status of one state file (``problem``: halted, stale or unreadable)."""
    try:
        meta, bars = _read(path)
    except sqlite3.Error as exc:
        return RunLine(str(path), None, None, None, None, None, None,
                       f"unreadable: {exc}", True)
    beat = _heartbeat(path)
    last = bars[0].time if bars else None
    bar_ms = _spec_bar_ms(meta) or _bar_length_ms(bars)
    age = None if last is None or bar_ms is None else now - (last + bar_ms) / 1000
    limit = stale_after if stale_after is not None else (2 * bar_ms / 1000 if bar_ms else None)
    health, problem = str(beat.get("health") or "never ran"), False
    if meta.get("halted"):
        health, problem = f"halted: {meta['halted']}", True
    elif last is None:
        health = "no bar yet"
    elif age is not None and limit is not None and age > limit:
        health, problem = f"stale ({health})", True
    position = beat.get("position", bars[0].position if bars else None)
    return RunLine(str(path), meta.get("strategy"), beat.get("mode"), last, age,
                   bars[0].equity if bars else None, position, health, problem)


def _read(path: Path) -> tuple[dict[str, str], list[BarRow]]:
    """The meta table and the last three bars, newest first (read-only: the runner writes)."""
    db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=2.0)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        bars = db.execute(select(BAR_COLUMNS, "bars") + " ORDER BY time DESC LIMIT 3"
                          ).fetchall()
    finally:
        db.close()
    return meta, [BarRow._make(row) for row in bars]


def _spec_bar_ms(meta: dict[str, str]) -> int | None:
    """The bar length of the spec the run keeps in its state (None: an older state file)."""
    try:
        return timeframe_to_seconds(json.loads(meta["spec"])["timeframe"]) * 1000
    except (KeyError, ValueError, TypeError, QuantlibError):
        return None


def _bar_length_ms(bars: list[BarRow]) -> int | None:
    # the smallest spacing of the last bars: a gap (missed candles) is not a bar length
    gaps = [a.time - b.time for a, b in zip(bars, bars[1:], strict=False) if a.time > b.time]
    return min(gaps) if gaps else None


def _heartbeat(path: Path) -> dict:
    try:
        beat = json.loads(Path(str(path) + ".status.json").read_text())
    except (OSError, ValueError):
        return {}
    return beat if isinstance(beat, dict) else {}


def read_status(state_path: str | Path) -> dict:
    """Summary of a state file for ``quantlib live status`` (no exchange access).

    Raises LiveError when the file is missing, foreign, damaged or holds values no runner
    writes (a damaged page may still parse as SQLite).
    """
    path = Path(state_path)
    store = StateStore(path, create=False)
    try:
        meta = store.snapshot()["meta"]
        orders = store.orders()
        bars = store.bars()
        fills = store.fills()
        try:
            return {
                "state": str(path), "strategy": meta.get("strategy"),
                "last_bar": (datetime.fromtimestamp(int(meta["last_bar"]) / 1000,
                                                    tz=UTC).isoformat()
                             if "last_bar" in meta else None),
                "target": float(meta.get("target", 0.0)),
                "position": float(meta.get("position", 0.0)),
                "cash": float(meta["cash"]) if "cash" in meta else None,
                "equity": bars[-1].equity if bars else None, "halted": meta.get("halted") or None,
                "orders": len(orders),
                "open_orders": sum(o.status in ("new", "sent") for o in orders),
                "fills": len(fills),
                "positions": _positions(meta),
                "metrics": _run_metrics(bars, fills),
                **_perp_status(meta),
            }
        except (TypeError, ValueError, OverflowError, OSError, IndexError) as exc:
            raise LiveError(f"state file {path}: holds a value no runner writes ({exc}); the "
                            "file is damaged") from None
    finally:
        store.close()


def _positions(meta: dict[str, str]) -> dict[str, dict[str, float | None]]:
    """Per symbol: position (base units), target, and the armed stop bases (None: none)."""
    symbols = json.loads(meta["symbols"]) if "symbols" in meta else []
    out = {}
    for symbol in symbols:
        def value(name: str, default: float | None, symbol: str = symbol) -> float | None:
            raw = meta.get(symbol_key(name, symbol, symbols[0]))
            number = float(raw) if raw is not None else default
            return None if number is None or number != number else number

        out[symbol] = {"position": value("position", 0.0), "target": value("target", 0.0),
                       "stop_loss_base": value("sl_base", None),
                       "take_profit_base": value("tp_base", None)}
    return out


def _perp_status(meta: dict[str, str]) -> dict[str, dict[str, float]]:
    """``{"perp": {qty, entry_price, margin, liq_price, funding_net}}`` of a perp run's
    account (the keys of :class:`~quantlib.live.brokers.base.PerpBroker`); ``{}`` for spot."""
    if "liq_price" not in meta:
        return {}
    keys = {"qty": "position", "entry_price": "entry_price", "margin": "margin",
            "liq_price": "liq_price", "funding_net": "funding_net"}
    return {"perp": {name: float(meta.get(key, 0.0)) for name, key in keys.items()}}


def _run_metrics(bars: list[BarRow], fills: list[FillRow]) -> dict[str, float] | None:
    """The run's equity curve through the same metrics function as backtests and optimizers
    (returns from the first recorded bar; the timeframe is inferred from the bar times)."""
    import pandas as pd  # the status command, not the trading process

    from quantlib.backtest.metrics import compute_metrics

    if len(bars) < 3:
        return None
    index = pd.to_datetime([b.time for b in bars], unit="ms", utc=True)
    equity = pd.Series([b.equity for b in bars], index=index, dtype=float)
    position = np.array([b.position for b in bars], dtype=float)
    traded = float(sum(abs(f.price * f.size) for f in fills))
    fees = float(sum(f.fee for f in fills))
    metrics = compute_metrics(equity, position=position, traded_value=traded, fees_paid=fees)
    keep = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "exposure", "turnover",
            "fees_paid")
    return {k: float(metrics[k]) for k in keep}


def format_age(seconds: float | None) -> str:
    """``90`` -> ``1m30s``, ``3725`` -> ``1h02m``, ``200000`` -> ``2d07h``."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if abs(s) < 3600:
        return f"{s // 60}m{s % 60:02d}s" if abs(s) >= 60 else f"{s}s"
    if abs(s) < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def format_lines(lines: list[RunLine]) -> str:
    """A fixed-width table, one line per run."""
    header = f"{'state':28s} {'strategy':20s} {'mode':5s} {'bar age':>8s} {'equity':>14s} " \
             f"{'position':>12s}  health"
    rows = [header]
    for line in lines:
        equity = f"{line.equity:14.2f}" if line.equity is not None else f"{'-':>14s}"
        position = f"{line.position:12.6g}" if line.position is not None else f"{'-':>12s}"
        rows.append(f"{Path(line.state).name:28s} {str(line.strategy or '-'):20s} "
                    f"{str(line.mode or '-'):5s} {format_age(line.age_seconds):>8s} {equity} "
                    f"{position}  {line.health}")
    return "\n".join(rows)


__all__ = ["RunLine", "format_age", "format_lines", "read_status", "run_line", "scan"]
