"""``quantlib strategy validate|promote|retire`` and ``quantlib backtest --strategy FILE``."""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from quantlib.core.registry import get_kind
from quantlib.errors import QuantlibError, SpecError
from quantlib.strategy import approvals
from quantlib.strategy.evidence import check_in_sample
from quantlib.strategy.gates import GateConfig, check_gates, promote
from quantlib.strategy.spec import load_spec, save_spec

strategy_app = typer.Typer(help="Validate and promote JSON strategy specs.", no_args_is_help=True)


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


@strategy_app.command("validate")
def validate(file: Path = typer.Argument(..., help="strategy spec JSON")) -> None:
    """Check a spec; print every problem with its JSON path."""
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
    approver: str | None = typer.Option(None, "--approver", "--by",
                                        help="who approves (default: the OS user)"),
    ledger: Path | None = typer.Option(
        None, "--ledger", envvar="QUANTLIB_APPROVALS",
        help="approvals ledger (default: approvals.db beside the --out-dir folder)"),
) -> None:
    """Re-derive the evidence, check the gates, record the approval in the ledger and write
    the approved spec; or list what failed. Only this command lets a spec trade live."""
    try:
        spec = load_spec(file)
        evidence = check_in_sample(spec, base_dir=file.parent)
        cfg = GateConfig(min_oos_sharpe=min_oos_sharpe, min_dsr=min_dsr, max_pbo=max_pbo,
                         min_trades=min_trades)
        who = approver or getpass.getuser()
        approved = promote(spec, cfg, by=who, out_dir=None, base_dir=file.parent)
        target = out_dir / f"{approved.name}.json"
        book = approvals.ledger_path(ledger, beside=out_dir)
        # the ledger first: a written spec without its ledger row could never trade anyway
        record = approvals.grant(book, approved, gates=check_gates(spec, cfg, file.parent),
                                 thresholds=cfg.__dict__, approver=who, spec_file=target)
        save_spec(approved, target)
    except QuantlibError as exc:
        _fail(exc)
        return
    if not evidence.rederived:
        typer.echo(f"note: evidence not re-derived: {evidence.note}", err=True)
    typer.echo(f"approved: {target} (gates: {', '.join(approved.approval.gates_passed)}; "
               f"hash {record.spec_hash}; ledger {book})")


@strategy_app.command("retire")
def retire_cmd(
    file: Path = typer.Argument(..., help="approved strategy spec JSON"),
    reason: str = typer.Option("", "--reason", help="why (kept in the ledger)"),
    by: str | None = typer.Option(None, "--by", help="who retires it (default: the OS user)"),
    ledger: Path | None = typer.Option(
        None, "--ledger", envvar="QUANTLIB_APPROVALS",
        help="approvals ledger (default: approvals.db beside the spec's folder)"),
) -> None:
    """Withdraw a spec's approval: live mode refuses it from then on."""
    try:
        spec = load_spec(file)
        book = approvals.ledger_path(ledger, beside=file.parent)
        approvals.retire(book, spec, by=by, reason=reason)
    except QuantlibError as exc:
        _fail(exc)
        return
    typer.echo(f"retired: {file} (hash {approvals.approval_hash(spec)}; ledger {book})")


def backtest_spec(spec_file: Path, data: str | Sequence[str] | None = None):
    """Backtest a spec on ``data``; default: the spec's provenance source.

    ``data`` is a source string for a one-symbol spec; a portfolio spec needs one source per
    symbol, ``SYMBOL=SOURCE`` each (a list, or joined with commas), and runs as one shared-cash
    portfolio exactly as ``run_backtest(kind, {symbol: frame}, ...)`` does. Signal kinds run on
    the project's own order and stop rules (:mod:`quantlib.backtest.rule_engine`, no vectorbt
    import); grid kinds on the grid engine.

    Examples
    --------
    >>> per_symbol_sources(["BTC/USD=sample:seed=1,bars=300", "ETH/USD=sample"], ["BTC/USD", "ETH/USD"])
    {'BTC/USD': 'sample:seed=1,bars=300', 'ETH/USD': 'sample'}
    """
    from quantlib.backtest.rule_engine import run_signal_rules
    from quantlib.data import load

    spec = load_spec(spec_file)
    given = [data] if isinstance(data, str) else list(data or [])
    given = given or ([spec.provenance.data_source] if spec.provenance.data_source else [])
    if spec.market == "perp":
        return _backtest_perp(spec, given, spec_file)
    if not given:
        raise SpecError(f"{spec_file}: no --data given and $.provenance.data_source is empty")
    if len(spec.symbols) == 1 and len(given) == 1 and not _SYMBOL_SOURCE.match(given[0]):
        frames: Any = load(given[0])
    else:
        sources = per_symbol_sources(given, spec.symbols, where=str(spec_file))
        frames = {symbol: load(sources[symbol]) for symbol in spec.symbols}
        frames = frames if len(frames) > 1 else frames[spec.symbol]
    informative = _informative_data(spec, spec_file)
    if get_kind(spec.kind).engine == "signals":
        return run_signal_rules(spec.kind, frames, spec.params, spec.backtest_config(),
                                informative=informative)
    from quantlib.backtest.engine import run_backtest

    return run_backtest(spec.kind, frames, spec.params, spec.backtest_config(),
                        informative=informative)


