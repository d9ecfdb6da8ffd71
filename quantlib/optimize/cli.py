"""``quantlib optimize``: grid sweeps and optuna studies from the command line.

Running the same command (same ``--storage`` and ``--study``) on several machines makes them all
work on one study: optuna coordinates through the database.
"""

from __future__ import annotations

import json

import typer

from quantlib.data import load
from quantlib.errors import ParameterError, QuantlibError
from quantlib.optimize.space import SearchSpace, parse_ranges
from quantlib.optimize.study import run_study
from quantlib.optimize.study_checks import check_splits, check_study_options
from quantlib.optimize.sweep import sweep


def optimize(
    kind: str = typer.Option(..., "--kind", help="registered strategy kind, e.g. ma_cross, grid"),
    data: str = typer.Option("sample", "--data", help="data source string (quantlib.data.load)"),
    sampler: str = typer.Option("tpe", help="tpe | random | cmaes | nsga2 | grid (full sweep)"),
    trials: int = typer.Option(50, "--trials", help="trials in total (split over --workers)"),
    storage: str = typer.Option(None, help="SQLAlchemy URL; default sqlite:///reports/optuna.db"),
    study: str = typer.Option(None, "--study", help="study name (joined if it exists)"),
    workers: int = typer.Option(1, help="processes working on the study through --storage"),
    objective: str = typer.Option("sharpe", help="metric(s), comma separated (nsga2: several)"),
    space: str = typer.Option("", help="ranges, e.g. 'fast=5:50:5,slow=20:200:10,mode=a|b'"),
    min_trades: int = typer.Option(None, help="constraint: at least this many trades"),
    max_drawdown: float = typer.Option(None, help="constraint: |max drawdown| at most this"),
    seed: int = typer.Option(0, help="sampler seed (worker i uses seed + i)"),
    pruner: str = typer.Option("none", help="none | median"),
    splits: int = typer.Option(16, help="CSCV blocks for PBO"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Search a kind's parameters (optuna study or grid sweep) and report DSR / PBO."""
    try:
        ranges = parse_ranges(space) if space else None
        objectives = tuple(o.strip() for o in objective.split(",") if o.strip())
        # Every option is checked before the data is loaded (maybe a download) or a trial runs.
        _check_options(kind, ranges, sampler, trials, workers, splits, objectives, pruner,
                       min_trades, max_drawdown, storage)
        frame = load(data)
        if sampler == "grid":
            res = sweep(kind, frame, ranges, objective=objectives[0], n_splits=splits)
            best, text = res.best_params, res.summary()
            report = res.report
        else:
            res = run_study(kind, frame, space=ranges, sampler=sampler, n_trials=trials,
                            objectives=objectives, min_trades=min_trades,
                            max_drawdown=max_drawdown, storage=storage, study_name=study,
                            seed=seed, pruner=pruner, n_workers=workers, n_splits=splits)
            best, text, report = res.best_params, res.summary(), res.report
    except QuantlibError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        payload = {"best_params": best, **(report.as_dict() if report else {})}
        if sampler != "grid":
            payload["study"] = res.study.study_name
            payload["ran_trials"] = res.ran_trials
        typer.echo(json.dumps(payload, default=str))
    else:
        typer.echo(text)


def _check_options(kind: str, ranges: dict | None, sampler: str, trials: int, workers: int,
                   splits: int, objectives: tuple[str, ...], pruner: str, min_trades: int | None,
                   max_drawdown: float | None, storage: str | None) -> None:
    """Raise ParameterError for the first bad option, before any data or trial."""
    if sampler == "grid":
        check_splits(splits)
        if not objectives:
            raise ParameterError("objectives (--objective): expected a metric name")
    else:
        check_study_options(sampler=sampler, n_trials=trials, n_workers=workers,
                            n_splits=splits, objectives=objectives, pruner=pruner,
                            min_trades=min_trades, max_drawdown=max_drawdown, storage=storage)
    SearchSpace.from_kind(kind, ranges)  # unknown kind or parameter, bad range


def register(app: typer.Typer) -> None:
    """Add the ``optimize`` command to the root ``quantlib`` app."""
    app.command("optimize")(optimize)


def _standalone() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(optimize)
    return app


if __name__ == "__main__":  # ``python -m quantlib.optimize.cli``: a worker on another machine
    _standalone()()
