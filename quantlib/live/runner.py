"""The live runner: one step per closed candle, crash-safe and identical to the backtest.

Per closed bar ``t`` (:meth:`LiveRunner.step`):

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
>>> from quantlib.live.feeds import ReplayFeed
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
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from quantlib.core.bars import COLUMNS, Bars
from quantlib.core.informative import foreign_symbols
from quantlib.core.registry import get_kind
from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.errors import LiveError, ParameterError, QuantlibError
from quantlib.live import CANCEL_ORDERS
from quantlib.live.brokers.base import Broker, client_order_id, symbol_key
from quantlib.live.brokers.paper import signal_flags
from quantlib.live.feeds import Bar
from quantlib.live.logs import JsonLogger
from quantlib.live.risk import RiskManager
from quantlib.live.state import OrderRow, StateStore
from quantlib.strategy.spec import StrategySpec


@dataclass
class RunSummary:
    bars_processed: int
    last_bar: int | None
    stopped_by: str  # "feed_end" | "kill_switch" | "signal" | "max_bars"
    equity: float | None


class SignalWindow:
    """The bounded window of closed candles the signal is evaluated on (finite memory)."""

    def __init__(self, size: int):
        self.size = max(int(size), 1)
        self.rows: deque[Bar] = deque(maxlen=self.size)
        # The same bars as arrays (one row per column, oldest first), kept in step with
        # ``rows``: building the signal's Bars from them is a copy, not a loop over Bar objects.
        self._values = np.empty((len(COLUMNS), self.size))
        self._ns = np.empty(self.size, dtype=np.int64)

    def push(self, bar: Bar) -> None:
        n = len(self.rows)
        if n == self.size:
            self._values[:, :-1] = self._values[:, 1:]
            self._ns[:-1] = self._ns[1:]
            n -= 1
        self._values[:, n] = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        self._ns[n] = bar.time * 1_000_000
        self.rows.append(bar)

    def ohlc(self) -> np.ndarray:
        """The window's bars as rows (open, high, low, close), oldest first."""
        return self._values[:4, : len(self.rows)].T.copy()

    def bars(self, timeframe: str, symbol: str) -> Bars:
        """The window as :class:`~quantlib.core.bars.Bars` (copies: the buffers move on)."""
        n = len(self.rows)
        return Bars.from_arrays(self._ns[:n].copy(), self._values[:, :n].copy(),
                                {"timeframe": timeframe, "symbol": symbol, "source": "live"})


