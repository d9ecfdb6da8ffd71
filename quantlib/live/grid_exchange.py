"""Grid trading at a real exchange: resting limit orders, fills as the exchange reports them.

In paper mode the grid engine's kernel decides fills from each bar's range. At an exchange the
exchange decides; the runner rests the book of the engine's default fill model, "bar" (the rule
is written once, in :mod:`quantlib.core.grid_nb`), on the engine's own levels (built by
``grid_levels_nb``/``vol_levels_nb``), and lets the exchange fill it. At the close of bar ``t``:

- a level holding base units rests a sell limit of exactly those units at ``L_{i+1}``;
- level ``i < n - 1`` holding nothing rests a buy limit of ``order_value / L_i`` base units at
  ``L_i`` when ``0 < L_i < close_t`` (the top level never buys), nearest level first for as long
  as the cash at the close pays for them (value + fee each, the engine's arithmetic);
- a volatility grid is (re)built first (centred on the close, spacing ``atr_k`` x the ATR of the
  last ``atr_period`` bars, the engine's true range; never narrower than the engine's
  ``MIN_STEP_REL`` x the close), then the stop-out is checked on the close.

That book rests during bar ``t+1``, the exchange fills what the bar's range reaches at the
limit prices, and the follow-up orders go out at the next close: exactly what the backtest
simulates. The optimistic ``fill_model="touch"`` (orders re-armed inside a bar) cannot be traded
here and is refused.

Per closed bar ``t`` (:meth:`GridAtExchange.step`):

1. *sync*: one fetch of our open and one of our closed orders; in ONE transaction the fills the
   exchange reports are recorded and applied to the book (a filled buy fills its level, a filled
   sell empties it), exactly once: an order's final status and its effect on the book commit
   together;
2. *decide*: in ONE transaction, the book the grid wants at ``close_t`` is compared with the
   orders resting: missing orders become intents (status ``new``, deterministic client id from
   strategy, symbol, bar time, level and side), surplus ones are marked ``cancelling``; the
   equity point and ``last_bar = t`` commit with them;
3. *flush* (after the commit): cancellations first (releasing the funds they hold), then
   placements. Each placement first asks the exchange for its client id, so a retry, a lost
   response or a restart never creates a second order.

A restart syncs and flushes before the next bar, so intents committed by a killed process are
sent (once). ``stop_out`` (price beyond a threshold at a close) and a risk halt with
``flatten_on_halt`` cancel every order and sell the inventory at market; a halt without it
cancels the buys only.

What only a real venue adds: its own fees (the spec's ``fees`` should be the venue's), amounts
and prices on its precision (buys round down, sells up), an order the price already passed when
placed filling at once at a better price than its limit (the engine keeps the limit:
conservative), partial fills (a partly filled order counts when it closes or is cancelled; its
filled part then moves the book), and the stop-out's market sell filling at the next trade
rather than at the close.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantlib.core import grid_nb as nb
from quantlib.core.grid_kind import GridState
from quantlib.core.indicators_nb import mean_true_range_nb
from quantlib.errors import LiveError
from quantlib.live.brokers.base import FINAL_STATUS, Broker, client_order_id
from quantlib.live.feeds import Bar
from quantlib.live.logs import JsonLogger
from quantlib.live.risk import RiskManager
from quantlib.live.state import OrderRow, StateStore
from quantlib.strategy.spec import StrategySpec

BOOK_KEY = "grid_book"
PENDING = ("new", "sent", "cancelling")
FLAT_INTENT = "grid|flat"


@dataclass
class Book:
    """Levels, base units held per level, order value and whether the grid has stopped."""

    levels: list[float]  # empty: a volatility grid not built yet
    holding: list[float]
    order_value: float
    stop_margin: float  # < 0: no stop-out
    stopped: bool = False
    atr_k: float = 0.0  # > 0: a volatility grid, re-centred when flat and outside its range

    def to_dict(self) -> dict[str, Any]:
        return {"levels": self.levels, "holding": self.holding, "order_value": self.order_value,
                "stop_margin": self.stop_margin, "stopped": self.stopped, "atr_k": self.atr_k}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Book:
        return cls(list(d["levels"]), list(d["holding"]), float(d["order_value"]),
                   float(d["stop_margin"]), bool(d["stopped"]), float(d.get("atr_k", 0.0)))

    def recentre(self, close: float, atr: float | None) -> bool:
        """Volatility grid: build it around ``close`` (spacing ``atr_k * atr``) when it holds
        nothing and none exists or the price left it; the engine's rule, at a close."""
        if self.atr_k <= 0.0 or self.stopped or atr is None or self.inventory > 0.0:
            return False
        if self.levels and self.levels[0] <= close <= self.levels[-1]:
            return False
        spacing = self.atr_k * atr
        # the engine's degenerate-grid rule: levels closer than MIN_STEP_REL x the price would
        # not be distinct prices (a flat or near-flat history); the grid there stays, or none
        if not spacing >= nb.MIN_STEP_REL * close:
            return False
        out = np.empty(len(self.holding))
        nb.vol_levels_nb(close, spacing, len(out), out)
        self.levels = [float(x) for x in out]
        return True

    def wanted(self, price: float, buys_allowed: bool, cash: float = math.inf, fee: float = 0.0,
               slippage: float = 0.0) -> dict[tuple[int, int], tuple[float, float]]:
        """(level, side) -> (limit price, amount) of the orders the grid rests after a close at
        ``price`` with ``cash`` (quote) in the account: the engine's "bar" book."""
        if self.stopped or not self.levels:
            return {}
        out = {(i, -1): (self.levels[i + 1], held)
               for i, held in enumerate(self.holding[:-1]) if held > 0.0}
        if not buys_allowed:
            return out
        left = cash
        for i in range(len(self.levels) - 2, -1, -1):  # nearest the price first
            level = self.levels[i]
            if not 0.0 < level < price or self.holding[i] > 0.0:
                continue
            amount = self.order_value / level
            # the kernel's arithmetic, so that the same buys fit
            value = amount * (level * (1.0 + slippage))
            cost = value * fee
            if value + cost > left:
                break  # this level and the ones below wait for a later close
            left = left - value - cost
            out[(i, 1)] = (level, amount)
        return out

    def beyond_stop(self, price: float) -> bool:
        if self.stop_margin < 0.0 or not self.levels:
            return False
        return (price < self.levels[0] * (1.0 - self.stop_margin)
                or price > self.levels[-1] * (1.0 + self.stop_margin))

    @property
    def inventory(self) -> float:
        return math.fsum(self.holding)


