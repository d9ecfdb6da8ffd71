"""How the live runner trades one closed bar: one interface, one implementation per engine.

The runner (:mod:`quantlib.live.runner`) picks its :class:`BarPath` once, when it is built
(:func:`make_path`), and then calls it for every closed bar; nothing else in the runner depends
on the engine or the mode:

* :class:`SignalPath` (``engine="signals"``, any broker: spot or perp, paper or live): the
  broker settles the bar, the kind's signal on each symbol's window gives a target, and the
  target changes become order intents, exactly the changes the backtest turns into signals;
* :class:`PaperGridPath` (``engine="grid"``, paper): the grid engine's own one-bar kernel
  (:func:`quantlib.core.grid_kind.step_bar`, the backtest's) decides which levels fill;
* :class:`ExchangeGridPath` (``engine="grid"``, live): the grid's limit orders rest at the
  exchange (:class:`~quantlib.live.grid_exchange.GridAtExchange`).

Each path's ``step(bars)`` takes ``{symbol: Bar}`` of one bar time and, in ONE state-store
transaction, writes what it decided (orders, the equity point, the candles, ``last_bar``); the
signal path sends its intents only after that commit. ``start()`` brings the venue in line
before the first bar; ``cancel_all()`` pulls resting orders when the kill switch asks to.
What the paths read and write is a :class:`BarContext` the runner builds once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from quantlib.core.bars import Bars
from quantlib.core.grid_kind import GridState, step_bar
from quantlib.core.perp_kinds import with_funding
from quantlib.core.registry import StrategyKind, get_kind
from quantlib.live.brokers.base import Broker, client_order_id, symbol_key
from quantlib.live.brokers.paper import signal_flags
from quantlib.live.feeds import Bar
from quantlib.live.grid_exchange import GridAtExchange
from quantlib.live.logs import JsonLogger
from quantlib.live.risk import RiskManager
from quantlib.live.state import OrderRow, StateStore
from quantlib.live.windows import FundingWindow, SignalWindow
from quantlib.strategy.spec import StrategySpec


@dataclass(kw_only=True)
class BarContext:
    """What a bar path reads and writes, built once by the runner.

    ``windows``: one :class:`~quantlib.live.windows.SignalWindow` per traded symbol and per
    other market the kind reads (``inputs``: its informative inputs); ``funding``: the perp
    signal's funding window (None for spot); ``latencies_ns``: each bar's decide-and-commit
    time, appended by the path (benchmarks, the latency test).
    """

    spec: StrategySpec
    kind: StrategyKind
    params: dict[str, Any]
    broker: Broker
    store: StateStore
    risk: RiskManager
    log: JsonLogger
    windows: dict[str, SignalWindow]
    inputs: list[Any] = field(default_factory=list)
    funding: FundingWindow | None = None
    latencies_ns: list[int] = field(default_factory=list)
    symbols: list[str] = field(init=False)  # the spec's, in its order

    def __post_init__(self) -> None:
        self.symbols = list(self.spec.symbols)

    @property
    def window(self) -> SignalWindow:
        """The first symbol's window (one-symbol specs: the only traded one)."""
        return self.windows[self.spec.symbol]


class BarPath:
    """How a runner trades one closed bar (module docstring). Subclasses implement
    :meth:`step`; :meth:`start` and :meth:`cancel_all` have defaults."""

    def __init__(self, ctx: BarContext):
        self.ctx = ctx

    def start(self) -> None:
        """Reconcile with the venue and re-send intents a crash left unsent (idempotent)."""
        self.ctx.broker.reconcile()
        self.ctx.broker.resubmit_pending()

    def step(self, bars: dict[str, Bar]) -> list[OrderRow]:  # pragma: no cover - abstract
        """Decide and commit ``{symbol: Bar}`` of one bar time; returns the bar's orders."""
        raise NotImplementedError

    def cancel_all(self) -> None:
        """Pull the orders resting at the venue (none rest on this path)."""


