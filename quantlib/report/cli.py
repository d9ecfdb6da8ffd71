"""``quantlib report``: run the report notebooks; ``quantlib report prune`` / ``index``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from quantlib.errors import ReportError
from quantlib.report.config import DEFAULT_CONFIG
from quantlib.report.index import update_index
from quantlib.report.pipeline import run_report
from quantlib.report.store import prune_runs

report_app = typer.Typer(
    help="Run the report notebooks through papermill into offline HTML reports.",
    invoke_without_command=True,
    no_args_is_help=False,
)


class _StderrHandler(logging.StreamHandler):
    # Resolve sys.stderr at emit time: it may be swapped (test runners, redirection).
    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _console_logging() -> None:
    # Progress lines on the console; papermill's cell-by-cell log goes only to run.log.
    console = logging.getLogger("quantlib.report")
    if not any(isinstance(h, _StderrHandler) for h in console.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        console.addHandler(handler)
    console.setLevel(logging.INFO)


@report_app.callback()
def report(
    ctx: typer.Context,
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", help="Report config YAML."),
    data: str = typer.Option(None, "--data", help="Data source string for every notebook."),
    out: Path = typer.Option(Path("reports"), "--out", help="Reports directory."),
    only: list[str] = typer.Option(None, "--only", help="Run only this notebook (repeatable)."),
    fast: bool = typer.Option(False, "--fast", help="Use the notebooks' small default parameters."),
    hide_code: bool = typer.Option(None, "--hide-code/--show-code", help="Hide code cells."),
    self_contained: bool = typer.Option(
        False, "--self-contained", help="Inline plotly.js in every report (bigger files)."
    ),
    run_id: str = typer.Option(None, "--run-id", help="Fixed run id (idempotent cron runs)."),
    force: bool = typer.Option(False, "--force", help="Re-run a --run-id that already passed."),
    skip_missing: bool = typer.Option(
        False, "--skip-missing", help="Skip config notebooks whose file does not exist."
    ),
    keep: int = typer.Option(None, "--keep", help="After the run, prune all but the newest N."),
    jobs: int = typer.Option(2, "--jobs", help="Notebooks run at the same time (own kernels)."),
) -> None:
    """Run every notebook of the config and update reports/index.html."""
    if ctx.invoked_subcommand is not None:
        return
    _console_logging()
    try:
        run = run_report(
            config, data=data, out=out, only=only or None, fast=fast, hide_code=hide_code,
            self_contained=self_contained, run_id=run_id, force=force, skip_missing=skip_missing,
            jobs=jobs,
        )
        if keep is not None:
            prune_runs(out, keep=keep)
            update_index(out)
    except ReportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(run.summary())
    if run.failures:
        names = ", ".join(f"{e['notebook']}/{e['param_set']}" for e in run.failures)
        typer.echo(f"FAILED: {names}", err=True)
        raise typer.Exit(1)


@report_app.command("prune")
def prune(
    out: Path = typer.Option(Path("reports"), "--out", help="Reports directory."),
    keep: int = typer.Option(None, "--keep", help="Keep the newest N runs."),
    older_than: float = typer.Option(None, "--older-than", help="Delete runs older than DAYS."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be deleted."),
) -> None:
    """Delete old runs by count and/or age (runs in progress are kept) and rebuild the index."""
    try:
        pruned = prune_runs(out, keep=keep, older_than_days=older_than, dry_run=dry_run)
    except ReportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not dry_run:
        update_index(out)
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb} {len(pruned)} run(s)" + "".join(f"\n  {name}" for name in pruned))


@report_app.command("index")
def index(out: Path = typer.Option(Path("reports"), "--out", help="Reports directory.")) -> None:
    """Rebuild reports/index.html from the runs on disk."""
    typer.echo(str(update_index(out)))


def register(app: typer.Typer) -> None:
    """Add the ``report`` command group to the root ``quantlib`` app."""
    app.add_typer(report_app, name="report")


__all__ = ["register", "report_app"]
