"""ccxt fetch + cache against the loopback Kraken server: real ccxt request building and parsing.

"Now" is frozen (``fetch._now_ms``) at a fixed instant inside the last served bar, so which candle
is still open never depends on the wall clock; the server's clock (``Time``) is inside that bar too.

The paging, retry and cache tests need deep history (2000 bars), which Kraken's OHLC endpoint does
not serve (its 720 most recent candles only): their server pages forward
(``ohlc_rule="page_forward"``), as exchanges with deep OHLC history do, still in Kraken's wire
format with the forming candle as the last entry. Kraken's own rule is tested in
``tests/data/test_history.py``.
"""

from __future__ import annotations

import base64
import os

import ccxt
import numpy as np
import pandas as pd
import pytest

from quantlib.data import fetch, load, synthetic_ohlcv
from quantlib.data.cache import cache_path, read_cache
from quantlib.errors import DataError, ExchangeError, ParameterError
from tests.support.kraken_server import (  # noqa: F401  (the kraken_server fixture)
    KrakenServer,
    kraken_server_fixture,
    make_ccxt_kraken,
)
from tests.support.ready import wait_until

START = pd.Timestamp("2024-01-01", tz="UTC")
HOUR_MS = 3_600_000
START_MS = START.value // 1_000_000
N_CLOSED = 2000


def _market(n_closed: int = N_CLOSED, seed: int = 3) -> pd.DataFrame:
    """``n_closed`` closed hourly bars from START plus one still-open bar (the last row)."""
    df = synthetic_ohlcv(n_closed + 1, "1h", seed=seed, start=START).ohlcv
    df.attrs["timeframe"] = "1h"
    return df


def _freeze_now(monkeypatch, open_bar: pd.Timestamp, minutes_in: int = 17) -> int:
    now_ms = open_bar.value // 1_000_000 + minutes_in * 60_000
    monkeypatch.setattr(fetch, "_now_ms", lambda: now_ms)
    return now_ms


def _ohlc_since(server: KrakenServer) -> list[int]:
    return [int(r.params["since"]) for r in server.requests_for("OHLC")]


def _same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == ["open", "high", "low", "close", "volume"]
    assert got.index.equals(want.index)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())  # bit for bit


@pytest.fixture
def market():
    return _market()


@pytest.fixture
def server(market):
    with KrakenServer(market, page_size=720, ohlc_rule="page_forward",
                      balances={"USD": 50_000.0}) as srv:
        srv.fault_delay = 4.0  # outlasts the client's 2 s timeout
        yield srv
        assert srv.errors == []


@pytest.fixture
def frozen(monkeypatch, market):
    return _freeze_now(monkeypatch, market.index[-1])


@pytest.fixture
def backoffs(monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr(fetch, "_sleep", delays.append)
    return delays


def test_paging_returns_served_rows_exactly(server, market, frozen, tmp_path):
    exchange = make_ccxt_kraken(server)
    df = fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since="2024-01-01", cache_dir=tmp_path,
                           progress=False)
    # 2000 closed bars in pages of 719 closed + the forming candle (dropped): 719 + 719 + 562
    # = 3 requests.
    assert len(server.requests_for("OHLC")) == 3
    # ccxt asks Kraken for `since - 1 bar` (Kraken's since is exclusive); each next page starts
    # one bar after the last closed bar received.
    first_s = START_MS // 1000
    assert _ohlc_since(server) == [first_s - 3600, first_s + 718 * 3600, first_s + 1437 * 3600]
    _same_rows(df, market.iloc[:-1])
    assert df.attrs == {"source": "ccxt", "exchange": "kraken", "symbol": "BTC/USD",
                        "timeframe": "1h", "source_string": "kraken:BTC/USD:1h:2024-01-01"}
    assert df.index.name == "timestamp" and str(df.index.tz) == "UTC"


def test_cache_resume_fetches_only_newer_bars(server, market, frozen, tmp_path):
    exchange = make_ccxt_kraken(server)
    t1 = START + pd.Timedelta(hours=1000)
    first = fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START, until=t1,
                              cache_dir=tmp_path, progress=False)
    _same_rows(first, market.iloc[:1000])
    path = cache_path(tmp_path, "kraken", "BTC/USD", "1h")
    assert path.name == "BTC-USD_1h.parquet" and path.parent.name == "kraken"
    server.clear_requests()

    second = fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START, cache_dir=tmp_path,
                               progress=False)
    # Only bars from t1 on are requested: 1000 new closed bars -> 2 pages.
    t1_s = t1.value // 1_000_000_000
    assert _ohlc_since(server) == [t1_s - 3600, t1_s + 718 * 3600]
    _same_rows(second, market.iloc[:-1])
    _same_rows(read_cache(path), market.iloc[:-1])

    # Fully covered now: a third call (and load()) make no request at all.
    server.clear_requests()
    third = fetch.load_exchange("kraken", "BTC/USD", "1h", since="2024-01-10",
                                until="2024-02-01", cache_dir=tmp_path)
    assert server.requests == []
    _same_rows(third, market.loc["2024-01-10":"2024-01-31 23:00"])