def _backtest_perp(spec, given: list[str], spec_file: Path):
    """A perp spec on :func:`~quantlib.data.perp.load_perp` data (candles, mark, funding):
    ``--data`` or the spec's provenance source, else the offline synthetic sample."""
    from quantlib.backtest.perp import run_perp_backtest
    from quantlib.data.perp import load_perp

    if len(given) > 1:
        raise SpecError(f"{spec_file}: a perp spec trades one swap; give one --data source "
                        f"(got {len(given)})")
    perp = load_perp(given[0] if given else "sample")
    return run_perp_backtest(spec.kind, perp.ohlcv, spec.params, spec.perp_config(),
                             funding=perp.funding, mark=perp.mark)


# "BTC/USD=" at the start of a --data value: a source for one symbol of the spec
_SYMBOL_SOURCE = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+=")
# a comma that starts another SYMBOL=SOURCE (source strings have commas of their own)
_NEXT_SYMBOL = re.compile(r",(?=[A-Z0-9]+/[A-Z0-9]+=)")


def per_symbol_sources(values: Sequence[str], symbols: Sequence[str],
                       where: str = "--data") -> dict[str, str]:
    """``{symbol: source}`` from ``SYMBOL=SOURCE`` values (each may join several with commas);
    every spec symbol exactly once, nothing else.

    Examples
    --------
    >>> per_symbol_sources(["A/B=file:a.csv,C/D=sample:bars=9,seed=2"], ["A/B", "C/D"])
    {'A/B': 'file:a.csv', 'C/D': 'sample:bars=9,seed=2'}
    """
    out: dict[str, str] = {}
    for value in values:
        for part in _NEXT_SYMBOL.split(value):
            if not _SYMBOL_SOURCE.match(part):
                raise SpecError(f"{where}: --data {part!r}: $.symbols: the spec trades "
                                f"{list(symbols)}; give one SYMBOL=SOURCE per symbol (e.g. --data "
                                f"'{symbols[0]}=file:bars.csv')")
            symbol, source = part.split("=", 1)
            if symbol not in symbols:
                raise SpecError(f"{where}: --data {part!r}: {symbol} is not one of the spec's "
                                f"$.symbols {list(symbols)}")
            if symbol in out:
                raise SpecError(f"{where}: --data: {symbol} is given twice")
            out[symbol] = source
    missing = [s for s in symbols if s not in out]
    if missing:
        raise SpecError(f"{where}: --data: no source for {missing} of the spec's $.symbols "
                        f"{list(symbols)} (give SYMBOL=SOURCE for each)")
    return out


def _informative_data(spec, spec_file: Path) -> dict:
    """Data of the kind's inputs that are other symbols, from ``$.provenance.informative``
    (inputs resampled from the base or with their own source string load themselves)."""
    from quantlib.data import load

    kind = get_kind(spec.kind)
    out = {}
    for item in kind.informative_inputs(kind.validate(spec.params)):
        if item.source or item.symbol in (None, spec.symbol):
            continue
        recorded = spec.provenance.informative.get(item.name)
        if recorded is None or not recorded.data_source:
            raise SpecError(f"{spec_file}: $.provenance.informative.{item.name}.data_source is "
                            f"needed: the kind reads {item.symbol} and the spec does not say "
                            "where its data comes from")
        out[item.name] = load(recorded.data_source)
    return out


def register(app: typer.Typer) -> None:
    """Attach ``quantlib strategy ...`` and ``quantlib backtest --strategy`` to the root app."""
    app.add_typer(strategy_app, name="strategy")

    @app.command("backtest")
    def backtest(strategy: Path = typer.Option(..., "--strategy", help="strategy spec JSON"),
                 data: list[str] | None = typer.Option(
                     None, "--data", help="data source string; a portfolio spec takes "
                     "SYMBOL=SOURCE for each symbol (repeat --data, or join with commas); a "
                     "perp spec a perp source (binanceusdm:BTC/USDT:USDT:1h:SINCE, or sample: "
                     "the default without a recorded source)")
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


__all__ = ["register", "strategy_app", "backtest_spec", "per_symbol_sources"]
