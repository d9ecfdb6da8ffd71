"""The broker contract and the deterministic client order id."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from quantlib.live.state import OrderRow, StateStore

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


def symbol_key(name: str, symbol: str, first: str) -> str:
    """The state-store meta key of a per-symbol value (position, debt, target, stop bases).

    The spec's first symbol keeps the plain name (``"position"``), so a one-symbol state file
    reads as before; every other symbol of a portfolio spec gets ``"position|ETH/USD"``.

    Examples
    --------
    >>> symbol_key("position", "BTC/USD", "BTC/USD"), symbol_key("position", "ETH/USD", "BTC/USD")
    ('position', 'position|ETH/USD')
    """
    return name if symbol == first else f"{name}|{symbol}"


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
    """

    def __init__(self, store: StateStore):
        self.store = store

    def reconcile(self) -> None:
        """Bring local state in line with the venue before trading (default: nothing)."""

    def on_bar(self, bars: Mapping[str, Any]) -> None:
        """Called inside the bar's transaction before the decision; ``bars`` maps each
        symbol to its closed :class:`~quantlib.live.feeds.Bar`."""

    def submit(self, order: OrderRow) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

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


__all__ = ["FINAL_STATUS", "Broker", "client_order_id", "symbol_key"]