def test_load_source_string_served_from_cache(server, market, frozen, tmp_path, monkeypatch):
    fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=START, cache_dir=tmp_path,
                      progress=False)
    server.clear_requests()
    monkeypatch.setenv("QUANTLIB_DATA_DIR", str(tmp_path))
    df = load("kraken:BTC/USD:1h:2024-01-05:2024-01-07")
    assert server.requests == []
    _same_rows(df, market.loc["2024-01-05":"2024-01-06 23:00"])
    assert df.attrs["source_string"] == "kraken:BTC/USD:1h:2024-01-05:2024-01-07"
    assert df.attrs["source"] == "ccxt"


def test_earlier_since_fetches_the_head_only(server, market, frozen, tmp_path):
    exchange = make_ccxt_kraken(server)
    fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START + pd.Timedelta(hours=500),
                      until=START + pd.Timedelta(hours=600), cache_dir=tmp_path, progress=False)
    server.clear_requests()
    df = fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START,
                           until=START + pd.Timedelta(hours=600), cache_dir=tmp_path,
                           progress=False)
    assert _ohlc_since(server) == [START_MS // 1000 - 3600]  # 500 head bars: one page
    _same_rows(df, market.iloc[:600])


def test_open_candle_never_stored(server, market, monkeypatch, tmp_path):
    open_bar = market.index[-1]
    _freeze_now(monkeypatch, open_bar, minutes_in=30)
    exchange = make_ccxt_kraken(server)
    df = fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START, cache_dir=tmp_path,
                           progress=False)
    path = cache_path(tmp_path, "kraken", "BTC/USD", "1h")
    cached = read_cache(path)
    assert df.index[-1] == cached.index[-1] == open_bar - pd.Timedelta(hours=1)
    assert open_bar not in cached.index

    # An hour later the bar has closed with different (final) values; the next call stores those.
    final = market.copy()
    final.iloc[-1, final.columns.get_loc("close")] *= 1.01
    final.iloc[-1, final.columns.get_loc("high")] = final.iloc[-1][["open", "close", "high"]].max()
    final = pd.concat([final, _market(N_CLOSED + 1, seed=3).iloc[[-1]]])
    server.set_ohlcv(final, symbol="BTC/USD", timeframe="1h")
    _freeze_now(monkeypatch, final.index[-1], minutes_in=5)
    server.clear_requests()
    df2 = fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START, cache_dir=tmp_path,
                            progress=False)
    assert _ohlc_since(server) == [open_bar.value // 1_000_000_000 - 3600]
    assert df2.loc[open_bar, "close"] == final.loc[open_bar, "close"] != market.iloc[-1]["close"]
    assert read_cache(path).index[-1] == open_bar


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_http_error_then_success(server, market, frozen, backoffs, tmp_path, status):
    server.inject_fault("OHLC", "http", status=status)
    df = fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=START,
                           cache_dir=tmp_path, progress=False)
    faults = [r.fault for r in server.requests_for("OHLC")]
    assert faults == ["http", None, None, None]
    assert backoffs == [0.5]
    _same_rows(df, market.iloc[:-1])


def test_timeout_then_success(server, market, frozen, backoffs, tmp_path):
    server.inject_fault("OHLC", "timeout", delay=4.0)
    exchange = make_ccxt_kraken(server, timeout=2000)
    df = fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START, cache_dir=tmp_path,
                           progress=False)
    assert [r.fault for r in server.requests_for("OHLC")][:2] == ["timeout", None]
    assert len(server.requests_for("OHLC")) == 4 and backoffs == [0.5]
    _same_rows(df, market.iloc[:-1])


def test_backoff_is_exponential_and_bounded(server, frozen, backoffs, tmp_path):
    server.inject_fault("OHLC", "http", status=503, times=8)
    with pytest.raises(ExchangeError):
        fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=START,
                          cache_dir=tmp_path, progress=False, max_retries=7, backoff_base=1.0)
    assert backoffs == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_retries_exhausted_names_exchange_and_symbol(server, frozen, backoffs, tmp_path):
    server.inject_fault("OHLC", "http", status=503, times=10)
    with pytest.raises(ExchangeError) as info:
        fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=START,
                          cache_dir=tmp_path, progress=False, max_retries=2)
    message = str(info.value)
    assert "kraken" in message and "BTC/USD" in message and "1h" in message
    assert "3 attempts" in message and "ExchangeNotAvailable" in message
    assert len(server.requests_for("OHLC")) == 3
    assert not cache_path(tmp_path, "kraken", "BTC/USD", "1h").exists()


