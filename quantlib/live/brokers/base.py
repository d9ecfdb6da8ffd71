"""The broker contract and the deterministic client order id."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quantlib.live.state import OrderRow, StateStore, symbol_key

# ccxt's unified order status -> the final local status it means (anything else still rests)
FINAL_STATUS = {"closed": "filled", "canceled": "cancelled", "expired": "cancelled",
                "rejected": "rejected"}


def client_order_id(strategy: str, symbol: str, bar_time_ms: int, intent: str) -> str:
    """Deterministic client order id from (strategy, symbol, bar time, intent).

    The same decision always maps to the same id, so re-sending after a crash or a timeout can be
    recognised by the exchange (and by our reconciliation) instead of creating a second order.
    Formatted as a UUID, which Kraken accepts as ``cl_ord_id``.

    Examples
    --------
    >>> a = client_order_id("ma", "BTC/USD", 1700000000000, "target:1")
    >>> a == client_order_id("ma", "BTC/USD", 1700000000000, "target:1"), len(a)
    (True, 36)
    """
    digest = hashlib.sha256(f"{strategy}|{symbol}|{bar_time_ms}|{intent}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def accept_paper_order(store: StateStore, order: OrderRow) -> None:
    """What a paper venue does on ``submit``: accept the intent (``new`` -> ``sent``, one more
    attempt); the fill comes at the next bar's open. Idempotent by ``client_id``."""
    current = store.get_order(order.client_id)
    if current is not None and current.status == "new":
        with store.transaction():
            store.update_order(order.client_id, status="sent", attempts=current.attempts + 1)


class Broker:
    """Base class. Subclasses implement :meth:`submit`; the others have safe defaults.

    Life cycle per bar (driven by the runner):

    1. ``on_bar(bars)`` (``{symbol: Bar}`` of one closed bar time, in the spec's symbol order)
       inside the bar's transaction: paper checks the exits on each symbol's bar and fills
       pending orders at its open, as the backtest does; live records the exits the exchange
       filled during the bar and queues the resting exits of positions whose entry's bar just
       closed (``resting_exits.py``);
    2. the runner commits the decision and intents (status ``new``);
    3. ``submit(order)`` for each intent, outside the transaction; it must be idempotent by
       ``client_id`` and record the outcome itself.

    ``market`` is the account kind (``"spot"``; :class:`PerpBroker`: ``"perp"``), which the
    runner checks against the spec's. ``rests_orders``: the broker can rest limit orders at a
    venue (``load_markets``, ``lookup``, ``place``, ``cancel``, ``refresh_balance``), which
    the exchange grid needs (:mod:`quantlib.live.grid_exchange`).
    """

    market: str = "spot"
    rests_orders: bool = False

    def __init__(self, store: StateStore):
        self.store = store

    def reconcile(self) -> None:
        """Bring local state in line with the venue before trading (default: nothing)."""

    def on_bar(self, bars: Mapping[str, Any]) -> None:
        """Called inside the bar's transaction before the decision; ``bars`` maps each
        symbol to its closed :class:`~quantlib.live.feeds.Bar`."""

    def submit(self, order: OrderRow) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def intent_amount(self, flags: tuple[bool, bool, bool, bool], price: float, cash: float,
                      position: float, *, symbol: str) -> float | None:
        """The base amount of a signal intent, decided at the bar's close, or None: the
        broker sizes it when it fills (paper, by design: the backtest sizes an order from the
        cash at its fill, the next open, which a close cannot know). A venue that needs an
        amount with the order returns it (``flags``: long entry, long exit, short entry,
        short exit; ``cash``: what the bar's earlier entries leave, costed at ``price``).
        The runner then records ``amount`` 0.0 for None."""
        return None

    def resubmit_pending(self) -> None:
        """Send every unfinished intent (crash between commit and send); idempotent."""
        for order in self.store.orders(("new", "sent")):
            self.submit(order)

    def account(self) -> tuple[float, float]:
        """(cash, position in base units of the first symbol)."""
        return (self.store.get_float("cash", 0.0), self.store.get_float("position", 0.0))

    def positions(self, symbols: list[str]) -> dict[str, float]:
        """Position in base units of every symbol (spec order)."""
        return {s: self.store.get_float(symbol_key("position", s, symbols[0]), 0.0)
                for s in symbols}

    def equity(self, closes: Mapping[str, float]) -> float:
        """The account's value at ``closes`` (``{symbol: close}`` in the spec's order): cash
        plus every position at its close, summed in that order (the backtest's columns)."""
        cash, _ = self.account()
        symbols = list(closes)
        equity = cash
        for symbol, position in self.positions(symbols).items():
            equity += position * closes[symbol]
        return equity


