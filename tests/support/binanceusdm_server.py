"""A loopback Binance USD-M futures REST server for tests: real ``ccxt.binanceusdm`` talks to it.

A threaded server on ``127.0.0.1`` (port 0) answering Binance's USD-M futures REST API in its
documented wire format, so ccxt's own request building and parsing run. Point ccxt at it with
:func:`make_ccxt_binanceusdm` (or ``QUANTLIB_BINANCEUSDM_API_URL=server.url`` for
``quantlib.data.load``): only the host changes, each API family keeps its path (``/fapi/v1``).

Routes
------
One table, ``server.routes``: ``(method, path) -> Route(handler, signed)``; the HTTP plumbing,
signing check, faults and recording live in :mod:`tests.support.binance_wire`. Public routes:

- ``GET /fapi/v1/ping``, ``GET /fapi/v1/time`` (``{"serverTime": ms}``: :meth:`clock_ms`);
- ``GET /fapi/v1/exchangeInfo``: every market added with :meth:`add_market`, ``PERPETUAL``
  contracts with ``PRICE_FILTER``/``LOT_SIZE``/``MIN_NOTIONAL`` filters;
- ``GET /fapi/v1/klines`` and ``/fapi/v1/markPriceKlines``: ``symbol``, ``interval``,
  ``startTime``, ``endTime``, ``limit`` (default 500, at most 1500, else error -1130). Rows with
  open time in ``[startTime, endTime]`` and at most "now" (the still-forming candle is served,
  as Binance does); with ``startTime`` the first ``limit`` of them, else the last ``limit``.
  Each row is ``[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades,
  takerBuyBase, takerBuyQuote, "0"]``, numbers as strings; mark rows carry ``"0"`` volumes;
- ``GET /fapi/v1/fundingRate``: ``symbol``, ``startTime``, ``endTime`` (both inclusive),
  ``limit`` (default 100, at most 1000). Records with ``fundingTime`` at most now; with
  ``startTime`` the first ``limit`` from it, else the most recent ``limit``; each
  ``{"symbol", "fundingRate" (8 decimals), "fundingTime" (ms), "markPrice"}``. ``funding_jitter_ms``
  adds Binance's few milliseconds of settlement delay to the times;
- ``GET /fapi/v1/premiumIndex``: mark price, last funding rate, next funding time.

Private (signed) routes are declared with ``signed=True``: :meth:`_authenticate` checks them as
Binance does (``X-MBX-APIKEY`` header, ``timestamp``, ``signature = HMAC-SHA256(secret, query
string + body)``), answering -2014/-2015/-1022 on a bad key or signature. ``GET
/sapi/v1/capital/config/getall`` and ``/sapi/v1/margin/allPairs`` are here (ccxt's
``load_markets`` asks them whenever a key is set; no margin pairs here); the account's routes
(leverage, margin type, positions, balance, orders, trades, income) and the test-control route
``GET /test/advance`` are in :mod:`tests.support.binanceusdm_private`, the account's rule in
:mod:`tests.support.binanceusdm_account`. :meth:`BinanceUsdmServer.set_replay` gives a market
bars to trade on; :meth:`BinanceUsdmServer.advance` moves every traded market to a bar's open.

Errors are Binance's: HTTP 400 ``{"code": -1121, "msg": "Invalid symbol."}`` and so on (ccxt maps
the codes to its exception classes).

Faults and recording
--------------------
``server.inject_fault("/fapi/v1/fundingRate", "http", status=503)`` queues a fault for the next
request to a path (``"http"``: that status without acting; ``"timeout"``: wait ``delay`` and
close; ``"malformed"``: a truncated JSON body; ``"lost"``: act, then drop the connection
unanswered). Every request is appended to ``server.requests``
(``method``, ``path``, ``params``, ``fault``); ``requests_for(path)`` filters them. Handler bugs
land in ``server.errors`` (the fixture fails the test on them).

Example
-------
>>> with BinanceUsdmServer() as server:                                  # doctest: +SKIP
...     server.set_klines(df, symbol="BTC/USDT:USDT")
...     server.set_funding(funding, symbol="BTC/USDT:USDT")
...     exchange = make_ccxt_binanceusdm(server)
...     exchange.fetch_funding_rate_history("BTC/USDT:USDT", since=ms)
"""