class FundingWindow:
    """The funding payments a perp signal's window can see: those published by the closes of
    the window's bars, plus the latest one before the window (the rate known at its first
    close). Fed with each :class:`~quantlib.live.feeds.PerpBar` the window takes.

    Parameters
    ----------
    bar_ms : the bar length (a bar's close is its open plus this).
    """

    def __init__(self, bar_ms: int):
        self.bar_ms = int(bar_ms)
        self.events: list[tuple[int, float]] = []

    def push(self, bar: Bar, window: SignalWindow) -> None:
        if not hasattr(bar, "funding"):
            raise LiveError("a perp spec needs a perp feed (candles with mark and funding: "
                            "--feed replay-perp:...); the feed gave plain candles")
        seen = self.events[-1][0] if self.events else None
        self.events.extend((int(t), float(r)) for t, r in bar.funding
                           if seen is None or int(t) > seen)
        first_close = window.rows[0].time + self.bar_ms
        keep = 0  # the latest payment at or before the window's first close, and later ones
        for i, (t, _) in enumerate(self.events):
            if t <= first_close:
                keep = i
        del self.events[:keep]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(times in ns, rates)``, the arrays :func:`~quantlib.core.perp_kinds.with_funding`
        takes."""
        times = np.array([t for t, _ in self.events], dtype=np.int64) * 1_000_000
        return times, np.array([r for _, r in self.events], dtype=np.float64)


def check_feed_matches(spec: StrategySpec, feed: Iterable[Bar], inputs: list[str] = ()) -> None:
    """Refuse a feed of another timeframe or market than the spec's (a 1h spec replayed on
    5m bars would trade parameters on bars they were never chosen for). A feed tells what it
    knows through ``timeframe`` and ``symbol`` attributes (None: unknown, not checked).
    ``inputs``: the other markets the kind reads, which the feed must carry too."""
    name = getattr(feed, "name", None) or type(feed).__name__
    timeframe = getattr(feed, "timeframe", None)
    if timeframe is not None and _timeframe_ms(timeframe) != _timeframe_ms(spec.timeframe):
        raise LiveError(f"feed {name} has {timeframe} bars but spec {spec.name!r} trades "
                        f"{spec.timeframe} bars; replay data of the spec's timeframe")
    symbols = getattr(feed, "symbols", None)
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
    symbol = getattr(feed, "symbol", None)
    if symbol is not None and symbol != spec.symbol:
        raise LiveError(f"feed {name} is {symbol} but spec {spec.name!r} trades {spec.symbol}")


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
    broker : :class:`~quantlib.live.brokers.PaperBroker` or ``CcxtBroker``.
    store : the state store (SQLite WAL).
    feed : iterable of :class:`~quantlib.live.feeds.Bar` (closed candles, in time order);
        its ``timeframe`` and ``symbol`` attributes, when known, must match the spec's
        (:func:`check_feed_matches`).
    stop_file : kill switch; when it exists the runner stops before the next bar (and writes
        a heartbeat with health ``kill_switch``, which ``quantlib live stop`` waits for).
    mode : ``"paper"`` or ``"live"``.
    status_file : heartbeat JSON (last bar, position, equity, health) rewritten each bar.
    logger : :class:`~quantlib.live.logs.JsonLogger`.
    max_bars : stop after processing this many bars (tests, benchmarks).
    """

    def __init__(self, spec: StrategySpec, broker: Broker, store: StateStore, feed: Iterable[Bar],
                 *, mode: str = "paper", stop_file: str | Path | None = None,
                 status_file: str | Path | None = None, logger: JsonLogger | None = None,
                 max_bars: int | None = None):
        if mode not in ("paper", "live"):
            raise LiveError(f"--mode {mode!r}: expected 'paper' or 'live'")
        if mode == "live" and spec.approval.status != "approved":
            raise LiveError(f"spec {spec.name!r} has approval status {spec.approval.status!r}; "
                            "live mode trades only approved specs (run `quantlib strategy "
                            "promote` first)")
        self.spec, self.broker, self.store, self.feed, self.mode = spec, broker, store, feed, mode
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
        self._grid_venue = None
        self.path: BarPath
        if self.kind.engine == "grid" and mode == "live":
            # resting limit orders that the exchange fills (paper steps the engine's kernel)
            from quantlib.live.grid_exchange import GridAtExchange

            self._grid_venue = GridAtExchange(spec, self._grid_params(), broker, store,
                                              self.risk, self.log)
            self.path = ExchangeGridPath(self, self._grid_venue)
        elif self.kind.engine == "grid":
            self.path = PaperGridPath(self)
        else:  # targets -> order intents -> the broker (spot or perp, paper or live)
            self.path = SignalPath(self)
        self.max_bars = max_bars
        self._signalled = False
        self.latencies_ns: list[int] = []
        check_feed_matches(spec, feed, self.input_symbols)
        self._check_state_identity()

    def _check_market(self) -> FundingWindow | None:
        """A perp spec trades on a perp broker, one signal kind without other markets; its
        signal reads the funding known at each close (returned window; None for spot)."""
        spec = self.spec
        broker_market = getattr(self.broker, "market", "spot")
        if broker_market != spec.market:
            raise LiveError(f"spec {spec.name!r} trades market {spec.market!r} but the broker "
                            f"({type(self.broker).__name__}) keeps a {broker_market} account")
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
                from quantlib.strategy.spec import dump_spec

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
    def _key(self, name: str, symbol: str) -> str:
        return symbol_key(name, symbol, self.symbols[0])

    def _decide(self, bars: dict[str, Bar]) -> tuple[float, list[OrderRow], float, float, float]:
        """Settle the bar, then one target per symbol (the same kind and params on each
        symbol's own window) and the intents of the target changes, in the spec's order."""
        store, spec = self.store, self.spec
        first = bars[self.symbols[0]]
        # live brokers may answer with this bar's exit orders: resting exits to place (type
        # "stop", the position stays open) or exits that close it now (replacing its signal)
        orders: list[OrderRow] = list(self.broker.on_bar(bars) or [])
        cash, _ = self.broker.account()
        positions = self.broker.positions(self.symbols)
        # the broker values its own account (spot: cash + positions at the closes, summed in
        # the spec's order as the backtest's columns; perp: cash + margin + unrealised pnl)
        equity = self.broker.equity({s: bars[s].close for s in self.symbols})
        halt = self.risk.check(first.time, equity)
        if halt:
            self.log.warning("risk_halt", bar=first.time, reason=halt)
            self.store.set_meta("halted_bar", first.time)  # the drift report's time line
        targets = {}
        exited = {order.symbol for order in orders if order.order_type != "stop"}
        sizer = getattr(self.broker, "intent_amount", None)
        budget = cash  # live sizing: later symbols size from what earlier entries leave
        for symbol in self.symbols:
            bar = bars[symbol]
            target = float(self.kind.signals(self._signal_bars(symbol),
                                             self.params, validated=True,
                                             informative=self._input_data(symbol))[-1])
            target = self.risk.cap(target)
            prev_target = store.get_float(self._key("target", symbol), 0.0)
            if self.risk.halted:
                target = 0.0 if spec.risk.flatten_on_halt else prev_target
            targets[symbol] = target
            flags = signal_flags(prev_target, target, spec.execution.direction)
            if symbol in exited:  # a stop closed it this bar: its exit replaces the signal
                continue
            if not any(flags):  # exactly the target changes the backtest turns into signals
                continue
            intent = f"signal|{prev_target!r}|{target!r}"
            side = 1 if (flags[0] or flags[3]) else -1
            amount = 0.0
            if sizer is not None:  # real venues need a base amount now; paper sizes at the fill
                amount = sizer(flags, bar.close, budget, positions[symbol], symbol=symbol)
                budget -= side * amount * bar.close * (1.0 + side * spec.execution.fees)
            orders.append(OrderRow(
                client_id=client_order_id(spec.name, symbol, bar.time, intent),
                bar_time=bar.time, symbol=symbol, intent=intent, side=side,
                amount=amount, target=target, order_type=spec.execution.order_type, price=None,
                status="new", exchange_id=None, detail="", attempts=0))
        for symbol, target in targets.items():
            store.set_meta(self._key("target", symbol), repr(target))
        return targets[self.symbols[0]], orders, cash, positions[self.symbols[0]], equity

    def _signal_bars(self, symbol: str) -> Bars:
        """The window the signal reads: the closed candles, and for a perp the column
        ``funding_rate`` (the rate known at each bar's close), as the perp backtest adds it."""
        bars = self.windows[symbol].bars(self.spec.timeframe, symbol)
        if self.funding is None:
            return bars
        from quantlib.core.perp_kinds import with_funding

        times, rates = self.funding.arrays()
        return with_funding(bars, times, rates, self.spec.timeframe)

    def _input_data(self, symbol: str) -> dict[str, Bars] | None:
        """The window of each informative input that reads data, not the traded bars
        resampled (another market; or a source string, which this process must not load):
        what a backtest passes as ``informative={name: frame}``."""
        data = {}
        for spec in self.inputs:
            if spec.symbol not in (None, symbol) or spec.source is not None:
                market = spec.symbol or symbol
                data[spec.name] = self.windows[market].bars(self.spec.timeframe, market)
        return data or None

    def _grid_params(self) -> dict:
        """The grid's own parameters (a wrapping kind such as regime_grid names them)."""
        return (self.params if self.kind.grid_params is None
                else get_kind("grid").validate(self.kind.grid_params(self.params)))

    def _grid_allowed(self, offset: int) -> bool:
        """A wrapping kind's buy condition at bar ``-offset`` of the window (True for the plain
        grid): the same function, on the same bars, as the backtest's mask."""
        if self.kind.grid_allowed is None:
            return True
        allowed = self.kind.allowed(self.window.bars(self.spec.timeframe, self.spec.symbol),
                                    self.params)
        return len(allowed) >= offset and bool(allowed[-offset])

    def _step_grid(self, bar: Bar) -> list[OrderRow]:
        # Grid kinds rest limit orders at levels; the grid engine's own one-bar kernel
        # (quantlib.core.grid_kind.step_bar, the backtest's grid_step_nb) decides which fill
        # inside the bar. State, fills and last_bar commit together.
        from quantlib.core.grid_kind import GridState, step_bar

        t0 = time.perf_counter_ns()
        spec, store = self.spec, self.store
        with store.transaction():
            saved = store.get_json("grid_state")
            if saved is None:
                grid = GridState.start(self._grid_params(), first_open=bar.open,
                                       config=spec.backtest_config())
            else:
                grid = GridState.from_dict(saved)
            # buys may rest during bar t when the condition held at bar t-1's close
            active = not self.risk.halted and self._grid_allowed(2)
            fills = step_bar(grid, (bar.open, bar.high, bar.low, bar.close), active=active)
            self.latencies_ns.append(time.perf_counter_ns() - t0)
            orders = []
            for i, fill in enumerate(fills):
                intent = f"grid|{fill['level']}|{fill['side']}|{i}"
                cid = client_order_id(spec.name, spec.symbol, bar.time, intent)
                orders.append(OrderRow(cid, bar.time, spec.symbol, intent, fill["side"],
                                       fill["size"], 0.0, "limit", fill["price"], "filled", None,
                                       "", 1))
                store.add_order(orders[-1])
                store.add_fill(cid, bar.time, fill["side"], fill["price"], fill["size"],
                               fill["fee"])
            equity = grid.equity(bar.close)
            halt = self.risk.check(bar.time, equity)
            if halt:
                self.log.warning("risk_halt", bar=bar.time, reason=halt)
            store.set_json("grid_state", grid.to_dict())
            store.set_meta("cash", repr(grid.cash))
            store.set_meta("position", repr(grid.inventory))
            store.add_candle(spec.symbol, bar)
            store.add_bar(bar.time, bar.close, 0.0, grid.inventory, grid.cash, equity,
                          note="" if active else "buys off")
            store.set_meta("last_bar", bar.time)
        return orders

    def step(self, bar: Bar | dict[str, Bar]) -> list[OrderRow]:
        """Process one closed bar (a portfolio: ``{symbol: Bar}`` of one bar time) on the
        runner's :class:`BarPath`: decide and commit (one transaction), then send."""
        bars = bar if isinstance(bar, dict) else {self.spec.symbol: bar}
        return self.path.step(bars)

    def _step_signals(self, bars: dict[str, Bar]) -> list[OrderRow]:
        bar = bars[self.symbols[0]]
        t0 = time.perf_counter_ns()
        with self.store.transaction():
            # the bars table holds the first symbol's close, target and position (a
            # portfolio's other positions are in the meta table) and the whole equity
            target, orders, cash, position, equity = self._decide(bars)
            self.latencies_ns.append(time.perf_counter_ns() - t0)
            for order in orders:
                self.store.add_order(order)
            self.store.add_bar(bar.time, bar.close, target, position, cash, equity)
            for symbol, candle in bars.items():  # the run's own data, for `live report`
                self.store.add_candle(symbol, candle)
            self.store.set_meta("last_bar", bar.time)
        for order in orders:
            self.log.info("order_intent", bar=bar.time, client_id=order.client_id,
                          intent=order.intent, side=order.side)
            self.broker.submit(order)
        return orders

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
        if hasattr(self.feed, "stop_requested"):
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


