"""Reads and calls of the Binance USD-M venue for the live perp broker, checked before they count.

ccxt parses a garbled body into empty or zero values (a flat position, no cash, no trades) or
fails inside its parser; :meth:`VenueReads._ask` retries both like network faults, so an
unreadable answer is never taken for the venue's state. Authentication refusals end at once
with an ExchangeError that names the environment variables, never the keys.
"""

from __future__ import annotations

from typing import Any

from quantlib.errors import ExchangeError
from quantlib.live.brokers.backoff import call_with_backoff
from quantlib.live.logs import JsonLogger

VENUE = "binanceusdm"


class VenueReads:
    """The venue reads of :class:`~quantlib.live.brokers.perp_ccxt.PerpCcxtBroker`.

    Subclasses set ``exchange`` (a ``ccxt.binanceusdm``), ``symbol`` (the swap), ``settle``
    (its margin currency), ``log``, ``retries`` and ``backoff``.
    """

    exchange: Any
    symbol: str
    settle: str
    log: JsonLogger
    retries: int
    backoff: float

    def _call(self, what: str, fn, *args, **kwargs):
        """Call the exchange with back-off on transient faults; ExchangeError at the end."""
        import ccxt

        try:
            return call_with_backoff(self.log, VENUE, what, self.retries, self.backoff, fn,
                                     *args, **kwargs)
        except ccxt.AuthenticationError:  # never retried; the text may echo keys
            raise ExchangeError(f"{VENUE} {what}: the venue refused the API key or its "
                                "signature (check QUANTLIB_BINANCEUSDM_API_KEY / "
                                "_SECRET)") from None

    def _ask(self, what: str, fn, *args, valid=None):
        """:meth:`_call` for a read whose answer must make sense: ccxt parses a garbled body
        into empty or zero values (no balance, no position) or fails inside its parser; both
        are retried like a network fault instead of being taken for the venue's state."""
        import ccxt

        def once():
            try:
                answer = fn(*args)
                sound = valid is None or bool(valid(answer))
            except (AttributeError, TypeError, KeyError, ValueError) as exc:
                raise ccxt.BadResponse(f"{what}: unreadable answer "
                                       f"({type(exc).__name__})") from None
            if not sound:
                raise ccxt.BadResponse(f"{what}: unreadable answer")
            return answer

        return self._call(what, once)

    def _cash(self) -> float:
        """The settle currency the venue has free for new margin (``availableBalance``)."""
        balance = self._ask("fetch_balance", self.exchange.fetch_balance,
                            valid=lambda b: isinstance(b.get("info"), dict)
                            and isinstance(b["info"].get("assets"), list))
        return float((balance.get("free") or {}).get(self.settle) or 0.0)

    def _venue_position(self) -> dict:
        """The venue's one-way position row of the swap (``{}`` when flat), read raw: ccxt's
        parsed list is empty for a flat account and for a garbled answer alike."""
        market_id = self.exchange.market(self.symbol)["id"]
        rows = self._ask("fetch_positions", self.exchange.fapiPrivateV3GetPositionRisk,
                         {"symbol": market_id},
                         valid=lambda r: isinstance(r, list)
                         and all(isinstance(row, dict) and "positionAmt" in row for row in r))
        return next((row for row in rows if row.get("symbol") == market_id
                     and row.get("positionSide", "BOTH") == "BOTH"), {})

    def find_order(self, client_id: str) -> dict | None:
        """The venue's latest order with ``client_id`` on the swap, or None."""
        import ccxt

        def ask() -> dict | None:
            try:
                remote = self.exchange.fetch_order(None, self.symbol,
                                                   {"clientOrderId": client_id})
            except ccxt.OrderNotFound:
                return None
            if remote.get("clientOrderId") != client_id:  # a garbled body parsed as an order
                raise ccxt.BadResponse(f"the answer for {client_id} names another order")
            return remote

        return self._call("fetch_order", ask)

    def _fees(self, remote: dict) -> float:
        """The fees of an order's trades at the venue."""
        # a filled order has trades adding up to its size; anything else is a garbled answer
        filled = float(remote.get("filled") or 0.0)
        trades = self._ask("fetch_my_trades", self.exchange.fetch_my_trades, self.symbol,
                           None, None, {"orderId": remote["id"]},
                           valid=lambda rows: isinstance(rows, list) and abs(
                               sum(float(t.get("amount") or 0.0) for t in rows) - filled)
                           <= 1e-9 * max(filled, 1.0))
        return float(sum(float((t.get("fee") or {}).get("cost") or 0.0) for t in trades))


__all__ = ["VENUE", "VenueReads"]
