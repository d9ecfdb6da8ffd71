"""Data-layer benchmark: load + validate throughput and the cost of a cache resume.

Run: ``.venv/bin/python benchmarks/bench_data.py [--bars 1000000] [--fetch-bars 20000]``

1. Load + validate throughput (bars/s) of ``quantlib.data.load_ohlcv`` (which validates) on CSV
   and Parquet files of ``--bars`` synthetic hourly bars, and of ``validate_ohlcv`` alone.
2. Cache resume: against the loopback Kraken server (real ccxt, 720 bars per page), the time of a
   cold full fetch of ``--fetch-bars`` bars vs a resume that needs one new page, and a resume on a
   cache of ``--bars`` bars (parquet read + write dominate there). ccxt's rate limiter is set to
   1 ms here so the figures show quantlib's and ccxt's own cost; against real Kraken every OHLC
   request also waits 1.2 s, estimated in the last column.
3. Real files: load + validate of each CSV in ``../shared/data`` (real BTC/ETH history, see its
   SOURCES.md) when that folder is present, with the gaps the validator reports; skipped with a
   note otherwise (a user's clone has no such folder).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quantlib.data import fetch, load_ohlcv, synthetic_ohlcv, validate_ohlcv  # noqa: E402
from quantlib.data.cache import COVERED_FROM, COVERED_TO, cache_path, write_cache  # noqa: E402
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken  # noqa: E402

KRAKEN_OHLC_SECONDS = 1.2  # ccxt's kraken rateLimit (1000 ms) x OHLC cost (1.2)
START = pd.Timestamp("2020-01-01", tz="UTC")


def _best_of(repeats: int, func) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_load(bars: int, repeats: int, workdir: Path) -> None:
    df = synthetic_ohlcv(bars, "1h", seed=0, start=START).ohlcv
    csv, parquet = workdir / "bars.csv", workdir / "bars.parquet"
    df.to_csv(csv, index_label="timestamp", date_format="%Y-%m-%dT%H:%M:%SZ")
    df.to_parquet(parquet)
    print(f"load + validate, {bars:,} hourly bars (best of {repeats})")
    print(f"{'format':<22}{'file MB':>10}{'seconds':>10}{'bars/s':>14}")
    for label, path in (("csv (ISO timestamps)", csv), ("parquet", parquet)):
        seconds = _best_of(repeats, lambda p=path: load_ohlcv(p))
        print(f"{label:<22}{path.stat().st_size / 1e6:>10.1f}{seconds:>10.3f}"
              f"{bars / seconds:>14,.0f}")
    seconds = _best_of(repeats, lambda: validate_ohlcv(df))
    print(f"{'validate_ohlcv only':<22}{'':>10}{seconds:>10.3f}{bars / seconds:>14,.0f}")


def _seed_cache(root: Path, df: pd.DataFrame) -> None:
    frame = df.copy()
    frame.attrs = {"source": "ccxt", "exchange": "kraken", "symbol": "BTC/USD", "timeframe": "1h",
                   COVERED_FROM: df.index[0].value // 1_000_000,
                   COVERED_TO: df.index[-1].value // 1_000_000 + 3_600_000}
    write_cache(frame, cache_path(root, "kraken", "BTC/USD", "1h"))


def _timed_fetch(server: KrakenServer, root: Path) -> tuple[float, int]:
    exchange = make_ccxt_kraken(server)
    exchange.load_markets()  # market metadata is fetched once per session: not part of the cost
    server.clear_requests()
    t0 = time.perf_counter()
    fetch.fetch_ohlcv(exchange, "BTC/USD", "1h", since=START, cache_dir=root, progress=False)
    return time.perf_counter() - t0, len(server.requests_for("OHLC"))


def bench_resume(fetch_bars: int, cache_bars: int, repeats: int, workdir: Path) -> None:
    print(f"\ncache resume vs full fetch (loopback Kraken, 720 bars/page, best of {repeats})")
    print(f"{'scenario':<40}{'requests':>9}{'seconds':>10}{'real Kraken >= s':>18}")
    rows = []
    runs = iter(range(10**6))
    for n_bars, full in ((fetch_bars, True), (cache_bars, False)):
        market = synthetic_ohlcv(n_bars + 1, "1h", seed=1, start=START).ohlcv  # last bar open
        market.attrs["timeframe"] = "1h"
        now_ms = market.index[-1].value // 1_000_000 + 60_000
        fetch._now_ms = lambda now_ms=now_ms: now_ms
        with KrakenServer(market) as server:
            # The server's pre-formatted rows live in this process: keep them out of the GC's
            # way so collections do not bill the client for the server's heap.
            gc.collect()
            gc.freeze()
            if full:
                best = min(_timed_fetch(server, workdir / f"full{next(runs)}")
                           for _ in range(repeats))
                rows.append((f"full fetch, {n_bars:,} bars (cold cache)", best[1], best[0]))
            best = (float("inf"), 0)
            for _ in range(repeats):
                root = workdir / f"resume{next(runs)}"
                _seed_cache(root, market.iloc[:-501])  # 500 closed bars missing: one page
                best = min(best, _timed_fetch(server, root))
            rows.append((f"resume +500 bars on {n_bars - 500:,}-bar cache", best[1], best[0]))
            gc.unfreeze()
    for label, requests, seconds in rows:
        print(f"{label:<40}{requests:>9}{seconds:>10.3f}"
              f"{seconds + requests * KRAKEN_OHLC_SECONDS:>18.1f}")
    full_s, resume_s = rows[0][2], rows[1][2]
    print(f"resume / full fetch time ratio ({fetch_bars:,} bars): {resume_s / full_s:.3f}; "
          f"with Kraken's rate limit: {(resume_s + KRAKEN_OHLC_SECONDS) / (full_s + rows[0][1] * KRAKEN_OHLC_SECONDS):.3f}")


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def bench_real_files(repeats: int) -> None:
    files = sorted(SHARED_DATA.glob("*.csv"))
    if not files:
        print(f"\nreal files: {SHARED_DATA} is absent, skipped")
        return
    print(f"\nreal files in {SHARED_DATA} (load + validate, best of {repeats})")
    print(f"{'file':<28}{'bars':>9}{'seconds':>10}{'bars/s':>14}{'gaps':>7}")
    for path in files:
        df = load_ohlcv(path)
        seconds = _best_of(repeats, lambda p=path: load_ohlcv(p))
        gaps = len(validate_ohlcv(df).gaps)
        print(f"{path.name:<28}{len(df):>9,}{seconds:>10.3f}{len(df) / seconds:>14,.0f}{gaps:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--fetch-bars", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_load(args.bars, args.repeats, Path(tmp))
        bench_resume(args.fetch_bars, args.bars, max(args.repeats, 3), Path(tmp))
    bench_real_files(max(args.repeats, 3))


if __name__ == "__main__":
    main()