def test_unknown_symbol_is_a_clear_error(server, frozen, tmp_path):
    with pytest.raises(ExchangeError, match="unknown symbol 'DOGE/USD'"):
        fetch.fetch_ohlcv(make_ccxt_kraken(server), "DOGE/USD", "1h", since=START,
                          cache_dir=tmp_path, progress=False)


@pytest.mark.parametrize("bad_page", [0, 1])
def test_malformed_json_leaves_cache_untouched(server, market, frozen, backoffs, tmp_path,
                                               bad_page):
    exchange = make_ccxt_kraken(server)
    fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START,
                      until=START + pd.Timedelta(hours=500), cache_dir=tmp_path, progress=False)
    path = cache_path(tmp_path, "kraken", "BTC/USD", "1h")
    before = path.read_bytes()
    # bad_page=1: the first new page is fine, the second one is garbage.
    server.inject_fault("OHLC", "malformed", after=bad_page)
    server.clear_requests()
    with pytest.raises(ExchangeError, match="malformed response") as info:
        fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START, cache_dir=tmp_path,
                          progress=False)
    assert "kraken BTC/USD 1h" in str(info.value)
    assert [r.fault for r in server.requests_for("OHLC")] == [None] * bad_page + ["malformed"]
    assert path.read_bytes() == before
    assert backoffs == []  # garbage is not retried: it is reported


def test_invalid_candle_values_rejected_before_caching(server, market, frozen, tmp_path):
    bad = market.copy()
    bad.iloc[10, bad.columns.get_loc("high")] = bad.iloc[10]["low"] * 0.5  # high < low
    server.set_ohlcv(bad, symbol="BTC/USD", timeframe="1h")
    with pytest.raises(ExchangeError, match="invalid candles.*high"):
        fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=START,
                          cache_dir=tmp_path, progress=False)
    assert not cache_path(tmp_path, "kraken", "BTC/USD", "1h").exists()


def test_crash_mid_write_keeps_previous_cache(server, market, frozen, tmp_path, monkeypatch):
    exchange = make_ccxt_kraken(server)
    fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START,
                      until=START + pd.Timedelta(hours=300), cache_dir=tmp_path, progress=False)
    path = cache_path(tmp_path, "kraken", "BTC/USD", "1h")
    before = path.read_bytes()
    real_to_parquet = pd.DataFrame.to_parquet

    def crash_halfway(self, target, *args, **kwargs):
        real_to_parquet(self, target, *args, **kwargs)
        target.seek(len(before) // 3)
        target.truncate()  # half a file on disk, then the process "dies"
        raise KeyboardInterrupt("simulated crash mid-write")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash_halfway)
    with pytest.raises(KeyboardInterrupt):
        fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START, cache_dir=tmp_path,
                          progress=False)
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == [path.name]  # no temp file left behind
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real_to_parquet)
    _same_rows(read_cache(path), market.iloc[:300])

    # A crash after the temp file is complete but before the rename: same guarantee.
    def crash_before_rename(src, dst):
        raise KeyboardInterrupt("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash_before_rename)
    with pytest.raises(KeyboardInterrupt):
        fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START, cache_dir=tmp_path,
                          progress=False)
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == [path.name]


def test_rate_limit_is_honoured(server, frozen, tmp_path):
    exchange = make_ccxt_kraken(server, rateLimit=100)  # OHLC costs 1.2 -> >= 120 ms apart
    fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START, cache_dir=tmp_path, progress=False)
    times = [r.time for r in server.requests_for("OHLC")]
    assert len(times) == 3
    assert min(np.diff(times)) >= 0.11
    assert fetch._resolve_exchange("kraken").enableRateLimit is True


def test_bad_arguments(tmp_path):
    with pytest.raises(ParameterError, match="not a ccxt exchange id"):
        fetch.fetch_ohlcv("nosuchexchange", "BTC/USD", "1h", since=START, cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="since"):
        fetch.fetch_ohlcv("kraken", "BTC/USD", "1h", since="yesterday-ish", cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="must be after since"):
        fetch.fetch_ohlcv("kraken", "BTC/USD", "1h", since="2024-02-01", until="2024-01-01",
                          cache_dir=tmp_path)
    damaged = cache_path(tmp_path, "kraken", "BTC/USD", "1h")
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataError, match="BTC-USD_1h.parquet: the cache file is unreadable"):
        fetch.load_exchange("kraken", "BTC/USD", "1h", since="2024-01-01", cache_dir=tmp_path)


