"""The loopback Binance USD-M venue's signed routes: leverage, margin type, positions, balance,
orders, trades and income, in Binance's wire format as ``ccxt.binanceusdm`` sends and parses it.

The account behind them is :class:`tests.support.binanceusdm_account.Account` (its docstring is
the rule). Routes, all ``signed=True`` (HMAC-SHA256, :mod:`tests.support.binance_wire`):

- ``POST /fapi/v1/leverage`` (``symbol``, ``leverage`` 1..125, else -4028) -> ``{"leverage",
  "maxNotionalValue", "symbol"}``;
- ``POST /fapi/v1/marginType`` (``ISOLATED``/``CROSSED``): -4046 "No need to change margin
  type." when unchanged (ccxt maps it to ``MarginModeAlreadySet`` and by default swallows it),
  -4048 with a position open;
- ``GET /fapi/v1/leverageBracket`` (one bracket: the venue's ``mmr``), ``GET
  /fapi/v3/positionRisk`` and ``/fapi/v2/positionRisk`` (markets with a position), ``GET
  /fapi/v2/balance`` and ``/fapi/v3/account`` (``availableBalance`` = the account's cash,
  ``walletBalance`` = cash + isolated wallets, ``marginBalance`` adds the unrealised pnl);
- ``POST /fapi/v1/order``: ``MARKET`` only (-1116 otherwise), ``quantity`` on the lot step
  (-1111), ``newClientOrderId`` matching Binance's pattern (-4015) and unique among OPEN orders
  only, as Binance states (-4116): a market order is never open, so a resent id makes a second
  order, which :meth:`Account.duplicate_client_ids` exposes; notional below ``MIN_NOTIONAL``
  unless reduce-only (-4164); ``reduceOnly`` (-2022); margin (-2019);
- ``GET /fapi/v1/order`` (``orderId`` or ``origClientOrderId``; the latest order with that id;
  -2013 "Order does not exist."), ``DELETE /fapi/v1/order`` (-2011 on a filled order), ``GET
  /fapi/v1/openOrders``, ``GET /fapi/v1/allOrders``, ``GET /fapi/v1/userTrades``, ``GET
  /fapi/v1/income`` (``incomeType``, ``startTime``/``endTime`` inclusive, ``limit`` default 100
  at most 1000; oldest first);
- ``GET /fapi/v1/ticker/24hr`` (public): ``lastPrice`` = the replay's current open.

Test control (not Binance's API): ``GET /test/advance?i=N`` replays every market to the open of
bar ``N`` (idempotent: a bar already reached is not replayed again), so a feed can move the
market once per bar however often the trading process dies and restarts.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tests.support.binance_wire import BinanceApiError, Route

if TYPE_CHECKING:
    from tests.support.binanceusdm_server import BinanceUsdmServer

_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


def _num(value: float) -> str:
    return repr(float(value))


def private_routes(server: BinanceUsdmServer) -> dict[tuple[str, str], Route]:
    """The route table entries of the venue's account (module doc)."""
    acct = server.account

    def market(params: dict[str, str]):
        return server._market(params)

    def leverage(params: dict[str, str]) -> dict:
        m = market(params)
        try:
            value = int(params.get("leverage", ""))
        except ValueError:
            value = 0
        if not 1 <= value <= 125:
            raise BinanceApiError(-4028, f"Leverage {params.get('leverage')} is not valid")
        acct.position(m.market_id).leverage = value
        return {"leverage": value, "maxNotionalValue": "1000000", "symbol": m.market_id}

    def margin_type(params: dict[str, str]) -> dict:
        m = market(params)
        wanted = params.get("marginType", "")
        if wanted not in ("ISOLATED", "CROSSED"):
            raise BinanceApiError(-1102, "Mandatory parameter 'marginType' was not sent, was "
                                         "empty/null, or malformed.")
        pos = acct.position(m.market_id)
        if pos.margin_type == wanted:
            raise BinanceApiError(-4046, "No need to change margin type.")
        if pos.qty != 0:
            raise BinanceApiError(-4048, "Margin type cannot be changed if there exists "
                                         "position.")
        pos.margin_type = wanted
        return {"code": 200, "msg": "success"}

    def brackets(params: dict[str, str]) -> list:
        return [{"symbol": m.market_id, "notionalCoef": 1.0, "brackets": [
            {"bracket": 1, "initialLeverage": 125, "notionalCap": 1e12, "notionalFloor": 0,
             "maintMarginRatio": acct.mmr, "cum": 0.0}]}
            for m in server._markets.values()
            if "symbol" not in params or params["symbol"] == m.market_id]

    def position_rows(params: dict[str, str]) -> list:
        rows = []
        for m in server._markets.values():
            pos = acct.position(m.market_id)
            if pos.qty == 0 or params.get("symbol", m.market_id) != m.market_id:
                continue
            mark = acct.mark_price(m.market_id)
            unrealized = acct.unrealized(m.market_id)
            notional = pos.qty * mark
            liq = (pos.entry - pos.margin / pos.qty) / (1 - acct.mmr) if pos.qty > 0 else (
                pos.entry + pos.margin / -pos.qty) / (1 + acct.mmr)
            rows.append({
                "symbol": m.market_id, "positionSide": "BOTH", "positionAmt": _num(pos.qty),
                "entryPrice": _num(pos.entry), "breakEvenPrice": _num(pos.entry),
                "markPrice": _num(mark), "unRealizedProfit": _num(unrealized),
                "liquidationPrice": _num(max(liq, 0.0)),
                "isolatedMargin": _num(pos.margin + unrealized), "notional": _num(notional),
                "marginAsset": m.settle, "isolatedWallet": _num(pos.margin),
                "initialMargin": _num(abs(notional) / pos.leverage),
                "maintMargin": _num(abs(notional) * acct.mmr),
                "positionInitialMargin": _num(abs(notional) / pos.leverage),
                "openOrderInitialMargin": "0", "adl": 1, "bidNotional": "0",
                "askNotional": "0", "updateTime": pos.update_time,
                # v2's extra fields (harmless in v3's answer; ccxt reads either)
                "leverage": str(pos.leverage), "marginType": pos.margin_type.lower(),
                "isolated": pos.margin_type == "ISOLATED", "maxNotionalValue": "1000000",
                "isAutoAddMargin": "false"})
        return rows

    def asset_rows() -> list[dict]:
        now = server.clock_ms()
        unrealized = sum(acct.unrealized(m) for m in acct.positions)
        margins = sum(p.margin for p in acct.positions.values())
        rows = []
        for asset, amount in sorted(server.balances.items()):
            usdt = asset == "USDT"
            wallet = acct.wallet() if usdt else amount
            rows.append({"accountAlias": "SgsR", "asset": asset, "balance": _num(wallet),
                         "walletBalance": _num(wallet),
                         "unrealizedProfit": _num(unrealized if usdt else 0.0),
                         "marginBalance": _num(wallet + (unrealized if usdt else 0.0)),
                         "maintMargin": "0.0",
                         "initialMargin": _num(margins if usdt else 0.0),
                         "positionInitialMargin": _num(margins if usdt else 0.0),
                         "openOrderInitialMargin": "0.0", "crossWalletBalance": _num(amount),
                         "crossUnPnl": "0.0", "availableBalance": _num(amount),
                         "maxWithdrawAmount": _num(amount), "marginAvailable": True,
                         "updateTime": now})
        return rows

    def account(params: dict[str, str]) -> dict:
        assets = asset_rows()
        usdt = next((a for a in assets if a["asset"] == "USDT"), None)

        def total(name: str) -> str:
            return usdt[name] if usdt else "0.0"

        return {"totalInitialMargin": total("initialMargin"), "totalMaintMargin": "0.0",
                "totalWalletBalance": total("walletBalance"),
                "totalUnrealizedProfit": total("unrealizedProfit"),
                "totalMarginBalance": total("marginBalance"),
                "totalPositionInitialMargin": total("positionInitialMargin"),
                "totalOpenOrderInitialMargin": "0.0",
                "totalCrossWalletBalance": total("crossWalletBalance"), "totalCrossUnPnl": "0.0",
                "availableBalance": total("availableBalance"),
                "maxWithdrawAmount": total("maxWithdrawAmount"), "assets": assets,
                "positions": position_rows({})}

    def new_order(params: dict[str, str]) -> dict:
        m = market(params)
        if params.get("type") != "MARKET":
            raise BinanceApiError(-1116, "Invalid orderType.")
        side = params.get("side")
        if side not in ("BUY", "SELL"):
            raise BinanceApiError(-1117, "Invalid side.")
        try:
            quantity = Decimal(params.get("quantity", ""))
        except InvalidOperation:
            raise BinanceApiError(-1102, "Mandatory parameter 'quantity' was not sent, was "
                                         "empty/null, or malformed.") from None
        if quantity <= 0 or quantity % Decimal(m.step) != 0:
            raise BinanceApiError(-1111, "Precision is over the maximum defined for this "
                                         "asset.")
        client_id = params.get("newClientOrderId") or f"web_{len(acct.orders)}"
        if not _CLIENT_ID.match(client_id):
            raise BinanceApiError(-4015, "Client order id is not valid.")
        if any(o["clientOrderId"] == client_id and o["status"] == "NEW" for o in acct.orders):
            raise BinanceApiError(-4116, "ClientOrderId is duplicated.")
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        price = acct.last_price(m.market_id)
        if not reduce_only and float(quantity) * price < float(m.min_notional):
            raise BinanceApiError(-4164, f"Order's notional must be no smaller than "
                                         f"{m.min_notional} (unless you choose reduce only).")
        return dict(acct.market_order(m.market_id, side, float(quantity), client_id,
                                      reduce_only))

    def find(params: dict[str, str]) -> dict:
        m = market(params)
        cid, oid = params.get("origClientOrderId"), params.get("orderId")
        for order in reversed(acct.orders):  # the latest order with that client id
            if order["symbol"] == m.market_id and (
                    (cid is not None and order["clientOrderId"] == cid)
                    or (oid is not None and str(order["orderId"]) == oid)):
                return order
        raise BinanceApiError(-2013, "Order does not exist.")

    def cancel(params: dict[str, str]) -> dict:
        order = find(params)
        if order["status"] != "NEW":
            raise BinanceApiError(-2011, "Unknown order sent.")
        order["status"] = "CANCELED"
        return dict(order)

    def window(rows: list[dict], params: dict[str, str], key: str, default: int,
               maximum: int) -> list[dict]:
        limit = server._limit(params, default, maximum)
        start, end = server._int(params, "startTime"), server._int(params, "endTime")
        picked = [r for r in rows if (start is None or r[key] >= start)
                  and (end is None or r[key] <= end)]
        return picked[:limit] if start is not None else picked[-limit:]

    def of_symbol(rows: list[dict], params: dict[str, str]) -> list[dict]:
        if "symbol" in params:
            market(params)
            rows = [r for r in rows if r["symbol"] == params["symbol"]]
        return rows

    def all_orders(params: dict[str, str]) -> list:
        rows = of_symbol(acct.orders, params)
        if "orderId" in params:
            rows = [r for r in rows if r["orderId"] >= int(params["orderId"])]
        return [dict(r) for r in window(rows, params, "time", 500, 1000)]

    def user_trades(params: dict[str, str]) -> list:
        rows = of_symbol(acct.trades, params)
        if "orderId" in params:
            rows = [r for r in rows if str(r["orderId"]) == params["orderId"]]
        if "fromId" in params:
            rows = [r for r in rows if r["id"] >= int(params["fromId"])]
        return [dict(r) for r in window(rows, params, "time", 500, 1000)]

    def income(params: dict[str, str]) -> list:
        rows = of_symbol(acct.income, params)
        if params.get("incomeType"):
            rows = [r for r in rows if r["incomeType"] == params["incomeType"]]
        return [dict(r) for r in window(rows, params, "time", 100, 1000)]

    def ticker(params: dict[str, str]) -> dict:
        m = market(params)
        last = acct.last_price(m.market_id)
        return {"symbol": m.market_id, "priceChange": "0", "priceChangePercent": "0",
                "weightedAvgPrice": _num(last), "lastPrice": _num(last), "lastQty": "0",
                "openPrice": _num(last), "highPrice": _num(last), "lowPrice": _num(last),
                "volume": "0", "quoteVolume": "0", "openTime": acct.now(m.market_id),
                "closeTime": server.clock_ms(), "firstId": 0, "lastId": 0, "count": 0}

    def advance(params: dict[str, str]) -> dict:
        server.advance(int(params["i"]))
        return {"cursor": dict(acct.cursor)}

    signed = {
        ("POST", "/fapi/v1/leverage"): leverage,
        ("POST", "/fapi/v1/marginType"): margin_type,
        ("GET", "/fapi/v1/leverageBracket"): brackets,
        ("GET", "/fapi/v2/positionRisk"): position_rows,
        ("GET", "/fapi/v3/positionRisk"): position_rows,
        ("GET", "/fapi/v2/balance"): lambda params: asset_rows(),
        ("GET", "/fapi/v3/account"): account,
        ("GET", "/fapi/v2/account"): account,
        ("POST", "/fapi/v1/order"): new_order,
        ("GET", "/fapi/v1/order"): lambda params: dict(find(params)),
        ("DELETE", "/fapi/v1/order"): cancel,
        ("GET", "/fapi/v1/openOrders"): lambda params: [
            dict(o) for o in of_symbol(acct.orders, params) if o["status"] == "NEW"],
        ("GET", "/fapi/v1/allOrders"): all_orders,
        ("GET", "/fapi/v1/userTrades"): user_trades,
        ("GET", "/fapi/v1/income"): income,
    }
    routes: dict[tuple[str, str], Route] = {key: Route(fn, signed=True)
                                            for key, fn in signed.items()}
    routes[("GET", "/fapi/v1/ticker/24hr")] = Route(ticker)
    routes[("GET", "/test/advance")] = Route(advance)
    return routes


def order_book_view(orders: list[dict]) -> list[tuple[Any, ...]]:
    """(client id, side, quantity, status, reduce-only) of every order in creation order: what
    a crashed and an uninterrupted run must agree on."""
    return [(o["clientOrderId"], o["side"], o["origQty"], o["status"], o["reduceOnly"])
            for o in orders]


__all__ = ["order_book_view", "private_routes"]
