"""Perp data benchmark: a swap's candles, mark candles and funding through ccxt, cold and cached.

Run: ``.venv/bin/python benchmarks/bench_perp_data.py [--bars 17520] [--repeats 3]``

Against the loopback Binance USD-M server (real ``ccxt.binanceusdm``, rate limiter at 1 ms so the
figures are quantlib's and ccxt's own cost): ``load_perp`` of ``--bars`` hourly bars on a cold
cache (klines and mark klines 1000 per page, funding 1000 per page), the same call served from
the three caches, and a resume after one more week of bars. Printed: requests per endpoint and
seconds (best of ``--repeats``); the ratios say what the caches save.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quantlib.data import fetch, load_perp  # noqa: E402
from quantlib.data.synthetic import synthetic_funding, synthetic_mark, synthetic_ohlcv  # noqa: E402
from tests.support.binanceusdm_server import BinanceUsdmServer  # noqa: E402

SYMBOL = "BTC/USDT:USDT"
PATHS = ("/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/fapi/v1/fundingRate")


def _serve(bars) -> BinanceUsdmServer:
    server = BinanceUsdmServer(funding_jitter_ms=3)
    server.set_klines(bars, symbol=SYMBOL)
    server.set_klines(synthetic_mark(bars, seed=1), symbol=SYMBOL, price="mark")
    server.set_funding(synthetic_funding(bars, seed=1), symbol=SYMBOL)
    return server


def _timed(server: BinanceUsdmServer, until_bar, cache: Path) -> tuple[float, list[int]]:
    server.now_ms = int(until_bar.value // 1_000_000) + 60_000
    fetch._now_ms = lambda: server.now_ms + 1000
    os.environ["QUANTLIB_DATA_DIR"] = str(cache)
    server.requests.clear()
    t0 = time.perf_counter()
    load_perp(f"binanceusdm:{SYMBOL}:1h:2022-01-01")
    seconds = time.perf_counter() - t0
    return seconds, [len(server.requests_for(p)) for p in PATHS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=17_520)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    week = 7 * 24
    bars = synthetic_ohlcv(args.bars + week + 1, "1h", seed=1, start="2022-01-01").ohlcv
    rows = []
    with _serve(bars) as server, tempfile.TemporaryDirectory() as tmp:
        os.environ["QUANTLIB_BINANCEUSDM_API_URL"] = server.url
        cold, cached, resume = [], [], []
        for run in range(args.repeats):
            cache = Path(tmp) / f"run{run}"
            cold.append(_timed(server, bars.index[args.bars], cache))
            cached.append(_timed(server, bars.index[args.bars], cache))
            resume.append(_timed(server, bars.index[args.bars + week], cache))
        for label, runs in ((f"cold, {args.bars:,} 1h bars", cold), ("served from the caches", cached),
                            ("resume +1 week (168 bars)", resume)):
            rows.append((label, *min(runs)))
    print(f"load_perp against loopback Binance USD-M (best of {args.repeats})")
    print(f"{'scenario':<30}{'klines':>8}{'mark':>6}{'funding':>9}{'seconds':>10}")
    for label, seconds, counts in rows:
        print(f"{label:<30}{counts[0]:>8}{counts[1]:>6}{counts[2]:>9}{seconds:>10.3f}")
    print(f"cached / cold: {rows[1][1] / rows[0][1]:.3f}   resume / cold: {rows[2][1] / rows[0][1]:.3f}")


if __name__ == "__main__":
    main()
