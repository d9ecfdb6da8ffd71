"""The two markets of the ``regime_filter_cross`` tests: ETH trades, gated by BTC's regime."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from tests.support.frames import sample_market


def eth_btc_fixtures(bars: int, btc_start: int) -> tuple[Callable, Callable]:
    """Module fixtures ``(eth, btc)``: ``bars`` hourly bars of each (seeds 1 and 2), BTC's
    history starting ``btc_start`` bars after ETH's (those ETH bars have no regime yet).

    Bind them to the names ``eth`` and ``btc`` in a test module: ``eth, btc =
    eth_btc_fixtures(800, btc_start=100)``.
    """

    @pytest.fixture(scope="module")
    def eth() -> pd.DataFrame:
        return sample_market("ETH/USDT", bars, seed=1)

    @pytest.fixture(scope="module")
    def btc() -> pd.DataFrame:
        return sample_market("BTC/USDT", bars, seed=2, start=btc_start)

    return eth, btc
