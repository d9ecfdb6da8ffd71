"""The live runner: one step per closed candle, crash-safe and identical to the backtest.

Per closed bar ``t`` (:meth:`LiveRunner.step`, on the run's bar path: :mod:`quantlib.live.paths`
says what the signal and the two grid paths do; this is the signal path):

1. in ONE SQLite transaction: the broker settles what happens at bar t's open (paper: fills the
   previous bar's intent), the kind's signal is evaluated on the bounded window of the last
   ``warmup+1`` bars (the registry's finite-memory contract: the same function the backtest
   calls), risk limits are applied, the order intent (with its deterministic client id), the
   equity point and ``last_bar = t`` are written;
2. after the commit, intents are sent to the broker (idempotent by client id).

A crash before 1 commits replays bar t from scratch; a crash after 1 and before 2 finishes leaves
intents in status ``new`` that :meth:`Broker.resubmit_pending` sends on restart with the same id.

Examples
--------
>>> from quantlib.data import synthetic_ohlcv
>>> from quantlib.live.state import StateStore
>>> from quantlib.live.brokers import PaperBroker
>>> from quantlib.live.replay_feeds import ReplayFeed
>>> from quantlib.strategy.spec import StrategySpec
>>> spec = StrategySpec(name="demo", kind="ma_cross", params={"fast": 3, "slow": 8},
...                     symbols=["BTC/USD"])
>>> store = StateStore(":memory:")
>>> runner = LiveRunner(spec, PaperBroker(store, spec), store,
...                     ReplayFeed(synthetic_ohlcv(n_bars=50, seed=1).ohlcv))
>>> runner.run().bars_processed
50
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from quantlib.core.informative import foreign_symbols
from quantlib.core.registry import get_kind
from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.errors import LiveError, ParameterError, QuantlibError
from quantlib.live import CANCEL_ORDERS
from quantlib.live.brokers.base import Broker
from quantlib.live.feeds import Bar, Feed, as_feed
from quantlib.live.logs import JsonLogger
from quantlib.live.paths import BarContext, BarPath, make_path
from quantlib.live.risk import RiskManager
from quantlib.live.state import OrderRow, StateStore
from quantlib.live.windows import FundingWindow, SignalWindow
from quantlib.strategy.spec import StrategySpec, dump_spec


@dataclass
class RunSummary:
    bars_processed: int
    last_bar: int | None
    stopped_by: str  # "feed_end" | "kill_switch" | "signal" | "max_bars"
    equity: float | None


def check_feed_matches(spec: StrategySpec, feed: Feed, inputs: list[str] = ()) -> None:
    """Refuse a feed of another timeframe or market than the spec's (a 1h spec replayed on
    5m bars would trade parameters on bars they were never chosen for). A feed tells what it
    knows through its ``timeframe``, ``symbol`` and ``symbols`` (:class:`~quantlib.live.feeds.Feed`;
    None: unknown, not checked). ``inputs``: the other markets the kind reads, which the feed
    must carry too."""
    name, timeframe, symbols = feed.label(), feed.timeframe, feed.symbols
    if timeframe is not None and _timeframe_ms(timeframe) != _timeframe_ms(spec.timeframe):
        raise LiveError(f"feed {name} has {timeframe} bars but spec {spec.name!r} trades "
                        f"{spec.timeframe} bars; replay data of the spec's timeframe")
    if inputs:  # a one-symbol spec reading other markets: the feed carries them all
        if symbols is None or sorted(symbols) != sorted([spec.symbol, *inputs]):
            raise LiveError(f"spec {spec.name!r} trades {spec.symbol} and its kind reads "
                            f"{list(inputs)} (informative inputs): the feed ({name}) must give "
                            f"each of those markets (--feed replay:{spec.symbol}=FILE,"
                            f"{inputs[0]}=FILE,... or exchange)")
        return
    if symbols is not None:  # a portfolio feed: one market per spec symbol, same order
        if list(symbols) != list(spec.symbols):
            raise LiveError(f"feed {name} has the markets {list(symbols)} but spec "
                            f"{spec.name!r} trades {list(spec.symbols)} (same symbols, same "
                            "order)")
        return
    if len(spec.symbols) > 1:
        raise LiveError(f"spec {spec.name!r} trades the portfolio {list(spec.symbols)}: the "
                        "feed must give one market per symbol (--feed replay:SYMBOL=FILE,... "
                        "or exchange)")
    if feed.symbol is not None and feed.symbol != spec.symbol:
        raise LiveError(f"feed {name} is {feed.symbol} but spec {spec.name!r} trades "
                        f"{spec.symbol}")


def _timeframe_ms(timeframe: str) -> int | str:
    # "60m" and "1h" are the same bars; a string the parser rejects is compared as text
    try:
        return timeframe_to_seconds(timeframe) * 1000
    except ParameterError:
        return timeframe


class LiveRunner:
    """Drive one strategy spec over a feed of closed candles.

    Parameters
    ----------
    spec : the strategy (live mode requires ``approval.status == "approved"``; ``quantlib live
        run --mode live`` also requires its hash approved in the approvals ledger,
        :func:`quantlib.strategy.approvals.require_approved`, before it builds a runner).
    broker : :class:`~quantlib.live.brokers.PaperBroker` or ``CcxtBroker`` (a ``PerpBroker``
        for a perp spec: the broker's ``market`` must be the spec's).
    store : the state store (SQLite WAL).
    feed : a :class:`~quantlib.live.feeds.Feed` of closed candles in time order, whose
        ``timeframe`` and ``symbol(s)``, when known, must match the spec's
        (:func:`check_feed_matches`); any other iterable of bars is taken as a feed that knows
        nothing about its bars (:func:`~quantlib.live.feeds.as_feed`).
    stop_file : kill switch; when it exists the runner stops before the next bar (and writes
        a heartbeat with health ``kill_switch``, which ``quantlib live stop`` waits for).
    mode : ``"paper"`` or ``"live"``.
    status_file : heartbeat JSON (last bar, position, equity, health) rewritten each bar.
    logger : :class:`~quantlib.live.logs.JsonLogger`.
    max_bars : stop after processing this many bars (tests, benchmarks).
    """

    def __init__(self, spec: StrategySpec, broker: Broker, store: StateStore,
                 feed: Feed | Iterable[Bar | dict[str, Bar]],
                 *, mode: str = "paper", stop_file: str | Path | None = None,
                 status_file: str | Path | None = None, logger: JsonLogger | None = None,
                 max_bars: int | None = None):
        if mode not in ("paper", "live"):
            raise LiveError(f"--mode {mode!r}: expected 'paper' or 'live'")
        if mode == "live" and spec.approval.status != "approved":
            raise LiveError(f"spec {spec.name!r} has approval status {spec.approval.status!r}; "
                            "live mode trades only approved specs (run `quantlib strategy "
                            "promote` first)")
        self.spec, self.broker, self.store, self.mode = spec, broker, store, mode
        self.feed = as_feed(feed)
        self.kind = get_kind(spec.kind)
        self.params = self.kind.validate(spec.params)
        if self.kind.engine == "grid" and (len(spec.symbols) > 1 or spec.risk.has_exits):
            raise LiveError(f"spec {spec.name!r}: the grid engine trades one symbol without "
                            "sl/tp/trailing exits (its backtest applies neither)")
        self.symbols = list(spec.symbols)
        # warmup_bars: the declared warm-up or, for informative inputs, their history if longer
        size = self.kind.warmup_bars(self.params, spec.timeframe) + 1
        self.windows = {s: SignalWindow(size) for s in self.symbols}
        # other markets the kind reads (e.g. BTC's regime gating ETH): fed with the traded one,
        # kept in windows of the same length, handed to the signal as the backtest's inputs
        self.inputs = self.kind.informative_inputs(self.params)
        self.input_symbols = foreign_symbols(self.inputs, self.symbols)
        if self.input_symbols and (len(self.symbols) > 1 or self.kind.engine == "grid"):
            raise LiveError(f"spec {spec.name!r}: informative inputs of other markets "
                            f"{self.input_symbols} run for one-symbol signal kinds only")
        self.windows.update({s: SignalWindow(size) for s in self.input_symbols})
        self.window = self.windows[spec.symbol]  # the first symbol's (one-symbol specs: the only)
        self.funding = self._check_market()
        self.risk = RiskManager(spec.risk, store)
        self.stop_file = Path(stop_file) if stop_file else None
        self.status_file = Path(status_file) if status_file else None
        self.log = logger or JsonLogger()
        self.latencies_ns: list[int] = []  # each bar's decide-and-commit time (the path's)
        self.path: BarPath = make_path(BarContext(
            spec=spec, kind=self.kind, params=self.params, broker=broker, store=store,
            risk=self.risk, log=self.log, windows=self.windows, inputs=self.inputs,
            funding=self.funding, latencies_ns=self.latencies_ns), mode)
        self.max_bars = max_bars
        self._signalled = False
        check_feed_matches(spec, self.feed, self.input_symbols)
        self._check_state_identity()

    def _check_market(self) -> FundingWindow | None:
        """A perp spec trades on a perp broker, one signal kind without other markets; its
        signal reads the funding known at each close (returned window; None for spot)."""
        spec = self.spec
        if self.broker.market != spec.market:
            raise LiveError(f"spec {spec.name!r} trades market {spec.market!r} but the broker "
                            f"({type(self.broker).__name__}) keeps a {self.broker.market} "
                            "account")
        if spec.market != "perp":
            return None
        if self.kind.engine != "signals" or self.input_symbols:
            raise LiveError(f"spec {spec.name!r}: a perp spec runs a signal kind on its one "
                            "swap (no grid engine, no informative inputs of other markets)")
        return FundingWindow(timeframe_to_seconds(spec.timeframe) * 1000)

    def _check_state_identity(self) -> None:
        # A state file belongs to one spec: resuming someone else's positions would be a disaster.
        digest = self.spec.model_copy(update={"approval": self.spec.approval.model_copy(
            update={"status": "draft", "by": None, "at": None, "gates_passed": []})}).spec_hash()
        with self.store.transaction():
            known = self.store.get_meta("spec_hash")
            if self.store.get_meta("symbols") is None:  # what `live status` lists positions of
                self.store.set_meta("symbols", json.dumps(self.symbols))
            if self.store.get_meta("spec") is None:  # what `live report` backtests
                self.store.set_meta("spec", dump_spec(self.spec))
            if known is None:
                self.store.set_meta("spec_hash", digest)
                self.store.set_meta("strategy", self.spec.name)
            elif known != digest:
                raise LiveError(f"state file {self.store.path} was written by a different spec "
                                f"(strategy {self.store.get_meta('strategy')!r}); use a new "
                                "--state file for a changed spec")

    # -- control ------------------------------------------------------------------------------
    def _on_sigterm(self, signum, frame) -> None:
        self._signalled = True

    def _stop_requested(self) -> str | None:
        if self._signalled:
            return "signal"
        if self.stop_file is not None and self.stop_file.exists():
            return "kill_switch"
        return None

    def _cancel_asked(self) -> bool:
        """The kill switch asks to pull resting orders too (``quantlib live stop
        --cancel-orders`` writes :data:`CANCEL_ORDERS` into it)."""
        try:
            return CANCEL_ORDERS in self.stop_file.read_text()
        except OSError:
            return False

    # -- one bar ------------------------------------------------------------------------------
    def step(self, bar: Bar | dict[str, Bar]) -> list[OrderRow]:
        """Process one closed bar (a portfolio: ``{symbol: Bar}`` of one bar time) on the
        runner's :class:`~quantlib.live.paths.BarPath`: decide and commit (one transaction),
        then send."""
        bars = bar if isinstance(bar, dict) else {self.spec.symbol: bar}
        return self.path.step(bars)

    # -- loop ---------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        """Consume the feed until it ends, the kill switch appears, SIGTERM arrives or max_bars."""
        if self.stop_file is not None and self.stop_file.exists():
            raise LiveError(f"kill switch {self.stop_file} exists; remove it to start trading")
        previous = None
        try:
            previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread: the caller handles signals
            pass
        lock = self._lock_state()
        # a polling feed waits for the next candle: let a stop end the wait
        self.feed.stop_requested = lambda: self._stop_requested() is not None
        try:
            return self._loop()
        except QuantlibError as exc:  # said once, for watchers (notifications, /metrics)
            self.log.error("run_error", kind=type(exc).__name__, error=str(exc))
            raise
        finally:
            if lock is not None:
                lock.close()  # releases the flock (the kernel also does when a process dies)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _lock_state(self):
        """Hold ``STATE.lock`` exclusively: two runners on one state file could both trade."""
        if self.store.path == ":memory:":
            return None
        handle = open(self.store.path + ".lock", "a+")  # noqa: SIM115 - held for the run
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LiveError(f"state file {self.store.path} is in use by a running runner "
                            f"({holder}); one runner per state file") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self.store.refresh()  # a previous runner may have written since this store was opened
        return handle

    def _loop(self) -> RunSummary:
        self.path.start()
        # Everything imported and built so far lives for the whole run: moving it out of the
        # collector's view keeps full collections from stalling a bar for milliseconds.
        gc.freeze()
        last = self.store.last_bar
        processed = 0
        stopped_by = "feed_end"
        self.log.info("start", strategy=self.spec.name, mode=self.mode, resume_after=last)
        with self.store.transaction():  # (re)starts, for the drift report's time line
            starts = self.store.get_json("starts", [])
            self.store.set_json("starts", [*starts, {"at": time.time(), "resume_after": last}])
        for item in self.feed:
            reason = self._stop_requested()
            if reason:
                stopped_by = reason
                break
            bars = self._bars_of(item)
            for symbol, one in bars.items():
                self.windows[symbol].push(one)
            if self.funding is not None:
                self.funding.push(bars[self.symbols[0]], self.window)
            if self.input_symbols:  # inputs fill their windows; the traded market is decided
                if self.symbols[0] not in bars:  # an input's candle at a time it lacks
                    continue
                bars = {self.symbols[0]: bars[self.symbols[0]]}
            bar = bars[self.symbols[0]]
            if bar.warmup_only or (last is not None and bar.time <= last):
                continue
            self.step(bars)
            last = bar.time
            processed += 1
            self._heartbeat(bar)
            self.log.observe("bar", bar=bar.time, step_ns=self.latencies_ns[-1])  # watchers
            if self.max_bars is not None and processed >= self.max_bars:
                stopped_by = "max_bars"
                break
        else:  # the feed ended: by itself, or because a stop was requested while it waited
            stopped_by = self._stop_requested() or stopped_by
        if stopped_by == "kill_switch":
            # `quantlib live stop` waits for this heartbeat: it confirms the stop was seen
            # (before pulling resting orders, which may take a while at the exchange).
            self._heartbeat(self.window.rows[-1] if self.window.rows else None,
                            health="kill_switch")
            if self._cancel_asked():
                self.path.cancel_all()
        equity = self._equity_now()
        self._heartbeat(self.window.rows[-1] if self.window.rows else None, health=stopped_by)
        self.log.info("stop", reason=stopped_by, bars=processed, last_bar=last, equity=equity)
        return RunSummary(processed, last, stopped_by, equity)

    def _bars_of(self, item: Bar | dict[str, Bar]) -> dict[str, Bar]:
        """A feed item as ``{symbol: Bar}`` in the spec's order, all of one bar time."""
        if not isinstance(item, dict):
            return {self.spec.symbol: item}
        times = {bar.time for bar in item.values()}
        if self.input_symbols and len(times) == 1 and set(item) <= set(self.windows):
            return item  # the traded market and/or inputs, those with a candle at that time
        if list(item) != self.symbols or len(times) != 1:
            raise LiveError(f"feed gave {sorted(item)} at times {sorted(times)}; a portfolio "
                            f"bar is one closed candle of each of {self.symbols} at one time")
        return item

    def _equity_now(self) -> float:
        """Cash plus every position at its last close (the spec's symbol order)."""
        closes = {}
        for symbol in self.symbols:
            rows = self.windows[symbol].rows
            closes[symbol] = rows[-1].close if rows else 0.0
        return self.broker.equity(closes)

    def _heartbeat(self, bar: Bar | None, health: str | None = None) -> None:
        if self.status_file is None:
            return
        cash, position = self.broker.account()
        status = {
            "strategy": self.spec.name, "mode": self.mode, "pid": os.getpid(),
            "updated_at": time.time(), "last_bar": bar.time if bar else self.store.last_bar,
            "position": position, "cash": cash,
            "equity": self._equity_now() if bar else None,
            "health": health or ("halted: " + self.risk.halted if self.risk.halted else "ok"),
        }
        if len(self.symbols) > 1:
            status["positions"] = self.broker.positions(self.symbols)
        if self.funding is not None:
            status["perp"] = asdict(self.broker.perp_position())
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        os.replace(tmp, self.status_file)


def _try_lock(handle, attempts: int = 5) -> bool:
    """Take the run lock; a few short retries let a momentary probe (``quantlib live stop``
    checks for a runner with a shared lock) pass, a real runner's lock never does."""
    for attempt in range(attempts):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt < attempts - 1:
                time.sleep(0.05)
    return False


__all__ = ["LiveRunner", "RunSummary", "check_feed_matches"]
