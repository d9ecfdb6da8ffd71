"""``quantlib strategy validate|promote`` and ``quantlib backtest --strategy FILE``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from quantlib.errors import QuantlibError

strategy_app = typer.Typer(help="Validate and promote JSON strategy specs.", no_args_is_help=True)


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


@strategy_app.command("validate")
def validate(file: Path = typer.Argument(..., help="strategy spec JSON")) -> None:
    """Check a spec; print every problem with its JSON path."""
    from quantlib.strategy.spec import load_spec

    try:
        spec = load_spec(file)
    except QuantlibError as exc:
        _fail(exc)
        return
    typer.echo(f"{file}: valid spec {spec.name!r} (kind {spec.kind}, {spec.approval.status})")


@strategy_app.command("promote")
def promote_cmd(
    file: Path = typer.Argument(..., help="draft strategy spec JSON"),
    out_dir: Path = typer.Option(Path("strategies"), "--out-dir", help="where approved specs go"),
    min_oos_sharpe: float = typer.Option(1.0, help="minimum out-of-sample Sharpe"),
    min_dsr: float = typer.Option(0.95, help="minimum deflated Sharpe ratio"),
    max_pbo: float = typer.Option(0.5, help="maximum probability of backtest overfitting"),
    min_trades: int = typer.Option(30, help="minimum number of trades"),
    by: str = typer.Option("quantlib", help="approver recorded in the spec"),
) -> None:
    """Check the promotion gates; write the approved spec or list each failed gate."""
    from quantlib.strategy.gates import GateConfig, promote
    from quantlib.strategy.spec import load_spec

    try:
        spec = load_spec(file)
        cfg = GateConfig(min_oos_sharpe=min_oos_sharpe, min_dsr=min_dsr, max_pbo=max_pbo,
                         min_trades=min_trades)
        approved = promote(spec, cfg, by=by, out_dir=out_dir, base_dir=file.parent)
    except QuantlibError as exc:
        _fail(exc)
        return
    typer.echo(f"approved: {out_dir / (approved.name + '.json')} "
               f"(gates: {', '.join(approved.approval.gates_passed)})")


def backtest_spec(spec_file: Path, data: str | None = None):
    """Backtest a spec on ``data`` (a source string; default: the spec's provenance source)."""
    from quantlib.backtest.engine import run_backtest
    from quantlib.data import load
    from quantlib.errors import SpecError
    from quantlib.strategy.spec import load_spec

    spec = load_spec(spec_file)
    source = data or spec.provenance.data_source
    if not source:
        raise SpecError(f"{spec_file}: no --data given and $.provenance.data_source is empty")
    frame = load(source)
    return run_backtest(spec.kind, frame, spec.params, spec.backtest_config())


def register(app: typer.Typer) -> None:
    """Attach ``quantlib strategy ...`` and ``quantlib backtest --strategy`` to the root app."""
    app.add_typer(strategy_app, name="strategy")
    registered = {getattr(c, "name", None) for c in app.registered_commands}
    registered |= {getattr(g, "name", None) for g in app.registered_groups}
    if "backtest" in registered:
        return  # the backtest package owns the command; it should accept --strategy itself

    @app.command("backtest")
    def backtest(strategy: Path = typer.Option(..., "--strategy", help="strategy spec JSON"),
                 data: str | None = typer.Option(None, "--data", help="data source string")
                 ) -> None:
        """Backtest a strategy spec and print its metrics."""
        try:
            res = backtest_spec(strategy, data)
        except QuantlibError as exc:
            _fail(exc)
            return
        row = res.metrics.iloc[0].to_dict()
        typer.echo(json.dumps({k: (float(v) if isinstance(v, int | float) else str(v))
                               for k, v in row.items()}, indent=2))


__all__ = ["register", "strategy_app", "backtest_spec"]
