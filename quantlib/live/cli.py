"""``quantlib live run|stop|status``: the live runner from the command line.

What ``live run`` builds its run from (runner, brokers, the spec) is imported inside
:func:`run`, after :func:`_choose_kernels`: those modules load the compiled kernels, and the
choice between ahead-of-time and JIT kernels must be made before any kernel module is
imported (:func:`quantlib.jit.use_aot`).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path

import typer

from quantlib import jit
from quantlib.core.endpoints import apply_env_override
from quantlib.core.registry import get_kind
from quantlib.errors import KernelError, LiveError, QuantlibError
from quantlib.live import CANCEL_ORDERS
from quantlib.live.exchange_feeds import ExchangeFeed, PortfolioExchangeFeed
from quantlib.live.feed_factory import make_feed
from quantlib.live.feeds import Feed
from quantlib.live.informative_feeds import spec_input_symbols
from quantlib.live.logs import JsonLogger, redact
from quantlib.live.perp_feed import PerpExchangeFeed
from quantlib.live.state import StateStore, is_state_file
from quantlib.live.status_board import format_lines, read_status, scan
from quantlib.live.watch import attach

live_app = typer.Typer(help="Run strategy specs on paper or live (ccxt), crash-safe.",
                       no_args_is_help=True)


def stop_file_for(state: Path) -> Path:
    """The kill-switch file of a state file (``STATE.db.stop``)."""
    return Path(str(state) + ".stop")


def status_file_for(state: Path) -> Path:
    """The heartbeat file of a state file (``STATE.db.status.json``)."""
    return Path(str(state) + ".status.json")


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {redact(str(exc))}", err=True)
    raise typer.Exit(2)


def _public_exchange(name: str):
    # Market data needs no keys; keys are only read for the live broker.
    import ccxt

    return apply_env_override(getattr(ccxt, name)({"enableRateLimit": True}), name)


@live_app.command("run")
def run(
    strategy: Path = typer.Option(..., "--strategy", help="strategy spec JSON"),
    mode: str = typer.Option("paper", "--mode", help="paper | live"),
    feed: str = typer.Option(..., "--feed", help="exchange | replay:FILE | replay:SYMBOL=FILE,"
                             "SYMBOL=FILE,... (a portfolio spec: one file per symbol) | "
                             "replay-perp:CANDLES,mark=FILE,funding=FILE (a perp spec; "
                             "--feed exchange polls the swap's candles, mark and funding)"),
    state: Path = typer.Option(..., "--state", help="SQLite state file (created if absent)"),
    log_file: Path | None = typer.Option(None, "--log-file", help="JSON log (default stderr)"),
    max_bars: int | None = typer.Option(None, "--max-bars", help="stop after N bars"),
    poll_seconds: float = typer.Option(5.0, "--poll-seconds", help="exchange feed poll period"),
    kernels: str = typer.Option(
        "auto", "--kernels", envvar="QUANTLIB_KERNELS",
        help="aot: ahead-of-time compiled kernels (no numba in this process; built once if "
             "missing); jit: numba; auto: aot, else jit with a warning"),
    ledger: Path | None = typer.Option(
        None, "--ledger", envvar="QUANTLIB_APPROVALS",
        help="approvals ledger (live mode; default: approvals.db beside the spec's folder)"),
    notify: list[str] | None = typer.Option(
        None, "--notify", help="apprise URL to notify (repeatable; tgram://TOKEN/CHAT, "
        "json://HOST:PORT/PATH, ...); default: $QUANTLIB_NOTIFY_URLS (space separated)"),
    notify_on: str = typer.Option(
        "all", "--notify-on", help="events to notify, comma separated: start, stop, fill, "
        "halt, kill_switch, exchange_error, stale_feed, stop_order, daily_summary (or all)"),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", help="serve Prometheus /metrics on this port (0: any free)"),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="/metrics address"),
    stale_after: float | None = typer.Option(
        None, "--stale-after", help="seconds without a new candle before a stale_feed "
        "notification (default: two bar lengths)"),
) -> None:
    """Trade a spec once per closed candle (paper may run drafts; live needs a spec approved
    in the approvals ledger by `quantlib strategy promote`)."""
    stream = open(log_file, "a") if log_file else sys.stderr  # noqa: SIM115 - lives as long as the run
    logger = JsonLogger(stream)
    try:
        _choose_kernels(kernels, logger)  # before anything imports a kernel
    except QuantlibError as exc:
        _fail(exc)
        return
    # these load kernels: only now that _choose_kernels has bound them (module docstring)
    from quantlib.live.brokers import PaperBroker
    from quantlib.live.runner import LiveRunner
    from quantlib.strategy.spec import load_spec

    fresh_state = not state.exists()
    store = watcher = None
    try:
        spec = load_spec(strategy)
        if mode == "live":
            _require_approval(spec, strategy, ledger)
        store = StateStore(state, durable=(mode == "live"))
        exchange = None
        if spec.market == "perp":
            _check_perp_feed(spec, mode, feed)
            broker = _perp_broker(spec, store, mode, logger)
            exchange = broker.exchange if mode == "live" else None  # the feed reads that venue
        elif mode == "live":
            from quantlib.live.brokers.ccxt_broker import CcxtBroker, make_exchange

            exchange = make_exchange(spec.exchange)
            broker = CcxtBroker(store, spec, exchange, logger=logger)
        else:
            broker = PaperBroker(store, spec)
        inputs = spec_input_symbols(spec)  # other markets the kind reads (informative inputs)
        if spec.market != "perp" and feed.startswith("replay-perp:"):
            raise LiveError(f"--feed {feed!r}: a {spec.market} spec needs --feed exchange or "
                            "replay:FILE (replay-perp: is for perp specs)")
        if feed.startswith(("replay:", "replay-perp:")):
            bars = make_feed(feed, inputs=inputs)
        elif feed == "exchange" and spec.market == "perp":
            bars = _perp_exchange_feed(spec, exchange or _public_exchange(spec.exchange),
                                       poll_seconds)
        elif feed == "exchange":
            kind = get_kind(spec.kind)
            exchange = exchange or _public_exchange(spec.exchange)
            history = kind.warmup_bars(kind.validate(spec.params), spec.timeframe) + 2
            if inputs and len(spec.symbols) == 1:  # decided once every input's candle closed
                bars = make_feed(feed, exchange=exchange, symbol=spec.symbol, inputs=inputs,
                                 timeframe=spec.timeframe, history=history,
                                 poll_seconds=poll_seconds)
            elif len(spec.symbols) > 1:  # a portfolio: a bar once every market's candle closed
                bars = PortfolioExchangeFeed(exchange, spec.symbols, spec.timeframe,
                                             history=history, poll_seconds=poll_seconds)
            else:
                bars = ExchangeFeed(exchange, spec.symbol, spec.timeframe, history=history,
                                    poll_seconds=poll_seconds)
        else:
            raise LiveError(f"--feed {feed!r}: expected 'exchange' or 'replay:FILE'")
        runner = LiveRunner(spec, broker, store, bars, mode=mode, stop_file=stop_file_for(state),
                            status_file=status_file_for(state), logger=logger, max_bars=max_bars)
        watcher = attach(logger, state, spec, notify=notify, notify_on=notify_on,
                         metrics_port=metrics_port, metrics_host=metrics_host,
                         stale_after=stale_after)
        try:
            summary = runner.run()
        finally:
            if watcher is not None:
                watcher.close()  # the stop (or error) notification goes out before exit
    except QuantlibError as exc:
        if fresh_state:
            _forget_failed_start(state, store)
        _fail(exc)
        return
    typer.echo(json.dumps({"bars_processed": summary.bars_processed, "last_bar": summary.last_bar,
                           "stopped_by": summary.stopped_by, "equity": summary.equity}))


def _check_perp_feed(spec, mode: str, feed: str) -> None:
    """Refuse the perp combinations that cannot work: live trading on replayed files (the
    venue fills at its price now, not at the files' next open), or a spot feed."""
    if mode == "live" and feed != "exchange":
        raise LiveError(f"--feed {feed!r}: live perp trading (spec {spec.name!r}) reads the "
                        "venue's own candles, mark candles and funding: use --feed exchange "
                        "(or --mode paper to replay files)")
    if feed != "exchange" and not feed.startswith("replay-perp:"):
        raise LiveError(f"--feed {feed!r}: a perp spec needs --feed exchange or --feed "
                        "replay-perp:CANDLES,mark=FILE,funding=FILE (candles alone carry no "
                        "mark price or funding)")


def _perp_broker(spec, store, mode: str, logger):
    """The broker of a perp spec: live trades at Binance USD-M (keys from
    ``QUANTLIB_BINANCEUSDM_API_KEY`` / ``..._SECRET``); paper keeps the account by the perp
    rule."""
    if mode == "live":
        from quantlib.live.brokers.perp_ccxt import PerpCcxtBroker

        return PerpCcxtBroker(store, spec, logger=logger)
    from quantlib.live.brokers.perp_paper import PaperPerpBroker

    return PaperPerpBroker(store, spec)


def _perp_exchange_feed(spec, exchange, poll_seconds: float) -> Feed:
    """The perp exchange feed of a spec: candles, mark candles and funding of its swap."""
    kind = get_kind(spec.kind)
    history = kind.warmup_bars(kind.validate(spec.params), spec.timeframe) + 2
    return PerpExchangeFeed(exchange, spec.symbol, spec.timeframe, history=history,
                            poll_seconds=poll_seconds)


def _require_approval(spec, spec_file: Path, ledger: Path | None) -> None:
    """Live mode trades a spec only when the approvals ledger approves its exact hash."""
    from quantlib.strategy.approvals import ledger_path, require_approved

    require_approved(spec, ledger_path(ledger, beside=spec_file.parent), spec_file)


def _forget_failed_start(state: Path, store) -> None:
    """A run that created its state file and failed before trading leaves no file behind
    (an empty state would only confuse the next start, or `live status`)."""
    traded = False
    if store is not None:
        try:
            traded = store.last_bar is not None or bool(store.orders())
        except QuantlibError:
            traded = True  # cannot tell: keep the file
        store.close()
    if traded or _runner_holds(state):  # another run created it meanwhile: never touch that
        return
    for suffix in ("", "-wal", "-shm", "-journal", ".lock", ".status.json"):
        Path(str(state) + suffix).unlink(missing_ok=True)


def _choose_kernels(choice: str, logger) -> None:
    """Bind this process's kernels: ahead-of-time compiled (no numba, ~150 MB less memory) or
    numba's JIT. ``auto`` falls back to the JIT, with a warning, when AOT kernels cannot be
    built or loaded here (no C compiler, numba without pycc, kernels imported already)."""
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
    try:
        typer.echo(str(jit.ensure_built()))
    except QuantlibError as exc:
        _fail(exc)


def stop_request(cancel_orders: bool = False) -> str:
    """The kill-switch file's text (``--cancel-orders`` adds :data:`CANCEL_ORDERS`)."""
    return "stop requested\n" + (CANCEL_ORDERS + "\n" if cancel_orders else "")


def _runner_holds(state: Path) -> bool:
    """Whether a live runner holds ``STATE.db.lock`` (the flock it keeps for its whole run)."""
    try:
        handle = open(str(state) + ".lock")  # noqa: SIM115 - closed below
    except OSError:
        return False  # no lock file: no runner ever ran here
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        handle.close()  # also drops the shared lock if we got it
    return False


def _read_heartbeat(state: Path) -> dict:
    """The runner's heartbeat JSON, or {} when absent or half-written."""
    try:
        beat = json.loads(status_file_for(state).read_text())
    except (OSError, ValueError):
        return {}
    return beat if isinstance(beat, dict) else {}


def _check_stoppable(state: Path) -> None:
    """Refuse to engage a kill switch nobody would see: a mistyped path must not report
    success while the real runner trades on."""
    if not state.exists():
        raise LiveError(f"state file {state} does not exist; nothing to stop (check the "
                        "--state path of the running `live run`)")
    if not is_state_file(state):
        raise LiveError(f"{state} is not a quantlib state file; nothing to stop")
    if not _runner_holds(state):
        raise LiveError(f"no live runner is running on {state} (nobody holds "
                        f"{state}.lock); kill switch not engaged")


def _await_stop(state: Path, since: float, timeout: float) -> dict | None:
    """Poll the heartbeat until it shows the runner saw a stop written at ``since`` (or the
    runner exited having seen it); None when it did not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        beat = _read_heartbeat(state)
        if beat.get("health") == "kill_switch" and float(beat.get("updated_at", 0)) >= since:
            return beat
        if time.monotonic() >= deadline or not _runner_holds(state):
            # one last look: the runner may have written the heartbeat as it exited
            beat = _read_heartbeat(state)
            seen = (beat.get("health") == "kill_switch"
                    and float(beat.get("updated_at", 0)) >= since)
            return beat if seen else None
        time.sleep(0.05)


@live_app.command("stop")
def stop(state: Path = typer.Option(..., "--state", help="state file of the run to stop"),
         cancel_orders: bool = typer.Option(
             False, "--cancel-orders",
             help="also cancel the orders resting at the exchange (grid bots); without it they "
                  "stay and a restart applies whatever filled meanwhile"),
         timeout: float = typer.Option(
             30.0, "--timeout", min=0.0,
             help="seconds to wait for the runner's heartbeat to confirm it saw the stop")
         ) -> None:
    """Engage the kill switch of a running runner and wait until it confirms: the runner
    finishes its current bar and exits. Exits non-zero when there is no runner on that state
    file, or when it did not confirm within --timeout."""
    try:
        _check_stoppable(state)
    except QuantlibError as exc:
        _fail(exc)
        return
    path = stop_file_for(state)
    since = time.time()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(stop_request(cancel_orders))
    os.replace(tmp, path)  # the runner never reads a half-written request
    typer.echo(f"kill switch engaged: {path} (delete it to allow trading again)")
    beat = _await_stop(state, since, timeout)
    if beat is None:
        holder = "still running" if _runner_holds(state) else "exited without confirming"
        typer.echo(f"error: the runner on {state} did not confirm the stop within {timeout:g} s "
                   f"({holder}); check it (`quantlib live status --state {state}`) and stop "
                   "it by other means if needed", err=True)
        raise typer.Exit(3)
    typer.echo(f"stop confirmed: runner pid {beat.get('pid')} saw the kill switch "
               f"(last bar {beat.get('last_bar')})")


@live_app.command("status")
def status(state: Path | None = typer.Option(None, "--state", help="state file"),
           folder: Path | None = typer.Option(
               None, "--dir", help="a folder of state files: one line per run; exit 1 when "
               "any run is stale or halted (cron, container health checks)"),
           stale_after: float | None = typer.Option(
               None, "--stale-after", help="with --dir: seconds since the last bar closed "
               "that make a run stale (default: two bar lengths)")) -> None:
    """Print the last bar, position, equity, orders and health of a run (--state), or one
    line per run of a folder (--dir)."""
    if folder is not None or state is None:
        _status_board(folder, stale_after)
        return
    try:
        info = read_status(state)
    except QuantlibError as exc:
        _fail(exc)
        return
    if status_file_for(state).exists():
        info["heartbeat"] = _read_heartbeat(state) or "unreadable"
    info["kill_switch"] = stop_file_for(state).exists()
    typer.echo(json.dumps(info, indent=2, default=str))


@live_app.command("report")
def report(state: Path = typer.Option(..., "--state", help="state file of the run"),
           out: Path = typer.Option(Path("reports"), "--out", help="reports folder (the page "
                                    "goes to OUT/live/, listed in OUT/index.html)"),
           tolerance: float = typer.Option(
               0.001, "--tolerance", help="relative equity gap that counts as divergence"),
           self_contained: bool = typer.Option(False, "--self-contained",
                                               help="inline plotly.js in the page")) -> None:
    """Drift report: live equity and fills against a backtest of the run's spec on the run's
    own candles (reads the state read-only: safe while the runner writes). Prints the page's
    path and the verdict; exits 1 when the run diverged."""
    from quantlib.report.live_drift import write_drift_report

    try:
        page = write_drift_report(state, out, tolerance=tolerance, self_contained=self_contained)
        verdict = json.loads(page.with_suffix(".json").read_text())
    except QuantlibError as exc:
        _fail(exc)
        return
    typer.echo(str(page))
    typer.echo(verdict["verdict"])
    if verdict["diverged"]:
        raise typer.Exit(1)


def _status_board(folder: Path | None, stale_after: float | None) -> None:
    if folder is None:
        _fail(LiveError("live status: give --state STATE.db or --dir FOLDER"))
    try:
        lines = scan(folder, stale_after=stale_after)
    except QuantlibError as exc:
        _fail(exc)
        return
    typer.echo(format_lines(lines) if lines else f"no quantlib state files in {folder}")
    if any(line.problem for line in lines):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach ``quantlib live ...`` to the root app."""
    app.add_typer(live_app, name="live")


__all__ = ["register", "live_app", "stop_file_for", "status_file_for", "stop_request"]
