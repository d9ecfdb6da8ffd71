"""A loopback Kraken REST server for tests: real ``ccxt.kraken`` talks to it over HTTP.

No exchange is reachable from the test machines, so this threaded server on ``127.0.0.1`` (port 0)
answers Kraken's REST API in Kraken's documented wire format, and :func:`make_ccxt_kraken` builds
a real ``ccxt.kraken`` whose ``urls['api']`` points at it: ccxt's own request building, HMAC
signing, rate limiting and response parsing all run.

Endpoints
---------
Public (GET ``/0/public/<name>``): ``Time``, ``Assets``, ``AssetPairs``, ``Ticker``, ``OHLC``,
``Trades``.

The server has a clock, :meth:`KrakenServer.clock` (seconds): ``server.now`` when set, else the
middle of the latest bar given to :meth:`KrakenServer.set_ohlcv` (so that bar is the one still
forming), else the wall clock. ``Time`` answers it.

``OHLC`` follows Kraken's documented rule (``ohlc_rule="kraken"``, the default): of the entries
up to now it returns the ``page_size`` (720) MOST RECENT, whatever ``since`` asks for (older
history cannot be retrieved), keeping those with time strictly after ``since`` (seconds); the last
entry is always the current, not-yet-committed candle: the served row containing now, or, when now
lies after the served rows, a synthesised flat candle (the last close, volume 0). ``last`` is the
time of the last committed entry. ``ohlc_rule="page_forward"`` is how exchanges with deep OHLC
history behave (Binance, Bitstamp, ...), in Kraken's wire format: the first ``page_size - 1``
committed rows after ``since`` plus the forming candle, so a client pages forward through the
whole history. Prices are sent as ``repr(float)`` strings so a client that parses them gets the
served floats back bit for bit.

``Trades`` serves the trades given to :meth:`KrakenServer.set_trades` up to now, paged like
Kraken: ``since`` is a cursor in nanoseconds (a value below 1e12 is read as seconds, as Kraken
accepts both), the response holds the first ``trades_page_size`` (1000) trades with time strictly
after it, each ``[price, volume, time, side, ordertype, misc, trade_id]`` (time in seconds with
four decimals, side ``b``/``s``, ordertype ``l``/``m``), and ``last``: the cursor (time of the
last trade in ns, as a string) to pass as the next ``since``.

Private (POST ``/0/private/<name>``, form-encoded body with ``nonce``): ``Balance``, ``BalanceEx``,
``AddOrder``, ``OpenOrders``, ``ClosedOrders``, ``QueryOrders``, ``CancelOrder``. Authentication
is checked exactly as Kraken does: ``API-Sign == base64(HMAC-SHA512(base64decode(secret),
uri_path + SHA256(nonce + body)))``. Unknown key -> ``EAPI:Invalid key``; wrong signature ->
``EAPI:Invalid signature``; a nonce not above the key's previous one -> ``EAPI:Invalid nonce``.
``AddOrder`` takes ``pair``, ``type`` (buy/sell), ``ordertype`` (market/limit/stop-loss/
take-profit), ``volume``, ``price``, ``userref`` and/or ``cl_ord_id``. Market orders fill at once at
:meth:`KrakenServer.set_price` (default: last served close) with fee ``fee_rate`` in quote; limit
orders rest (their funds on hold) until ``set_price`` crosses them, then fill at the limit price.
``stop-loss`` and ``take-profit`` (``price`` = the trigger, as Kraken reads it) rest without a hold
and become a market order when the price reaches the trigger from the unfavourable (stop-loss) or
favourable (take-profit) side; without the funds by then they are cancelled
(``Insufficient funds``), as a spot account cannot sell what it no longer holds.
:meth:`KrakenServer.walk_bar` replays one bar against the resting orders: a trigger the bar opens
beyond fills at the open, a trigger inside the bar's low..high fills at the trigger itself (the
price passes through it; no slippage after the trigger is modelled), stop-losses before
take-profits, then limits along the bar's path; the price ends at the close.
Missing funds -> ``EOrder:Insufficient funds``. Errors are HTTP 200 ``{"error": [...]}`` like
Kraken. The server never de-duplicates orders: tests detect a client that orders twice with
:meth:`KrakenServer.duplicate_client_ids`.

Fault injection
---------------
``server.inject_fault(endpoint, kind, times=1, status=None, delay=None, after=0)`` queues faults
that the next requests to ``endpoint`` (``"OHLC"``, ``"AddOrder"``, ...) consume in order, after
``after`` requests answered normally:

- ``"http"``: answer HTTP ``status`` (default 503; 429, 500, 502 ...) without acting;
- ``"timeout"``: sleep ``delay`` (default ``server.fault_delay`` = 1.0 s, longer than the client
  timeout tests use) and close the connection without acting or answering;
- ``"malformed"``: answer HTTP 200 ``application/json`` with a truncated JSON body, without acting;
- ``"lost"``: perform the action (the order exists), then sleep ``delay`` and drop the connection,
  as when a response is lost in flight.

``server.latency["Trades"] = 0.05`` makes every answer of an endpoint take that long, as from a
distant exchange (tests that must act in the middle of a download use it).

Recording
---------
Every request is appended to ``server.requests`` as a :class:`RecordedRequest` (``method``,
``endpoint``, ``path``, ``params`` (query or body, ``nonce`` included), ``fault``).
``server.requests_for("OHLC")`` filters them; ``server.orders`` maps txid -> Kraken order dict.

``with KrakenServer(...) as server:`` starts and stops it; the ``kraken_server`` pytest fixture
(import ``kraken_server_fixture`` into a test module or conftest to use it) yields an empty started server and fails the test if a handler raised unexpectedly
(``server.errors``).

Example
-------
>>> from tests.support.kraken_server import KrakenServer, make_ccxt_kraken
>>> with KrakenServer(ohlcv=df) as server:                               # doctest: +SKIP
...     exchange = make_ccxt_kraken(server)
...     exchange.fetch_ohlcv("BTC/USD", "1h", since=ms)
...     server.inject_fault("AddOrder", "lost")
...     server.set_balance("USD", 10_000)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from bisect import bisect_right
from collections import defaultdict, deque
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd
import pytest

from tests.support.loopback_http import Fault, LoopbackHandler, LoopbackHTTPServer

DEFAULT_API_KEY = "quantlib-loopback-test-key"
# A fixed 64-byte secret, base64 encoded like the secrets Kraken hands out.
DEFAULT_SECRET = base64.b64encode(hashlib.sha512(b"quantlib-loopback-secret").digest()).decode()

# Kraken's legacy asset ids (X/Z prefixed) for the common assets; others use the code itself.
_ASSET_IDS = {"BTC": ("XXBT", "XBT"), "ETH": ("XETH", "ETH"), "USD": ("ZUSD", "USD"),
              "EUR": ("ZEUR", "EUR"), "GBP": ("ZGBP", "GBP"), "LTC": ("XLTC", "LTC")}
_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
_FAULT_KINDS = ("http", "timeout", "malformed", "lost")
_OHLC_RULES = ("kraken", "page_forward")
_CONDITIONAL = ("stop-loss", "take-profit")  # checked in this order within a bar


class KrakenApiError(Exception):
    """An error the server answers in Kraken's ``{"error": [...]}`` envelope."""


