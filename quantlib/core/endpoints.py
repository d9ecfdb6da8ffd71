"""Where ccxt talks to: the exchange's real API, or (tests only) a loopback server.

One rule for every entry point (``quantlib.data.load``, ``quantlib data fetch --base-url``, the
live runner's feed and broker): an override of an exchange's REST address must be 127.0.0.1 or
localhost. No code path can aim ccxt at another host than the exchange's own.

Examples
--------
>>> import ccxt
>>> ex = point_at_loopback(ccxt.kraken(), "http://127.0.0.1:8080", "test server")
>>> ex.urls["api"]["public"], ex.rateLimit
('http://127.0.0.1:8080', 1)
>>> point_at_loopback(ccxt.binanceusdm(), "http://127.0.0.1:8080", "test").urls["api"]["fapiPublic"]
'http://127.0.0.1:8080/fapi/v1'
>>> point_at_loopback(ccxt.kraken(), "https://example.com", "--base-url")
Traceback (most recent call last):
...
quantlib.errors.DataError: --base-url='https://example.com' must be a loopback address (127.0.0.1 or localhost): overrides exist to point tests at a local server
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from quantlib.errors import DataError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def api_url_variable(exchange_id: str) -> str:
    """``QUANTLIB_<EXCHANGE>_API_URL``: the environment variable of the override."""
    return f"QUANTLIB_{exchange_id.upper()}_API_URL"


def api_url_override(exchange_id: str) -> str | None:
    """The override URL from the environment, or None."""
    return os.environ.get(api_url_variable(exchange_id)) or None


def point_at_loopback(exchange: Any, url: str, what: str) -> Any:
    """Aim every API family of a ccxt ``exchange`` at ``url`` (a loopback test server) and drop
    ccxt's rate limit (a local server has none to respect). ``what`` names the setting in the
    error raised for any other host."""
    if urlsplit(url).hostname not in LOOPBACK_HOSTS:
        raise DataError(f"{what}={url!r} must be a loopback address (127.0.0.1 or localhost): "
                        "overrides exist to point tests at a local server")
    base = url.rstrip("/")
    # Each family keeps its path (Binance USD-M: /fapi/v1, /fapi/v2, ...): only the host moves,
    # so the loopback server sees the venue's real request paths.
    exchange.urls["api"] = {
        name: base + (urlsplit(value).path.rstrip("/") if isinstance(value, str) else "")
        for name, value in exchange.urls["api"].items()}
    exchange.rateLimit = 1
    return exchange


def apply_env_override(exchange: Any, exchange_id: str) -> Any:
    """``point_at_loopback`` with ``$QUANTLIB_<EXCHANGE>_API_URL`` when it is set."""
    url = api_url_override(exchange_id)
    return point_at_loopback(exchange, url, api_url_variable(exchange_id)) if url else exchange


__all__ = ["api_url_override", "api_url_variable", "apply_env_override", "point_at_loopback"]
