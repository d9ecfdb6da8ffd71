"""Small synthetic frames named as real markets, for tests of kinds that read another symbol."""

from __future__ import annotations

import pandas as pd

from quantlib.data import load


def sample_market(symbol: str, bars: int, seed: int, start: int = 0) -> pd.DataFrame:
    """``sample:`` hourly bars from row ``start`` on, labelled with ``symbol``.

    Parameters
    ----------
    symbol : str
        The market the frame stands for, e.g. ``"BTC/USDT"`` (``attrs["symbol"]``).
    bars, seed : int
        The synthetic source's size and seed.
    start : int, default 0
        First row kept: a later start makes this market's history begin after another's.

    Returns
    -------
    pandas.DataFrame
        A canonical OHLCV frame with ``attrs`` symbol and timeframe ``"1h"``.
    """
    df = load(f"sample:bars={bars},timeframe=1h,seed={seed}").iloc[start:]
    df.attrs.update({"symbol": symbol, "timeframe": "1h"})
    return df