def atr_at_close(ohlc: np.ndarray | None, params: dict[str, Any]) -> float | None:
    """A volatility grid's ATR after the last bar of ``ohlc``: the mean true range of the last
    ``atr_period`` bars, the engine's own arithmetic (:func:`quantlib.core.indicators_nb.
    mean_true_range_nb`). None for other spacings or too few bars.

    Examples
    --------
    >>> bars = np.array([[10, 12, 9, 11], [11, 15, 11, 14], [14, 14, 13, 13.5]], dtype=float)
    >>> atr_at_close(bars, {"spacing": "volatility", "atr_period": 2})  # TRs 4 and 1
    2.5
    """
    if params.get("spacing") != "volatility" or ohlc is None:
        return None
    period = int(params["atr_period"])
    if len(ohlc) < period:
        return None
    high, low, close = (np.ascontiguousarray(ohlc[:, j], dtype=np.float64) for j in (1, 2, 3))
    return float(mean_true_range_nb(high, low, close, period))


def parse_intent(intent: str) -> tuple[int, int] | None:
    """``"grid|3|buy"`` -> ``(3, 1)``; the flatten order and foreign intents -> None.

    Examples
    --------
    >>> parse_intent("grid|3|buy"), parse_intent("grid|0|sell"), parse_intent(FLAT_INTENT)
    ((3, 1), (0, -1), None)
    """
    parts = intent.split("|")
    if len(parts) != 3 or parts[0] != "grid" or parts[2] not in ("buy", "sell"):
        return None
    return int(parts[1]), (1 if parts[2] == "buy" else -1)


def _nearest_first(slot_order: tuple[tuple[int, int], tuple[float, float]]) -> float:
    """Sort key of ``((level, side), (price, amount))``: buys by falling price, sells by
    rising price (the levels nearest the close first)."""
    (_, side), (price, _) = slot_order
    return -price if side > 0 else price


