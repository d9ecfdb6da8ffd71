"""Perp data through ccxt against the loopback Binance USD-M server: funding and mark, cached."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.data import fetch, load, load_perp, validate_funding
from quantlib.data.perp_fetch import funding_cache_path, mark_cache_path
from quantlib.data.synthetic import synthetic_funding, synthetic_mark, synthetic_ohlcv
from quantlib.errors import DataError, ExchangeError
from tests.support.binanceusdm_server import BinanceUsdmServer, make_ccxt_binanceusdm

SYMBOL = "BTC/USDT:USDT"
HOUR_MS = 3_600_000


def _ms(stamp: pd.Timestamp) -> int:
    return int(stamp.value // 1_000_000)


def _venue(n_bars: int, timeframe: str = "8h", *, seed: int = 3, jitter_ms: int = 0,
           drop_funding: slice | None = None, funding_from: int = 0):
    """A started server with candles, mark candles and funding for n_bars, the clock 30 minutes
    into the last bar (so it is the forming one); also the truth it serves."""
    bars = synthetic_ohlcv(n_bars, timeframe, seed=seed).ohlcv
    mark = synthetic_mark(bars, seed=seed)
    funding = synthetic_funding(bars, seed=seed).iloc[funding_from:]
    served = funding.drop(funding.index[drop_funding]) if drop_funding is not None else funding
    server = BinanceUsdmServer(funding_jitter_ms=jitter_ms)
    server.set_klines(bars, symbol=SYMBOL)
    server.set_klines(mark, symbol=SYMBOL, price="mark")
    server.set_funding(served, symbol=SYMBOL, mark=mark["close"])
    server.now_ms = _ms(bars.index[-1]) + 30 * 60 * 1000
    return server.start(), bars, mark, served


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Point quantlib at a server (call with it) and keep the cache in tmp_path."""
    monkeypatch.setenv("QUANTLIB_DATA_DIR", str(tmp_path))
    delays: list[float] = []
    monkeypatch.setattr(fetch, "_sleep", delays.append)

    def aim(server: BinanceUsdmServer) -> list[float]:
        monkeypatch.setenv("QUANTLIB_BINANCEUSDM_API_URL", server.url)
        # The local clock: just after the server's (only decides whether anything is missing).
        monkeypatch.setattr(fetch, "_now_ms", lambda: server.clock_ms() + 1000)
        return delays

    return aim


def _rounded(rates: pd.Series) -> np.ndarray:
    """What Binance's wire format carries: the rate with 8 decimals."""
    return np.array([float(f"{r:.8f}") for r in rates])


def test_funding_pages_past_1000_records_and_matches_the_served_rates(env, tmp_path):
    server, bars, mark, funding = _venue(1300, jitter_ms=3)
    with server:
        env(server)
        perp = load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01")
    closed = bars.iloc[:-1]  # the last bar is still forming at the server's clock
    assert perp.ohlcv.index.equals(closed.index)
    np.testing.assert_array_equal(perp.ohlcv.to_numpy(), closed.to_numpy())
    np.testing.assert_array_equal(perp.mark[["open", "high", "low", "close"]].to_numpy(),
                                  mark.iloc[:-1][["open", "high", "low", "close"]].to_numpy())
    assert (perp.mark["volume"] == 0).all() and perp.mark.attrs["price"] == "mark"
    # Funding on the candles' span: the payments at 8h bar opens except the forming bar's.
    expected = funding.loc[funding.index < bars.index[-1]]
    assert len(expected) == 1299
    assert perp.funding.index.equals(expected.index)  # 3 ms settlement delay floored away
    np.testing.assert_array_equal(perp.funding["funding_rate"].to_numpy(),
                                  _rounded(expected["funding_rate"]))
    pages = server.requests_for("/fapi/v1/fundingRate")
    assert [int(r.params["limit"]) for r in pages] == [1000, 1000]
    assert int(pages[0].params["startTime"]) == _ms(bars.index[0])
    # Next page: 1 ms after the last record served (its time includes the 3 ms delay).
    assert int(pages[1].params["startTime"]) == _ms(expected.index[999]) + 3 + 1
    assert int(pages[0].params["endTime"]) == _ms(bars.index[-1]) - 1  # inclusive end
    assert perp.funding.attrs["funding_interval"] == "8h"
    assert not server.errors


def test_missing_payments_are_reported_never_filled(env):
    server, bars, _, served = _venue(60, drop_funding=slice(20, 23))
    with server:
        env(server)
        perp = load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01")
    summary = perp.validate()["funding"]
    assert len(perp.funding) == 59 - 3
    assert summary.n_missing == 3 and len(summary.gaps) == 1
    full = synthetic_funding(bars, seed=3).index
    assert summary.gaps["start"].iloc[0] == full[20] and summary.gaps["end"].iloc[0] == full[22]
    assert full[21] not in perp.funding.index


