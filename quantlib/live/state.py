"""The live runner's durable state: one SQLite file in WAL mode.

Everything the runner needs to resume lives here: the last processed bar, orders (with their
deterministic client ids and status), fills, the paper account (cash/position), the equity curve,
risk bookkeeping and the halt flag. A bar's decision and its order intents are written in ONE
transaction (:meth:`StateStore.transaction`) before any order leaves the process, so a crash
leaves either nothing or a complete, re-sendable intent.

Examples
--------
>>> store = StateStore(":memory:")
>>> with store.transaction():
...     store.set_meta("last_bar", "1700000000000")
>>> store.get_meta("last_bar")
'1700000000000'
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantlib.errors import LiveError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bars (
    time INTEGER PRIMARY KEY,          -- bar open time, ms since epoch UTC
    close REAL NOT NULL, target REAL NOT NULL, position REAL NOT NULL,
    cash REAL NOT NULL, equity REAL NOT NULL, note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY,
    bar_time INTEGER NOT NULL, symbol TEXT NOT NULL, intent TEXT NOT NULL,
    side INTEGER NOT NULL, amount REAL NOT NULL, target REAL NOT NULL,
    order_type TEXT NOT NULL, price REAL,
    status TEXT NOT NULL,              -- new | sent | filled | rejected | cancelled
    exchange_id TEXT, detail TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL, time INTEGER NOT NULL, side INTEGER NOT NULL,
    price REAL NOT NULL, size REAL NOT NULL, fee REAL NOT NULL, trade_id TEXT,
    UNIQUE (client_id, trade_id)
);
"""


@dataclass
class OrderRow:
    client_id: str
    bar_time: int
    symbol: str
    intent: str
    side: int
    amount: float
    target: float
    order_type: str
    price: float | None
    status: str
    exchange_id: str | None
    detail: str
    attempts: int


class StateStore:
    """SQLite (WAL) state of one live strategy.

    Parameters
    ----------
    path : database file (``":memory:"`` for tests).
    durable : ``synchronous=FULL`` (a commit survives power loss; live trading) instead of
        ``NORMAL`` (a commit survives any process crash, including SIGKILL; paper and replays).
    """

    def __init__(self, path: str | Path, durable: bool = False):
        self.path = str(path)
        try:
            self._con = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            if self.path != ":memory:":
                self._con.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL already survives a killed process; FULL also survives power loss.
            self._con.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._con.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise LiveError(f"state file {self.path}: not a usable SQLite database ({exc})") from None
        self._depth = 0
        # Write-through cache of the meta table: one runner process owns a state file (the
        # runner holds an exclusive lock), so reads need not go back to SQLite every time.
        self._meta: dict[str, str | None] = {}

    def close(self) -> None:
        self._con.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit: everything inside commits together or not at all (re-entrant)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._con.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._con.execute("ROLLBACK")
            self._meta.clear()  # drop values written by the rolled-back transaction
            raise
        else:
            self._con.execute("COMMIT")
        finally:
            self._depth = 0

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        try:
            value = self._meta[key]
        except KeyError:
            row = self._con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            value = self._meta[key] = row[0] if row else None
        return default if value is None else value

    def set_meta(self, key: str, value: Any) -> None:
        text = str(value)
        self._con.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) "
                          "DO UPDATE SET value=excluded.value", (key, text))
        self._meta[key] = text

    def refresh(self) -> None:
        """Forget cached meta values (another process may have written the file)."""
        self._meta.clear()

    def get_float(self, key: str, default: float) -> float:
        value = self.get_meta(key)
        return float(value) if value is not None else default

    def get_json(self, key: str, default: Any = None) -> Any:
        value = self.get_meta(key)
        return json.loads(value) if value is not None else default

    def set_json(self, key: str, value: Any) -> None:
        self.set_meta(key, json.dumps(value, sort_keys=True))

    @property
    def last_bar(self) -> int | None:
        """Open time (ms) of the last fully processed bar, or None on a fresh state."""
        value = self.get_meta("last_bar")
        return int(value) if value is not None else None

    # -- orders and fills ---------------------------------------------------------------------
    def add_order(self, order: OrderRow) -> bool:
        """Insert an intent; returns False (and changes nothing) if the client id exists."""
        cur = self._con.execute(
            "INSERT OR IGNORE INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (order.client_id, order.bar_time, order.symbol, order.intent, order.side,
             order.amount, order.target, order.order_type, order.price, order.status,
             order.exchange_id, order.detail, order.attempts))
        return cur.rowcount == 1

    def update_order(self, client_id: str, **fields: Any) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        self._con.execute(f"UPDATE orders SET {cols} WHERE client_id=?",
                          (*fields.values(), client_id))

    def orders(self, status: str | tuple[str, ...] | None = None) -> list[OrderRow]:
        query, args = "SELECT * FROM orders", ()
        if status is not None:
            statuses = (status,) if isinstance(status, str) else status
            query += f" WHERE status IN ({','.join('?' * len(statuses))})"
            args = statuses
        rows = self._con.execute(query + " ORDER BY bar_time, client_id", args).fetchall()
        return [OrderRow(*r) for r in rows]

    def get_order(self, client_id: str) -> OrderRow | None:
        row = self._con.execute("SELECT * FROM orders WHERE client_id=?", (client_id,)).fetchone()
        return OrderRow(*row) if row else None

    def add_fill(self, client_id: str, time: int, side: int, price: float, size: float,
                 fee: float, trade_id: str | None = None) -> bool:
        """Record a fill once; a repeated (client_id, trade_id) is ignored (returns False)."""
        cur = self._con.execute(
            "INSERT OR IGNORE INTO fills(client_id, time, side, price, size, fee, trade_id) "
            "VALUES (?,?,?,?,?,?,?)", (client_id, time, side, price, size, fee,
                                       trade_id if trade_id is not None else client_id))
        return cur.rowcount == 1

    def fills(self) -> list[tuple]:
        """(client_id, time_ms, side, price, size, fee) in insertion order."""
        return self._con.execute(
            "SELECT client_id, time, side, price, size, fee FROM fills ORDER BY id").fetchall()

    # -- equity curve -------------------------------------------------------------------------
    def add_bar(self, time: int, close: float, target: float, position: float, cash: float,
                equity: float, note: str = "") -> None:
        self._con.execute("INSERT OR REPLACE INTO bars VALUES (?,?,?,?,?,?,?)",
                          (time, close, target, position, cash, equity, note))

    def bars(self) -> list[tuple]:
        return self._con.execute("SELECT * FROM bars ORDER BY time").fetchall()

    def snapshot(self) -> dict[str, Any]:
        """Everything comparable between two runs (used by crash-safety tests and status)."""
        return {
            "meta": dict(self._con.execute("SELECT key, value FROM meta ORDER BY key").fetchall()),
            "orders": [tuple(r) for r in self._con.execute(
                "SELECT client_id, bar_time, intent, side, amount, status FROM orders "
                "ORDER BY bar_time, client_id").fetchall()],
            "fills": self.fills(),
            "bars": self.bars(),
        }


__all__ = ["StateStore", "OrderRow"]
