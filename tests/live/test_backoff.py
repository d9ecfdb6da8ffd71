"""The retry policy the ccxt brokers share (quantlib/live/brokers/backoff.py), with ccxt's own
exception types and the real JSON logger; only the pauses are recorded instead of slept."""

from __future__ import annotations

import io
import json

import ccxt
import pytest

from quantlib.errors import ExchangeError
from quantlib.live.brokers import backoff
from quantlib.live.logs import JsonLogger, register_secret


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(backoff, "_sleep", slept.append)
    return slept


def _failing(faults: list[BaseException], answer: object = "ok"):
    """A call that raises ``faults`` one per attempt, then returns ``answer``."""
    calls = []

    def call(*args, **kwargs):
        calls.append((args, kwargs))
        if len(calls) <= len(faults):
            raise faults[len(calls) - 1]
        return answer

    return call, calls


def _events(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_transient_faults_are_retried_with_doubling_pauses(pauses):
    buf = io.StringIO()
    faults = [ccxt.RequestTimeout("t"), ccxt.BadResponse("b"), ValueError("v"),
              ccxt.DDoSProtection("429")]
    call, calls = _failing(faults, answer={"id": 7})
    got = backoff.call_with_backoff(JsonLogger(buf), "kraken", "fetch_x", 5, 0.5, call, 1,
                                    since=2)
    assert got == {"id": 7}
    assert calls == [((1,), {"since": 2})] * 5
    assert pauses == [0.5, 1.0, 2.0, 4.0]  # 0.5 * 2**k, one pause before each new attempt
    retries = [e for e in _events(buf) if e.get("event") == "exchange_retry"]
    assert [(e["call"], e["attempt"], e["error"]) for e in retries] == [
        ("fetch_x", 1, "RequestTimeout"), ("fetch_x", 2, "BadResponse"),
        ("fetch_x", 3, "ValueError"), ("fetch_x", 4, "DDoSProtection")]


def test_pause_is_capped_at_thirty_seconds(pauses):
    delay = 20.0
    for _ in range(3):
        delay = backoff.pause(delay)
    assert pauses == [20.0, 30.0, 30.0] and delay == 30.0


def test_the_last_transient_fault_ends_in_an_exchange_error_naming_the_call(pauses):
    call, calls = _failing([ccxt.NetworkError("secret-bearing text")] * 3)
    with pytest.raises(ExchangeError, match=r"^binanceusdm fetch_y: NetworkError after 3 "
                                            r"attempts$") as info:
        backoff.call_with_backoff(JsonLogger(io.StringIO()), "binanceusdm", "fetch_y", 3, 0.1,
                                  call)
    assert len(calls) == 3 and len(pauses) == 2  # no pause after the last attempt
    assert "secret-bearing" not in str(info.value)


def test_a_refusal_is_not_retried(pauses):
    call, calls = _failing([ccxt.AuthenticationError("bad key")])
    with pytest.raises(ccxt.AuthenticationError):
        backoff.call_with_backoff(JsonLogger(io.StringIO()), "kraken", "fetch_z", 4, 0.1, call)
    assert len(calls) == 1 and pauses == []


def test_order_helpers_log_and_pause(pauses):
    buf = io.StringIO()
    log = JsonLogger(buf)
    assert backoff.order_retry(log, "cid-1", 2, ccxt.RequestTimeout("t"), 3.0) == 6.0
    assert pauses == [3.0]
    detail = backoff.order_refused(log, "cid-1", ccxt.InvalidOrder("x" * 300))
    assert detail == "x" * 200
    events = _events(buf)
    assert (events[0]["event"], events[0]["client_id"], events[0]["attempt"],
            events[0]["error"]) == ("order_retry", "cid-1", 3, "RequestTimeout")
    assert (events[1]["event"], events[1]["reason"]) == ("order_rejected", "x" * 200)


def test_a_refusal_reason_never_carries_a_registered_secret():
    register_secret("h8-test-secret-9f3a")
    buf = io.StringIO()
    detail = backoff.order_refused(JsonLogger(buf), "cid-2",
                                   ccxt.ExchangeError("bad apiKey=h8-test-secret-9f3a"))
    assert detail == "bad apiKey=***"
    assert "h8-test-secret-9f3a" not in buf.getvalue()