# --------------------------------------------------------------------------- private endpoints
def test_private_signature_accepted_with_right_secret(server):
    exchange = make_ccxt_kraken(server)
    assert exchange.fetch_balance()["USD"]["total"] == 50_000.0
    server.set_price("BTC/USD", 40_000.0)
    order = exchange.create_order("BTC/USD", "market", "buy", 0.5,
                                  params={"clientOrderId": "ql-abc-1"})
    assert order["id"] in server.orders
    fetched = exchange.fetch_order(order["id"])
    assert (fetched["status"], fetched["clientOrderId"], fetched["average"]) == (
        "closed", "ql-abc-1", 40_000.0)
    balance = exchange.fetch_balance()
    assert balance["BTC"]["total"] == 0.5 and balance["USD"]["total"] == 30_000.0
    add = server.requests_for("AddOrder")[0].params
    assert (add["pair"], add["type"], add["ordertype"], add["volume"], add["cl_ord_id"]) == (
        "XXBTZUSD", "buy", "market", "0.5", "ql-abc-1")


def test_private_signature_rejected_with_wrong_secret_or_key(server):
    wrong_secret = base64.b64encode(b"\x01" * 64).decode()
    with pytest.raises(ccxt.ExchangeError, match="EAPI:Invalid signature"):
        make_ccxt_kraken(server, secret=wrong_secret).fetch_balance()
    with pytest.raises(ccxt.ExchangeError, match="EAPI:Invalid signature"):
        make_ccxt_kraken(server, secret=wrong_secret).create_order("BTC/USD", "market", "buy", 0.1)
    with pytest.raises(ccxt.AuthenticationError, match="EAPI:Invalid key"):
        make_ccxt_kraken(server, api_key="someone-else").fetch_balance()
    assert server.orders == {}


def test_private_nonce_must_increase(server):
    exchange = make_ccxt_kraken(server)
    exchange.fetch_balance()
    stale = make_ccxt_kraken(server)
    stale.nonce = lambda: 1  # far below the nonce the server has seen for this key
    stale.incrementing_nonce = lambda: 1
    with pytest.raises(ccxt.InvalidNonce):
        stale.fetch_balance()


def test_add_order_validate_only_and_bad_userref(kraken_server):
    kraken_server.set_ohlcv(_market(10), symbol="BTC/USD", timeframe="1h")
    kraken_server.set_balance("USD", 1_000_000.0)
    exchange = make_ccxt_kraken(kraken_server)
    exchange.create_order("BTC/USD", "market", "buy", 1.0, params={"validate": True})
    assert kraken_server.orders == {} and kraken_server.balance("USD") == 1_000_000.0
    with pytest.raises(ccxt.ExchangeError, match="EGeneral:Invalid arguments:userref"):
        exchange.create_order("BTC/USD", "market", "buy", 1.0, params={"userref": "abc"})


def test_orders_limit_cancel_insufficient_funds_and_lost_response(server):
    exchange = make_ccxt_kraken(server, timeout=2000)
    server.set_price("BTC/USD", 40_000.0)
    limit = exchange.create_order("BTC/USD", "limit", "buy", 1.0, 35_000.0,
                                  params={"userref": 7})
    assert [o["id"] for o in exchange.fetch_open_orders()] == [limit["id"]]
    assert exchange.fetch_balance()["USD"]["used"] == 35_000.0
    with pytest.raises(ccxt.InsufficientFunds, match="EOrder:Insufficient funds"):
        exchange.create_order("BTC/USD", "market", "buy", 1.0)  # 40k > 15k free
    exchange.cancel_order(limit["id"])
    assert exchange.fetch_open_orders() == []
    assert exchange.fetch_closed_orders()[0]["status"] == "canceled"

    server.inject_fault("AddOrder", "lost", delay=4.0)
    with pytest.raises(ccxt.RequestTimeout):
        exchange.create_order("BTC/USD", "market", "buy", 0.1,
                              params={"clientOrderId": "ql-lost-1"})
    # The order exists although the client saw a timeout: reconcile by client order id.
    wait_until(lambda: any(o.get("cl_ord_id") == "ql-lost-1"
                           for o in list(server.orders.values())), 60,
               describe="the lost order at the exchange", ignore=(RuntimeError,))
    found = exchange.fetch_closed_orders(params={"clientOrderId": "ql-lost-1"})
    assert [o["clientOrderId"] for o in found] == ["ql-lost-1"]
    assert server.duplicate_client_ids() == {}
