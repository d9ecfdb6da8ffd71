"""``quantlib live status --dir FOLDER``: one line per run for cron jobs and health checks.

Each quantlib state file in the folder (``*.db``) gives one line: strategy, mode, the last bar's
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
from pathlib import Path

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.errors import LiveError, QuantlibError


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
    from quantlib.live.state import is_state_file

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
    last = bars[0][0] if bars else None
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
    position = beat.get("position", bars[0][1] if bars else None)
    return RunLine(str(path), meta.get("strategy"), beat.get("mode"), last, age,
                   bars[0][2] if bars else None, position, health, problem)


def _read(path: Path) -> tuple[dict[str, str], list[tuple]]:
    db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=2.0)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        bars = db.execute("SELECT time, position, equity FROM bars ORDER BY time DESC LIMIT 3"
                          ).fetchall()
    finally:
        db.close()
    return meta, bars


def _spec_bar_ms(meta: dict[str, str]) -> int | None:
    """The bar length of the spec the run keeps in its state (None: an older state file)."""
    try:
        return timeframe_to_seconds(json.loads(meta["spec"])["timeframe"]) * 1000
    except (KeyError, ValueError, TypeError, QuantlibError):
        return None


def _bar_length_ms(bars: list[tuple]) -> int | None:
    # the smallest spacing of the last bars: a gap (missed candles) is not a bar length
    gaps = [a[0] - b[0] for a, b in zip(bars, bars[1:], strict=False) if a[0] > b[0]]
    return min(gaps) if gaps else None


def _heartbeat(path: Path) -> dict:
    try:
        beat = json.loads(Path(str(path) + ".status.json").read_text())
    except (OSError, ValueError):
        return {}
    return beat if isinstance(beat, dict) else {}


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


__all__ = ["RunLine", "format_age", "format_lines", "run_line", "scan"]
