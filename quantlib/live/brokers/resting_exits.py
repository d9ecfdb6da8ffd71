"""Live exits rest at the exchange and fill where the backtest's rule fills them.

The backtest (:mod:`quantlib.core.stop_rule`) exits *inside* a bar: at the stop-loss or
take-profit level, or at the open when the bar opens beyond it. A bot that acts at bar closes
cannot do that with market orders (it would sell at the close, a different price), so in live
mode the exits are orders resting at the exchange, which fills them inside the bar:

- **When they rest.** An entry decided at the close of bar ``t`` fills at once (the backtest's
  fill at bar ``t+1``'s open). The backtest never checks the entry's own bar ``t+1``; so at the
  close of bar ``t+1`` the runner queues a ``stop-loss`` at ``fill * (1 - sl_stop)`` and a
  ``take-profit`` at ``fill * (1 + tp_stop)`` (Kraken order types, through ccxt's
  ``stopLossPrice`` / ``takeProfitPrice``) for the whole position, committed with that bar and sent
  after the commit. They watch bar ``t+2`` on, as the backtest does. A trigger already passed at
  that close fills at once at the market, which is bar ``t+2``'s open: the backtest's gap rule.
  (The price of this parity: during bar ``t+1`` nothing protects the position at the exchange.)
- **One position, two exits.** A spot account holds one position per market: when one exit
  fills, the other (its sibling) is cancelled. A sibling that filled anyway (while the bot was
  dead) is recorded as the exchange made it, once, and the position is re-read from the
  exchange's balance: never sold a second time by us. A signal exit cancels both once it
  fills: it is a market order sent at the close, filled at the next bar's open, and from then
  on the exits have no position to close. That is the backtest's rule too: a signal exit due
  at the open comes before the bar's stops, which see only the open (``stop_rule.py``).
- **Restart.** Reconciliation asks the exchange about every exit not known final (sent, queued or
  being cancelled): fills are recorded once, siblings cancelled, queued exits sent.

What live mode refuses (:func:`check_live_exits`, a :class:`~quantlib.errors.SpecError` naming
the field): a spec with ``risk.sl_stop`` or ``risk.tp_stop`` but not
``execution.stop_on_exchange: true`` (exits taken at the close would not be the backtest's), and
``risk.trail_stop``. Kraken's ``trailing-stop`` follows the peak price tick by tick from the moment
it is placed; the backtest raises a trailing level only after each bar's check, from the bar's
high. A bar that rises and falls back by the trail distance exits at Kraken and not in the
backtest, so no exchange order reproduces it.

Paper mode is unaffected: the paper broker fills exits at the level itself.

Examples
--------
>>> from quantlib.strategy.spec import StrategySpec
>>> spec = StrategySpec(name="x", kind="ma_cross", params={"fast": 3, "slow": 8},
...                     symbols=["BTC/USD"], risk={"sl_stop": 0.02})
>>> check_live_exits(spec)
Traceback (most recent call last):
...
quantlib.errors.SpecError: spec 'x': $.risk.sl_stop in live mode needs $.execution.stop_on_exchange: true ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from quantlib.errors import SpecError
from quantlib.live.brokers.base import client_order_id
from quantlib.live.state import OrderRow
from quantlib.strategy.spec import StrategySpec

EXIT_TYPE = "stop"  # the order_type of a resting exit row (stop-loss or take-profit)


def check_live_exits(spec: StrategySpec) -> None:
    """Refuse exits live mode cannot fill as the backtest does (see the module docstring)."""
    risk = spec.risk
    if risk.trail_stop is not None:
        raise SpecError(
            f"spec {spec.name!r}: $.risk.trail_stop cannot trade live: Kraken's trailing-stop "
            "follows the peak tick by tick from its placement, while the backtest raises the "
            "trailing level only after each bar's check, from the bar's high, so the exchange "
            "would exit in bars where the backtest holds; use $.risk.sl_stop, or paper mode")
    given = [f"$.risk.{name}" for name in ("sl_stop", "tp_stop")
             if getattr(risk, name) is not None]
    if given and not spec.execution.stop_on_exchange:
        raise SpecError(
            f"spec {spec.name!r}: {' and '.join(given)} in live mode needs "
            "$.execution.stop_on_exchange: true (the backtest exits inside the bar at the level, "
            "which only an order resting at the exchange does; a bot acting at closes would "
            "exit at another price)")


class RestingExits:
    """Mixin of :class:`~quantlib.live.brokers.ccxt_broker.CcxtBroker`: exits at the exchange.

    Uses the broker's ``store``, ``spec``, ``log``, ``bar_ms``, ``sl_stop``, ``tp_stop``,
    ``_key``, ``_record``, ``find_order``, ``cancel`` and ``refresh_balance``.
    """

    # -- arming and clearing (inside the transaction that records a fill) ---------------------
    def _track_stops(self, order: OrderRow, remote: dict) -> list[OrderRow]:
        """On an entry's fill: arm the exits (bases = the fill price, from the entry's bar).
        On an exit's fill: clear them and mark every other resting exit of the market
        ``cancelling``; returns those (the caller cancels them after its commit)."""
        store, symbol = self.store, order.symbol
        price = float(remote.get("average") or remote.get("price") or 0.0)
        if order.intent.startswith("signal|") and order.side > 0:
            if price > 0:
                for name in ("sl_base", "tp_base"):
                    store.set_meta(self._key(name, symbol), repr(price))
                store.set_meta(self._key("stop_from", symbol), order.bar_time)
            return []
        if order.side > 0:
            return []
        for name in ("sl_base", "tp_base"):
            store.set_meta(self._key(name, symbol), "nan")
        siblings = [o for o in store.orders(("new", "sent"))
                    if o.symbol == symbol and o.order_type == EXIT_TYPE
                    and o.client_id != order.client_id]
        for sibling in siblings:
            store.update_order(sibling.client_id, status="cancelling",
                               detail=f"the position was closed by {order.intent}")
        return siblings

    def _cancel_siblings(self, siblings: list[OrderRow]) -> None:
        """Cancel exits whose position is gone; one that filled anyway is recorded once."""
        for sibling in siblings:
            self.cancel(sibling)
            remote = self.find_order(sibling.client_id, sibling.symbol)
            if remote is not None and float(remote.get("filled") or 0.0) > 0:
                self.log.error("sibling_exit_filled", client_id=sibling.client_id,
                               status=remote.get("status"))
                self._record(sibling, remote)  # as the exchange made it, once
                continue
            if remote is not None and remote.get("status") == "open":
                continue  # the cancel did not land: asked again at the next look
            with self.store.transaction():
                self.store.update_order(sibling.client_id, status="cancelled")
        if siblings:
            self.refresh_balance()  # the position is what the exchange holds

    # -- at each bar's close ------------------------------------------------------------------
    def sync_stops(self) -> None:
        """Record resting exits the exchange closed since the last look (once each), and
        finish cancellations a crash interrupted."""
        self._cancel_siblings(self.store.orders("cancelling"))
        for order in self.store.orders("sent"):
            if order.order_type != EXIT_TYPE:
                continue
            current = self.store.get_order(order.client_id)
            if current is None or current.status != "sent":
                continue  # recorded meanwhile (a sibling's fill cancelled it)
            remote = self.find_order(order.client_id, order.symbol)
            if remote is not None and remote.get("status") != "open":
                self.log.info("stop_filled_at_exchange", client_id=order.client_id,
                              status=remote.get("status"))
                self._record(current, remote)
                self.refresh_balance()

    def on_bar(self, bars: Mapping[str, Any]) -> list[OrderRow]:
        """At a bar's close: record the exits the exchange filled during the bar, then queue
        the exits of positions whose entry's bar has just closed. The queued rows come back to
        the runner, which commits them with the bar and sends them after the commit."""
        if self.sl_stop is None and self.tp_stop is None:
            return []
        self.sync_stops()
        queued = []
        for symbol, bar in bars.items():
            for order in self._exits_due(symbol, bar):
                if self.store.add_order(order):
                    queued.append(order)
        return queued

    def _exits_due(self, symbol: str, bar: Any) -> list[OrderRow]:
        """The exit orders of ``symbol``'s position, from the close of its entry's bar on."""
        store = self.store
        position = store.get_float(self._key("position", symbol), 0.0)
        entry_bar = store.get_float(self._key("stop_from", symbol), math.inf)
        if position <= 0 or bar.time < entry_bar + self.bar_ms:
            return []
        out = []
        for which, stop, sign in (("sl", self.sl_stop, -1), ("tp", self.tp_stop, 1)):
            base = store.get_float(self._key(f"{which}_base", symbol), math.nan)
            if stop is None or math.isnan(base):
                continue
            intent = f"exit|{which}"
            out.append(OrderRow(
                # keyed by the entry's bar: a replayed bar or a restart finds the same row
                client_id=client_order_id(self.spec.name, symbol, int(entry_bar), intent),
                bar_time=bar.time, symbol=symbol, intent=intent, side=-1, amount=position,
                target=store.get_float(self._key("target", symbol), 0.0), order_type=EXIT_TYPE,
                price=base * (1 + sign * stop), status="new", exchange_id=None,
                detail=f"{which} level {base * (1 + sign * stop)!r} resting at the exchange",
                attempts=0))
        return out


__all__ = ["EXIT_TYPE", "RestingExits", "check_live_exits"]
