"""The approvals ledger: the only record that lets a spec trade real money.

A spec's JSON saying ``"status": "approved"`` proves nothing: anyone can type it. Approval is
a row in an SQLite ledger that only :func:`grant` writes, and ``quantlib strategy promote``
calls :func:`grant` only after every promotion gate passed (and the evidence it can re-derive
matched, :mod:`quantlib.strategy.evidence`). A row holds the spec's hash, its name, the gates
with their measured values and thresholds, who approved it and when; ``quantlib strategy
retire`` marks it retired. ``quantlib live run --mode live`` trades a spec only when
:func:`require_approved` finds its exact hash approved and not retired.

The hash (:func:`approval_hash`) is the SHA-256 of the spec's canonical JSON **without** its
``approval`` block: sorted keys, no whitespace, ASCII, the values pydantic's JSON mode gives
(so the same spec always hashes the same, whatever its file's layout). The approval block is
left out because promote writes it (who, when) after the decision; the ledger, not that block,
is the authority. Everything else counts: kind, params, market, costs, risk limits,
provenance, evidence and artifacts; changing any of them needs a new promotion.

Where the ledger lives: ``--ledger PATH``, else ``$QUANTLIB_APPROVALS``, else
``approvals.db`` beside the ``strategies/`` folder promote writes to (for ``live run``: beside
the folder holding the spec file, so ``strategies/x.json`` -> ``approvals.db``).

Examples
--------
>>> import tempfile, pathlib
>>> from quantlib.strategy.spec import StrategySpec
>>> spec = StrategySpec(name="demo", kind="ma_cross", symbols=["BTC/USD"])
>>> ledger = pathlib.Path(tempfile.mkdtemp()) / "approvals.db"
>>> _ = grant(ledger, spec, gates=[], thresholds={}, approver="alice")
>>> lookup(ledger, approval_hash(spec)).approver
'alice'
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quantlib.errors import LiveError, SpecError

LEDGER_ENV = "QUANTLIB_APPROVALS"
LEDGER_NAME = "approvals.db"
# SQLite header field marking the file as a quantlib approvals ledger ("QLAP")
APPLICATION_ID = 0x514C4150

_SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    approver TEXT NOT NULL,
    approved_at TEXT NOT NULL,          -- ISO 8601, UTC
    gates TEXT NOT NULL,                -- JSON: [{name, passed, measured, threshold}]
    thresholds TEXT NOT NULL,           -- JSON: the gate configuration used
    spec_file TEXT NOT NULL DEFAULT '',
    retired_at TEXT, retired_by TEXT, retire_reason TEXT
);
CREATE INDEX IF NOT EXISTS approvals_hash ON approvals(spec_hash)
"""


@dataclass(frozen=True)
class Approval:
    """One row of the ledger."""

    id: int
    spec_hash: str
    name: str
    approver: str
    approved_at: str
    gates: list[dict[str, Any]]
    thresholds: dict[str, Any]
    spec_file: str
    retired_at: str | None
    retired_by: str | None
    retire_reason: str | None

    @property
    def active(self) -> bool:
        return self.retired_at is None


