"""The loopback Binance USD-M venue's account: isolated-margin positions, market orders, funding,
liquidation, trades and income, written in plain Python from the rule's text.

This is the independent party of the perp tests: it reads the rule stated in
``quantlib/live/brokers/perp_rule_nb.py``'s docstring and imports nothing from quantlib.

Rule, as this venue applies it
------------------------------
Wallet ``cash`` (USDT not posted as margin; Binance's ``availableBalance``) and per market one
one-way (``BOTH``) position: ``qty`` (signed), ``entry`` (average fill price) and ``margin`` (the
isolated wallet). Binance's wallet balance is ``cash`` plus every isolated wallet.

- A market order fills at once, whole, at the market's current last price (the open of the
  replayed bar the clock is in), paying ``fee_rate`` times its notional from ``cash``.
- Opening or adding ``u`` units at fill ``F``: ``u * F / leverage`` moves from cash to the
  isolated wallet; refused with -2019 ("Margin is insufficient.") when that plus the fee exceeds
  cash (a relative 1e-9 of float residue is allowed).
- Reducing ``u`` of ``|qty|`` units at ``F``: the released share ``u / |qty|`` of the wallet plus
  the realised pnl ``sign(qty) * u * (F - entry)`` minus the fee returns to cash. An order larger
  than the position (not reduce-only) reduces it to zero and opens the rest on the other side.
- ``reduceOnly=true`` orders must be on the side opposite the position and no larger than it,
  else -2022 ("ReduceOnly Order is rejected.").
- Funding: at each funding time the open position pays ``qty * mark * rate`` from its isolated
  wallet, ``mark`` being the mark price at that time (the mark candle's open at the bar starting
  then; events between bar opens are paid at the next bar's mark open, as the perp backtest
  assigns them).
- Liquidation at the mark: when the mark's open (a gap, checked on arrival at a bar and after
  each funding payment) or, during the bar, its low (long) / high (short) reaches the
  liquidation price ``(entry - margin / qty) / (1 - mmr)`` (long, never when <= 0) or ``(entry +
  margin / |qty|) / (1 + mmr)`` (short), the position is closed at that price, the fee
  ``liq_fee * |qty| * price`` is charged but never more than the wallet left, and the remainder
  (never negative) returns to cash.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from tests.support.binance_wire import BinanceApiError


@dataclass
class Position:
    qty: float = 0.0
    entry: float = 0.0
    margin: float = 0.0
    leverage: int = 20
    margin_type: str = "CROSSED"  # Binance's default for a new market
    update_time: int = 0


@dataclass
class Replay:
    """One market's bars: last-price and mark candles on the same open times, funding events."""

    times: list[int]
    open: list[float]
    mark_open: list[float]
    mark_high: list[float]
    mark_low: list[float]
    funding: list[tuple[int, float]] = field(default_factory=list)  # (time ms, rate)


def liquidation_price(pos: Position, mmr: float) -> float:
    """The mark price at which the isolated position is liquidated (0: flat or never)."""
    if pos.qty > 0:
        price = (pos.entry - pos.margin / pos.qty) / (1.0 - mmr)
        return price if price > 0 else 0.0
    if pos.qty < 0:
        return (pos.entry + pos.margin / -pos.qty) / (1.0 + mmr)
    return 0.0