from __future__ import annotations

import hashlib
import time
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.support.binance_wire import (
    BinanceApiError,
    Fault,
    RecordedRequest,
    Route,
    RouteServer,
)
from tests.support.binanceusdm_account import Account, Replay
from tests.support.binanceusdm_private import private_routes

DEFAULT_API_KEY = "quantlib-loopback-binance-key"
DEFAULT_SECRET = hashlib.sha256(b"quantlib-loopback-binance-secret").hexdigest()
KLINE_LIMIT_DEFAULT, KLINE_LIMIT_MAX = 500, 1500
FUNDING_LIMIT_DEFAULT, FUNDING_LIMIT_MAX = 100, 1000
_PERPETUAL_DELIVERY = 4133404800000  # Binance's delivery date of every perpetual (2100-12-25)
_INTERVALS = {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200,
              "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200, "1d": 86400}


@dataclass
class _Market:
    symbol: str  # unified, "BTC/USDT:USDT"
    market_id: str  # "BTCUSDT"
    base: str
    quote: str
    settle: str
    step: str = "0.001"  # LOT_SIZE stepSize (= minQty)
    min_notional: str = "100"  # MIN_NOTIONAL notional


def _market_for(symbol: str, step: str = "0.001", min_notional: str = "100") -> _Market:
    pair, _, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    return _Market(symbol, f"{base}{quote}", base, quote, settle or quote, step, min_notional)


def _num(value: float) -> str:
    return repr(float(value))


class BinanceUsdmServer(RouteServer):
    """Threaded loopback server speaking Binance's USD-M futures REST API; see the module doc.

    Parameters
    ----------
    symbol : unified symbol of the first market (more with :meth:`add_market`).
    api_key, secret : the one valid credential pair of signed routes.
    funding_jitter_ms : milliseconds added to every served ``fundingTime`` (Binance's records
        carry a few ms of settlement delay).
    """

    def __init__(self, *, symbol: str = "BTC/USDT:USDT", api_key: str = DEFAULT_API_KEY,
                 secret: str = DEFAULT_SECRET, funding_jitter_ms: int = 0,
                 fee_rate: float = 0.0004, mmr: float = 0.004, liq_fee: float = 0.0125) -> None:
        super().__init__(api_key, secret)
        self.now_ms: int | None = None  # the server clock; None: see clock_ms()
        self.funding_jitter_ms = funding_jitter_ms
        self.balances: dict[str, float] = defaultdict(float)
        self.account = Account(self.balances, fee_rate=fee_rate, mmr=mmr, liq_fee=liq_fee)
        self._markets: dict[str, _Market] = {}
        # (market id, interval, price kind) -> (open times in ms, rows as Binance sends them)
        self._klines: dict[tuple[str, str, str], tuple[list[int], list[list]]] = {}
        self._funding: dict[str, tuple[list[int], list[dict]]] = {}
        self.routes = {
            ("GET", "/fapi/v1/ping"): Route(lambda params: {}),
            ("GET", "/fapi/v1/time"): Route(self._time),
            ("GET", "/fapi/v1/exchangeInfo"): Route(self._exchange_info),
            ("GET", "/fapi/v1/klines"): Route(lambda params: self._klines_route(params, "last")),
            ("GET", "/fapi/v1/markPriceKlines"): Route(
                lambda params: self._klines_route(params, "mark")),
            ("GET", "/fapi/v1/fundingRate"): Route(self._funding_rate),
            ("GET", "/fapi/v1/premiumIndex"): Route(self._premium_index),
            # ccxt's load_markets asks the spot wallet's coin list whenever a key is set.
            ("GET", "/sapi/v1/capital/config/getall"): Route(self._coins, signed=True),
            # ... and the spot margin pairs (none here: this venue is futures only).
            ("GET", "/sapi/v1/margin/allPairs"): Route(lambda params: [], signed=True),
            ("GET", "/sapi/v1/margin/isolated/allPairs"): Route(lambda params: [], signed=True),
        }
        self.routes.update(private_routes(self))
        self.add_market(symbol)

    # ------------------------------------------------------------------ configuration
    def add_market(self, symbol: str, *, step: str | None = None,
                   min_notional: str | None = None) -> None:
        """List ``symbol``; ``step`` (lot size) and ``min_notional`` (strings, as Binance's
        filters) change a listed market's filters, else they keep theirs (default 0.001, 100)."""
        with self._lock:
            market = _market_for(symbol)
            known = self._markets.get(market.market_id)
            market.step = step or (known.step if known else market.step)
            market.min_notional = min_notional or (known.min_notional if known
                                                   else market.min_notional)
            self._markets[market.market_id] = market

    def set_klines(self, df: pd.DataFrame, *, symbol: str = "BTC/USDT:USDT",
                   timeframe: str | None = None, price: str = "last") -> None:
        """Serve ``df`` (canonical OHLCV) as ``klines`` (``price="last"``) or
        ``markPriceKlines`` (``price="mark"``: volumes sent as ``"0"``)."""
        timeframe = timeframe or df.attrs["timeframe"]
        step_ms = _INTERVALS[timeframe] * 1000
        opens = [int(v) for v in df.index.as_unit("ms").asi8]
        rows = []
        for t, o, h, low, c, v in zip(opens, df["open"], df["high"], df["low"], df["close"],
                                      df["volume"], strict=True):
            volume = "0" if price == "mark" else _num(v)
            quote_volume = "0" if price == "mark" else _num(v * c)
            rows.append([t, _num(o), _num(h), _num(low), _num(c), volume, t + step_ms - 1,
                         quote_volume, 0 if price == "mark" else 100, "0", "0", "0"])
        with self._lock:
            self.add_market(symbol)
            self._klines[(_market_for(symbol).market_id, timeframe, price)] = (opens, rows)

    def set_funding(self, funding: pd.DataFrame, *, symbol: str = "BTC/USDT:USDT",
                    mark: pd.Series | None = None) -> None:
        """Serve the ``funding_rate`` column of ``funding`` (indexed by funding time) from
        ``fundingRate``; ``markPrice`` is ``mark`` at those times when given, else ``""``
        (as Binance sends for old records)."""
        market = _market_for(symbol)
        times = [int(v) + self.funding_jitter_ms for v in funding.index.as_unit("ms").asi8]
        marks = (mark.reindex(funding.index).to_numpy() if mark is not None
                 else np.full(len(funding), np.nan))
        records = [{"symbol": market.market_id, "fundingRate": f"{rate:.8f}", "fundingTime": t,
                    "markPrice": "" if np.isnan(m) else f"{m:.8f}"}
                   for t, rate, m in zip(times, funding["funding_rate"], marks, strict=True)]
        with self._lock:
            self.add_market(symbol)
            self._funding[market.market_id] = (times, records)

    def set_replay(self, ohlcv: pd.DataFrame, mark: pd.DataFrame, funding: pd.DataFrame, *,
                   symbol: str = "BTC/USDT:USDT", step: str | None = None,
                   min_notional: str | None = None) -> None:
        """Trade ``symbol`` on these bars: candles and mark candles (same index) and funding
        events (``funding_rate`` by payment time) are served by the public routes and drive
        the account (:meth:`advance` moves the market; orders fill at the current bar's
        open). Funding records carry the mark's open at their time when a bar opens then."""
        times = [int(v) for v in ohlcv.index.as_unit("ms").asi8]
        events = [(int(t), float(r)) for t, r in zip(funding.index.as_unit("ms").asi8,
                                                    funding["funding_rate"], strict=True)]
        with self._lock:
            self.add_market(symbol, step=step, min_notional=min_notional)
            self.set_klines(ohlcv, symbol=symbol)
            self.set_klines(mark, symbol=symbol, price="mark")
            self.set_funding(funding, symbol=symbol, mark=mark["open"])
            self.account.replays[_market_for(symbol).market_id] = Replay(
                times, [float(v) for v in ohlcv["open"]], [float(v) for v in mark["open"]],
                [float(v) for v in mark["high"]], [float(v) for v in mark["low"]], events)

    def advance(self, index: int) -> None:
        """Replay every traded market to the open of bar ``index`` (``GET /test/advance``)."""
        with self._lock:
            for market_id in self.account.replays:
                self.account.advance(market_id, index)
            self.now_ms = max(self.account.now(m) for m in self.account.replays)

    def clock_ms(self) -> int:
        """``now_ms`` when set, else the wall clock."""
        return int(self.now_ms) if self.now_ms is not None else int(time.time() * 1000)

    # ------------------------------------------------------------------ helpers
    def _market(self, params: dict[str, str]) -> _Market:
        market_id = params.get("symbol", "")
        if market_id not in self._markets:
            raise BinanceApiError(-1121, "Invalid symbol.")
        return self._markets[market_id]

    @staticmethod
    def _int(params: dict[str, str], name: str) -> int | None:
        if name not in params:
            return None
        try:
            return int(params[name])
        except ValueError:
            raise BinanceApiError(-1100, f"Illegal characters found in parameter '{name}'; "
                                         "legal range is '^[0-9]{1,20}$'.") from None

    def _limit(self, params: dict[str, str], default: int, maximum: int) -> int:
        limit = self._int(params, "limit")
        if limit is None:
            return default
        if not 0 < limit <= maximum:
            raise BinanceApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        return limit

    def _window(self, times: list[int], params: dict[str, str], limit: int) -> slice:
        """Rows with time in ``[startTime, endTime]`` and <= now: the first ``limit`` from
        ``startTime`` when it is given, else the last ``limit``."""
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        end = self.clock_ms() if end is None else min(end, self.clock_ms())
        lo = bisect_left(times, start) if start is not None else 0
        hi = bisect_right(times, end)
        if start is not None:
            return slice(lo, max(lo, min(hi, lo + limit)))
        return slice(max(lo, hi - limit), hi)

    # ------------------------------------------------------------------ public routes
    def _time(self, params: dict) -> dict:
        return {"serverTime": self.clock_ms()}

    def _exchange_info(self, params: dict) -> dict:
        symbols = [{
            "symbol": m.market_id, "pair": m.market_id, "contractType": "PERPETUAL",
            "deliveryDate": _PERPETUAL_DELIVERY, "onboardDate": 1569398400000,
            "status": "TRADING", "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
            "baseAsset": m.base, "quoteAsset": m.quote, "marginAsset": m.settle,
            "pricePrecision": 2, "quantityPrecision": len(m.step.partition(".")[2]), "baseAssetPrecision": 8,
            "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": ["PoW"],
            "settlePlan": 0, "triggerProtect": "0.0500", "liquidationFee": "0.012500",
            "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "556.80", "maxPrice": "4529764",
                 "tickSize": "0.10"},
                {"filterType": "LOT_SIZE", "minQty": m.step, "maxQty": "1000000",
                 "stepSize": m.step},
                {"filterType": "MARKET_LOT_SIZE", "minQty": m.step, "maxQty": "1000000",
                 "stepSize": m.step},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MIN_NOTIONAL", "notional": m.min_notional},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
                 "multiplierDown": "0.9500", "multiplierDecimal": "4"},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                           "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        } for m in self._markets.values()]
        return {"timezone": "UTC", "serverTime": self.clock_ms(), "futuresType": "U_MARGINED",
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                     "limit": 2400},
                    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
                     "limit": 1200}],
                "exchangeFilters": [],
                "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"}
                           for a in sorted({m.settle for m in self._markets.values()})],
                "symbols": symbols}

    def _klines_route(self, params: dict[str, str], price: str) -> list:
        market = self._market(params)
        interval = params.get("interval", "")
        if interval not in _INTERVALS:
            raise BinanceApiError(-1120, "Invalid interval.")
        limit = self._limit(params, KLINE_LIMIT_DEFAULT, KLINE_LIMIT_MAX)
        times, rows = self._klines.get((market.market_id, interval, price), ([], []))
        return rows[self._window(times, params, limit)]

    def _funding_rate(self, params: dict[str, str]) -> list:
        limit = self._limit(params, FUNDING_LIMIT_DEFAULT, FUNDING_LIMIT_MAX)
        if "symbol" not in params:  # every market's records, as Binance does without a symbol
            merged = sorted((r for _, recs in self._funding.values() for r in recs),
                            key=lambda r: r["fundingTime"])
            times, records = [r["fundingTime"] for r in merged], merged
        else:
            times, records = self._funding.get(self._market(params).market_id, ([], []))
        return records[self._window(times, params, limit)]

    def _premium_one(self, market: _Market) -> dict:
        now = self.clock_ms()
        times, records = self._funding.get(market.market_id, ([], []))
        last = records[bisect_right(times, now) - 1] if bisect_right(times, now) else None
        mark, mark_time = "0.00000000", -1
        for (market_id, _, price), (times, rows) in self._klines.items():
            i = bisect_right(times, now) - 1  # the latest mark candle up to now, any interval
            if market_id == market.market_id and price == "mark" and i >= 0 and times[i] > mark_time:
                mark, mark_time = rows[i][4], times[i]
        step = 8 * 3600 * 1000
        return {"symbol": market.market_id, "markPrice": mark, "indexPrice": mark,
                "estimatedSettlePrice": mark,
                "lastFundingRate": last["fundingRate"] if last else "0.00000000",
                "interestRate": "0.00010000", "nextFundingTime": (now // step + 1) * step,
                "time": now}

    def _premium_index(self, params: dict[str, str]) -> Any:
        if "symbol" in params:
            return self._premium_one(self._market(params))
        return [self._premium_one(m) for m in self._markets.values()]

    # ------------------------------------------------------------------ signed routes
    def _coins(self, params: dict[str, str]) -> list:
        assets = sorted({a for m in self._markets.values() for a in (m.base, m.quote, m.settle)})
        return [{"coin": a, "name": a, "depositAllEnable": True, "withdrawAllEnable": True,
                 "free": _num(self.balances.get(a, 0.0)), "locked": "0", "freeze": "0",
                 "withdrawing": "0", "ipoing": "0", "ipoable": "0", "storage": "0",
                 "isLegalMoney": False, "trading": True, "networkList": []} for a in assets]


@pytest.fixture(name="binanceusdm_server")
def binanceusdm_server_fixture():
    """pytest fixture: a started :class:`BinanceUsdmServer` with the BTC/USDT:USDT market.

    Import it into a test module: ``from tests.support.binanceusdm_server import
    binanceusdm_server_fixture  # noqa: F401``.
    """
    with BinanceUsdmServer() as server:
        yield server
        assert not server.errors, f"loopback Binance USD-M server raised: {server.errors!r}"


def make_ccxt_binanceusdm(server: BinanceUsdmServer, api_key: str | None = None,
                          secret: str | None = None, **config: Any):
    """A real ``ccxt.binanceusdm`` aimed at ``server`` (each API family keeps its path).

    ``config`` overrides ccxt options (defaults: ``rateLimit=1`` ms, ``timeout=2000`` ms, the
    server's valid key pair).
    """
    import ccxt

    from quantlib.core.endpoints import point_at_loopback

    options = {"enableRateLimit": True, "rateLimit": 1, "timeout": 2000,
               "apiKey": api_key if api_key is not None else server.api_key,
               "secret": secret if secret is not None else server.secret}
    options.update(config)
    return point_at_loopback(ccxt.binanceusdm(options), server.url, "test server")


__all__ = ["DEFAULT_API_KEY", "DEFAULT_SECRET", "BinanceApiError", "BinanceUsdmServer",
           "Fault", "RecordedRequest", "Route", "binanceusdm_server_fixture",
           "make_ccxt_binanceusdm"]
