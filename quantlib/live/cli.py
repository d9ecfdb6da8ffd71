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
    kernels: str = typer.Option(
        "auto", "--kernels", envvar="QUANTLIB_KERNELS",
        help="aot: ahead-of-time compiled kernels (no numba in this process; built once if "
             "missing); jit: numba; auto: aot, else jit with a warning"),
) -> None:
    """Trade a spec once per closed candle (paper may run drafts; live needs approved)."""
    stream = open(log_file, "a") if log_file else sys.stderr  # noqa: SIM115 - lives as long as the run
    from quantlib.live.logs import JsonLogger

    logger = JsonLogger(stream)
    try:
        _choose_kernels(kernels, logger)  # before anything imports a kernel
    except QuantlibError as exc:
        _fail(exc)
        return
    from quantlib.live.brokers import PaperBroker
    from quantlib.live.feeds import ExchangeFeed, ReplayFeed
    from quantlib.live.runner import LiveRunner
    from quantlib.live.state import StateStore
    from quantlib.strategy.registry import get_kind
    from quantlib.strategy.spec import load_spec

    try:
        spec = load_spec(strategy)
        if mode == "live" and spec.approval.status != "approved":
            from quantlib.errors import LiveError

            raise LiveError(f"spec {spec.name!r} has approval status {spec.approval.status!r}; "
                            "live mode trades only approved specs")
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


def _choose_kernels(choice: str, logger) -> None:
    """Bind this process's kernels: ahead-of-time compiled (no numba, ~150 MB less memory) or
    numba's JIT. ``auto`` falls back to the JIT, with a warning, when AOT kernels cannot be
    built or loaded here (no C compiler, numba without pycc, kernels imported already)."""
    from quantlib import jit
    from quantlib.errors import KernelError

    if choice not in ("auto", "aot", "jit"):
        raise typer.BadParameter(f"--kernels {choice!r}: expected auto, aot or jit")
    if choice == "jit":
        logger.info("kernels", mode="jit")
        return
    if not jit.extension_path().exists():
        logger.info("kernels_build", reason="no ahead-of-time kernels for these sources yet; "
                    "compiling them once (~30 s)", extension=str(jit.extension_path()))
    try:
        path = jit.use_aot()
    except KernelError as exc:
        if choice == "aot":
            raise
        logger.warning("kernels", mode="jit", reason=str(exc))
        return
    logger.info("kernels", mode="aot", extension=str(path))


@live_app.command("build-kernels")
def build_kernels() -> None:
    """Compile the trading process's kernels ahead of time (once per quantlib/numba version;
    `live run` does it on first use otherwise). Prints the extension's path."""
    from quantlib import jit

    try:
        typer.echo(str(jit.ensure_built()))
    except QuantlibError as exc:
        _fail(exc)


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