class Account:
    """The venue's books: cash, positions, orders, trades, income (module rule)."""

    def __init__(self, balances: dict[str, float], *, fee_rate: float = 0.0004,
                 mmr: float = 0.004, liq_fee: float = 0.0125) -> None:
        self.balances = balances  # the server's wallet by asset; USDT is the cash
        self.fee_rate, self.mmr, self.liq_fee = fee_rate, mmr, liq_fee
        self.positions: dict[str, Position] = {}
        self.orders: list[dict] = []  # Binance order dicts, in creation order
        self.trades: list[dict] = []
        self.income: list[dict] = []
        self.replays: dict[str, Replay] = {}
        self.cursor: dict[str, int] = {}  # market id -> index of the bar the clock is in
        self._ids = itertools.count(8_389_765_000)

    @property
    def cash(self) -> float:
        return self.balances.get("USDT", 0.0)

    @cash.setter
    def cash(self, value: float) -> None:
        self.balances["USDT"] = value

    # ------------------------------------------------------------------ market state
    def position(self, market_id: str) -> Position:
        return self.positions.setdefault(market_id, Position())

    def last_price(self, market_id: str) -> float:
        replay, i = self.replays[market_id], self.cursor.get(market_id, -1)
        if i < 0:
            raise BinanceApiError(-1121, "Invalid symbol.")  # nothing replayed yet: no market
        return replay.open[i]

    def mark_price(self, market_id: str) -> float:
        replay, i = self.replays[market_id], self.cursor.get(market_id, -1)
        return replay.mark_open[i] if i >= 0 else 0.0

    def now(self, market_id: str) -> int:
        replay, i = self.replays[market_id], self.cursor.get(market_id, -1)
        return replay.times[max(i, 0)]

    def advance(self, market_id: str, index: int) -> None:
        """Replay up to the open of bar ``index``: the bars passed, then gap, funding, gap."""
        replay = self.replays[market_id]
        i = self.cursor.get(market_id, -1)
        while i < index and i + 1 < len(replay.times):
            if i >= 0:  # the bar ending now: its mark range against the position held
                self._check_liquidation(market_id, replay.mark_low[i], replay.mark_high[i],
                                        replay.times[i + 1] - 1)
            i += 1
            self.cursor[market_id] = i
            t, mark = replay.times[i], replay.mark_open[i]
            self._check_liquidation(market_id, mark, mark, t)
            previous = replay.times[i - 1] if i > 0 else -1
            for when, rate in replay.funding:
                if previous < when <= t:
                    self._fund(market_id, mark, rate, when)
                    self._check_liquidation(market_id, mark, mark, t)

    # ------------------------------------------------------------------ funding, liquidation
    def _fund(self, market_id: str, mark: float, rate: float, when: int) -> None:
        pos = self.position(market_id)
        if pos.qty == 0:
            return
        payment = pos.qty * mark * rate
        pos.margin -= payment
        self._income(market_id, "FUNDING_FEE", -payment, when)

    def _check_liquidation(self, market_id: str, low: float, high: float, when: int) -> None:
        pos = self.position(market_id)
        if pos.qty == 0:
            return
        liq = liquidation_price(pos, self.mmr)
        reached = (liq > 0 and low <= liq) if pos.qty > 0 else high >= liq
        if not reached:
            return
        pnl = pos.qty * (liq - pos.entry)
        left = pos.margin + pnl
        fee = min(self.liq_fee * abs(pos.qty) * liq, max(left, 0.0))
        self.cash += max(left - fee, 0.0)
        order = self._order_record(market_id, "SELL" if pos.qty > 0 else "BUY", abs(pos.qty),
                                   f"autoclose-{when}", reduce_only=True, when=when,
                                   order_type="LIMIT")
        order.update(price=repr(liq), timeInForce="IOC")
        self._fill(order, liq, fee, pnl, when)
        pos.qty = pos.entry = pos.margin = 0.0
        pos.update_time = when

    # ------------------------------------------------------------------ orders
    def market_order(self, market_id: str, side: str, quantity: float, client_id: str,
                     reduce_only: bool) -> dict:
        """Place and fill a market order (module rule); returns the order dict."""
        pos = self.position(market_id)
        if pos.margin_type != "ISOLATED":
            raise AssertionError(f"{market_id}: this venue models isolated margin only; the "
                                 "client ordered in cross margin mode")
        sign = 1.0 if side == "BUY" else -1.0
        if reduce_only and (pos.qty == 0 or sign * pos.qty > 0
                            or quantity > abs(pos.qty) * (1 + 1e-12)):
            raise BinanceApiError(-2022, "ReduceOnly Order is rejected.")
        price, when = self.last_price(market_id), self.now(market_id)
        reduce = min(quantity, abs(pos.qty)) if sign * pos.qty < 0 else 0.0
        opening = quantity - reduce
        cash_after_reduce = self.cash
        if reduce > 0:
            share = reduce / abs(pos.qty)
            pnl = -sign * reduce * (price - pos.entry)
            cash_after_reduce += share * pos.margin + pnl - reduce * price * self.fee_rate
        needed = opening * price * (1.0 / pos.leverage + self.fee_rate)
        if opening > 0 and needed > cash_after_reduce * (1.0 + 1e-9):
            raise BinanceApiError(-2019, "Margin is insufficient.")
        order = self._order_record(market_id, side, quantity, client_id, reduce_only, when)
        fee = quantity * price * self.fee_rate
        pnl = 0.0
        if reduce > 0:
            share = reduce / abs(pos.qty)
            pnl = -sign * reduce * (price - pos.entry)
            released = share * pos.margin
            self.cash += released + pnl
            pos.margin -= released
            pos.qty += sign * reduce
            if abs(pos.qty) <= 1e-12 * max(reduce, 1.0):
                pos.qty = pos.entry = pos.margin = 0.0
        if opening > 0:
            notional = opening * price
            new_qty = pos.qty + sign * opening
            pos.entry = (abs(pos.qty) * pos.entry + notional) / abs(new_qty)
            pos.qty = new_qty
            pos.margin += notional / pos.leverage
            self.cash -= notional / pos.leverage
        self.cash -= fee
        pos.update_time = when
        self._fill(order, price, fee, pnl, when)
        return order

    def _order_record(self, market_id: str, side: str, quantity: float, client_id: str,
                      reduce_only: bool, when: int, order_type: str = "MARKET") -> dict:
        order = {"orderId": next(self._ids), "symbol": market_id, "status": "NEW",
                 "clientOrderId": client_id, "price": "0", "avgPrice": "0",
                 "origQty": repr(float(quantity)), "executedQty": "0", "cumQuote": "0",
                 "timeInForce": "GTC", "type": order_type, "reduceOnly": reduce_only,
                 "closePosition": False, "side": side, "positionSide": "BOTH",
                 "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False,
                 "origType": order_type, "priceMatch": "NONE",
                 "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
                 "time": when, "updateTime": when}
        self.orders.append(order)
        return order

    def _fill(self, order: dict, price: float, fee: float, pnl: float, when: int) -> None:
        qty = float(order["origQty"])
        order.update(status="FILLED", avgPrice=repr(price), executedQty=order["origQty"],
                     cumQuote=repr(qty * price), updateTime=when)
        self.trades.append({
            "buyer": order["side"] == "BUY", "commission": repr(fee), "commissionAsset": "USDT",
            "id": next(self._ids), "maker": False, "orderId": order["orderId"],
            "price": repr(price), "qty": order["origQty"], "quoteQty": repr(qty * price),
            "realizedPnl": repr(pnl), "side": order["side"], "positionSide": "BOTH",
            "symbol": order["symbol"], "time": when})
        if pnl:
            self._income(order["symbol"], "REALIZED_PNL", pnl, when)
        if fee:
            self._income(order["symbol"], "COMMISSION", -fee, when)

    def _income(self, market_id: str, kind: str, amount: float, when: int) -> None:
        tran = next(self._ids)
        self.income.append({"symbol": market_id, "incomeType": kind, "income": repr(amount),
                            "asset": "USDT", "info": kind, "time": when, "tranId": tran,
                            "tradeId": ""})

    # ------------------------------------------------------------------ views
    def wallet(self) -> float:
        """Binance's wallet balance: cash plus every isolated wallet."""
        return self.cash + sum(p.margin for p in self.positions.values())

    def unrealized(self, market_id: str) -> float:
        pos = self.position(market_id)
        return pos.qty * (self.mark_price(market_id) - pos.entry) if pos.qty else 0.0

    def duplicate_client_ids(self) -> dict[str, int]:
        """Client ids used by more than one order (the venue accepts a reused id once the
        earlier order is no longer open, as Binance does)."""
        counts: dict[str, int] = {}
        for order in self.orders:
            counts[order["clientOrderId"]] = counts.get(order["clientOrderId"], 0) + 1
        return {cid: n for cid, n in counts.items() if n > 1}


__all__ = ["Account", "Position", "Replay", "liquidation_price"]
