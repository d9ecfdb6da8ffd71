"""Grid engine benchmark: kernel throughput (bar x parameter evaluations per second) with 1 and 2
numba threads under the default "bar" fill model, with 2 threads under "touch" and with 500-level
grids, ratios against the same grid in backtesting.py and in a pure-Python event loop
(tests/backtest/grid_reference.py), and peak memory of a 10,000 combinations x 100,000 bars sweep.

Run: ``.venv/bin/python benchmarks/bench_grid.py`` (``--quick`` for a smaller run).
backtesting.py is optional (``pip install backtesting``; benchmark only, never a runtime
dependency): without it that row is skipped with a message.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from pathlib import Path

import numba
import numpy as np
import pandas as pd

from quantlib.backtest.grid import SPACINGS, sweep_grid
from quantlib.core.config import BacktestConfig
from quantlib.data import synthetic_ohlcv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "backtest"))
from grid_reference import fixed_levels, run_reference  # noqa: E402

BENCH_PARAMS = {"spacing": "arithmetic", "n_levels": 20, "lower_pct": 0.3, "upper_pct": 0.3,
                "order_size": 0.05}


def _data(n_bars: int) -> pd.DataFrame:
    # prices near 100 so backtesting.py (whole units) can trade the same quantities
    df = synthetic_ohlcv(n_bars=n_bars, timeframe="1h", seed=0).ohlcv
    scale = 100.0 / df["open"].iloc[0]
    df[["open", "high", "low", "close"]] *= scale
    return df


def _combos(n: int, fill_model: str = "bar", many_levels: bool = False) -> list[dict]:
    """``n`` combinations cycling through the spacings; ``many_levels``: 500-level arithmetic,
    geometric and volatility grids (fibonacci has at most 64 levels)."""
    rng = np.random.default_rng(0)
    spacings = [s for s in SPACINGS if s != "fibonacci"] if many_levels else SPACINGS
    out = []
    for k in range(n):
        n_levels = 500 if many_levels else int(rng.integers(5, 40))
        out.append({"spacing": spacings[k % len(spacings)], "n_levels": n_levels,
                    "lower_pct": float(rng.uniform(0.05, 0.5)),
                    "upper_pct": float(rng.uniform(0.05, 0.5)),
                    "order_size": min(0.02, 0.9 / n_levels), "atr_period": 24,
                    "atr_k": float(rng.uniform(0.5, 3)) * (20 / n_levels if many_levels else 1),
                    "fill_model": fill_model})
    return out


def kernel_throughput(df: pd.DataFrame, n_combos: int, threads: int, fill_model: str = "bar",
                      many_levels: bool = False) -> float:
    """Evaluations per second of sweep_grid (no series stored) with ``threads`` numba threads."""
    numba.set_num_threads(threads)
    combos = _combos(n_combos, fill_model, many_levels)
    sweep_grid(df.iloc[:500], combos[:4])  # compile / load the cache outside the timing
    start = time.perf_counter()
    sweep_grid(df, combos)
    return len(df) * n_combos / (time.perf_counter() - start)


def python_throughput(df: pd.DataFrame) -> float:
    """Bars per second of the plain-Python reference event loop (one combination)."""
    o0 = df["open"].iloc[0]
    bars = list(df[["open", "high", "low", "close"]].itertuples(index=False, name=None))
    start = time.perf_counter()
    run_reference(bars, fill_model="bar", spacing="arithmetic", lower=o0 * 0.7, upper=o0 * 1.3,
                  n_levels=20, order_value=500.0, init_cash=10_000.0, fee=0.001)
    return len(bars) / (time.perf_counter() - start)


def backtesting_throughput(df: pd.DataFrame) -> float | None:
    """Bars per second of the same grid written for backtesting.py, or None if not installed."""
    try:
        from backtesting import Backtest, Strategy
    except ImportError:
        print("backtesting.py is not installed: skipping its row (pip install backtesting)")
        return None
    o0 = float(df["open"].iloc[0])
    levels = fixed_levels("arithmetic", o0 * 0.7, o0 * 1.3, 20)

    class Grid(Strategy):
        def init(self):
            pass

        def next(self):
            # one buy limit per empty level below price, its take-profit one level up = the sell
            busy = {t.tag for t in self.trades} | {o.tag for o in self.orders}
            price = self.data.Close[-1]
            for i in range(len(levels) - 1):
                if i not in busy and levels[i] < price:
                    self.buy(size=max(1, int(500.0 / levels[i])), limit=levels[i],
                             tp=levels[i + 1], tag=i)

    frame = df.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    frame.index = frame.index.tz_localize(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(frame, Grid, cash=10_000, commission=0.001, finalize_trades=True)
        start = time.perf_counter()
        bt.run()
        return len(frame) / (time.perf_counter() - start)


def peak_memory(n_combos: int, n_bars: int, chunk: int = 2048) -> tuple[float, float]:
    """(seconds, peak RSS in GiB) of a chunked sweep of ``n_combos`` x ``n_bars``."""
    df = _data(n_bars)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    start = time.perf_counter()
    sweep_grid(df, _combos(n_combos), BacktestConfig(), chunk=chunk)
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run(n_bars: int = 100_000, n_combos: int = 200, mem_combos: int = 10_000,
        mem_bars: int = 100_000, ref_bars: int = 5_000) -> dict[str, float]:
    """Measure everything and print a table; returns the figures."""
    df = _data(n_bars)
    out = {f"kernel_evals_per_s_{t}_threads": kernel_throughput(df, n_combos, t) for t in (1, 2)}
    out["kernel_evals_per_s_2_threads_touch"] = kernel_throughput(df, n_combos, 2, "touch")
    out["kernel_evals_per_s_2_threads_500_levels"] = kernel_throughput(df, n_combos, 2,
                                                                       many_levels=True)
    best = out["kernel_evals_per_s_2_threads"]
    small = _data(ref_bars)
    out["python_bars_per_s"] = python_throughput(small)
    out["kernel_vs_python"] = best / out["python_bars_per_s"]
    bt = backtesting_throughput(small)
    if bt is not None:
        out["backtesting_py_bars_per_s"] = bt
        out["kernel_vs_backtesting_py"] = best / bt
    if mem_combos:
        out["sweep_seconds"], out["sweep_peak_rss_gib"] = peak_memory(mem_combos, mem_bars)
        out["sweep_evals_per_s"] = mem_combos * mem_bars / out["sweep_seconds"]
    print(f"grid benchmark ({n_bars} bars x {n_combos} combos; reference runs on {ref_bars} bars;"
          f" memory sweep {mem_combos} x {mem_bars}); numba threads available: "
          f"{numba.config.NUMBA_NUM_THREADS}")
    for key, value in out.items():
        print(f"  {key:40s} {value:14.4g}")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    args = parser.parse_args()
    if args.quick:
        run(n_bars=20_000, n_combos=50, mem_combos=500, mem_bars=20_000, ref_bars=2_000)
    else:
        run()
