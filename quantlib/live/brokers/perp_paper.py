"""Paper trading of a perpetual swap that fills like the perp backtest.

The account follows the perp rule (``brokers/perp_rule_nb.py``, whose docstring states it) with
its own functions, ahead-of-time compiled for the trading process like the spot order rule; the
order of the steps within a bar is the perp backtest kernel's (:mod:`quantlib.backtest.perp_nb`):

1. a gap: the held position is liquidated when the mark opens at or beyond its liquidation price;
2. funding: every payment due at or before the bar's open (published by an earlier close, or
   by this bar's candle for a payment inside a gap in the candles) is paid on the held position
   at the mark's open, each followed by the gap check;
3. the order decided at the previous close, at this bar's open (last price): close the position
   if it is not on the new side, then open one on the new side;
4. liquidation on the mark's range (low for a long, high for a short);
5. payments published by this bar's close that are not due yet wait in ``funding_pending``.

Everything is written in the bar's transaction (the runner's), so a restart after SIGKILL
continues from exactly the account an uninterrupted run has at that bar. The broker contract
(state keys, intents) is :class:`~quantlib.live.brokers.base.PerpBroker`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from quantlib.errors import LiveError
from quantlib.live.brokers import perp_rule_nb as rule
from quantlib.live.brokers.base import PerpBroker, accept_paper_order, client_order_id
from quantlib.live.state import OrderRow, StateStore
from quantlib.strategy.spec import StrategySpec

_REFUSALS = {rule.TOO_SMALL: "order below the minimum size", rule.NO_CASH: "no cash to open it"}


def order_side(target: float, direction: str) -> int:
    """The side (-1, 0, +1) a target asks for under ``$.execution.direction`` (the backtest's
    :func:`quantlib.backtest.perp.target_sides`).

    Examples
    --------
    >>> order_side(-0.5, "both"), order_side(-0.5, "longonly"), order_side(2.0, "shortonly")
    (-1, 0, 0)
    """
    side = (target > 0) - (target < 0)
    if direction == "longonly":
        return max(side, 0)
    if direction == "shortonly":
        return min(side, 0)
    return side


class PaperPerpBroker(PerpBroker):
    """A simulated isolated-margin perp account in the state store (module docstring).

    Parameters
    ----------
    store : the runner's state store.
    spec : a ``market: "perp"`` spec (its ``$.perp`` block, fees, slippage, cash and sizing).
    """

    def __init__(self, store: StateStore, spec: StrategySpec):
        super().__init__(store)
        if spec.market != "perp" or spec.perp is None:
            raise LiveError(f"spec {spec.name!r}: the paper perp broker trades perp specs "
                            f"($.market is {spec.market!r})")
        self.spec = spec
        self.symbol = spec.symbol
        perp, execution, risk = spec.perp, spec.execution, spec.risk
        self.leverage, self.mmr, self.liq_fee = (float(perp.leverage),
                                                 float(perp.maint_margin_rate),
                                                 float(perp.liquidation_fee))
        self.fee, self.slippage = float(execution.fees), execution.slippage_bps / 1e4
        self.size = float(risk.signal_size)
        self.sizing = rule.PERCENT if risk.size_type == "percent" else rule.VALUE
        if store.get_meta("cash") is None:
            with store.transaction():
                store.set_meta("cash", repr(float(risk.init_cash)))
                for key in ("position", "entry_price", "margin", "liq_price", "funding_net"):
                    store.set_meta(key, "0.0")
                store.set_json("funding_pending", [])

    # -- the broker contract ------------------------------------------------------------------
    def submit(self, order: OrderRow) -> None:
        accept_paper_order(self.store, order)

    def on_bar(self, bars: Mapping[str, Any]) -> None:
        bar = bars.get(self.symbol)
        if bar is None or not math.isfinite(getattr(bar, "mark_open", math.nan)):
            raise LiveError(f"paper perp broker: the bar of {self.symbol} carries no mark "
                            "price (a perp spec needs a perp feed: --feed replay-perp:... )")
        self._check_account()
        self._check_gap(bar)
        self._pay_funding(bar)
        for order in self.store.orders(("new", "sent")):
            if order.symbol == self.symbol and order.bar_time < bar.time:
                self._fill(order, bar)
        qty, entry, margin = self._position()
        if qty != 0:
            liq = rule.liquidation_price_nb(qty, entry, margin, self.mmr)
            if rule.mark_reaches_nb(qty, liq, bar.mark_low, bar.mark_high):
                self._liquidate(bar.time, "intrabar")

    # -- account ------------------------------------------------------------------------------
    def _check_account(self) -> None:
        """Refuse an account no rule step writes (a damaged or hand-edited state file): the
        compiled rule does not check its inputs, it would carry a NaN into every later bar."""
        get = self.store.get_float
        values = {key: get(key, 0.0) for key in ("cash", "position", "entry_price", "margin")}
        bad = [key for key, value in values.items() if not math.isfinite(value)]
        # (cash may be negative: a close beyond the bankruptcy price that the mark never
        # liquidated is charged in full, by the backtest too)
        if values["position"] != 0 and not values["entry_price"] > 0:
            bad.append("entry_price of the open position")
        if bad:
            raise LiveError(f"state file {self.store.path}: perp account {', '.join(bad)} "
                            f"holds a value no paper step writes ({values}); the file is "
                            "damaged: restore a backup or start a new --state")

    def _position(self) -> tuple[float, float, float]:
        get = self.store.get_float
        return get("position", 0.0), get("entry_price", 0.0), get("margin", 0.0)

    def _set(self, cash: float, qty: float, entry: float, margin: float) -> None:
        store = self.store
        store.set_meta("cash", repr(float(cash)))
        store.set_meta("position", repr(float(qty)))
        store.set_meta("entry_price", repr(float(entry)))
        store.set_meta("margin", repr(float(margin)))
        liq = rule.liquidation_price_nb(qty, entry, margin, self.mmr)
        store.set_meta("liq_price", repr(float(liq)))

    # -- 1. and 2.: gap and funding -----------------------------------------------------------
    def _check_gap(self, bar: Any) -> None:
        qty, entry, margin = self._position()
        if qty == 0:
            return
        liq = rule.liquidation_price_nb(qty, entry, margin, self.mmr)
        if rule.mark_reaches_nb(qty, liq, bar.mark_open, bar.mark_open):
            self._liquidate(bar.time, "gap")

    def _pay_funding(self, bar: Any) -> None:
        store = self.store
        stored = [(int(t), float(r)) for t, r in store.get_json("funding_pending", [])]
        known = {t for t, _ in stored}
        pending = sorted(stored + [(int(t), float(r)) for t, r in bar.funding
                                   if int(t) not in known])
        due = [(t, r) for t, r in pending if t <= bar.time]
        if not due and pending == stored:
            return  # nothing published or due this bar: the state stays as it is
        for _, rate in due:
            qty, entry, margin = self._position()
            if qty == 0:
                continue
            payment, margin = rule.funding_nb(qty, margin, bar.mark_open, rate)
            store.set_meta("funding_net", repr(store.get_float("funding_net", 0.0) + payment))
            self._set(store.get_float("cash", 0.0), qty, entry, margin)
            self._check_gap(bar)
        store.set_json("funding_pending", [[t, r] for t, r in pending if t > bar.time])

    # -- 3.: the order at the open ------------------------------------------------------------
    def _fill(self, order: OrderRow, bar: Any) -> None:
        store = self.store
        new_side = order_side(order.target, self.spec.execution.direction)
        cash = store.get_float("cash", 0.0)
        qty, entry, margin = self._position()
        closed = opened = False
        last_price, amount = None, 0.0
        if qty != 0 and (new_side == 0 or (qty > 0) != (new_side > 0)):
            price, fee_paid, _, cash = rule.close_position_nb(cash, qty, entry, margin, bar.open,
                                                              self.fee, self.slippage)
            store.add_fill(order.client_id, bar.time, -1 if qty > 0 else 1, float(price),
                           abs(qty), float(fee_paid), trade_id=f"{order.client_id}:close")
            closed, last_price, amount = True, float(price), abs(qty)
            qty, entry, margin = 0.0, 0.0, 0.0
            self._set(cash, qty, entry, margin)
        refusal = ""
        if new_side != 0 and qty == 0:
            out = rule.open_position_nb(cash, new_side, self.size, self.sizing, bar.open,
                                        self.fee, self.slippage, self.leverage)
            status = int(out[0])
            if status == rule.OPENED:
                qty, price, fee_paid, cash, entry, margin = (float(v) for v in out[1:7])
                store.add_fill(order.client_id, bar.time, new_side, price, abs(qty), fee_paid,
                               trade_id=f"{order.client_id}:open")
                opened, last_price, amount = True, price, abs(qty)
                self._set(cash, qty, entry, margin)
            else:
                refusal = f"paper: {_REFUSALS.get(status, f'status {status}')}"
        if closed or opened:
            store.update_order(order.client_id, status="filled", price=last_price,
                               amount=amount, detail=refusal)
        elif refusal:
            store.update_order(order.client_id, status="rejected", detail=refusal)
        else:
            store.update_order(order.client_id, status="cancelled", detail="no order (no-op)")

    # -- liquidation --------------------------------------------------------------------------
    def _liquidate(self, time_ms: int, where: str) -> None:
        store = self.store
        cash = store.get_float("cash", 0.0)
        qty, entry, margin = self._position()
        price, fee_paid, _, cash = rule.liquidate_nb(cash, qty, entry, margin, self.mmr,
                                                     self.liq_fee)
        intent = f"liquidation|{where}"
        cid = client_order_id(self.spec.name, self.symbol, time_ms, intent)
        store.add_order(OrderRow(
            client_id=cid, bar_time=time_ms, symbol=self.symbol, intent=intent,
            side=-1 if qty > 0 else 1, amount=abs(qty),
            target=store.get_float("target", 0.0), order_type="liquidation",
            price=float(price), status="filled", exchange_id=None,
            detail=f"mark reached the liquidation price ({where})", attempts=1))
        store.add_fill(cid, time_ms, -1 if qty > 0 else 1, float(price), abs(qty),
                       float(fee_paid))
        self._set(cash, 0.0, 0.0, 0.0)


__all__ = ["PaperPerpBroker", "order_side"]