@dataclass
class RecordedRequest:
    method: str
    endpoint: str
    path: str
    params: dict[str, str]
    fault: str | None = None
    time: float = field(default_factory=time.time)


@dataclass
class _Pair:
    symbol: str
    base: str
    quote: str
    pair_id: str
    altname: str
    wsname: str


def asset_ids(code: str) -> tuple[str, str]:
    """Kraken ``(asset id, altname)`` of a unified currency code: ``BTC -> (XXBT, XBT)``."""
    return _ASSET_IDS.get(code, (code, code))


def _pair_for(symbol: str) -> _Pair:
    base, quote = symbol.split("/")
    (base_id, base_alt), (quote_id, quote_alt) = asset_ids(base), asset_ids(quote)
    legacy = base_id != base_alt and quote_id != quote_alt
    pair_id = base_id + quote_id if legacy else base_alt + quote_alt
    return _Pair(symbol, base, quote, pair_id, base_alt + quote_alt, f"{base_alt}/{quote_alt}")


def _fmt(value: float) -> str:
    return repr(float(value))


def _vol(value: float) -> str:
    return f"{value:.8f}"


class KrakenServer(LoopbackHTTPServer):
    """Threaded loopback server speaking Kraken's REST API; see the module docstring.

    Parameters
    ----------
    ohlcv : canonical OHLCV frame served by ``OHLC`` (``attrs['timeframe']`` or ``timeframe``).
    symbol : unified symbol of ``ohlcv`` and of the tradable pair (more via ``add_pair``).
    timeframe : bar length of ``ohlcv`` (``"1h"``), default ``ohlcv.attrs['timeframe']``.
    page_size : maximum OHLC rows per response (Kraken: 720).
    ohlc_rule : ``"kraken"`` (the 720 most recent entries only, Kraken's documented rule) or
        ``"page_forward"`` (pages forward from ``since``: exchanges with deep OHLC history).
    trades_page_size : maximum trades per ``Trades`` response (Kraken: 1000).
    api_key, secret : the one valid credential pair.
    balances : starting balances by unified code, e.g. ``{"USD": 10_000}``.
    fee_rate : fee charged on fills, fraction of the quote value.
    extra_slippage_bps : market orders fill this many basis points worse than the price
        (buys higher, sells lower): a venue that slips more than the backtest models.
    """

    def __init__(self, ohlcv: pd.DataFrame | None = None, *, symbol: str = "BTC/USD",
                 timeframe: str | None = None, page_size: int = 720,
                 api_key: str = DEFAULT_API_KEY, secret: str = DEFAULT_SECRET,
                 balances: dict[str, float] | None = None, fee_rate: float = 0.0,
                 ohlc_rule: str = "kraken", trades_page_size: int = 1000,
                 extra_slippage_bps: float = 0.0) -> None:
        if ohlc_rule not in _OHLC_RULES:
            raise ValueError(f"ohlc_rule must be one of {_OHLC_RULES}, got {ohlc_rule!r}")
        self.page_size = page_size
        self.ohlc_rule = ohlc_rule
        self.trades_page_size = trades_page_size
        self.now: float | None = None  # the server clock (epoch seconds); None: see clock()
        self.api_key = api_key
        self.secret = secret
        self.fee_rate = fee_rate
        self.extra_slippage_bps = extra_slippage_bps
        self.fault_delay = 1.0
        self.latency: dict[str, float] = {}  # endpoint -> seconds each answer takes (a far exchange)
        self.requests: list[RecordedRequest] = []
        self.errors: list[Exception] = []  # unexpected exceptions inside handlers (server bugs)
        self.orders: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._pairs: dict[str, _Pair] = {}
        self._ohlc: dict[tuple[str, int], tuple[np.ndarray, list[list]]] = {}
        self._trades: dict[str, tuple[np.ndarray, list[list]]] = {}
        self._prices: dict[str, float] = {}
        self._balances: dict[str, float] = defaultdict(float, balances or {})
        self._holds: dict[str, float] = defaultdict(float)
        self._last_nonce: dict[str, int] = {}
        self._txid_counter = itertools.count(1)
        self.add_pair(symbol)
        if ohlcv is not None:
            self.set_ohlcv(ohlcv, symbol=symbol, timeframe=timeframe)

    # ------------------------------------------------------------------ lifecycle
    def _handler_class(self) -> type:
        return type("_Handler", (_Handler,), {"kraken": self})

    # ------------------------------------------------------------------ configuration
    def add_pair(self, symbol: str) -> None:
        with self._lock:
            self._pairs[symbol] = _pair_for(symbol)

    def set_ohlcv(self, df: pd.DataFrame, *, symbol: str = "BTC/USD",
                  timeframe: str | None = None) -> None:
        """Serve ``df`` (canonical frame) for ``symbol``; replaces what was served before."""
        timeframe = timeframe or df.attrs.get("timeframe")
        if timeframe is None:
            raise ValueError("set_ohlcv needs a timeframe (argument or df.attrs['timeframe'])")
        minutes = int(pd.Timedelta(timeframe).total_seconds() // 60)
        if minutes not in _INTERVALS:
            raise ValueError(f"Kraken has no {timeframe} interval")
        times = df.index.as_unit("s").asi8.astype(np.int64)
        cols = [df[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")]
        rows = [[int(t), _fmt(o), _fmt(h), _fmt(lo), _fmt(c), _fmt((h + lo + c) / 3.0), _fmt(v), 1]
                for t, o, h, lo, c, v in zip(times, *cols, strict=True)]
        with self._lock:
            self.add_pair(symbol)
            self._ohlc[(symbol, minutes)] = (times, rows)
            if len(df):
                self._prices.setdefault(symbol, float(cols[3][-1]))

    def set_trades(self, trades: pd.DataFrame, *, symbol: str = "BTC/USD") -> None:
        """Serve ``trades`` for ``symbol`` through ``Trades``; replaces what was served before.

        ``trades`` has columns ``time_ns`` (int64 epoch ns; Kraken sends 100 us resolution, so
        multiples of 100_000 ns are sent exactly), ``price``, ``volume``, ``side`` (``"b"`` /
        ``"s"``), ``trade_id`` (int, increasing) and optionally ``ordertype`` (``"l"``/``"m"``).
        """
        frame = trades.sort_values(["time_ns", "trade_id"], kind="stable")
        times = frame["time_ns"].to_numpy(np.int64)
        types = frame["ordertype"] if "ordertype" in frame else ["l"] * len(frame)
        rows = [[_fmt(p), _vol(v), round(int(t) / 1e9, 4), str(side), str(kind), "", int(i)]
                for t, p, v, side, kind, i in zip(times, frame["price"], frame["volume"],
                                                  frame["side"], types, frame["trade_id"],
                                                  strict=True)]
        with self._lock:
            self.add_pair(symbol)
            self._trades[symbol] = (times, rows)

    def clock(self) -> float:
        """The server's "now" in epoch seconds: ``self.now``, else the middle of the latest
        served OHLC bar (that bar is then the one still forming), else the wall clock."""
        with self._lock:
            if self.now is not None:
                return float(self.now)
            latest = [float(times[-1]) + minutes * 30.0
                      for (_, minutes), (times, _) in self._ohlc.items() if len(times)]
            return max(latest) if latest else time.time()

    def set_price(self, symbol: str, price: float) -> None:
        """Set the market price: market orders fill here; crossed resting limit orders fill."""
        with self._lock:
            self._prices[symbol] = float(price)
            for txid, order in list(self.orders.items()):
                if order["status"] != "open" or order["_symbol"] != symbol:
                    continue
                if order["descr"]["ordertype"] in _CONDITIONAL:
                    self._trigger_stop(txid, order)
                    continue
                limit = float(order["descr"]["price"])
                side = order["descr"]["type"]
                if (side == "buy" and price <= limit) or (side == "sell" and price >= limit):
                    self._release_hold(order)
                    self._fill(txid, order, limit)

    def walk_bar(self, symbol: str, open_: float, high: float, low: float,
                 close: float) -> list[str]:
        """Replay one bar of ``symbol`` against the resting orders; returns the txids it filled.

        The price opens at ``open_`` (a trigger or limit already passed fills there); then each
        resting stop-loss, then take-profit, whose trigger lies in ``low..high`` fills at its
        trigger; then the price walks the rest of the bar's path (low then high for a rising
        bar, high then low for a falling one) filling limits, and ends at ``close``.
        """
        with self._lock:
            before = {t for t, o in self.orders.items() if o["status"] == "closed"}
            self.set_price(symbol, open_)
            for kind in _CONDITIONAL:
                for txid, order in list(self.orders.items()):
                    if (order["status"] == "open" and order["_symbol"] == symbol
                            and order["descr"]["ordertype"] == kind
                            and low <= float(order["descr"]["price"]) <= high):
                        self._trigger_stop(txid, order, float(order["descr"]["price"]))
            for price in ((low, high, close) if close >= open_ else (high, low, close)):
                self.set_price(symbol, price)
            return [t for t, o in self.orders.items() if o["status"] == "closed"
                    and t not in before]

    def note_closed(self, fill_bar: dict[str, int], bar: int) -> None:
        """Record ``bar`` in ``fill_bar`` (txid -> bar index) for every closed order that has
        no bar there yet: the bar a replay hands over while the order closed."""
        for txid, order in self.orders.items():
            if order["status"] == "closed":
                fill_bar.setdefault(txid, bar)

    def set_balance(self, code: str, amount: float) -> None:
        with self._lock:
            self._balances[code] = float(amount)

    def balance(self, code: str) -> float:
        with self._lock:
            return self._balances[code]

    def inject_fault(self, endpoint: str, kind: str, *, times: int = 1, status: int | None = None,
                     delay: float | None = None, after: int = 0) -> None:
        """Queue ``times`` faults of ``kind`` for requests to ``endpoint``, after ``after``
        requests (counted from the end of the current queue) are answered normally."""
        if kind not in _FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {_FAULT_KINDS}, got {kind!r}")
        with self._lock:
            for _ in range(after):
                self._faults[endpoint].append(Fault("pass"))
            for _ in range(times):
                self._faults[endpoint].append(Fault(kind, status, delay))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self, endpoint: str) -> int:
        with self._lock:
            return len(self._faults[endpoint])

    def requests_for(self, endpoint: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.endpoint == endpoint]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def duplicate_client_ids(self) -> dict[str, int]:
        """Client order ids (``cl_ord_id`` or ``userref``) used by more than one order."""
        with self._lock:
            counts: dict[str, int] = defaultdict(int)
            for order in self.orders.values():
                key = order.get("cl_ord_id") or order.get("userref")
                if key is not None:
                    counts[str(key)] += 1
            return {k: n for k, n in counts.items() if n > 1}

    # ------------------------------------------------------------------ dispatch
    def _next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(endpoint)
            fault = queue.popleft() if queue else None
            return None if fault is not None and fault.kind == "pass" else fault

    def _record(self, method: str, endpoint: str, path: str, params: dict, fault: Fault | None):
        with self._lock:
            self.requests.append(RecordedRequest(method, endpoint, path, dict(params),
                                                 fault.kind if fault else None))

    def _pair_by_id(self, pair_id: str) -> _Pair:
        for pair in self._pairs.values():
            if pair_id in (pair.pair_id, pair.altname, pair.wsname, pair.symbol):
                return pair
        raise KrakenApiError("EQuery:Unknown asset pair")

    def handle_public(self, endpoint: str, params: dict[str, str]) -> Any:
        handler = getattr(self, f"_public_{endpoint}", None)
        if handler is None:
            raise KrakenApiError("EGeneral:Unknown method")
        with self._lock:
            return handler(params)

    def handle_private(self, endpoint: str, path: str, headers: Any, body: str) -> Any:
        handler = getattr(self, f"_private_{endpoint}", None)
        if handler is None:
            raise KrakenApiError("EGeneral:Unknown method")
        params = dict(parse_qsl(body, keep_blank_values=True))
        with self._lock:
            self._authenticate(path, headers, body, params)
            return handler(params)

    def _authenticate(self, path: str, headers: Any, body: str, params: dict[str, str]) -> None:
        key = headers.get("API-Key")
        if key != self.api_key:
            raise KrakenApiError("EAPI:Invalid key")
        nonce = params.get("nonce", "")
        if not nonce.isdigit():
            raise KrakenApiError("EAPI:Invalid nonce")
        message = path.encode() + hashlib.sha256((nonce + body).encode()).digest()
        expected = base64.b64encode(
            hmac.new(base64.b64decode(self.secret), message, hashlib.sha512).digest()).decode()
        if not hmac.compare_digest(expected, headers.get("API-Sign", "")):
            raise KrakenApiError("EAPI:Invalid signature")
        if int(nonce) <= self._last_nonce.get(key, 0):
            raise KrakenApiError("EAPI:Invalid nonce")
        self._last_nonce[key] = int(nonce)

    # ------------------------------------------------------------------ public endpoints
    def _public_Time(self, params: dict) -> dict:
        now = self.clock()
        return {"unixtime": int(now), "rfc1123": formatdate(now, usegmt=True)}

    def _public_Assets(self, params: dict) -> dict:
        codes = {c for p in self._pairs.values() for c in (p.base, p.quote)}
        out = {}
        for code in sorted(codes):
            asset_id, alt = asset_ids(code)
            out[asset_id] = {"aclass": "currency", "altname": alt, "decimals": 10,
                             "display_decimals": 5, "status": "enabled"}
        return out

    def _public_AssetPairs(self, params: dict) -> dict:
        out = {}
        for pair in self._pairs.values():
            out[pair.pair_id] = {
                "altname": pair.altname, "wsname": pair.wsname, "aclass_base": "currency",
                "base": asset_ids(pair.base)[0], "aclass_quote": "currency",
                "quote": asset_ids(pair.quote)[0], "lot": "unit", "cost_decimals": 5,
                "pair_decimals": 1, "lot_decimals": 8, "lot_multiplier": 1,
                "leverage_buy": [], "leverage_sell": [],
                "fees": [[0, 0.26], [50000, 0.24]], "fees_maker": [[0, 0.16], [50000, 0.14]],
                "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40,
                "ordermin": "0.0001", "costmin": "0.5", "tick_size": "0.1", "status": "online",
            }
        return out

    def _public_Ticker(self, params: dict) -> dict:
        out = {}
        for pair_id in params.get("pair", "").split(","):
            pair = self._pair_by_id(pair_id)
            price = self._prices.get(pair.symbol)
            if price is None:
                raise KrakenApiError("EGeneral:Internal error")
            p = _fmt(price)
            out[pair.pair_id] = {"a": [p, "1", "1.000"], "b": [p, "1", "1.000"], "c": [p, "0.1"],
                                 "v": ["1.0", "1.0"], "p": [p, p], "t": [1, 1], "l": [p, p],
                                 "h": [p, p], "o": p}
        return out

    def _public_OHLC(self, params: dict) -> dict:
        pair = self._pair_by_id(params.get("pair", ""))
        interval = int(params.get("interval", "1"))
        served = self._ohlc.get((pair.symbol, interval))
        if served is None:
            raise KrakenApiError("EGeneral:Invalid arguments")
        times, rows = served
        since = int(float(params.get("since", "0")))
        committed, forming = self._ohlc_up_to_now(times, rows, interval * 60)
        if self.ohlc_rule == "kraken":
            # Kraken: the most recent entries only, whatever `since` says; then `since` filters.
            window = (committed + [forming])[-self.page_size:]
            page = [row for row in window[:-1] if row[0] > since] + [forming]
        else:
            start = bisect_right([row[0] for row in committed], since)  # since is exclusive
            page = committed[start:start + self.page_size - 1] + [forming]
        last = page[-2][0] if len(page) > 1 else since
        return {pair.pair_id: page, "last": last}

    def _ohlc_up_to_now(self, times: np.ndarray, rows: list[list],
                        seconds: int) -> tuple[list[list], list]:
        """Committed rows (closed by the server clock) and the forming candle."""
        now = self.clock()
        open_now = int(now // seconds * seconds)
        n_started = bisect_right(times, now)
        committed = [row for row in rows[:n_started] if row[0] < open_now]
        if n_started and rows[n_started - 1][0] == open_now:
            return committed, rows[n_started - 1]
        # No served row holds now: Kraken still sends the current candle, flat at the last price.
        last_close = rows[n_started - 1][4] if n_started else "0.0"
        flat = [open_now, last_close, last_close, last_close, last_close, last_close,
                "0.00000000", 0]
        return committed, flat

    def _public_Trades(self, params: dict) -> dict:
        pair = self._pair_by_id(params.get("pair", ""))
        times, rows = self._trades.get(pair.symbol, (np.zeros(0, np.int64), []))
        visible = bisect_right(times, int(self.clock() * 1e9))
        raw_since = params.get("since")
        count = min(int(params.get("count", self.trades_page_size)), self.trades_page_size)
        if raw_since is None:  # no cursor: the most recent trades
            start = max(visible - count, 0)
        else:
            since = int(raw_since)
            since_ns = since * 1_000_000_000 if since < 10**12 else since
            start = bisect_right(times, since_ns)
        stop = min(start + count, visible)
        page = rows[start:stop]
        last = str(int(times[stop - 1])) if stop > start else str(raw_since or 0)
        return {pair.pair_id: page, "last": last}

    # ------------------------------------------------------------------ private endpoints
    def _private_Balance(self, params: dict) -> dict:
        return {asset_ids(c)[0]: f"{v:.10f}" for c, v in self._balances.items()}

    def _private_BalanceEx(self, params: dict) -> dict:
        return {asset_ids(c)[0]: {"balance": f"{v:.10f}", "hold_trade": f"{self._holds[c]:.10f}"}
                for c, v in self._balances.items()}

    def _private_AddOrder(self, params: dict) -> dict:
        pair = self._pair_by_id(params.get("pair", ""))
        side, ordertype = params.get("type"), params.get("ordertype")
        if side not in ("buy", "sell") or ordertype not in ("market", "limit", *_CONDITIONAL):
            raise KrakenApiError("EGeneral:Invalid arguments")
        try:
            volume = float(params["volume"])
            limit = float(params["price"]) if ordertype == "limit" else None
            # stop-loss / take-profit: rests until the price reaches the trigger, then fills as
            # a market order
            trigger = float(params["price"]) if ordertype in _CONDITIONAL else None
        except (KeyError, ValueError):
            raise KrakenApiError("EGeneral:Invalid arguments:volume") from None
        if volume <= 0:
            raise KrakenApiError("EGeneral:Invalid arguments:volume")
        if ordertype == "market" and pair.symbol not in self._prices:
            raise KrakenApiError("EService:Unavailable")
        userref = params.get("userref")
        if userref and not userref.lstrip("-").isdigit():
            raise KrakenApiError("EGeneral:Invalid arguments:userref")
        if trigger is not None:
            price = trigger
            words = ordertype.replace("-", " ")
            descr = f"{side} {volume:.8f} {pair.altname} @ {words} {_fmt(trigger)}"
        else:
            price = limit if limit is not None else self._prices[pair.symbol] * (
                1.0 + (1 if side == "buy" else -1) * self.extra_slippage_bps / 1e4)
            descr = f"{side} {volume:.8f} {pair.altname} @ " + (
                f"limit {_fmt(limit)}" if limit is not None else "market")
        if params.get("validate") in ("true", "True", "1"):  # Kraken's dry run: check only
            return {"descr": {"order": descr}}
        self._check_funds(pair, side, volume, price)
        txid = self._new_txid()
        order = {
            "refid": None, "userref": int(userref) if userref else None,
            "cl_ord_id": params.get("cl_ord_id"), "status": "open", "opentm": time.time(),
            "starttm": 0, "expiretm": 0,
            "descr": {"pair": pair.altname, "type": side, "ordertype": ordertype,
                      "price": _fmt(limit if trigger is None else trigger)
                      if (limit, trigger) != (None, None) else "0", "price2": "0",
                      "leverage": "none", "order": descr, "close": ""},
            "vol": _vol(volume), "vol_exec": _vol(0.0), "cost": "0.00000", "fee": "0.00000",
            "price": "0.00000", "stopprice": "0.00000", "limitprice": "0.00000", "misc": "",
            "oflags": "fciq", "trades": [], "_symbol": pair.symbol,
        }
        self.orders[txid] = order
        if ordertype == "market":
            self._fill(txid, order, price)
        elif ordertype == "limit":
            self._hold(order, pair, side, volume, price)
        else:
            self._trigger_stop(txid, order)  # the market may already be past the trigger
        return {"descr": {"order": descr}, "txid": [txid]}

    def _trigger_stop(self, txid: str, order: dict, at: float | None = None) -> None:
        """A resting stop-loss or take-profit whose trigger the price has reached fills at the
        market price (``at`` when the price passed through the trigger inside a bar). A sell
        stop-loss triggers at or below its trigger, a sell take-profit at or above (buys the
        other way round); without the funds by then Kraken cancels it."""
        price = self._prices.get(order["_symbol"]) if at is None else at
        trigger = float(order["descr"]["price"])
        falls = (order["descr"]["type"] == "sell") == (order["descr"]["ordertype"] == "stop-loss")
        if price is None or (falls and price > trigger) or (not falls and price < trigger):
            return
        side = order["descr"]["type"]
        try:
            self._check_funds(self._pairs[order["_symbol"]], side, float(order["vol"]), price)
        except KrakenApiError:
            order.update(status="canceled", closetm=time.time(), reason="Insufficient funds")
            return
        self._fill(txid, order, price)

    def _check_funds(self, pair: _Pair, side: str, volume: float, price: float) -> None:
        if side == "buy":
            need, code = volume * price * (1.0 + self.fee_rate), pair.quote
        else:
            need, code = volume, pair.base
        if self._balances[code] - self._holds[code] < need - 1e-12:
            raise KrakenApiError("EOrder:Insufficient funds")

    def _hold(self, order: dict, pair: _Pair, side: str, volume: float, price: float) -> None:
        code = pair.quote if side == "buy" else pair.base
        amount = volume * price * (1.0 + self.fee_rate) if side == "buy" else volume
        order["_hold"] = (code, amount)
        self._holds[code] += amount

    def _release_hold(self, order: dict) -> None:
        code, amount = order.pop("_hold", (None, 0.0))
        if code is not None:
            self._holds[code] -= amount

    def _fill(self, txid: str, order: dict, price: float) -> None:
        pair = self._pairs[order["_symbol"]]
        volume = float(order["vol"])
        cost = volume * price
        fee = cost * self.fee_rate
        if order["descr"]["type"] == "buy":
            self._balances[pair.quote] -= cost + fee
            self._balances[pair.base] += volume
        else:
            self._balances[pair.base] -= volume
            self._balances[pair.quote] += cost - fee
        order.update(status="closed", closetm=time.time(), vol_exec=_vol(volume),
                     cost=_fmt(cost), fee=_fmt(fee), price=_fmt(price), reason=None,
                     trades=[f"T{txid[1:]}"])

    def _new_txid(self) -> str:
        n = next(self._txid_counter)
        raw = hashlib.sha1(f"{id(self)}-{n}".encode()).hexdigest().upper()
        return f"O{raw[:5]}-{raw[5:10]}-{raw[10:16]}"

    @staticmethod
    def _public_view(order: dict, with_trades: bool = True) -> dict:
        view = {k: v for k, v in order.items() if not k.startswith("_")}
        if not with_trades:
            view.pop("trades", None)
        return view

    def _select(self, params: dict, status: set[str]) -> dict:
        userref, cl_ord_id = params.get("userref"), params.get("cl_ord_id")
        out = {}
        for txid, order in self.orders.items():
            if order["status"] not in status:
                continue
            if userref and str(order.get("userref")) != userref:
                continue
            if cl_ord_id and order.get("cl_ord_id") != cl_ord_id:
                continue
            out[txid] = self._public_view(order, params.get("trades") in ("true", "True"))
        return out

    def _private_OpenOrders(self, params: dict) -> dict:
        return {"open": self._select(params, {"open"})}

    def _private_ClosedOrders(self, params: dict) -> dict:
        closed = self._select(params, {"closed", "canceled", "expired"})
        return {"closed": closed, "count": len(closed)}

    def _private_QueryOrders(self, params: dict) -> dict:
        wanted = [t for t in params.get("txid", "").split(",") if t]
        if not wanted:
            return self._select(params, {"open", "closed", "canceled", "expired"})
        out = {}
        for txid in wanted:
            if txid not in self.orders:
                raise KrakenApiError("EOrder:Invalid order")
            out[txid] = self._public_view(self.orders[txid],
                                          params.get("trades") in ("true", "True"))
        return out

    def _private_CancelOrder(self, params: dict) -> dict:
        key = params.get("cl_ord_id") or params.get("txid", "")
        matches = [t for t, o in self.orders.items() if o["status"] == "open" and key in (
            t, o.get("cl_ord_id"), str(o.get("userref")))]
        if not matches:
            raise KrakenApiError("EOrder:Unknown order")
        for txid in matches:
            order = self.orders[txid]
            self._release_hold(order)
            order.update(status="canceled", closetm=time.time(), reason="User requested")
        return {"count": len(matches), "pending": False}


class _Handler(LoopbackHandler):
    kraken: KrakenServer

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        if len(segments) != 3 or segments[0] != "0" or segments[1] not in ("public", "private"):
            self._send(404, b"not found", "text/plain")
            return
        api, endpoint = segments[1], segments[2]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params = dict(parse_qsl(parts.query if api == "public" else body, keep_blank_values=True))
        server = self.kraken
        if server.latency.get(endpoint):
            time.sleep(server.latency[endpoint])
        fault = server._next_fault(endpoint)
        server._record(method, endpoint, parts.path, params, fault)
        if self._fault_first(fault, server.fault_delay,
                             b'{"error":[],"result":{"XXBTZUSD":[[1700000000,"1.0",'):
            return
        if (api == "public" and method != "GET") or (api == "private" and method != "POST"):
            self._send(405, b"method not allowed", "text/plain")
            return
        try:
            if api == "public":
                result = server.handle_public(endpoint, params)
            else:
                result = server.handle_private(endpoint, parts.path, self.headers, body)
            payload = {"error": [], "result": result}
        except KrakenApiError as exc:
            payload = {"error": [str(exc)]}
        except Exception as exc:  # a server bug must not look like a network fault to the client
            server.errors.append(exc)
            payload = {"error": ["EGeneral:Internal error"]}
        if fault is not None and fault.kind == "lost":
            self._drop(fault, server.fault_delay)
            return
        self._send(200, json.dumps(payload).encode(), "application/json")


@pytest.fixture(name="kraken_server")
def kraken_server_fixture():
    """pytest fixture: a started, empty :class:`KrakenServer` (add data with ``set_ohlcv``).

    Use it by importing it into a test module (or a conftest): ``from
    tests.support.kraken_server import kraken_server_fixture  # noqa: F401``.
    """
    with KrakenServer() as server:
        yield server
        assert not server.errors, f"loopback Kraken server raised: {server.errors!r}"


def make_ccxt_kraken(server: KrakenServer, api_key: str | None = None, secret: str | None = None,
                     **config: Any):
    """A real ``ccxt.kraken`` whose public and private API URLs point at ``server``.

    ``api_key``/``secret`` default to the server's valid pair; ``config`` overrides ccxt options
    (defaults: ``enableRateLimit=True`` with ``rateLimit=1`` ms so tests stay fast, and
    ``timeout=2000`` ms).
    """
    import ccxt

    options = {"enableRateLimit": True, "rateLimit": 1, "timeout": 2000,
               "apiKey": api_key if api_key is not None else server.api_key,
               "secret": secret if secret is not None else server.secret}
    options.update(config)
    exchange = ccxt.kraken(options)
    exchange.urls["api"] = dict(exchange.urls["api"], public=server.url, private=server.url)
    return exchange


__all__ = ["DEFAULT_API_KEY", "DEFAULT_SECRET", "Fault", "KrakenApiError", "KrakenServer",
           "RecordedRequest", "asset_ids", "kraken_server_fixture", "make_ccxt_kraken"]