def canonical_json(spec: Any) -> str:
    """The spec without its ``approval`` block, as canonical JSON text (what is hashed)."""
    data = spec.model_dump(mode="json")
    data.pop("approval", None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def approval_hash(spec: Any) -> str:
    """SHA-256 (hex) of :func:`canonical_json`: the identity the ledger approves."""
    return hashlib.sha256(canonical_json(spec).encode("ascii")).hexdigest()


def ledger_path(option: str | Path | None = None, *, beside: str | Path | None = None) -> Path:
    """Resolve the ledger: the option, else ``$QUANTLIB_APPROVALS``, else ``approvals.db`` in
    the parent of ``beside`` (the strategies folder), else in the working directory."""
    if option:
        return Path(option)
    if os.environ.get(LEDGER_ENV):
        return Path(os.environ[LEDGER_ENV])
    folder = Path(beside).resolve().parent if beside is not None else Path.cwd()
    return folder / LEDGER_NAME


@contextmanager
def _connect(path: Path, *, create: bool) -> Iterator[sqlite3.Connection]:
    if not create and not path.is_file():
        raise LiveError(f"approvals ledger {path} does not exist (no spec has been promoted "
                        "with it; see `quantlib strategy promote --ledger`)")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    where = f"approvals ledger {path}"
    try:
        con = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    except sqlite3.Error as exc:
        raise LiveError(f"{where}: cannot open it ({exc})") from None
    try:
        owner = con.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table'").fetchall()} - {"sqlite_sequence"}
        if owner != APPLICATION_ID and (owner != 0 or tables):
            raise LiveError(f"{where} is not a quantlib approvals ledger (application id "
                            f"{owner:#x}, tables {sorted(tables)}); refusing to use it")
        if owner == 0:
            con.execute(f"PRAGMA application_id={APPLICATION_ID}")
        con.executescript(_SCHEMA)
        yield con
    except sqlite3.DatabaseError as exc:
        raise LiveError(f"{where}: {exc} (damaged or not a ledger)") from None
    finally:
        con.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _row(row: tuple) -> Approval:
    values = list(row)
    values[5] = json.loads(values[5])
    values[6] = json.loads(values[6])
    return Approval(*values)


def grant(ledger: str | Path, spec: Any, *, gates: Sequence[Any], thresholds: dict[str, Any],
          approver: str | None = None, spec_file: str | Path | None = None) -> Approval:
    """Record the approval of ``spec`` (call only once its gates passed; promote does).

    Parameters
    ----------
    ledger : ledger file (created if absent).
    spec : the approved :class:`~quantlib.strategy.spec.StrategySpec`.
    gates : the gate results (objects with ``name, passed, measured, threshold``).
    thresholds : the gate configuration they were judged with.
    approver : who approves (default: the OS user).
    spec_file : where the approved spec was written.
    """
    failed = [g.name for g in gates if not g.passed]
    if failed:
        raise SpecError(f"spec {spec.name!r}: cannot record an approval with failed gates "
                        f"{failed}")
    who = approver or getpass.getuser()
    gate_rows = [{"name": g.name, "passed": bool(g.passed), "measured": _plain(g.measured),
                  "threshold": g.threshold} for g in gates]
    with _connect(Path(ledger), create=True) as con:
        cur = con.execute(
            "INSERT INTO approvals(spec_hash, name, approver, approved_at, gates, thresholds, "
            "spec_file) VALUES (?,?,?,?,?,?,?)",
            (approval_hash(spec), spec.name, who, _now(), json.dumps(gate_rows),
             json.dumps(thresholds, sort_keys=True, default=str),
             str(spec_file) if spec_file else ""))
        row = con.execute("SELECT * FROM approvals WHERE id=?", (cur.lastrowid,)).fetchone()
    return _row(row)


def _plain(value: Any) -> Any:
    # measured values go to JSON: numbers, booleans, strings; anything else as its text
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def lookup(ledger: str | Path, spec_hash: str) -> Approval | None:
    """The latest approval of ``spec_hash`` (active or retired), or None."""
    with _connect(Path(ledger), create=False) as con:
        row = con.execute("SELECT * FROM approvals WHERE spec_hash=? ORDER BY id DESC LIMIT 1",
                          (spec_hash,)).fetchone()
    return _row(row) if row else None


def retire(ledger: str | Path, spec: Any, *, by: str | None = None, reason: str = "") -> int:
    """Mark every active approval of ``spec`` retired; returns how many were retired.

    Raises LiveError when the spec has no active approval in the ledger.
    """
    digest = approval_hash(spec)
    with _connect(Path(ledger), create=False) as con:
        cur = con.execute("UPDATE approvals SET retired_at=?, retired_by=?, retire_reason=? "
                          "WHERE spec_hash=? AND retired_at IS NULL",
                          (_now(), by or getpass.getuser(), reason, digest))
        count = cur.rowcount
    if count == 0:
        raise LiveError(f"spec {spec.name!r} (hash {digest}) has no active approval in "
                        f"{ledger}")
    return count


def require_approved(spec: Any, ledger: str | Path, spec_file: str | Path | None = None
                     ) -> Approval:
    """The active approval of ``spec``'s exact hash, or a LiveError saying why there is none
    (the JSON's ``approval.status`` is not consulted: only the ledger approves)."""
    digest = approval_hash(spec)
    where = f"{spec_file}: spec {spec.name!r}" if spec_file else f"spec {spec.name!r}"
    try:
        record = lookup(ledger, digest)
    except LiveError as exc:
        raise LiveError(f"{where} (hash {digest}) cannot trade live: {exc}") from None
    if record is None:
        raise LiveError(f"{where} (hash {digest}) is not approved in the approvals ledger "
                        f"{ledger}; live mode trades only specs approved by `quantlib strategy "
                        "promote` (an edited spec, or one whose JSON merely says 'approved', "
                        "needs a promotion)")
    if not record.active:
        raise LiveError(f"{where} (hash {digest}) was retired on {record.retired_at} by "
                        f"{record.retired_by}"
                        + (f" ({record.retire_reason})" if record.retire_reason else "")
                        + f" in {ledger}; live mode refuses retired specs")
    return record


__all__ = ["Approval", "LEDGER_ENV", "LEDGER_NAME", "approval_hash", "canonical_json", "grant",
           "ledger_path", "lookup", "require_approved", "retire"]