def test_forming_candle_and_future_payments_excluded_on_an_hourly_market(env):
    server, bars, _, funding = _venue(49, "1h")
    with server:
        env(server)
        perp = load_perp(f"binanceusdm:{SYMBOL}:1h:2024-01-01")
    assert perp.ohlcv.index[-1] == bars.index[-2] and perp.mark.index[-1] == bars.index[-2]
    # 48 closed hours from midnight: payments at 00, 08, 16, 00, 08, 16 (hand count), not the
    # one at 2024-01-03 00:00, already paid at the server's clock but the end of the last
    # closed bar (the forming bar's open).
    assert funding.index[-1] == pd.Timestamp("2024-01-03", tz="UTC")
    hours = [str(t) for t in perp.funding.index]
    assert hours == [f"2024-01-0{d} {h:02d}:00:00+00:00" for d in (1, 2) for h in (0, 8, 16)]
    assert perp.funding.attrs["source_string"] == f"binanceusdm:{SYMBOL}:1h:2024-01-01"


def test_cache_resumes_incrementally(env, tmp_path):
    server, bars, _, funding = _venue(400)
    with server:
        env(server)
        first = load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01:2024-02-01")
        assert first.funding.index[-1] == pd.Timestamp("2024-01-31 16:00", tz="UTC")
        server.requests.clear()
        again = load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01:2024-02-01")
        assert server.requests == []  # all three served from the caches
        assert again.funding.equals(first.funding)
        longer = load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01:2024-03-01")
    funding_calls = server.requests_for("/fapi/v1/fundingRate")
    mark_calls = server.requests_for("/fapi/v1/markPriceKlines")
    feb = _ms(pd.Timestamp("2024-02-01", tz="UTC"))
    assert [int(r.params["startTime"]) for r in funding_calls] == [feb]
    assert [int(r.params["startTime"]) for r in mark_calls] == [feb]
    expected = funding.loc[:"2024-02-29 16:00"]
    np.testing.assert_array_equal(longer.funding["funding_rate"].to_numpy(),
                                  _rounded(expected["funding_rate"]))
    assert funding_cache_path(tmp_path, "binanceusdm", SYMBOL).exists()
    assert mark_cache_path(tmp_path, "binanceusdm", SYMBOL, "8h").exists()
    assert load(f"binanceusdm:{SYMBOL}:8h:2024-01-01:2024-03-01").equals(longer.ohlcv)


def test_late_funding_history_refused_unless_allowed(env):
    server, bars, _, funding = _venue(60, funding_from=9)  # first payment 3 days late
    with server:
        env(server)
        with pytest.raises(DataError, match=r"BTC/USDT:USDT funding: history requested from "
                                            r"2024-01-01T00:00:00\+00:00 but the exchange's "
                                            r"starts at 2024-01-04"):
            load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01")
        perp = load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01", allow_partial=True)
    assert perp.funding.index[0] == funding.index[0]
    assert "funding requested from 2024-01-01" in perp.funding.attrs["partial_history"]


def test_transient_errors_retried_malformed_answers_refused(env, tmp_path):
    server, *_ = _venue(30)
    with server:
        delays = env(server)
        server.inject_fault("/fapi/v1/fundingRate", "http", status=503)
        perp = load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01")
        assert len(perp.funding) == 29 and delays == [0.5]
        assert len(server.requests_for("/fapi/v1/fundingRate")) == 2
    server, *_ = _venue(30)
    with server:
        env(server)
        funding_cache_path(tmp_path, "binanceusdm", SYMBOL).unlink()
        server.inject_fault("/fapi/v1/fundingRate", "malformed")
        with pytest.raises(ExchangeError, match="funding .*malformed response, not valid JSON"):
            load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01")
    assert not funding_cache_path(tmp_path, "binanceusdm", SYMBOL).exists()


def test_damaged_funding_cache_named(env, tmp_path):
    server, *_ = _venue(30)
    with server:
        env(server)
        load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01")
        path = funding_cache_path(tmp_path, "binanceusdm", SYMBOL)
        path.write_bytes(b"PAR1 not really parquet")
        with pytest.raises(DataError, match=rf"{path}: the funding cache file is unreadable"):
            load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01")
        frame = pd.DataFrame({"funding_rate": [1e-4, np.nan]},
                             index=pd.DatetimeIndex(["2024-01-01", "2024-01-01 08:00"], tz="UTC"))
        frame.attrs = {"covered_from_ms": 0, "covered_to_ms": 1}
        frame.to_parquet(path)
        with pytest.raises(DataError, match=r"funding row 1 \(timestamp 2024-01-01 08:00:00"
                                            r"\+00:00\), field 'funding_rate' is not a finite"):
            load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01")


