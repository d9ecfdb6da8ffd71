"""Real orders through ccxt, never twice.

Every order carries the deterministic client order id of its intent (``clientOrderId`` ->
Kraken ``cl_ord_id``). Before (re)sending, the broker asks the exchange whether an order with that
id exists (open or closed); after a timeout, a 5xx, a 429 or a garbled answer it backs off and
asks again instead of blindly re-sending. On start it reconciles every unfinished intent and the
balances with the exchange.

API keys come only from ``QUANTLIB_<EXCHANGE>_API_KEY`` / ``QUANTLIB_<EXCHANGE>_SECRET``; they are
registered with :mod:`quantlib.live.logs` for redaction and never stored or printed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from quantlib.core.endpoints import api_url_variable, point_at_loopback
from quantlib.core.stop_rule import stop_distances
from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.errors import ExchangeError, LiveError
from quantlib.live.brokers.backoff import call_with_backoff, order_refused, order_retry, pause
from quantlib.live.brokers.base import FINAL_STATUS, Broker, symbol_key
from quantlib.live.brokers.resting_exits import EXIT_TYPE, RestingExits, check_live_exits
from quantlib.live.logs import JsonLogger, register_secret
from quantlib.live.state import OrderRow, StateStore
from quantlib.strategy.spec import StrategySpec


def credentials_from_env(exchange: str, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(api_key, secret) from ``QUANTLIB_<EXCHANGE>_API_KEY`` and ``..._SECRET``.

    Examples
    --------
    >>> credentials_from_env("kraken", {"QUANTLIB_KRAKEN_API_KEY": "k", "QUANTLIB_KRAKEN_SECRET": "s"})
    ('k', 's')
    """
    env = os.environ if env is None else env
    prefix = f"QUANTLIB_{exchange.upper()}_"
    key, secret = env.get(prefix + "API_KEY"), env.get(prefix + "SECRET")
    missing = [prefix + n for n, v in (("API_KEY", key), ("SECRET", secret)) if not v]
    if missing:
        raise LiveError(f"live trading on {exchange!r} needs the environment variable(s) {missing}")
    register_secret(key)
    register_secret(secret)
    return key, secret


def make_exchange(exchange: str, env: Mapping[str, str] | None = None, **config):
    """A ccxt exchange with keys from the environment.

    ``QUANTLIB_<EXCHANGE>_API_URL`` (tests only) must point at 127.0.0.1 / localhost.
    """
    import ccxt

    env = os.environ if env is None else env
    key, secret = credentials_from_env(exchange, env)
    try:
        cls = getattr(ccxt, exchange)
    except AttributeError:
        raise LiveError(f"exchange {exchange!r} is not a ccxt exchange id") from None
    options = {"enableRateLimit": True, "apiKey": key, "secret": secret, "timeout": 10_000}
    options.update(config)
    ex = cls(options)
    variable = api_url_variable(exchange)
    return point_at_loopback(ex, env[variable], variable) if env.get(variable) else ex