@dataclass
class Decision:
    """One bar's decision on the signal path: the first symbol's target and position (the
    ``bars`` table's columns), the intents in the spec's symbol order, cash and equity."""

    target: float
    position: float
    orders: list[OrderRow]
    cash: float
    equity: float


class SignalPath(BarPath):
    """The kind's targets become order intents the broker fills (paper: at the next open).

    Per bar, inside the bar's transaction: the broker settles (``on_bar``: paper fills the
    previous intent at this bar's open and checks exits; live records what the exchange did);
    risk limits are checked on the equity; each symbol's target is the kind's signal on its
    own window (the last value), capped by risk; a target change is an intent with a
    deterministic client id. After the commit the intents are sent.
    """

    def step(self, bars: dict[str, Bar]) -> list[OrderRow]:
        ctx = self.ctx
        bar = bars[ctx.spec.symbol]
        t0 = time.perf_counter_ns()
        with ctx.store.transaction():
            decision = self.decide(bars)
            ctx.latencies_ns.append(time.perf_counter_ns() - t0)
            for order in decision.orders:
                ctx.store.add_order(order)
            # the bars table holds the first symbol's close, target and position (a
            # portfolio's other positions are in the meta table) and the whole equity
            ctx.store.add_bar(bar.time, bar.close, decision.target, decision.position,
                              decision.cash, decision.equity)
            for symbol, candle in bars.items():  # the run's own data, for `live report`
                ctx.store.add_candle(symbol, candle)
            ctx.store.set_meta("last_bar", bar.time)
        for order in decision.orders:
            ctx.log.info("order_intent", bar=bar.time, client_id=order.client_id,
                         intent=order.intent, side=order.side)
            ctx.broker.submit(order)
        return decision.orders

    def decide(self, bars: dict[str, Bar]) -> Decision:
        """Settle the bar, then one target per symbol (the same kind and params on each
        symbol's own window) and the intents of the target changes, in the spec's order."""
        ctx = self.ctx
        symbols, broker = ctx.symbols, ctx.broker
        # live brokers may answer with this bar's exit orders: resting exits to place (type
        # "stop", the position stays open) or exits that close it now (replacing its signal)
        orders: list[OrderRow] = list(broker.on_bar(bars) or [])
        cash, _ = broker.account()
        positions = broker.positions(symbols)
        # the broker values its own account (spot: cash + positions at the closes, summed in
        # the spec's order as the backtest's columns; perp: cash + margin + unrealised pnl)
        equity = broker.equity({s: bars[s].close for s in symbols})
        self._check_risk(bars[symbols[0]].time, equity)
        exited = {order.symbol for order in orders if order.order_type != "stop"}
        targets = {}
        budget = cash  # live sizing: later symbols size from what earlier entries leave
        for symbol in symbols:
            previous = ctx.store.get_float(self._key("target", symbol), 0.0)
            targets[symbol] = target = self._target(symbol, previous)
            if symbol in exited:  # a stop closed it this bar: its exit replaces the signal
                continue
            order = self._intent(symbol, bars[symbol], previous, target, budget,
                                 positions[symbol])
            if order is not None:
                orders.append(order)
                budget -= (order.side * order.amount * bars[symbol].close
                           * (1.0 + order.side * ctx.spec.execution.fees))
        for symbol, target in targets.items():
            ctx.store.set_meta(self._key("target", symbol), repr(target))
        return Decision(target=targets[symbols[0]], position=positions[symbols[0]],
                        orders=orders, cash=cash, equity=equity)

    def _check_risk(self, bar_time: int, equity: float) -> None:
        halt = self.ctx.risk.check(bar_time, equity)
        if halt:
            self.ctx.log.warning("risk_halt", bar=bar_time, reason=halt)
            self.ctx.store.set_meta("halted_bar", bar_time)  # the drift report's time line

    def _target(self, symbol: str, previous: float) -> float:
        """The signal's last value on the symbol's window, capped by risk; a halt keeps the
        previous target or flattens (``risk.flatten_on_halt``)."""
        ctx = self.ctx
        target = float(ctx.kind.signals(self._signal_bars(symbol), ctx.params, validated=True,
                                        informative=self._input_data(symbol))[-1])
        target = ctx.risk.cap(target)
        if ctx.risk.halted:
            return 0.0 if ctx.spec.risk.flatten_on_halt else previous
        return target

    def _intent(self, symbol: str, bar: Bar, previous: float, target: float, budget: float,
                position: float) -> OrderRow | None:
        """The order intent of a target change, or None when the backtest would see no
        signal in it (``signal_flags``)."""
        spec = self.ctx.spec
        flags = signal_flags(previous, target, spec.execution.direction)
        if not any(flags):
            return None
        intent = f"signal|{previous!r}|{target!r}"
        # real venues need a base amount now; paper sizes at the fill (None)
        amount = self.ctx.broker.intent_amount(flags, bar.close, budget, position,
                                               symbol=symbol)
        return OrderRow(client_id=client_order_id(spec.name, symbol, bar.time, intent),
                        bar_time=bar.time, symbol=symbol, intent=intent,
                        side=1 if (flags[0] or flags[3]) else -1,
                        amount=0.0 if amount is None else amount, target=target,
                        order_type=spec.execution.order_type, price=None, status="new",
                        exchange_id=None, detail="", attempts=0)

    def _key(self, name: str, symbol: str) -> str:
        return symbol_key(name, symbol, self.ctx.symbols[0])

    def _signal_bars(self, symbol: str) -> Bars:
        """The window the signal reads: the closed candles, and for a perp the column
        ``funding_rate`` (the rate known at each bar's close), as the perp backtest adds it."""
        ctx = self.ctx
        bars = ctx.windows[symbol].bars(ctx.spec.timeframe, symbol)
        if ctx.funding is None:
            return bars
        times, rates = ctx.funding.arrays()
        return with_funding(bars, times, rates, ctx.spec.timeframe)

    def _input_data(self, symbol: str) -> dict[str, Bars] | None:
        """The window of each informative input that reads data, not the traded bars
        resampled (another market; or a source string, which this process must not load):
        what a backtest passes as ``informative={name: frame}``."""
        ctx = self.ctx
        data = {}
        for spec in ctx.inputs:
            if spec.symbol not in (None, symbol) or spec.source is not None:
                market = spec.symbol or symbol
                data[spec.name] = ctx.windows[market].bars(ctx.spec.timeframe, market)
        return data or None