@pytest.mark.parametrize("source, message", [
    ("file:x.csv", "a file holds no funding or mark series"),
    ("kraken:BTC/USD:1h:2024-01-01", "exchange 'kraken' has no perpetual-swap loader"),
    ("binanceusdm:BTC/USDT:1h:2024-01-01", "symbol 'BTC/USDT' is not a swap"),
    ("binanceusdm:BTC/USDT:usdt:1h", "timeframe 'usdt' is not understood"),
    ("binanceusdm:BTC/USDT:USDT:1h:2024-13-01", "since '2024-13-01' is not a date"),
])
def test_bad_perp_sources_are_named(source, message):
    with pytest.raises(DataError, match=message):
        load_perp(source)


def test_sample_perp_is_the_synthetic_market_and_its_companions():
    perp = load_perp("sample:seed=4,bars=300")
    bars = synthetic_ohlcv(300, seed=4).ohlcv
    assert perp.ohlcv.equals(bars)
    assert perp.mark.equals(synthetic_mark(bars, seed=4))
    assert perp.funding.equals(synthetic_funding(bars, seed=4))
    assert validate_funding(perp.funding).n_missing == 0


def test_resume_after_the_clock_moves_asks_from_the_end_of_the_last_span(env):
    server, bars, _, funding = _venue(200, "1h", jitter_ms=5)
    with server:
        env(server)
        server.now_ms = _ms(bars.index[99]) + 10 * 60 * 1000  # bar 99 forming
        first = load_perp(f"binanceusdm:{SYMBOL}:1h:2024-01-01")
        assert first.funding.index[-1] == funding.index[funding.index < bars.index[99]][-1]
        server.requests.clear()
        server.now_ms = _ms(bars.index[-1]) + 10 * 60 * 1000
        env(server)  # the local clock follows
        second = load_perp(f"binanceusdm:{SYMBOL}:1h:2024-01-01")
    calls = server.requests_for("/fapi/v1/fundingRate")
    # The first load covered the candles' span, up to bar 99's open: asked again from there.
    assert [int(r.params["startTime"]) for r in calls] == [_ms(bars.index[99])]
    expected = funding.loc[funding.index < bars.index[-1]]
    assert second.funding.index.equals(expected.index)
    np.testing.assert_array_equal(second.funding["funding_rate"].to_numpy(),
                                  _rounded(expected["funding_rate"]))
    assert second.mark.index.equals(bars.index[:-1])


def test_fetch_perp_arguments_checked():
    from quantlib.data.perp_fetch import fetch_perp
    from quantlib.errors import ParameterError

    with pytest.raises(DataError, match="since is required"):
        fetch_perp("binanceusdm", SYMBOL, "1h", None)
    with pytest.raises(DataError, match="until must be after it"):
        fetch_perp("binanceusdm", SYMBOL, "1h", "2024-02-01", "2024-01-01")
    with pytest.raises(ParameterError, match="since='soon' is not a date"):
        fetch_perp("binanceusdm", SYMBOL, "1h", "soon")
    with pytest.raises(DataError, match="exchange 'bybit' has no perpetual-swap loader"):
        fetch_perp("bybit", SYMBOL, "1h", "2024-01-01")


def test_a_span_ending_after_now_is_covered_only_to_the_last_payment_seen(env, tmp_path):
    from quantlib.data.perp_fetch import read_funding_cache, sync_funding

    server, bars, _, funding = _venue(100, "1h", jitter_ms=5)
    with server:
        env(server)
        server.now_ms = _ms(bars.index[50]) + 10 * 60 * 1000
        far = _ms(bars.index[-1]) + 10 * HOUR_MS
        exchange = make_ccxt_binanceusdm(server, api_key="", secret="")
        sync_funding(exchange, SYMBOL, _ms(bars.index[0]), far)
        seen = funding.loc[funding.index <= bars.index[50]]
        cached = read_funding_cache(funding_cache_path(tmp_path, "binanceusdm", SYMBOL))
        assert cached.index.equals(seen.index)
        # A payment being settled at "now" may not be published yet: ask again after the last.
        assert cached.attrs["covered_to_ms"] == _ms(seen.index[-1]) + 5 + 1
        server.requests.clear()
        server.now_ms = _ms(bars.index[-1]) + 10 * 60 * 1000
        env(server)
        merged = sync_funding(exchange, SYMBOL, _ms(bars.index[0]), far)
    calls = server.requests_for("/fapi/v1/fundingRate")
    assert [int(r.params["startTime"]) for r in calls] == [_ms(seen.index[-1]) + 6]
    assert merged.index.equals(funding.index)


@pytest.mark.parametrize("bad", ["abc", "NaN", None])
def test_a_malformed_funding_record_is_named_and_nothing_cached(env, tmp_path, bad):
    server, bars, _, funding = _venue(30)
    with server:
        env(server)
        times, records = server._funding["BTCUSDT"]
        records[4]["fundingRate"] = bad
        with pytest.raises(ExchangeError, match=r"malformed funding record #4: .*'fundingTime': "
                                                rf"{_ms(funding.index[4])}"):
            load_perp(f"binanceusdm:{SYMBOL}:8h:2024-01-01")
    assert not funding_cache_path(tmp_path, "binanceusdm", SYMBOL).exists()
