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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from quantlib.errors import LiveError

# SQLite's header field for the application that owns a file ("QLST"): a quantlib state file
# says so in its first 100 bytes, so a foreign database is refused before anything is written.
APPLICATION_ID = 0x514C5354
# Layout of the tables below, kept in meta.state_format; a newer file is refused, not guessed at.
STATE_FORMAT = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"
_TABLES = frozenset({"meta", "bars", "orders", "fills"})

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
CREATE TABLE IF NOT EXISTS candles (   -- the closed candles the runner stepped (drift report)
    symbol TEXT NOT NULL, time INTEGER NOT NULL, open REAL NOT NULL, high REAL NOT NULL,
    low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL, PRIMARY KEY (symbol, time)
);
"""


@dataclass(kw_only=True)
class OrderRow:
    """One row of the ``orders`` table: an order intent and what became of it.

    Keyword-only: thirteen fields of a few types are too easy to pass in the wrong order.
    """

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


class BarRow(NamedTuple):
    """One row of the ``bars`` table: the first symbol's close, target and position after a
    bar, the account's cash and whole equity, and a note (e.g. ``"buys off"``)."""

    time: int
    close: float
    target: float
    position: float
    cash: float
    equity: float
    note: str


class FillRow(NamedTuple):
    """One fill (columns of the ``fills`` table but its id and trade id)."""

    client_id: str
    time: int
    side: int
    price: float
    size: float
    fee: float


class CandleRow(NamedTuple):
    """One closed candle the runner stepped (the ``candles`` table)."""

    symbol: str
    time: int
    open: float
    high: float
    low: float
    close: float
    volume: float


# The columns each reader selects, named once: the SELECTs below (and the read-only readers
# in other processes: watch, status board, drift report) follow the row types' field order.
ORDER_COLUMNS = tuple(f.name for f in fields(OrderRow))
BAR_COLUMNS = BarRow._fields
FILL_COLUMNS = FillRow._fields
CANDLE_COLUMNS = CandleRow._fields


def select(columns: tuple[str, ...], table: str, alias: str = "") -> str:
    """``SELECT c1, c2, ... FROM table`` for a row type's columns (``alias``: ``"f."`` ...).

    Examples
    --------
    >>> select(("time", "equity"), "bars")
    'SELECT time, equity FROM bars'
    """
    return f"SELECT {', '.join(alias + c for c in columns)} FROM {table}"


def _insert(verb: str, table: str, columns: tuple[str, ...]) -> str:
    return f"{verb} INTO {table}({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})"


_INSERT_ORDER = _insert("INSERT OR IGNORE", "orders", ORDER_COLUMNS)
_INSERT_BAR = _insert("INSERT OR REPLACE", "bars", BAR_COLUMNS)
_INSERT_CANDLE = _insert("INSERT OR REPLACE", "candles", CANDLE_COLUMNS)