class GridRule:
    """What both grid paths share: the grid's own parameters (a wrapping kind such as
    ``regime_grid`` names them) and the wrapping kind's buy condition."""

    def __init__(self, ctx: BarContext):
        self.ctx = ctx
        kind = ctx.kind
        self.params = (ctx.params if kind.grid_params is None
                       else get_kind("grid").validate(kind.grid_params(ctx.params)))

    def buys_allowed(self, offset: int) -> bool:
        """A wrapping kind's buy condition at bar ``-offset`` of the window (True for the plain
        grid): the same function, on the same bars, as the backtest's mask."""
        ctx = self.ctx
        if ctx.kind.grid_allowed is None:
            return True
        allowed = ctx.kind.allowed(ctx.window.bars(ctx.spec.timeframe, ctx.spec.symbol),
                                   ctx.params)
        return len(allowed) >= offset and bool(allowed[-offset])


class PaperGridPath(BarPath):
    """The grid engine's own one-bar kernel decides which resting level fills inside the bar
    (:func:`quantlib.core.grid_kind.step_bar`, the backtest's ``grid_step_nb``); the grid's
    state, its fills and ``last_bar`` commit together."""

    def __init__(self, ctx: BarContext):
        super().__init__(ctx)
        self.rule = GridRule(ctx)

    def step(self, bars: dict[str, Bar]) -> list[OrderRow]:
        ctx = self.ctx
        spec, store, bar = ctx.spec, ctx.store, bars[ctx.spec.symbol]
        t0 = time.perf_counter_ns()
        with store.transaction():
            saved = store.get_json("grid_state")
            if saved is None:
                grid = GridState.start(self.rule.params, first_open=bar.open,
                                       config=spec.backtest_config())
            else:
                grid = GridState.from_dict(saved)
            # buys may rest during bar t when the condition held at bar t-1's close
            active = not ctx.risk.halted and self.rule.buys_allowed(2)
            fills = step_bar(grid, (bar.open, bar.high, bar.low, bar.close), active=active)
            ctx.latencies_ns.append(time.perf_counter_ns() - t0)
            orders = [self._record(bar, i, fill) for i, fill in enumerate(fills)]
            equity = grid.equity(bar.close)
            halt = ctx.risk.check(bar.time, equity)
            if halt:
                ctx.log.warning("risk_halt", bar=bar.time, reason=halt)
            store.set_json("grid_state", grid.to_dict())
            store.set_meta("cash", repr(grid.cash))
            store.set_meta("position", repr(grid.inventory))
            store.add_candle(spec.symbol, bar)
            store.add_bar(bar.time, bar.close, 0.0, grid.inventory, grid.cash, equity,
                          note="" if active else "buys off")
            store.set_meta("last_bar", bar.time)
        return orders

    def _record(self, bar: Bar, index: int, fill: dict[str, Any]) -> OrderRow:
        """Store one level's fill as a filled limit order and its fill."""
        spec, store = self.ctx.spec, self.ctx.store
        intent = f"grid|{fill['level']}|{fill['side']}|{index}"
        cid = client_order_id(spec.name, spec.symbol, bar.time, intent)
        order = OrderRow(client_id=cid, bar_time=bar.time, symbol=spec.symbol, intent=intent,
                         side=fill["side"], amount=fill["size"], target=0.0,
                         order_type="limit", price=fill["price"], status="filled",
                         exchange_id=None, detail="", attempts=1)
        store.add_order(order)
        store.add_fill(cid, bar.time, fill["side"], fill["price"], fill["size"], fill["fee"])
        return order


