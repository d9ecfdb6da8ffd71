"""``quantlib live run|stop|status``: the live runner from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from quantlib.errors import QuantlibError

live_app = typer.Typer(help="Run strategy specs on paper or live (ccxt), crash-safe.",
                       no_args_is_help=True)


def stop_file_for(state: Path) -> Path:
    """The kill-switch file of a state file (``STATE.db.stop``)."""
    return Path(str(state) + ".stop")


def status_file_for(state: Path) -> Path:
    """The heartbeat file of a state file (``STATE.db.status.json``)."""
    return Path(str(state) + ".status.json")


def _fail(exc: Exception) -> None:
    from quantlib.live.logs import redact

    typer.echo(f"error: {redact(str(exc))}", err=True)
    raise typer.Exit(2)


def _public_exchange(name: str):
    # Market data needs no keys; keys are only read for the live broker.
    import ccxt

    from quantlib.data.endpoints import apply_env_override

    return apply_env_override(getattr(ccxt, name)({"enableRateLimit": True}), name)


@live_app.command("run")
def run(
    strategy: Path = typer.Option(..., "--strategy", help="strategy spec JSON"),
    mode: str = typer.Option("paper", "--mode", help="paper | live"),
    feed: str = typer.Option(..., "--feed", help="exchange | replay:FILE"),
    state: Path = typer.Option(..., "--state", help="SQLite state file (created if absent)"),
    log_file: Path | None = typer.Option(None, "--log-file", help="JSON log (default stderr)"),
    max_bars: int | None = typer.Option(None, "--max-bars", help="stop after N bars"),
    poll_seconds: float = typer.Option(5.0, "--poll-seconds", help="exchange feed poll period"),
) -> None:
    """Trade a spec once per closed candle (paper may run drafts; live needs approved)."""
    from quantlib.live.brokers import PaperBroker
    from quantlib.live.feeds import ExchangeFeed, ReplayFeed
    from quantlib.live.logs import JsonLogger
    from quantlib.live.runner import LiveRunner
    from quantlib.live.state import StateStore
    from quantlib.strategy.registry import get_kind
    from quantlib.strategy.spec import load_spec

    stream = open(log_file, "a") if log_file else sys.stderr  # noqa: SIM115 - lives as long as the run
    try:
        spec = load_spec(strategy)
        if mode == "live" and spec.approval.status != "approved":
            from quantlib.errors import LiveError

            raise LiveError(f"spec {spec.name!r} has approval status {spec.approval.status!r}; "
                            "live mode trades only approved specs")
        logger = JsonLogger(stream)
        store = StateStore(state, durable=(mode == "live"))
        exchange = None
        if mode == "live":
            from quantlib.live.brokers.ccxt_broker import CcxtBroker, make_exchange

            exchange = make_exchange(spec.exchange)
            broker = CcxtBroker(store, spec, exchange, logger=logger)
        else:
            broker = PaperBroker(store, spec)
        if feed.startswith("replay:"):
            bars = ReplayFeed(feed.split(":", 1)[1])
        elif feed == "exchange":
            kind = get_kind(spec.kind)
            exchange = exchange or _public_exchange(spec.exchange)
            bars = ExchangeFeed(exchange, spec.symbol, spec.timeframe,
                                history=kind.warmup(kind.validate(spec.params)) + 2,
                                poll_seconds=poll_seconds)
        else:
            raise typer.BadParameter(f"--feed {feed!r}: expected 'exchange' or 'replay:FILE'")
        runner = LiveRunner(spec, broker, store, bars, mode=mode, stop_file=stop_file_for(state),
                            status_file=status_file_for(state), logger=logger, max_bars=max_bars)
        summary = runner.run()
    except QuantlibError as exc:
        _fail(exc)
        return
    typer.echo(json.dumps({"bars_processed": summary.bars_processed, "last_bar": summary.last_bar,
                           "stopped_by": summary.stopped_by, "equity": summary.equity}))


@live_app.command("stop")
def stop(state: Path = typer.Option(..., "--state", help="state file of the run to stop"),
         cancel_orders: bool = typer.Option(
             False, "--cancel-orders",
             help="also cancel the orders resting at the exchange (grid bots); without it they "
                  "stay and a restart applies whatever filled meanwhile")) -> None:
    """Engage the kill switch: the runner finishes its current bar and exits."""
    from quantlib.live import CANCEL_ORDERS

    path = stop_file_for(state)
    path.write_text("stop requested\n" + (CANCEL_ORDERS + "\n" if cancel_orders else ""))
    typer.echo(f"kill switch engaged: {path} (delete it to allow trading again)")


@live_app.command("status")
def status(state: Path = typer.Option(..., "--state", help="state file")) -> None:
    """Print the last bar, position, equity, orders and health of a run."""
    from quantlib.live.runner import read_status

    try:
        info = read_status(state)
    except QuantlibError as exc:
        _fail(exc)
        return
    heartbeat = status_file_for(state)
    if heartbeat.exists():
        info["heartbeat"] = json.loads(heartbeat.read_text())
    info["kill_switch"] = stop_file_for(state).exists()
    typer.echo(json.dumps(info, indent=2, default=str))


def register(app: typer.Typer) -> None:
    """Attach ``quantlib live ...`` to the root app."""
    app.add_typer(live_app, name="live")


__all__ = ["register", "live_app", "stop_file_for", "status_file_for"]
