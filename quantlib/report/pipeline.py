"""Run the configured notebooks through papermill and write one HTML report per run.

One call of :func:`run_report` is one *run* (``reports/<run-id>/``): every selected notebook with
every parameter set, executed on the ``quantlib`` kernel. A failing notebook is recorded (its
HTML still written, error cell highlighted) and the others keep running.

Data sources are checked before any kernel starts: every source string is parsed, and the
``--data`` source and every exchange source are loaded once, up front. A source that cannot be
loaded (no network, unknown market) stops the run within one load's retries, with the loader's
message, instead of making every notebook retry on its own. Exchange data is then handed to the
notebooks as a Parquet file in the run directory (``data/``, a ``file:`` source), so they all
see the same bars and never touch the network; the index and manifest keep showing the source
string that was asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

import quantlib
from quantlib.errors import QuantlibError, ReportError
from quantlib.report.config import DEFAULT_CONFIG, NotebookJob, ReportConfig, load_config
from quantlib.report.html import plotly_script_tag, render_html
from quantlib.report.index import read_recorded, update_index
from quantlib.report.store import (
    RUN_LOCK,
    file_lock,
    is_run_active,
    new_run_id,
    read_manifest,
    write_manifest,
)

KERNEL_NAME = "quantlib"
logger = logging.getLogger("quantlib.report")


@dataclass
class ReportRun:
    """The outcome of one ``quantlib report`` run."""

    run_id: str
    run_dir: Path
    index_path: Path
    entries: list[dict[str, Any]]
    skipped: bool = False

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Entries whose status is not ``ok``."""
        return [entry for entry in self.entries if entry.get("status") != "ok"]

    def summary(self) -> str:
        """A short human-readable summary, one line per notebook run."""
        lines = [f"run {self.run_id}: {len(self.entries)} report(s), {len(self.failures)} failed"]
        for entry in self.entries:
            line = f"  {entry['status']:>7}  {entry['notebook']}/{entry['param_set']}"
            if entry.get("duration_s") is not None:
                line += f"  {entry['duration_s']:.1f}s"
            if entry.get("error"):
                line += f"  {entry['error']}"
            lines.append(line)
        lines.append(f"index: {self.index_path}")
        return "\n".join(lines)


def check_kernel(name: str = KERNEL_NAME) -> None:
    """Raise ReportError naming the fix when the Jupyter kernel ``name`` is not installed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise ReportError(
            f"Jupyter kernel {name!r} is not installed; register it with "
            f"`python -m ipykernel install --sys-prefix --name {name} --display-name {name}`"
        ) from None


def git_commit(path: Path) -> str:
    """Short commit of the repository holding ``path`` (``+dirty`` if modified), or 'unknown'."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=path, capture_output=True,
            text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


@contextlib.contextmanager
def _plotly_mimetype_renderer() -> Iterator[None]:
    # Kernels inherit our environment: force the renderer that emits the plotly JSON mime
    # bundle (drawn offline by html.py) whatever IDE/terminal variables plotly would sniff.
    previous = os.environ.get("PLOTLY_RENDERER")
    os.environ["PLOTLY_RENDERER"] = "plotly_mimetype"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PLOTLY_RENDERER", None)
        else:
            os.environ["PLOTLY_RENDERER"] = previous