class CcxtBroker(RestingExits, Broker):
    """Market orders via a ccxt exchange, idempotent by client order id; exits rest at the
    exchange (:mod:`quantlib.live.brokers.resting_exits`).

    Parameters
    ----------
    store : state store.
    spec : strategy spec (symbol, fees for sizing, order size).
    exchange : a ccxt exchange instance (built from env vars when None).
    retries : attempts per request before giving up (ExchangeError).
    backoff : first back-off delay in seconds (doubles each retry, capped at 30 s).
    """

    rests_orders = True  # limit orders rest at the exchange: the exchange grid trades here

    def __init__(self, store: StateStore, spec: StrategySpec, exchange=None, *,
                 logger: JsonLogger | None = None, retries: int = 6, backoff: float = 0.2):
        super().__init__(store)
        self.spec = spec
        self.exchange = exchange if exchange is not None else make_exchange(spec.exchange)
        for secret in (getattr(self.exchange, "apiKey", None), getattr(self.exchange, "secret", None)):
            register_secret(secret)
        self.log = logger or JsonLogger()
        self.retries, self.backoff = retries, backoff
        base, quote = spec.symbol.split("/")
        self.base, self.quote = base, quote
        quotes = {s.split("/")[1] for s in spec.symbols}
        if len(quotes) > 1:  # one cash account, as the backtest's shared cash
            raise LiveError(f"spec {spec.name!r}: a portfolio trades from one quote currency; "
                            f"its symbols {list(spec.symbols)} use {sorted(quotes)}")
        check_live_exits(spec)  # SpecError naming the field: exits the exchange cannot fill
        self.sl_stop, self.tp_stop, self.trail = stop_distances(spec.risk)
        self.bar_ms = timeframe_to_seconds(spec.timeframe) * 1000
        self.stop_on_exchange = spec.execution.stop_on_exchange

    # -- helpers ------------------------------------------------------------------------------
    def _call(self, what: str, fn, *args, **kwargs):
        """Call the exchange with back-off on transient faults (429, 5xx, timeouts, malformed
        JSON); raise ExchangeError at the end (:func:`~.backoff.call_with_backoff`)."""
        return call_with_backoff(self.log, self.spec.exchange, what, self.retries, self.backoff,
                                 fn, *args, **kwargs)

    def find_order(self, client_id: str, symbol: str | None = None) -> dict | None:
        """The exchange's order with ``client_id`` (open or closed) in ``symbol`` (default:
        the spec's first), or None."""
        params = {"clientOrderId": client_id}
        for fetch in (self.exchange.fetch_open_orders, self.exchange.fetch_closed_orders):
            orders = self._call(fetch.__name__, fetch, symbol or self.spec.symbol, None, None,
                                params)
            for order in orders:
                if order.get("clientOrderId") == client_id:
                    return order
        return None

    def refresh_balance(self) -> None:
        """Fetch balances into the state store (cash, position, free cash, free base)."""
        balance = self._call("fetch_balance", self.exchange.fetch_balance)
        total, free = balance.get("total", {}), balance.get("free", {})
        with self.store.transaction():
            self.store.set_meta("cash", repr(float(total.get(self.quote) or 0.0)))
            # free = not held by resting orders (what a new order can use)
            self.store.set_meta("free_cash", repr(float(free.get(self.quote) or 0.0)))
            for symbol in self.spec.symbols:
                base = symbol.split("/")[0]
                self.store.set_meta(self._key("position", symbol),
                                    repr(float(total.get(base) or 0.0)))
                self.store.set_meta(self._key("free_base", symbol),
                                    repr(float(free.get(base) or 0.0)))

    def free_balance(self) -> float:
        """Quote currency not held by resting orders, as of the last refresh."""
        return self.store.get_float("free_cash", 0.0)

    def _key(self, name: str, symbol: str) -> str:
        return symbol_key(name, symbol, self.spec.symbols[0])

    def _record(self, order: OrderRow, remote: dict) -> None:
        """Write the exchange's outcome of ``order``; a fill arms or clears the exits in the
        same transaction, and the exits a closed position leaves are cancelled after it."""
        status = FINAL_STATUS.get(remote.get("status"), "sent")
        filled = float(remote.get("filled") or 0.0)
        siblings: list[OrderRow] = []
        with self.store.transaction():
            # a resting exit keeps its trigger until the exchange reports a fill price
            self.store.update_order(order.client_id, status=status, exchange_id=remote.get("id"),
                                    price=remote.get("average") or remote.get("price")
                                    or order.price)
            if filled > 0 and status == "filled":
                fee = float((remote.get("fee") or {}).get("cost") or 0.0)
                ts = int(remote.get("lastTradeTimestamp") or remote.get("timestamp") or 0)
                self.store.add_fill(order.client_id, ts or order.bar_time, order.side,
                                    float(remote.get("average") or remote.get("price") or 0.0),
                                    filled, fee, trade_id=remote.get("id"))
                siblings = self._track_stops(order, remote)
        self._cancel_siblings(siblings)

    # -- broker API ---------------------------------------------------------------------------
    def intent_amount(self, flags: tuple[bool, bool, bool, bool], price: float, cash: float,
                      position: float, *, symbol: str | None = None) -> float:
        """Base amount for a signal, sized like the backtest (entries: a fraction of cash with
        fees included; exits: the whole position). Spot venues trade long only."""
        long_entry, long_exit, short_entry, short_exit = flags
        if short_entry or short_exit:
            raise LiveError(f"{self.spec.exchange}: short signals need a margin venue; live "
                            "trading supports direction 'longonly' only")
        if long_exit:
            return float(position)
        if symbol is not None:  # the entry is sized again when sent (_entry_amount)
            self.store.set_meta(self._key("sizing_price", symbol), repr(float(price)))
        return self._entry_units(cash, price)

    def _entry_units(self, cash: float, price: float) -> float:
        """Units of a long entry from ``cash`` at ``price`` (the backtest's order rule:
        percent = that fraction of cash, fee included; value = the notional, cut to the cash)."""
        risk, fees = self.spec.risk, self.spec.execution.fees
        if risk.size_type == "percent":
            return float(risk.signal_size * cash / (price * (1.0 + fees)))
        return float(min(risk.order_size, cash / (1.0 + fees)) / price)

    def _entry_amount(self, order: OrderRow) -> float:
        """A long entry's units sized when it is sent: from the quote balance the exchange
        reports then (after the bar's earlier orders filled) at the ask it quotes then.

        The backtest sizes an entry from the cash the bar's earlier fills left, at the entry's
        own fill price. The runner's estimate (the close, earlier entries costed at it) misses
        both: earlier fills' slippage, and the move from the close to the fill (a whole-cash
        entry sized at the close is refused by the exchange whenever the price rose since).
        This leaves one difference: the ask versus the fill price, so an entry spends the
        backtest rule's budget times ``fill price / ask``. The close is the fallback when the
        exchange quotes no ask. An intent the broker did not size is sent as given."""
        price = self.store.get_float(self._key("sizing_price", order.symbol), math.nan)
        if not (order.intent.startswith("signal|") and order.side > 0) or math.isnan(price):
            return order.amount  # not an entry :meth:`intent_amount` sized: sent as given
        ticker = self._call("fetch_ticker", self.exchange.fetch_ticker, order.symbol)
        ask = float((ticker or {}).get("ask") or math.nan)
        price = ask if ask > 0 else price
        if not price > 0:
            return order.amount
        self.refresh_balance()
        return self._entry_units(self.free_balance(), price)

    def load_markets(self) -> None:
        """The exchange's markets, with the same bounded back-off as trading (start-up without
        a network ends in one ExchangeError, not a ccxt traceback); refuses a spec whose
        symbol the exchange does not list."""
        markets = self._call("load_markets", self.exchange.load_markets)
        for symbol in self.spec.symbols:
            if isinstance(markets, dict) and markets and symbol not in markets:
                raise LiveError(f"{self.spec.exchange} lists no market {symbol!r} (spec "
                                f"{self.spec.name!r})")

    def reconcile(self) -> None:
        self.load_markets()
        for order in self.store.orders(("new", "sent")):
            current = self.store.get_order(order.client_id)
            if current is None or current.status not in ("new", "sent"):
                continue  # recorded meanwhile (an exit's fill cancelled its sibling)
            remote = self.find_order(order.client_id, order.symbol)
            if remote is not None:
                self.log.info("reconciled", client_id=order.client_id, status=remote.get("status"))
                self._record(current, remote)
        # exits whose cancellation a crash interrupted (their position was closed)
        self._cancel_siblings([o for o in self.store.orders("cancelling")
                               if o.order_type == EXIT_TYPE])
        self.refresh_balance()

    def submit(self, order: OrderRow) -> None:
        current = self.store.get_order(order.client_id)
        if current is None or current.status not in ("new", "sent"):
            return
        if current.status == "new" and current.amount > 0:
            amount = self._entry_amount(current)
            if amount != current.amount:
                with self.store.transaction():
                    self.store.update_order(order.client_id, amount=amount)
                current.amount = amount
        if current.amount <= 0 or not math.isfinite(current.amount):
            with self.store.transaction():
                self.store.update_order(order.client_id, status="cancelled",
                                        detail="nothing to trade")
            return
        # A "sent" intent may have reached the exchange before a crash: look before sending.
        remote = self._send(current, current.amount, look_first=current.status == "sent",
                            mark_sent=True)
        if remote is not None:
            self._record(current, remote)
            self.refresh_balance()
            self.log.info("order_sent", client_id=order.client_id, exchange_id=remote.get("id"))

    def _send(self, current: OrderRow, amount: float, *, look_first: bool,
              mark_sent: bool) -> dict | None:
        """Create ``current`` at the exchange exactly once; return the exchange's order, or
        None when the exchange refused it (recorded as ``rejected``)."""
        import ccxt

        cid = current.client_id
        side = "buy" if current.side > 0 else "sell"
        order_type = "limit" if current.order_type == "limit" else "market"
        price = current.price if order_type == "limit" else None
        delay = self.backoff
        for attempt in range(self.retries):
            # A previous attempt (or process) may have reached the exchange: look before sending.
            if attempt > 0 or look_first:
                remote = self.find_order(cid, current.symbol)
                if remote is not None:
                    return remote
            try:
                if mark_sent:
                    with self.store.transaction():
                        self.store.update_order(cid, status="sent",
                                                attempts=current.attempts + attempt + 1)
                params = {"clientOrderId": cid}
                if current.order_type == EXIT_TYPE:  # Kraken stop-loss / take-profit:
                    order_type, price = "market", None  # a market order on the trigger
                    trigger = "takeProfitPrice" if current.intent == "exit|tp" else "stopLossPrice"
                    params[trigger] = current.price
                created = self.exchange.create_order(current.symbol, order_type, side, amount,
                                                     price, params)
            except ccxt.InsufficientFunds:
                self.log.error("order_rejected", client_id=cid, reason="insufficient funds")
                with self.store.transaction():
                    self.store.update_order(cid, status="rejected", detail="insufficient funds")
                return None
            except (ccxt.NetworkError, ccxt.BadResponse, ValueError) as exc:
                delay = order_retry(self.log, cid, attempt, exc, delay)
                continue
            except ccxt.ExchangeError as exc:
                detail = order_refused(self.log, cid, exc)
                with self.store.transaction():
                    self.store.update_order(cid, status="rejected", detail=detail)
                return None
            # The exchange's order book is the truth: a garbled "success" (ccxt may parse a
            # truncated body without raising) is only trusted once the order is visible.
            remote = self.find_order(cid, current.symbol)
            if remote is None:
                self.log.warning("order_retry", client_id=cid, attempt=attempt + 1,
                                 error="unconfirmed", answer=str(type(created).__name__))
                delay = pause(delay)
                continue
            return remote
        raise ExchangeError(f"{self.spec.exchange}: order {cid} not confirmed after "
                            f"{self.retries} attempts; it stays pending and is reconciled on "
                            "restart")

    # -- resting orders (grid trading at the exchange, quantlib.live.grid_exchange) ------------
    def lookup(self, client_ids: list[str]) -> dict[str, dict]:
        """The exchange's orders for ``client_ids`` (open or closed): one fetch of open and one
        of recently closed orders, then one query per id still unseen."""
        wanted = set(client_ids)
        found: dict[str, dict] = {}
        for fetch in (self.exchange.fetch_open_orders, self.exchange.fetch_closed_orders):
            for order in self._call(fetch.__name__, fetch, self.spec.symbol):
                cid = order.get("clientOrderId")
                if cid in wanted:
                    found[cid] = order
        for cid in wanted - found.keys():
            # Closed long ago (beyond the closed-orders page) or never sent: ask by id.
            remote = self.find_order(cid)
            if remote is not None:
                found[cid] = remote
        return found

    def place(self, order: OrderRow, *, known_absent: bool = False) -> None:
        """Send an intent in status ``new`` exactly once and mark it ``sent``; fills are
        recorded by the caller's next sync, never here.

        ``known_absent``: the caller has just looked the id up at the exchange (and holds the
        state file's run lock, so nobody sent it since); skips the look-up before the first
        attempt. Retries always look first."""
        current = self.store.get_order(order.client_id)
        if current is None or current.status != "new":
            return
        amount = current.amount
        if current.order_type == "market" and current.side < 0:
            # a flatten: sell what is really there (a resting sell may have filled meanwhile)
            self.refresh_balance()
            amount = min(amount, self.store.get_float("free_base", 0.0))
        if amount <= 0 or not math.isfinite(amount):
            with self.store.transaction():
                self.store.update_order(order.client_id, status="cancelled",
                                        detail="nothing to trade")
            return
        if current.order_type == "limit" and current.price is not None:
            # on the exchange's tick, never beyond the level: buys round down, sells round up
            # (ccxt would round to nearest, paying up to half a tick over a buy level)
            current.price = self._on_tick(current.price, up=current.side < 0)
        remote = self._send(current, amount, look_first=not known_absent, mark_sent=False)
        if remote is not None:
            with self.store.transaction():
                self.store.update_order(order.client_id, status="sent",
                                        exchange_id=remote.get("id"),
                                        attempts=current.attempts + 1)

    def _on_tick(self, price: float, *, up: bool) -> float:
        """``price`` on the market's price tick, rounded down or up."""
        import ccxt

        self._call("load_markets", self.exchange.load_markets)  # cached after the first
        precision = (self.exchange.market(self.spec.symbol).get("precision") or {}).get("price")
        if not precision:
            return price
        # ccxt gives the tick itself (TICK_SIZE) or a number of decimals (DECIMAL_PLACES)
        step = (Decimal(str(precision)) if self.exchange.precisionMode == ccxt.TICK_SIZE
                else Decimal(1).scaleb(-int(precision)))
        exact = Decimal(repr(price)) / step
        nearest = exact.to_integral_value()
        if abs(exact - nearest) < Decimal("1e-9"):  # on the tick up to float noise (0.1 + 0.2)
            ticks = nearest
        else:
            ticks = exact.to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
        return float(ticks * step)

    def cancel(self, order: OrderRow) -> None:
        """Cancel an intent in status ``cancelling`` at the exchange (idempotent). The final
        status, with any fill that beat the cancellation, is recorded by the next sync."""
        import ccxt

        current = self.store.get_order(order.client_id)
        if current is None or current.status != "cancelling":
            return
        remote = self.find_order(order.client_id, order.symbol)
        if remote is None:  # never reached the exchange: nothing can fill
            with self.store.transaction():
                self.store.update_order(order.client_id, status="cancelled",
                                        detail="cancelled before it reached the exchange")
            return
        if remote.get("status") != "open":
            return
        try:
            self._call("cancel_order", self.exchange.cancel_order, remote["id"],
                       order.symbol)
        except ccxt.InvalidOrder:  # filled or cancelled meanwhile: the next sync records it
            pass
        self.log.info("order_cancel", client_id=order.client_id, exchange_id=remote.get("id"))


__all__ = ["CcxtBroker", "credentials_from_env", "make_exchange"]
