"""The reports directory on disk: run ids, per-run directories, locks, atomic writes, pruning.

Layout (``out`` is ``reports/`` by default)::

    reports/
      index.html                 rebuilt from every run.json, atomically, under .index.lock
      assets/plotly-<ver>.min.js one shared offline copy of plotly.js
      <run-id>/
        run.json                 the run manifest (written atomically after every notebook)
        run.log                  the run's log
        .lock                    held (flock) while the run is in progress
        <notebook>.<params>.ipynb / .html

Every run writes only inside its own directory, and the index is a pure function of the
manifests on disk, so concurrent runs never clobber each other and rebuilding is idempotent.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from quantlib.errors import ReportError

MANIFEST = "run.json"
RUN_LOCK = ".lock"
INDEX_LOCK = ".index.lock"


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC timestamp plus a random suffix.

    Examples
    --------
    >>> len(new_run_id(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)))
    23
    """
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory and ``os.replace``.

    Readers see the old or the new file, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Atomically write ``run.json`` of one run."""
    atomic_write_text(Path(run_dir) / MANIFEST, json.dumps(manifest, indent=1, default=str))


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The manifest of ``run_dir``, or None when absent or unreadable (not a run)."""
    path = Path(run_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def list_runs(out: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every run directory under ``out`` with its manifest, newest first."""
    out = Path(out)
    if not out.is_dir():
        return []
    runs = []
    for child in out.iterdir():
        if child.is_dir() and not child.name.startswith((".", "assets")):
            manifest = read_manifest(child)
            if manifest is not None:
                runs.append((child, manifest))
    runs.sort(key=lambda item: (item[1].get("started_at", ""), item[0].name), reverse=True)
    return runs


@contextlib.contextmanager
def file_lock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path``; yields False if non-blocking and already held."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(fh.fileno(), flags)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def is_run_active(run_dir: Path) -> bool:
    """True while another process holds the run's lock (the run is still executing)."""
    lock = Path(run_dir) / RUN_LOCK
    if not lock.exists():
        return False
    with file_lock(lock, blocking=False) as acquired:
        return not acquired


def run_age(manifest: dict[str, Any], now: datetime | None = None) -> timedelta:
    """Time since the run started (from its manifest)."""
    now = now or datetime.now(UTC)
    started = datetime.fromisoformat(manifest["started_at"])
    return now - started


def prune_runs(
    out: Path,
    *,
    keep: int | None = None,
    older_than_days: float | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Delete old runs: keep the newest ``keep`` and/or drop runs older than ``older_than_days``.

    Runs in progress (lock held) are never deleted. Returns the pruned run ids.

    Examples
    --------
    >>> prune_runs(Path("/nonexistent-reports"), keep=3)
    []
    """
    if keep is None and older_than_days is None:
        raise ReportError("prune: give --keep N and/or --older-than DAYS (nothing to prune by)")
    if keep is not None and keep < 0:
        raise ReportError(f"prune: --keep must be >= 0, got {keep}")
    if older_than_days is not None and older_than_days < 0:
        raise ReportError(f"prune: --older-than must be >= 0 days, got {older_than_days}")
    now = datetime.now(UTC)
    pruned = []
    for position, (run_dir, manifest) in enumerate(list_runs(out)):
        too_many = keep is not None and position >= keep
        too_old = older_than_days is not None and run_age(manifest, now) > timedelta(
            days=older_than_days
        )
        if not (too_many or too_old) or is_run_active(run_dir):
            continue
        pruned.append(run_dir.name)
        if not dry_run:
            # Rename first so a concurrent index rebuild never sees a half-deleted run.
            trash = run_dir.with_name(f".trash-{run_dir.name}-{time.monotonic_ns()}")
            os.replace(run_dir, trash)
            shutil.rmtree(trash, ignore_errors=True)
    return pruned


__all__ = [
    "new_run_id",
    "atomic_write_text",
    "write_manifest",
    "read_manifest",
    "list_runs",
    "file_lock",
    "is_run_active",
    "prune_runs",
]