@dataclass(frozen=True)
class PerpPosition:
    """An isolated perp position as the state store keeps it.

    ``qty`` signed base units (> 0 long, < 0 short, 0 flat), ``entry_price`` its fill price,
    ``margin`` the isolated margin posted (funding included), ``liq_price`` the mark price
    that liquidates it (0.0 when flat or never), ``funding_net`` funding paid since the start
    (> 0 paid, < 0 received).
    """

    qty: float
    entry_price: float
    margin: float
    liq_price: float
    funding_net: float


# The state-store meta keys of a perp account (one swap per spec, so no symbol suffix).
PERP_KEYS = ("cash", "position", "entry_price", "margin", "liq_price", "funding_net",
             "funding_pending")


class PerpBroker(Broker):
    """The contract of a perpetual-swap broker: paper (:mod:`~quantlib.live.brokers.perp_paper`)
    or live at a venue. The runner drives it as a spot broker (same per-bar life cycle, same
    order intents); only the account differs.

    Account (state-store meta keys, :data:`PERP_KEYS`, written in the bar's transaction):
    ``cash`` (wallet balance not posted as margin), ``position`` (signed qty), ``entry_price``,
    ``margin`` (isolated margin), ``liq_price``, ``funding_net`` (paid since the start, > 0
    paid) and ``funding_pending`` (JSON ``[[time_ms, rate], ...]``: funding published but not
    yet due; paper only). :meth:`account`, :meth:`positions`, :meth:`perp_position` and
    :meth:`equity` read these keys, so a broker that keeps them needs nothing else.

    Per bar (``on_bar({symbol: PerpBar})``, inside the bar's transaction): settle what
    happened up to the bar's close, in the rule's order (``perp_rule_nb``): a gap through the
    liquidation price at the mark's open; funding due at or before the open, paid at the mark
    (each followed by the gap check); the pending order at the open (close, then open on the
    new side; a flip is both, each with its fee); liquidation on the mark's range. A live
    broker records instead what the venue did (fills, funding payments, liquidations) and
    keeps the same keys from the venue's account.

    Orders (``submit``): the runner's intents, as for spot: intent ``"signal|PREV|TARGET"``,
    ``side`` the sign of the change, ``target`` the new target (its sign is the new side,
    after ``$.execution.direction``), ``amount`` 0.0 (paper sizes at the fill, from the cash
    then) or what ``intent_amount`` returned (live). Idempotent by ``client_id``.
    """

    market = "perp"

    def perp_position(self) -> PerpPosition:
        """The open position (zeros when flat)."""
        get = self.store.get_float
        return PerpPosition(get("position", 0.0), get("entry_price", 0.0), get("margin", 0.0),
                            get("liq_price", 0.0), get("funding_net", 0.0))

    def equity(self, closes: Mapping[str, float]) -> float:
        """``cash + margin + qty * (close - entry_price)`` at the swap's close."""
        cash = self.store.get_float("cash", 0.0)
        pos = self.perp_position()
        close = next(iter(closes.values()))
        return cash + pos.margin + pos.qty * (close - pos.entry_price)


__all__ = ["FINAL_STATUS", "PERP_KEYS", "Broker", "PerpBroker", "PerpPosition",
           "accept_paper_order", "client_order_id", "symbol_key"]
