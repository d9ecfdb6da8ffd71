"""Live perpetual-swap trading on Binance USD-M through ccxt (``binanceusdm``), never twice.

The account is the venue's; this broker keeps the perp contract's state keys
(:class:`~quantlib.live.brokers.base.PerpBroker`) as a copy of it, refreshed from the exchange
on start, after every order and at every bar.

Start (:meth:`PerpCcxtBroker.reconcile`)
    Load the markets (the spec's swap must be listed), set the spec's leverage (an integer, as
    Binance takes it) and isolated margin on the swap ("No need to change margin type" is
    success; a position held in cross margin is refused by the venue and ends the start with a
    LiveError), record what the venue did while no runner was up (funding, liquidations; the
    first start only remembers the venue's time: what happened before it is not this
    strategy's), then copy its position and balance.

Orders (:meth:`PerpCcxtBroker.submit`)
    A signal intent (``target`` = the new target) becomes up to two market orders, each with a
    deterministic client id derived from the intent's (:func:`leg_client_id`): a reduce-only
    ``close`` leg for the whole position the venue holds when it is not on the new side, then an
    ``open`` leg on the new side sized by the perp rule (:func:`~quantlib.live.brokers.
    perp_rule_nb.open_position_nb`) from the cash the venue reports after the close, at the
    last price it quotes then. Before a leg is (re)sent the venue is asked for its client id, so
    a leg whose answer was lost (a timeout, a dropped connection, a crash after sending) is
    found, never placed twice; each leg's fill is recorded once (trade id ``<client id>:close``
    / ``:open``, as the paper perp broker records it) with the fee from the venue's trades.

Per bar (:meth:`PerpCcxtBroker.on_bar`)
    Funding the venue charged (its income history, ``FUNDING_FEE``) is added to
    ``funding_net`` once per payment; a liquidation the venue made (an ``autoclose-`` order) is
    recorded as a filled order of type ``liquidation``; then the account keys are set to the
    venue's figures. Differences from the paper broker: the venue has already moved to the next
    bar's open when a bar is processed, so a funding payment due at that open is in that bar's
    record.

API keys come only from ``QUANTLIB_BINANCEUSDM_API_KEY`` / ``..._SECRET`` (or the given
exchange); they are registered for redaction and never stored or logged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from quantlib.errors import ExchangeError, LiveError, SpecError
from quantlib.live.brokers.backoff import order_refused, order_retry, pause
from quantlib.live.brokers.base import PerpBroker, client_order_id
from quantlib.live.brokers.binanceusdm_reads import VENUE, VenueReads
from quantlib.live.brokers.ccxt_broker import make_exchange
from quantlib.live.brokers.perp_paper import order_side
from quantlib.live.brokers.perp_rule_nb import OPENED, PERCENT, VALUE, open_position_nb
from quantlib.live.logs import JsonLogger, redact, register_secret
from quantlib.live.state import OrderRow, StateStore
from quantlib.strategy.spec import StrategySpec

LIQUIDATION_PREFIX = "autoclose-"  # Binance's client ids of its liquidation orders


def leg_client_id(strategy: str, order: OrderRow, leg: str) -> str:
    """The client id of one leg (``"close"`` or ``"open"``) of a signal intent: derived from the
    intent's own identity, so a restarted process finds the leg it may already have sent.

    Examples
    --------
    >>> from quantlib.live.state import OrderRow
    >>> row = OrderRow(client_id="x", bar_time=1700000000000, symbol="BTC/USDT:USDT",
    ...                intent="signal|1.0|-1.0", side=-1, amount=0.0, target=-1.0,
    ...                order_type="market", price=None, status="new", exchange_id=None,
    ...                detail="", attempts=0)
    >>> a = leg_client_id("s", row, "close")
    >>> a == leg_client_id("s", row, "close") != leg_client_id("s", row, "open"), len(a)
    (True, 36)
    """
    return client_order_id(strategy, order.symbol, order.bar_time, f"{order.intent}|{leg}")


def _leverage(spec: StrategySpec) -> int:
    leverage = float(spec.perp.leverage)
    if leverage != int(leverage):
        raise SpecError(f"$.perp.leverage: {VENUE} sets whole-number leverage; spec "
                        f"{spec.name!r} asks for {leverage}")
    return int(leverage)


class PerpCcxtBroker(VenueReads, PerpBroker):
    """An isolated-margin perp account at Binance USD-M (module docstring).

    Parameters
    ----------
    store : the runner's state store.
    spec : a ``market: "perp"`` spec on exchange ``binanceusdm``.
    exchange : a ``ccxt.binanceusdm`` (built from the environment's keys when None).
    retries : attempts per request before giving up (ExchangeError).
    backoff : first back-off delay in seconds (doubles each retry, capped at 30 s).
    """

    def __init__(self, store: StateStore, spec: StrategySpec, exchange: Any = None, *,
                 logger: JsonLogger | None = None, retries: int = 6, backoff: float = 0.2):
        super().__init__(store)
        if spec.market != "perp" or spec.perp is None:
            raise LiveError(f"spec {spec.name!r}: the live perp broker trades perp specs "
                            f"($.market is {spec.market!r})")
        if spec.exchange != VENUE:
            raise SpecError(f"$.exchange: live perp trading runs on {VENUE!r}; spec "
                            f"{spec.name!r} names {spec.exchange!r}")
        self.spec, self.symbol = spec, spec.symbol
        self.leverage = _leverage(spec)
        self.exchange = exchange if exchange is not None else make_exchange(VENUE)
        for secret in (getattr(self.exchange, "apiKey", None),
                       getattr(self.exchange, "secret", None)):
            register_secret(secret)
        self.log = logger or JsonLogger()
        self.retries, self.backoff = retries, backoff
        self.settle = spec.symbol.partition(":")[2] or spec.symbol.partition("/")[2]
        if store.get_meta("funding_net") is None:
            with store.transaction():
                store.set_meta("funding_net", "0.0")

    # -- start --------------------------------------------------------------------------------
    def load_markets(self) -> None:
        """The venue's markets (bounded back-off); refuses a swap it does not list."""
        markets = self._call("load_markets", self.exchange.load_markets)
        if isinstance(markets, dict) and markets and self.symbol not in markets:
            raise LiveError(f"{VENUE} lists no market {self.symbol!r} (spec "
                            f"{self.spec.name!r})")

    def configure(self) -> None:
        """Set the spec's leverage and isolated margin on the swap (idempotent)."""
        import ccxt

        self._call("set_leverage", self.exchange.set_leverage, self.leverage, self.symbol)
        try:
            self._call("set_margin_mode", self.exchange.set_margin_mode, "isolated",
                       self.symbol)
        except ccxt.MarginModeAlreadySet:
            pass  # already isolated: what the spec asks
        except ccxt.ExchangeError as exc:
            raise LiveError(f"{VENUE}: cannot set isolated margin on {self.symbol}: "
                            f"{redact(str(exc))[:200]}") from None
        self.log.info("perp_configured", symbol=self.symbol, leverage=self.leverage,
                      margin_mode="isolated")

    def reconcile(self) -> None:
        self.load_markets()
        self.configure()
        with self.store.transaction():
            if self.store.get_meta("funding_cursor") is None:
                # the first start: the venue's history before it is not this strategy's
                start = int(self._ask("fetch_time", self.exchange.fetch_time,
                                      valid=lambda t: isinstance(t, int) and t > 0))
                self.store.set_json("funding_cursor", [start, []])
                self.store.set_meta("liquidation_cursor", str(start))
            self._sync()

    # -- per bar ------------------------------------------------------------------------------
    def on_bar(self, bars: Mapping[str, Any]) -> None:
        self._sync()

    def _sync(self) -> None:
        """Record the venue's funding and liquidations, then copy its account (the caller
        holds a transaction)."""
        self._record_funding()
        self._record_liquidations()
        self.refresh()

    def refresh(self) -> None:
        """Copy the venue's position and cash into the state keys (caller's transaction)."""
        info = self._venue_position()
        qty = float(info.get("positionAmt") or 0.0)
        cash = self._cash()
        store = self.store
        store.set_meta("cash", repr(cash))
        store.set_meta("position", repr(qty))
        store.set_meta("entry_price", repr(float(info.get("entryPrice") or 0.0) if qty else 0.0))
        store.set_meta("margin", repr(float(info.get("isolatedWallet") or 0.0) if qty else 0.0))
        store.set_meta("liq_price",
                       repr(float(info.get("liquidationPrice") or 0.0) if qty else 0.0))

    def _record_funding(self) -> None:
        """Add each funding payment of the venue's income history once (cursor: the last
        payment time and the ids of the payments at that time)."""
        since, seen = self.store.get_json("funding_cursor", [0, []])
        seen = set(seen)
        net = self.store.get_float("funding_net", 0.0)
        while True:
            page = self._ask("fetch_funding_history", self.exchange.fetch_funding_history,
                             self.symbol, int(since), 1000,
                             valid=lambda rows: isinstance(rows, list) and all(
                                 r.get("id") and r.get("timestamp") and
                                 math.isfinite(float(r.get("amount"))) for r in rows))
            fresh = [p for p in page if str(p.get("id")) not in seen
                     and int(p.get("timestamp") or 0) >= since]
            for payment in fresh:
                net -= float(payment["amount"])  # income > 0 received: funding_net < 0
                stamp = int(payment["timestamp"])
                if stamp > since:
                    since, seen = stamp, set()
                seen.add(str(payment["id"]))
                self.log.info("funding", symbol=self.symbol, time=stamp,
                              amount=float(payment["amount"]))
            if len(page) < 1000 or not fresh:
                break
        self.store.set_meta("funding_net", repr(net))
        self.store.set_json("funding_cursor", [since, sorted(seen)])

    def _record_liquidations(self) -> None:
        """Record the venue's liquidation orders of the swap not recorded yet."""
        since = int(self.store.get_meta("liquidation_cursor", "0"))
        orders = self._ask("fetch_orders", self.exchange.fetch_orders, self.symbol,
                           since or None, valid=lambda rows: isinstance(rows, list))
        for remote in orders:
            cid = str(remote.get("clientOrderId") or "")
            stamp = int(remote.get("lastTradeTimestamp") or remote.get("timestamp") or 0)
            since = max(since, stamp)  # orders at the cursor's time are asked again: recorded once
            if not cid.startswith(LIQUIDATION_PREFIX) or remote.get("status") != "closed":
                continue
            side = 1 if remote.get("side") == "buy" else -1
            price, filled = float(remote.get("average") or 0.0), float(remote["filled"])
            row = OrderRow(client_id=cid, bar_time=stamp, symbol=self.symbol,
                           intent="liquidation|exchange", side=side, amount=filled,
                           target=self.store.get_float("target", 0.0),
                           order_type="liquidation", price=price, status="filled",
                           exchange_id=str(remote.get("id")),
                           detail="the venue liquidated the position", attempts=1)
            if self.store.add_order(row):
                fee = self._fees(remote)
                self.store.add_fill(cid, stamp, side, price, filled, fee)
                self.log.warning("liquidated", symbol=self.symbol, price=price, size=filled)
        self.store.set_meta("liquidation_cursor", str(since))

    # -- orders -------------------------------------------------------------------------------
    def submit(self, order: OrderRow) -> None:
        current = self.store.get_order(order.client_id)
        if current is None or current.status not in ("new", "sent"):
            return
        with self.store.transaction():
            self.store.update_order(current.client_id, status="sent",
                                    attempts=current.attempts + 1)
        new_side = order_side(current.target, self.spec.execution.direction)
        done = [self._close_leg(current, new_side)]
        refusal = ""
        if new_side != 0:
            opened = self._open_leg(current, new_side)
            if isinstance(opened, str):
                refusal = opened
            else:
                done.append(opened)
        legs = [leg for leg in done if leg is not None]
        with self.store.transaction():
            if legs:
                price, amount = legs[-1]
                self.store.update_order(current.client_id, status="filled", price=price,
                                        amount=amount, detail=refusal)
            elif refusal:
                self.store.update_order(current.client_id, status="rejected", detail=refusal)
            else:
                self.store.update_order(current.client_id, status="cancelled",
                                        detail="no order (no-op)")
            self.refresh()

    def _close_leg(self, order: OrderRow, new_side: int) -> tuple[float, float] | None:
        """Close the venue's position when it is not on ``new_side``; (price, size) filled."""
        cid = leg_client_id(self.spec.name, order, "close")
        remote = self.find_order(cid)
        if remote is None:
            qty = self._venue_qty()
            if qty == 0 or (new_side != 0 and (qty > 0) == (new_side > 0)):
                return None
            remote = self._send(cid, "sell" if qty > 0 else "buy", abs(qty), reduce_only=True)
            if isinstance(remote, str):
                raise ExchangeError(f"{VENUE}: closing {self.symbol} refused: {remote}")
        return self._record_leg(order, remote, "close")

    def _open_leg(self, order: OrderRow, new_side: int) -> tuple[float, float] | str | None:
        """Open on ``new_side`` from flat, sized by the perp rule; (price, size), a refusal,
        or None (the venue holds a position already)."""
        cid = leg_client_id(self.spec.name, order, "open")
        remote = self.find_order(cid)
        if remote is None:
            if self._venue_qty() != 0:
                return None
            units = self._entry_units(new_side)
            if isinstance(units, str):
                return units
            remote = self._send(cid, "buy" if new_side > 0 else "sell", units,
                                reduce_only=False)
            if isinstance(remote, str):
                return remote
        return self._record_leg(order, remote, "open")

    def _venue_qty(self) -> float:
        return float(self._venue_position().get("positionAmt") or 0.0)

    def _entry_units(self, side: int) -> float | str:
        """Units of an entry by the perp rule: from the venue's cash now at its last price."""
        risk, execution = self.spec.risk, self.spec.execution
        cash = self._cash()
        ticker = self._ask("fetch_ticker", self.exchange.fetch_ticker, self.symbol,
                           valid=lambda t: float(t.get("last") or 0.0) > 0)
        price = float(ticker["last"])
        sizing = PERCENT if risk.size_type == "percent" else VALUE
        out = open_position_nb(cash, side, float(risk.signal_size), sizing, price,
                               float(execution.fees),
                               0.0, float(self.leverage))
        if int(out[0]) != OPENED:
            return "no cash to open it" if cash <= 0 else "order below the minimum size"
        units = float(self.exchange.amount_to_precision(self.symbol, abs(float(out[1]))))
        minimum = ((self.exchange.market(self.symbol).get("limits") or {}).get("amount")
                   or {}).get("min") or 0.0
        if units <= 0 or units < minimum:
            return f"order below the venue's minimum size ({units} < {minimum})"
        return units

    def _send(self, cid: str, side: str, amount: float, *, reduce_only: bool) -> dict | str:
        """Create a market order once: every retry first asks the venue for ``cid``. Returns
        the venue's order, or the refusal's text."""
        import ccxt

        params: dict[str, Any] = {"clientOrderId": cid}
        if reduce_only:
            params["reduceOnly"] = True
        delay = self.backoff
        for attempt in range(self.retries):
            if attempt > 0:
                found = self.find_order(cid)
                if found is not None:
                    return found
            try:
                self.exchange.create_order(self.symbol, "market", side, amount, None, params)
            except (ccxt.NetworkError, ccxt.BadResponse, ValueError) as exc:
                delay = order_retry(self.log, cid, attempt, exc, delay)
                continue
            except ccxt.ExchangeError as exc:  # refused: margin, size, reduce-only
                return order_refused(self.log, cid, exc)
            # the venue's book is the truth: a garbled "success" counts once it is visible
            found = self.find_order(cid)
            if found is not None:
                self.log.info("order_sent", client_id=cid, exchange_id=found.get("id"))
                return found
        raise ExchangeError(f"{VENUE}: order {cid} not confirmed after {self.retries} "
                            "attempts; its intent stays pending and is looked up on restart")

    def _record_leg(self, order: OrderRow, remote: dict, leg: str) -> tuple[float, float]:
        """Record a filled leg once (trade id ``<client id>:<leg>``); (price, size)."""
        delay = self.backoff
        for _ in range(self.retries):  # a market order may show NEW for a moment
            if remote.get("status") == "closed":
                break
            delay = pause(delay)
            remote = self.find_order(str(remote.get("clientOrderId"))) or remote
        if remote.get("status") != "closed":
            raise ExchangeError(f"{VENUE}: market order {remote.get('clientOrderId')} is "
                                f"{remote.get('status')!r}, not filled")
        price, size = float(remote["average"]), float(remote["filled"])
        stamp = int(remote.get("lastTradeTimestamp") or remote.get("timestamp") or 0)
        side = 1 if remote.get("side") == "buy" else -1
        fee = self._fees(remote)
        with self.store.transaction():
            self.store.add_fill(order.client_id, stamp or order.bar_time, side, price, size,
                                fee, trade_id=f"{order.client_id}:{leg}")
            self.store.update_order(order.client_id, exchange_id=str(remote.get("id")))
        return price, size

    def status(self) -> dict[str, Any]:
        """The account as the state keeps it (for ``live status`` and tests)."""
        keys = ("cash", "position", "entry_price", "margin", "liq_price", "funding_net")
        return {k: self.store.get_float(k, 0.0) for k in keys} | {
            "funding_cursor": json.loads(self.store.get_meta("funding_cursor", "[0, []]"))}


__all__ = ["LIQUIDATION_PREFIX", "PerpCcxtBroker", "VENUE", "leg_client_id"]