@contextlib.contextmanager
def _run_log(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger("quantlib.report"), logging.getLogger("papermill")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
        handler.close()


def _failed_notebook(job: NotebookJob, partial: Path, error: str) -> nbformat.NotebookNode:
    # papermill adds its own error cells for cell exceptions; for kernel deaths or timeouts we
    # add an equivalent marker so the HTML still points at the failure.
    nb = nbformat.read(partial if partial.exists() else job.path, as_version=4)
    marker = nbformat.v4.new_markdown_cell(
        f'<span id="papermill-error-cell" style="color:red">Run failed: {error}</span>'
    )
    nb.cells.insert(0, marker)
    return nb


# Run in each report kernel before the notebook: every notebook shows plotly figures, and
# plotly's renderers load nbformat -> jsonschema, whose optional "iri" format check compiles
# rfc3987_syntax's grammar (~1.6 CPU-s per kernel, measured: notebook 01 went from 3.2-3.9 to
# 1.9-2.0 kernel CPU-s). A None entry in sys.modules makes jsonschema skip that one check; no
# notebook validates IRIs. Report kernels only (as the console does in quantlib.cli): kernels
# of `make lab` and of the notebook tests import as usual.
KERNEL_EXEC_LINES = "import sys; sys.modules.setdefault('rfc3987_syntax', None)"


def _execute(job: NotebookJob, ipynb: Path, params: dict[str, Any], timeout: int) -> str | None:
    """Run one notebook; returns None on success or a one-line error."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(job.path), str(ipynb), parameters=params, kernel_name=KERNEL_NAME,
            cwd=str(job.path.parent), progress_bar=False, log_output=True,
            execution_timeout=timeout,
            extra_arguments=[f"--IPKernelApp.exec_lines={KERNEL_EXEC_LINES}"],
            # papermill saves the output notebook (validated, plotly JSON and all) after every
            # cell by default: ~0.4 CPU-s per notebook here, for a file nobody reads while it
            # runs. It still saves at the end, after a failing cell, a timeout or a dead kernel
            # (and every 30 s of a long cell).
            request_save_on_cell_execute=False,
        )
    except PapermillExecutionError as exc:
        return f"{exc.ename}: {exc.evalue} (cell In [{exc.exec_count}])"
    except Exception as exc:  # kernel death, timeout, bad notebook: record and carry on
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        nbformat.write(_failed_notebook(job, ipynb, error), str(ipynb))
        return error
    return None


def _plan(
    jobs: tuple[NotebookJob, ...], data: str | None, fast: bool
) -> list[tuple[NotebookJob, str, dict[str, Any], str | None]]:
    plan = []
    for job in jobs:
        sets = {"fast": {}} if fast else job.param_sets
        for set_name, params in sets.items():
            # --fast keeps the notebook's own defaults, source included unless --data is given.
            source = data if data is not None else (None if fast else job.source)
            full = dict(params)
            if source is not None and "source" not in job.parameters:
                # Injecting it would be silently ignored and the report would claim a data
                # source the notebook never used.
                logger.warning("%s declares no `source` parameter: data source %r not applied",
                               job.name, source)
                source = None
            if source is not None:
                full["source"] = source
            plan.append((job, set_name, full, source))
    return plan


def _preflight(plan: list[tuple[NotebookJob, str, dict[str, Any], str | None]],
               data: str | None) -> dict[str, Any]:
    """Parse every source of ``plan``; load ``data`` and every exchange source once.

    Returns the loaded exchange frames by source string. Raises ReportError naming the source,
    the notebooks that would use it and the loader's reason; no kernel has started then.
    """
    from quantlib.data import load, parse_source

    users: dict[str, list[str]] = {}
    for job, set_name, _, source in plan:
        if source is not None:
            users.setdefault(source, []).append(f"{job.name}/{set_name}")
    frames: dict[str, Any] = {}
    for source, names in users.items():
        try:
            kind = parse_source(source).kind
            if kind == "exchange" or source == data:
                logger.info("checking data source %s before starting notebooks", source)
                frame = load(source)
                if kind == "exchange":
                    frames[source] = frame
        except QuantlibError as exc:
            raise ReportError(f"data source {source!r} (for {', '.join(names)}) cannot be "
                              f"loaded, so no notebook was started: {exc}") from None
    return frames


def _hand_over(plan: list[tuple[NotebookJob, str, dict[str, Any], str | None]],
               frames: dict[str, Any], run_dir: Path
               ) -> list[tuple[NotebookJob, str, dict[str, Any], str | None]]:
    """Save each loaded exchange frame once under ``run_dir/data/`` and give the notebooks
    that file instead of the exchange source (the plan's source stays what was asked for)."""
    from quantlib.data import save_ohlcv

    files: dict[str, str] = {}
    for source, frame in frames.items():
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("_") or "data"
        path = save_ohlcv(frame, run_dir / "data" / f"{stem}.parquet")
        files[source] = f"file:{path}"
    return [(job, set_name, {**params, "source": files[source]} if source in files else params,
             source) for job, set_name, params, source in plan]


def _run_entry(
    job: NotebookJob, set_name: str, params: dict[str, Any], source: str | None,
    run_dir: Path, out: Path, manifest: dict[str, Any], config: ReportConfig,
    hide_code: bool, self_contained: bool,
) -> dict[str, Any]:
    stem = f"{job.name}.{set_name}"
    ipynb, html_path = run_dir / f"{stem}.ipynb", run_dir / f"{stem}.html"
    logger.info("running %s with %s", stem, params)
    started = time.perf_counter()
    error = _execute(job, ipynb, params, config.timeout)
    duration = time.perf_counter() - started
    nb = nbformat.read(str(ipynb), as_version=4)
    metrics, data = read_recorded(nb)
    synthetic = data.get("source") == "synthetic" or (
        not data and (source or "sample").startswith("sample")
    )
    handed_file = source is not None and params.get("source") != source
    entry = {
        "notebook": job.name, "param_set": set_name, "parameters": params,
        # what the notebook actually loaded (record_data) beats what was asked for, except for
        # the run's own copy of exchange data: that file is named in parameters and data
        "source": source if handed_file else (data.get("source_string") or source),
        "status": "failed" if error else "ok", "error": error, "duration_s": round(duration, 3),
        "metrics": metrics, "data": data, "synthetic": synthetic,
        "ipynb": ipynb.name, "html": html_path.name,
    }
    header = {**entry, "run_id": manifest["run_id"], "started_at": manifest["started_at"],
              "quantlib_version": manifest["quantlib_version"],
              "git_commit": manifest["git_commit"]}
    page = render_html(nb, header, plotly_script=plotly_script_tag(html_path, out,
                       self_contained=self_contained), hide_code=hide_code)
    html_path.write_text(page, encoding="utf-8")
    log = logger.error if error else logger.info
    log("%s %s in %.1fs%s", stem, entry["status"], duration, f": {error}" if error else "")
    return entry


def _open_run_dir(out: Path, run_id: str | None, force: bool) -> tuple[str, Path, bool]:
    if run_id is None:
        run_id = new_run_id()
        run_dir = out / run_id
        run_dir.mkdir(parents=True)  # unique id: never reuses another run's directory
        return run_id, run_dir, False
    if not run_id or "/" in run_id or run_id.startswith((".", "assets")):
        raise ReportError(f"--run-id {run_id!r}: expected a plain directory name")
    run_dir = out / run_id
    previous = read_manifest(run_dir)
    if previous is not None and is_run_active(run_dir):
        raise ReportError(f"run {run_id} is in progress in another process ({run_dir})")
    done = previous is not None and previous.get("status") == "ok" and not force
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_id, run_dir, done


def run_report(
    config: str | Path = DEFAULT_CONFIG,
    *,
    data: str | None = None,
    out: str | Path = "reports",
    only: list[str] | None = None,
    fast: bool = False,
    hide_code: bool | None = None,
    self_contained: bool = False,
    run_id: str | None = None,
    force: bool = False,
    skip_missing: bool = False,
    jobs: int = 1,
) -> ReportRun:
    """Run the configured notebooks and write their reports and the index.

    Parameters
    ----------
    config : str or Path
        Report config YAML (default ``notebooks/reports.yaml``).
    data : str, optional
        Data source string passed to every notebook as ``source`` (overrides the config).
    out : str or Path
        Reports directory; this run goes to ``out/<run-id>/``.
    only : list of str, optional
        Notebook names to run (default: all in the config).
    fast : bool
        Use each notebook's own (small, fast) default parameters instead of the config's.
    hide_code : bool, optional
        Hide code cells in the HTML (default: the config's ``defaults.hide_code``).
    self_contained : bool
        Inline plotly.js into every report instead of sharing ``out/assets/plotly-*.js``.
    run_id : str, optional
        A fixed run id (e.g. the date, for cron). A run id that already completed ``ok`` is
        not run again unless ``force`` (idempotent schedules); a failed one is re-run.
    skip_missing : bool
        Leave out config notebooks whose file does not exist instead of raising ReportError.
    jobs : int
        Notebooks executed at the same time (each in its own kernel); the index and manifest
        keep the config's order whatever finishes first.

    Returns
    -------
    ReportRun
        ``.failures`` lists the failed runs; the CLI exits non-zero when there are any.

    Examples
    --------
    >>> run = run_report("notebooks/reports.yaml", fast=True)  # doctest: +SKIP
    >>> print(run.summary())  # doctest: +SKIP
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ReportError(f"--jobs {jobs!r}: expected an integer >= 1")
    out = Path(out).resolve()
    cfg = load_config(config, require_notebooks=False)
    selected = cfg.select(only, skip_missing=skip_missing)
    check_kernel()
    hide = cfg.hide_code if hide_code is None else hide_code
    plan = _plan(selected, data, fast)
    out.mkdir(parents=True, exist_ok=True)
    run_id, run_dir, done = _open_run_dir(out, run_id, force)
    if done:
        logger.info("run %s already completed ok; nothing to do (use --force to re-run)", run_id)
        return ReportRun(run_id, run_dir, update_index(out),
                         read_manifest(run_dir)["entries"], skipped=True)
    try:
        frames = _preflight(plan, data)
    except ReportError:
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only if empty: a run that never started leaves nothing behind
        raise
    with file_lock(run_dir / RUN_LOCK, blocking=False) as acquired:
        if not acquired:
            raise ReportError(f"run {run_id} is in progress in another process ({run_dir})")
        with _run_log(run_dir / "run.log"):
            plan = _hand_over(plan, frames, run_dir)
            manifest = {
                "run_id": run_id, "started_at": datetime.now(UTC).isoformat(),
                "quantlib_version": quantlib.__version__, "git_commit": git_commit(cfg.path.parent),
                "config": str(cfg.path), "data": data, "fast": fast, "status": "running",
                "entries": [{"notebook": job.name, "param_set": name, "parameters": params,
                             "source": source, "status": "pending"}
                            for job, name, params, source in plan],
            }
            logger.info("run %s: %d notebook run(s) into %s", run_id, len(plan), run_dir)
            write_manifest(run_dir, manifest)
            update_index(out)
            guard = threading.Lock()  # one writer of the manifest and index at a time

            def run_one(position: int) -> None:
                job, set_name, params, source = plan[position]
                with guard:
                    manifest["entries"][position]["status"] = "running"
                    write_manifest(run_dir, manifest)
                entry = _run_entry(job, set_name, params, source, run_dir, out, manifest, cfg,
                                   hide, self_contained)
                with guard:
                    manifest["entries"][position] = entry
                    write_manifest(run_dir, manifest)
                    update_index(out)

            with _plotly_mimetype_renderer(), ThreadPoolExecutor(max_workers=jobs) as pool:
                # each thread drives its own kernel process; list() re-raises any error
                list(pool.map(run_one, range(len(plan))))
            failed = any(entry["status"] != "ok" for entry in manifest["entries"])
            manifest["status"] = "failed" if failed else "ok"
            manifest["finished_at"] = datetime.now(UTC).isoformat()
            write_manifest(run_dir, manifest)
    index_path = update_index(out)
    return ReportRun(run_id, run_dir, index_path, manifest["entries"])


__all__ = ["run_report", "ReportRun", "check_kernel", "git_commit", "KERNEL_NAME"]