class ExchangeGridPath(BarPath):
    """Grid limit orders rest at the exchange (``venue``: a
    :class:`~quantlib.live.grid_exchange.GridAtExchange`, whose docstring states the protocol)."""

    def __init__(self, ctx: BarContext):
        super().__init__(ctx)
        self.rule = GridRule(ctx)
        self.venue = GridAtExchange(ctx.spec, self.rule.params, ctx.broker, ctx.store,
                                    ctx.risk, ctx.log)

    def start(self) -> None:
        self.ctx.broker.load_markets()  # start-up fails fast (after back-off) offline
        self.venue.resume()

    def step(self, bars: dict[str, Bar]) -> list[OrderRow]:
        ctx = self.ctx
        # resting buys for the next bar: the condition at this bar's close
        return self.venue.step(bars[ctx.spec.symbol], ctx.latencies_ns,
                               buys_allowed=self.rule.buys_allowed(1), ohlc=ctx.window.ohlc())

    def cancel_all(self) -> None:
        self.venue.cancel_all()


def make_path(ctx: BarContext, mode: str) -> BarPath:
    """The bar path of a run: chosen once, by the kind's engine and the mode."""
    if ctx.kind.engine != "grid":  # targets -> order intents -> any broker
        return SignalPath(ctx)
    return ExchangeGridPath(ctx) if mode == "live" else PaperGridPath(ctx)


__all__ = ["BarContext", "BarPath", "Decision", "ExchangeGridPath", "GridRule",
           "PaperGridPath", "SignalPath", "make_path"]
