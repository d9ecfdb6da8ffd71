"""Perpetual-swap data: candles plus their ``mark`` and ``funding`` companion series.

One source string names all three (the same scheme as OHLCV, :mod:`quantlib.data.sources`):

=============================================  ==========================================
``sample[:seed=..,bars=..,timeframe=..]``      the synthetic market with its synthetic mark
                                               and funding (:mod:`quantlib.data.synthetic`)
``binanceusdm:BTC/USDT:USDT:1h:SINCE[:UNTIL]``  Binance USD-M through ccxt, cached as Parquet
                                               (:mod:`quantlib.data.perp_fetch`)
=============================================  ==========================================

:func:`load_perp` returns a :class:`PerpData`; ``quantlib.data.load`` keeps returning the OHLCV
alone. The canonical funding frame: a tz-aware UTC ``DatetimeIndex`` named ``timestamp`` (the
funding times, strictly increasing), one float64 column ``funding_rate`` (fraction of the
position's notional per interval; positive: longs pay shorts); attrs ``source``, ``symbol``,
``funding_interval`` (``"8h"``). :func:`validate_funding` checks it and reports payments missing
from the interval's UTC grid (gaps) and payments off that grid; nothing is ever filled in. The
data contract (:class:`PerpData`, the funding frame, its validation) is
:mod:`quantlib.data.perp_data`, re-exported here; this module adds the loader.
"""

from __future__ import annotations

from quantlib.data.perp_data import (
    FUNDING_COLUMNS,
    PERP_EXCHANGES,
    FundingSummary,
    PerpData,
    _check_perp_source,
    infer_funding_interval,
    validate_funding,
)
from quantlib.data.perp_fetch import load_perp_exchange
from quantlib.data.sources import parse_source
from quantlib.data.synthetic import synthetic_funding, synthetic_mark, synthetic_ohlcv


def _sample_perp(parsed) -> PerpData:
    opts = parsed.options
    seed = opts.get("seed", 0)
    market = synthetic_ohlcv(opts.get("bars", 5000), opts.get("timeframe", "1h"), seed)
    ohlcv = market.ohlcv
    ohlcv.attrs["source_string"] = parsed.text
    mark, funding = synthetic_mark(ohlcv, seed), synthetic_funding(ohlcv, seed)
    funding.attrs["source_string"] = parsed.text
    return PerpData(ohlcv, mark, funding, parsed.text)


def load_perp(source: str = "sample", *, allow_partial: bool = False,
              cache_dir: str | None = None) -> PerpData:
    """Candles, mark-price candles and funding of the perpetual swap named by ``source``.

    ``sample...`` gives the synthetic market with its synthetic companions (offline). An
    exchange source must name a venue in :data:`PERP_EXCHANGES` and a swap symbol with its
    settle currency (``BTC/USDT:USDT``); the three series are served from their Parquet caches
    and only what is missing is fetched. History starting later than SINCE is refused unless
    ``allow_partial=True``. Gaps stay gaps (see :meth:`PerpData.validate`).

    Examples
    --------
    >>> perp = load_perp("sample:bars=48,seed=2")
    >>> len(perp.ohlcv), len(perp.mark), len(perp.funding), perp.funding.attrs["funding_interval"]
    (48, 48, 6, '8h')
    """
    parsed = parse_source(source)
    if parsed.kind == "sample":
        return _sample_perp(parsed)

    return load_perp_exchange(_check_perp_source(parsed), allow_partial=allow_partial,
                              cache_dir=cache_dir)


__all__ = ["FUNDING_COLUMNS", "PERP_EXCHANGES", "FundingSummary", "PerpData",
           "infer_funding_interval", "load_perp", "validate_funding"]