class GridAtExchange:
    """The live runner's grid engine for a real venue (``CcxtBroker``); see the module doc."""

    def __init__(self, spec: StrategySpec, params: dict[str, Any], broker: Broker,
                 store: StateStore, risk: RiskManager, log: JsonLogger):
        if not broker.rests_orders:
            raise LiveError(f"broker {type(broker).__name__} cannot rest limit orders")
        if params.get("fill_model", "bar") != "bar":
            raise LiveError(f"strategy {spec.name!r}: grid parameter 'fill_model' is "
                            f"{params['fill_model']!r}, which an exchange cannot trade (orders "
                            "change only at bar closes); backtest and approve it with "
                            "fill_model='bar'")
        self.spec, self.params, self.broker = spec, params, broker
        self.store, self.risk, self.log = store, risk, log

    # -- book -----------------------------------------------------------------------------------
    def _book(self, first_open: float) -> Book:
        saved = self.store.get_json(BOOK_KEY)
        if saved is not None:
            return Book.from_dict(saved)
        # The engine's own levels and order value (bounds relative to the first open).
        grid = GridState.start(self.params, first_open=first_open,
                               config=self.spec.backtest_config())
        n = len(grid.levels)
        volatility = self.params["spacing"] == "volatility"
        return Book(levels=[] if volatility else [float(x) for x in grid.levels],
                    holding=[0.0] * n, order_value=float(grid.row[nb.P_ORDER_VALUE]),
                    stop_margin=float(grid.row[nb.P_STOP_MARGIN]),
                    atr_k=float(self.params["atr_k"]) if volatility else 0.0)

    # -- 1. sync --------------------------------------------------------------------------------
    def sync(self) -> None:
        """Record what the exchange did with our pending orders and apply it to the book.

        Never builds the book: orders exist only once :meth:`decide` has built it from a real
        bar (a sync before the first bar, e.g. a stop, would otherwise fix the levels of a
        relative-bounds grid on no price at all)."""
        pending = self.store.orders(PENDING)
        if pending:
            self._apply(pending)
        self.broker.refresh_balance()

    def _apply(self, pending: list[OrderRow]) -> None:
        # "new" orders too: a process killed after the exchange took one never recorded it
        remote = self.broker.lookup([o.client_id for o in pending])
        with self.store.transaction():
            book = Book.from_dict(self.store.get_json(BOOK_KEY))
            for order in pending:
                found = remote.get(order.client_id)
                if found is None:
                    continue  # not at the exchange (yet): flush sends or drops it
                status = FINAL_STATUS.get(found.get("status"))
                if status is not None:
                    self._finalize(order, found, status, book)
                elif order.status == "new":  # resting, sent by a process that then died
                    self.store.update_order(order.client_id, status="sent",
                                            exchange_id=found.get("id"))
            self.store.set_json(BOOK_KEY, book.to_dict())

    def _finalize(self, order: OrderRow, found: dict, status: str, book: Book) -> None:
        filled = float(found.get("filled") or 0.0)
        price = float(found.get("average") or found.get("price") or order.price or 0.0)
        self.store.update_order(order.client_id, status=status, exchange_id=found.get("id"),
                                price=price)
        if filled > 0.0:
            fee = float((found.get("fee") or {}).get("cost") or 0.0)
            when = int(found.get("lastTradeTimestamp") or found.get("timestamp") or 0)
            self.store.add_fill(order.client_id, when or order.bar_time, order.side, price,
                                filled, fee, trade_id=found.get("id"))
            self.log.info("grid_fill", client_id=order.client_id, intent=order.intent,
                          price=price, amount=filled)
        slot = parse_intent(order.intent)
        if slot is None or filled <= 0.0:
            return
        level, side = slot
        if side > 0:
            book.holding[level] += filled
        else:
            left = book.holding[level] - filled
            # an amount the exchange rounded: a remainder this small is nothing to sell
            book.holding[level] = 0.0 if left <= 1e-9 * max(filled, 1.0) else left

    # -- 2. decide ------------------------------------------------------------------------------
    def decide(self, bar: Bar, buys_allowed: bool = True,
               atr: float | None = None) -> list[OrderRow]:
        """Commit the intents that take the resting orders to the book the grid wants
        (``buys_allowed=False``: a wrapping kind's condition, e.g. the regime, forbids buys;
        ``atr``: a volatility grid's ATR at this close, None before enough bars)."""
        spec, store = self.spec, self.store
        with store.transaction():
            book = self._book(bar.open)
            if book.recentre(bar.close, atr):
                self.log.info("grid_built", bar=bar.time, low=book.levels[0],
                              high=book.levels[-1])
            cash, position = self.broker.account()
            equity = cash + position * bar.close
            halt = self.risk.check(bar.time, equity)
            if halt:
                self.log.warning("risk_halt", bar=bar.time, reason=halt)
            flatten = False
            if not book.stopped and book.beyond_stop(bar.close):
                self.log.warning("grid_stop_out", bar=bar.time, close=bar.close)
                book.stopped, flatten = True, True
            if self.risk.halted and spec.risk.flatten_on_halt and not book.stopped:
                book.stopped, flatten = True, True
            config = spec.backtest_config()
            wanted = book.wanted(bar.close, buys_allowed and not self.risk.halted, cash,
                                 config.fees, config.slippage)
            resting = {}
            for order in store.orders(("new", "sent")):
                slot = parse_intent(order.intent)
                if slot is not None and slot not in resting:
                    resting[slot] = order
                elif order.intent != FLAT_INTENT:  # a duplicate slot: it must go
                    store.update_order(order.client_id, status="cancelling")
            for slot, order in resting.items():
                if wanted.get(slot, (None, None))[0] != order.price:
                    store.update_order(order.client_id, status="cancelling")
            intents = []
            # nearest levels first: they are the ones the price meets first; the cash for the
            # buys was counted in ``wanted`` (cancellations are sent first and release theirs)
            for (level, side), (price, amount) in sorted(wanted.items(), key=_nearest_first):
                if (level, side) in resting and resting[(level, side)].price == price:
                    continue
                intents.append(self._intent(bar, f"grid|{level}|{'buy' if side > 0 else 'sell'}",
                                            side, amount, "limit", price))
            if flatten and book.inventory > 0.0:
                intents.append(self._intent(bar, FLAT_INTENT, -1, book.inventory, "market", None))
                book.holding = [0.0] * len(book.holding)
            for order in intents:
                store.add_order(order)
            store.set_json(BOOK_KEY, book.to_dict())
            store.add_bar(bar.time, bar.close, 0.0, position, cash, equity)
            store.set_meta("last_bar", bar.time)
        return intents

    def _intent(self, bar: Bar, intent: str, side: int, amount: float, order_type: str,
                price: float | None) -> OrderRow:
        cid = client_order_id(self.spec.name, self.spec.symbol, bar.time, intent)
        return OrderRow(client_id=cid, bar_time=bar.time, symbol=self.spec.symbol,
                        intent=intent, side=side, amount=float(amount), target=0.0,
                        order_type=order_type, price=price, status="new", exchange_id=None,
                        detail="", attempts=0)

    # -- 3. flush -------------------------------------------------------------------------------
    def flush(self) -> None:
        """Send what the committed state asks for: cancellations, then placements.

        Always called after :meth:`sync`, which looked every pending id up at the exchange
        (intents decided since have ids nobody ever sent), so a placement needs no look-up of
        its own before its first attempt: half the API calls of a blind look-up-then-send."""
        for order in self.store.orders("cancelling"):
            self.broker.cancel(order)
        for order in self.store.orders("new"):
            self.broker.place(order, known_absent=True)
            self.log.info("grid_order", client_id=order.client_id, intent=order.intent,
                          price=order.price, amount=order.amount)

    def cancel_all(self) -> None:
        """Pull every resting order (``quantlib live stop --cancel-orders``) and record how
        each ended; units bought before a cancellation landed stay in the account."""
        with self.store.transaction():
            for order in self.store.orders(("new", "sent")):
                self.store.update_order(order.client_id, status="cancelling")
        self.flush()
        self.sync()
        saved = self.store.get_json(BOOK_KEY)
        self.log.info("grid_cancelled", inventory=Book.from_dict(saved).inventory if saved else 0.0)

    # -- the runner's entry points ----------------------------------------------------------------
    def resume(self) -> None:
        """On start: apply what happened while we were away, send what was committed."""
        book = self.store.get_json(BOOK_KEY)
        if book is None:
            return  # first start: nothing placed yet
        self.sync()
        self.flush()

    def step(self, bar: Bar, latencies_ns: list[int] | None = None, *,
             buys_allowed: bool = True, ohlc: np.ndarray | None = None) -> list[OrderRow]:
        """One closed bar; ``ohlc`` holds the recent bars (rows open, high, low, close; the
        last one is ``bar``), needed by volatility grids."""
        self.sync()
        t0 = time.perf_counter_ns()
        intents = self.decide(bar, buys_allowed, atr_at_close(ohlc, self.params))
        if latencies_ns is not None:
            latencies_ns.append(time.perf_counter_ns() - t0)
        self.flush()
        return intents


__all__ = ["Book", "GridAtExchange", "atr_at_close", "parse_intent"]