class BarPath:
    """How a runner trades one closed bar (issue #16): chosen once, when the runner is built.

    ``start()`` brings the venue in line before the first bar; ``step(bars)`` decides, commits
    (one transaction) and sends for ``{symbol: Bar}`` of one bar time and returns the orders;
    ``cancel_all()`` pulls resting orders when the kill switch asks to (default: none rest).
    A path holds its runner (windows, risk, store, broker, log). Three implementations:
    :class:`SignalPath` (targets to order intents, for any broker: spot or perp, paper or live),
    :class:`PaperGridPath` (the grid engine's one-bar kernel) and :class:`ExchangeGridPath`
    (grid limit orders resting at the exchange).
    """

    def __init__(self, runner: LiveRunner):
        self.runner = runner

    def start(self) -> None:
        """Reconcile with the venue and re-send intents a crash left unsent (idempotent)."""
        self.runner.broker.reconcile()
        self.runner.broker.resubmit_pending()

    def step(self, bars: dict[str, Bar]) -> list[OrderRow]:  # pragma: no cover - abstract
        raise NotImplementedError

    def cancel_all(self) -> None:
        """Pull the orders resting at the venue (none on these paths)."""


class SignalPath(BarPath):
    """The kind's targets become order intents the broker fills (paper: at the next open)."""

    def step(self, bars: dict[str, Bar]) -> list[OrderRow]:
        return self.runner._step_signals(bars)


