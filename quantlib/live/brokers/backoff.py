"""The retry policy every ccxt broker shares: transient faults back off and try again.

A timeout, a 5xx, a 429 (ccxt ``NetworkError``) or a body ccxt cannot parse (``BadResponse``,
``ValueError``) may not have acted, so the call is repeated after a pause that doubles up to
30 s. A refusal (any other ``ccxt.ExchangeError``) is final and is the caller's to handle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from quantlib.errors import ExchangeError
from quantlib.live.logs import JsonLogger, redact

MAX_PAUSE = 30.0  # seconds: the longest wait between two attempts


def transient_faults() -> tuple[type[BaseException], ...]:
    """The exception types that may not have acted at the venue (worth another attempt)."""
    import ccxt

    return (ccxt.NetworkError, ccxt.BadResponse, ValueError)


def _sleep(seconds: float) -> None:
    # one name to replace in tests that record the pauses instead of waiting them out
    time.sleep(seconds)


def pause(delay: float) -> float:
    """Sleep ``delay`` seconds; return the next, doubled pause (at most :data:`MAX_PAUSE`)."""
    _sleep(delay)
    return min(delay * 2, MAX_PAUSE)


def call_with_backoff(log: JsonLogger, venue: str, what: str, retries: int, backoff: float,
                      fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, tried up to ``retries`` times over transient faults.

    Parameters
    ----------
    log : where each retry is logged (``exchange_retry`` with the call and the fault's type).
    venue : the exchange's name, first word of the final error.
    what : the call's name in the log and the error.
    retries, backoff : attempts at most, and the first pause in seconds.
    fn, args, kwargs : the ccxt call.

    Returns
    -------
    What ``fn`` returned.

    Raises
    ------
    ExchangeError
        After ``retries`` transient faults (the fault's type named, never its text, which may
        echo request parameters).
    """
    faults = transient_faults()
    delay = backoff
    for attempt in range(retries):
        try:
            return fn(*args, **kwargs)
        except faults as exc:
            log.warning("exchange_retry", call=what, attempt=attempt + 1,
                        error=type(exc).__name__)
            if attempt == retries - 1:
                raise ExchangeError(f"{venue} {what}: {type(exc).__name__} after "
                                    f"{retries} attempts") from None
            delay = pause(delay)
    raise ExchangeError(f"{what}: no attempt made")  # pragma: no cover


def order_refused(log: JsonLogger, cid: str, exc: BaseException) -> str:
    """The venue refused order ``cid``: log ``order_rejected`` and return the reason recorded
    with it (redacted of secrets, at most 200 characters)."""
    detail = redact(str(exc))[:200]
    log.error("order_rejected", client_id=cid, reason=detail)
    return detail


def order_retry(log: JsonLogger, cid: str, attempt: int, exc: BaseException,
                delay: float) -> float:
    """A transient fault on sending order ``cid``: log ``order_retry``, wait ``delay``, and
    return the next pause (the next attempt first asks the venue for ``cid``)."""
    log.warning("order_retry", client_id=cid, attempt=attempt + 1, error=type(exc).__name__)
    return pause(delay)


__all__ = ["MAX_PAUSE", "call_with_backoff", "order_refused", "order_retry", "pause",
           "transient_faults"]