class StateStore:
    """SQLite (WAL) state of one live strategy.

    Parameters
    ----------
    path : database file (``":memory:"`` for tests).
    durable : ``synchronous=FULL`` (a commit survives power loss; live trading) instead of
        ``NORMAL`` (a commit survives any process crash, including SIGKILL; paper and replays).
    """

    def __init__(self, path: str | Path, durable: bool = False, *, create: bool = True):
        self.path = str(path)
        self._depth = 0
        # Write-through cache of the meta table: one runner process owns a state file (the
        # runner holds an exclusive lock), so reads need not go back to SQLite every time.
        self._meta: dict[str, str | None] = {}
        if self.path != ":memory:":
            _check_header(Path(self.path), create)
        try:
            self._con = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        except sqlite3.Error as exc:
            raise LiveError(f"state file {self.path}: cannot open it ({exc})") from None
        try:
            self._adopt(durable)
        except BaseException:
            self._con.close()
            raise

    def _adopt(self, durable: bool) -> None:
        """Check the file is ours (or empty, then mark it), then set WAL and the schema."""
        owner = self._scalar("PRAGMA application_id")
        tables = {r[0] for r in self._rows(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        tables.discard("sqlite_sequence")
        # Files written before the marker existed hold exactly our tables: adopt those too.
        ours = owner == APPLICATION_ID or (owner == 0 and (not tables or tables - {"candles"}
                                                           == _TABLES))
        if not ours:
            raise LiveError(f"state file {self.path} is not a quantlib state file (SQLite "
                            f"application id {owner:#x}, tables {sorted(tables)}); refusing to "
                            "write into it: give --state a new path or a quantlib state file")
        if owner != APPLICATION_ID:
            self._execute(f"PRAGMA application_id={APPLICATION_ID}")
        if self.path != ":memory:":
            self._execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL already survives a killed process; FULL also survives power loss.
        self._execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._execute(statement)
            version = self.get_meta("state_format")
            if version is None:
                self.set_meta("state_format", STATE_FORMAT)
            elif not version.isdigit() or int(version) > STATE_FORMAT:
                raise LiveError(f"state file {self.path}: state format {version!r} is newer "
                                f"than this quantlib reads ({STATE_FORMAT}); upgrade quantlib")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        # A damaged file surfaces as one clear LiveError naming the file, whichever query
        # (or row fetch: SQLite reads pages lazily) meets the damage first.
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise LiveError(f"state file {self.path}: {exc} (the file is damaged or not a "
                            "quantlib state file; restore a backup or start a new --state)"
                            ) from None

    def _execute(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        """Run one statement (see :meth:`_guard`)."""
        with self._guard():
            return self._con.execute(sql, args)

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        """All rows of a query, fetched under :meth:`_guard`."""
        with self._guard():
            return self._con.execute(sql, args).fetchall()

    def _row(self, sql: str, args: tuple = ()) -> tuple | None:
        with self._guard():
            return self._con.execute(sql, args).fetchone()

    def _scalar(self, sql: str) -> Any:
        row = self._row(sql)
        return row[0] if row else None

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
        self._execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            try:
                self._con.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # a damaged file may refuse even this; the original error says why
            self._meta.clear()  # drop values written by the rolled-back transaction
            raise
        else:
            self._execute("COMMIT")
        finally:
            self._depth = 0

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        try:
            value = self._meta[key]
        except KeyError:
            row = self._row("SELECT value FROM meta WHERE key=?", (key,))
            value = self._meta[key] = row[0] if row else None
        return default if value is None else value

    def set_meta(self, key: str, value: Any) -> None:
        text = str(value)
        self._execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) "
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
        cur = self._execute(_INSERT_ORDER, tuple(getattr(order, c) for c in ORDER_COLUMNS))
        return cur.rowcount == 1

    def update_order(self, client_id: str, **fields: Any) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        self._execute(f"UPDATE orders SET {cols} WHERE client_id=?",
                          (*fields.values(), client_id))

    def orders(self, status: str | tuple[str, ...] | None = None) -> list[OrderRow]:
        query, args = select(ORDER_COLUMNS, "orders"), ()
        if status is not None:
            statuses = (status,) if isinstance(status, str) else status
            query += f" WHERE status IN ({','.join('?' * len(statuses))})"
            args = statuses
        # Within a bar, intents come back in the order they were written (the spec's symbol
        # order, the backtest's order of execution), so orders re-sent after a restart reach
        # the exchange in the sequence an uninterrupted run sends them; client ids are hashes.
        rows = self._rows(query + " ORDER BY bar_time, rowid", args)
        return [_order(r) for r in rows]

    def get_order(self, client_id: str) -> OrderRow | None:
        row = self._row(select(ORDER_COLUMNS, "orders") + " WHERE client_id=?", (client_id,))
        return _order(row) if row else None

    def add_fill(self, client_id: str, time: int, side: int, price: float, size: float,
                 fee: float, trade_id: str | None = None) -> bool:
        """Record a fill once; a repeated (client_id, trade_id) is ignored (returns False)."""
        cur = self._execute(
            "INSERT OR IGNORE INTO fills(client_id, time, side, price, size, fee, trade_id) "
            "VALUES (?,?,?,?,?,?,?)", (client_id, time, side, price, size, fee,
                                       trade_id if trade_id is not None else client_id))
        return cur.rowcount == 1

    def fills(self) -> list[FillRow]:
        """Every fill, in insertion order."""
        return [FillRow._make(r) for r in self._rows(select(FILL_COLUMNS, "fills")
                                                     + " ORDER BY id")]

    # -- equity curve -------------------------------------------------------------------------
    def add_bar(self, time: int, close: float, target: float, position: float, cash: float,
                equity: float, note: str = "") -> None:
        self._execute(_INSERT_BAR, (time, close, target, position, cash, equity, note))

    def bars(self) -> list[BarRow]:
        """The equity curve, one row per processed bar, in time order."""
        return [BarRow._make(r) for r in self._rows(select(BAR_COLUMNS, "bars")
                                                    + " ORDER BY time")]

    def add_candle(self, symbol: str, bar: Any) -> None:
        """Keep a stepped candle (``time open high low close volume``): the run's own data,
        which ``quantlib live report`` backtests the spec on."""
        self._execute(_INSERT_CANDLE, (symbol, bar.time, bar.open, bar.high, bar.low, bar.close, bar.volume))

    def candles(self) -> list[CandleRow]:
        """The stepped candles, by symbol and time."""
        return [CandleRow._make(r) for r in self._rows(select(CANDLE_COLUMNS, "candles")
                                                       + " ORDER BY symbol, time")]

    def snapshot(self) -> dict[str, Any]:
        """Everything comparable between two runs (used by crash-safety tests and status)."""
        return {
            # 'starts' lists when each process started: a history, not a comparable value
            "meta": dict(self._rows("SELECT key, value FROM meta WHERE key != 'starts' "
                                    "ORDER BY key")),
            "orders": [tuple(r) for r in self._rows(
                "SELECT client_id, bar_time, intent, side, amount, status FROM orders "
                "ORDER BY bar_time, client_id")],
            "fills": self.fills(),
            "bars": self.bars(),
        }


def symbol_key(name: str, symbol: str, first: str) -> str:
    """The state-store meta key of a per-symbol value (position, debt, target, stop bases).

    The spec's first symbol keeps the plain name (``"position"``), so a one-symbol state file
    reads as before; every other symbol of a portfolio spec gets ``"position|ETH/USD"``.

    Examples
    --------
    >>> symbol_key("position", "BTC/USD", "BTC/USD"), symbol_key("position", "ETH/USD", "BTC/USD")
    ('position', 'position|ETH/USD')
    """
    return name if symbol == first else f"{name}|{symbol}"


def _order(row: tuple) -> OrderRow:
    return OrderRow(**dict(zip(ORDER_COLUMNS, row, strict=True)))


def _check_header(path: Path, create: bool) -> None:
    """Refuse what cannot be a state file before SQLite touches it (it would add -wal files)."""
    if not path.exists():
        if not create:
            raise LiveError(f"state file {path} does not exist")
        return
    if path.is_dir():
        raise LiveError(f"state file {path} is a directory; expected a SQLite file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise LiveError(f"state file {path}: cannot read it ({exc.strerror})") from None
    if head and head != _SQLITE_MAGIC:
        raise LiveError(f"state file {path} is not a quantlib state file (not an SQLite "
                        "database); refusing to touch it")


def is_state_file(path: str | Path) -> bool:
    """True when ``path`` is an SQLite file marked as a quantlib state file (read only).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.db"
    >>> StateStore(p).close()
    >>> is_state_file(p), is_state_file(p.with_name("absent.db"))
    (True, False)
    """
    path = Path(path)
    if not path.is_file():
        return False
    try:
        _check_header(path, create=False)
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5.0)
        try:
            return con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        finally:
            con.close()
    except (LiveError, sqlite3.Error):
        return False


__all__ = ["APPLICATION_ID", "BAR_COLUMNS", "CANDLE_COLUMNS", "FILL_COLUMNS", "ORDER_COLUMNS",
           "STATE_FORMAT", "BarRow", "CandleRow", "FillRow", "OrderRow", "StateStore",
           "is_state_file", "select", "symbol_key"]