class PaperGridPath(BarPath):
    """The grid engine's own one-bar kernel decides which resting level fills."""

    def step(self, bars: dict[str, Bar]) -> list[OrderRow]:
        return self.runner._step_grid(bars[self.runner.symbols[0]])


class ExchangeGridPath(BarPath):
    """Grid limit orders rest at the exchange (:class:`~quantlib.live.grid_exchange.GridAtExchange`)."""

    def __init__(self, runner: LiveRunner, venue):
        super().__init__(runner)
        self.venue = venue

    def start(self) -> None:
        self.runner.broker.load_markets()  # start-up fails fast (after back-off) offline
        self.venue.resume()

    def step(self, bars: dict[str, Bar]) -> list[OrderRow]:
        runner = self.runner
        # resting buys for the next bar: the condition at this bar's close
        return self.venue.step(bars[runner.symbols[0]], runner.latencies_ns,
                               buys_allowed=runner._grid_allowed(1), ohlc=runner.window.ohlc())

    def cancel_all(self) -> None:
        self.venue.cancel_all()


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


def read_status(state_path: str | Path) -> dict:
    """Summary of a state file for ``quantlib live status`` (no exchange access).

    Raises LiveError when the file is missing, foreign, damaged or holds values no runner
    writes (a damaged page may still parse as SQLite).
    """
    from datetime import UTC, datetime

    path = Path(state_path)
    store = StateStore(path, create=False)
    try:
        meta = store.snapshot()["meta"]
        orders = store.orders()
        bars = store.bars()
        fills = store.fills()
        try:
            return {
                "state": str(path), "strategy": meta.get("strategy"),
                "last_bar": (datetime.fromtimestamp(int(meta["last_bar"]) / 1000,
                                                    tz=UTC).isoformat()
                             if "last_bar" in meta else None),
                "target": float(meta.get("target", 0.0)),
                "position": float(meta.get("position", 0.0)),
                "cash": float(meta["cash"]) if "cash" in meta else None,
                "equity": bars[-1][5] if bars else None, "halted": meta.get("halted") or None,
                "orders": len(orders),
                "open_orders": sum(o.status in ("new", "sent") for o in orders),
                "fills": len(fills),
                "positions": _positions(meta),
                "metrics": _run_metrics(bars, fills),
                **_perp_status(meta),
            }
        except (TypeError, ValueError, OverflowError, OSError, IndexError) as exc:
            raise LiveError(f"state file {path}: holds a value no runner writes ({exc}); the "
                            "file is damaged") from None
    finally:
        store.close()


def _positions(meta: dict[str, str]) -> dict[str, dict[str, float | None]]:
    """Per symbol: position (base units), target, and the armed stop bases (None: none)."""
    symbols = json.loads(meta["symbols"]) if "symbols" in meta else []
    out = {}
    for symbol in symbols:
        def value(name: str, default: float | None, symbol: str = symbol) -> float | None:
            raw = meta.get(symbol_key(name, symbol, symbols[0]))
            number = float(raw) if raw is not None else default
            return None if number is None or number != number else number

        out[symbol] = {"position": value("position", 0.0), "target": value("target", 0.0),
                       "stop_loss_base": value("sl_base", None),
                       "take_profit_base": value("tp_base", None)}
    return out


def _perp_status(meta: dict[str, str]) -> dict[str, dict[str, float]]:
    """``{"perp": {qty, entry_price, margin, liq_price, funding_net}}`` of a perp run's
    account (the keys of :class:`~quantlib.live.brokers.base.PerpBroker`); ``{}`` for spot."""
    if "liq_price" not in meta:
        return {}
    keys = {"qty": "position", "entry_price": "entry_price", "margin": "margin",
            "liq_price": "liq_price", "funding_net": "funding_net"}
    return {"perp": {name: float(meta.get(key, 0.0)) for name, key in keys.items()}}


def _run_metrics(bars: list[tuple], fills: list[tuple]) -> dict[str, float] | None:
    """The run's equity curve through the same metrics function as backtests and optimizers
    (returns from the first recorded bar; the timeframe is inferred from the bar times)."""
    import pandas as pd  # the status command, not the trading process

    from quantlib.backtest.metrics import compute_metrics

    if len(bars) < 3:
        return None
    index = pd.to_datetime([b[0] for b in bars], unit="ms", utc=True)
    equity = pd.Series([b[5] for b in bars], index=index, dtype=float)
    position = np.array([b[3] for b in bars], dtype=float)
    traded = float(sum(abs(f[3] * f[4]) for f in fills))
    fees = float(sum(f[5] for f in fills))
    metrics = compute_metrics(equity, position=position, traded_value=traded, fees_paid=fees)
    keep = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "exposure", "turnover",
            "fees_paid")
    return {k: float(metrics[k]) for k in keep}


__all__ = ["BarPath", "ExchangeGridPath", "FundingWindow", "LiveRunner", "PaperGridPath",
           "SignalPath", "RunSummary", "SignalWindow", "check_feed_matches",
           "read_status"]
