"""Backtest benchmarks (a script, not a test): prints figures and ratios.

    .venv/bin/python benchmarks/bench_backtest.py [--bars 20000] [--fast 10] [--slow 10]

1. MA-cross sweep (fast x slow windows) through ``quantlib.backtest.run_backtest`` against the
   same sweep written directly in vectorbt (``vbt.MA.run`` + ``Portfolio.from_signals`` with
   next-open fills, the same fees, equity, fills, trades and Sharpe). Target: ratio <= 1.2.
2. If ``benchmarks/bench_grid.py`` exists, its ``run()`` (grid kernel throughput, backtesting.py
   and pure-Python ratios, peak memory) so one command prints everything.

Timings are the best of ``--repeat`` interleaved runs after one warm-up run (numba
compilation and imports are excluded from both sides; interleaving keeps the ratio fair on a
shared machine).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _best_interleaved(fns: dict, repeat: int) -> dict:
    """Best time of each function; runs alternate so CPU contention hits all sides alike."""
    for fn in fns.values():
        fn()  # warm-up: numba compilation, caches
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def raw_vectorbt_sweep(df: pd.DataFrame, grid: list[dict], fees: float, *,
                       range_index: bool = False):
    """The MA-cross sweep written directly against vectorbt, as a vectorbt user would.

    ``range_index=True`` is the tuned variant: vectorbt on pandas 3 converts a tz-aware
    DatetimeIndex to objects in its wrappers, so a RangeIndex is much faster.
    """
    import vectorbt as vbt

    close, open_ = df["close"], df["open"]
    windows = sorted({p["fast"] for p in grid} | {p["slow"] for p in grid})
    ma = vbt.MA.run(close, window=windows).ma.to_numpy()  # each window once
    col = {w: i for i, w in enumerate(windows)}
    fast = ma[:, [col[p["fast"]] for p in grid]]
    slow = ma[:, [col[p["slow"]] for p in grid]]
    with np.errstate(invalid="ignore"):
        long = fast > slow
    prev = np.vstack([np.zeros((1, len(grid)), bool), long[:-1]])
    entries, exits = long & ~prev, ~long & prev
    # next-open execution: decision at t's close fills at t+1's open
    entries = np.vstack([np.zeros((1, len(grid)), bool), entries[:-1]])
    exits = np.vstack([np.zeros((1, len(grid)), bool), exits[:-1]])
    close_wide = pd.DataFrame(np.repeat(close.to_numpy()[:, None], len(grid), axis=1),
                              index=pd.RangeIndex(len(df)) if range_index else df.index)
    pf = vbt.Portfolio.from_signals(close_wide, entries, exits,
                                    price=np.repeat(open_.to_numpy()[:, None], len(grid), axis=1),
                                    fees=fees, init_cash=10_000, freq="1h")
    return pf.value(), pf.orders.records, pf.trades.records, pf.sharpe_ratio()


def bench_ma_sweep(bars: int, n_fast: int, n_slow: int, repeat: int) -> dict:
    from quantlib.backtest import BacktestConfig, run_backtest
    from quantlib.data import load

    df = load(f"sample:seed=1,bars={bars},timeframe=1h")
    fasts = np.unique(np.linspace(2, 50, n_fast).astype(int))
    slows = np.unique(np.linspace(60, 250, n_slow).astype(int))
    grid = [{"fast": int(f), "slow": int(s)} for f in fasts for s in slows]
    config = BacktestConfig(fees=0.001)
    best = _best_interleaved({
        "quantlib": lambda: run_backtest("ma_cross", df, grid, config),
        "raw_dt": lambda: raw_vectorbt_sweep(df, grid, 0.001),
        "raw": lambda: raw_vectorbt_sweep(df, grid, 0.001, range_index=True),
    }, repeat)
    t_ql, t_raw_dt, t_raw = best["quantlib"], best["raw_dt"], best["raw"]
    # same economics on both sides (edge rounding aside, finals agree closely)
    ql_final = run_backtest("ma_cross", df, grid, config).equity.iloc[-1].to_numpy()
    raw_final = raw_vectorbt_sweep(df, grid, 0.001)[0].iloc[-1].to_numpy()
    return {"bars": bars, "combos": len(grid), "quantlib_s": t_ql, "raw_vectorbt_s": t_raw,
            "raw_vectorbt_datetime_s": t_raw_dt, "ratio": t_ql / t_raw,
            "ratio_datetime": t_ql / t_raw_dt,
            "max_rel_diff_final_equity": float(np.max(np.abs(ql_final / raw_final - 1)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--fast", type=int, default=10)
    parser.add_argument("--slow", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-grid", action="store_true", help="skip benchmarks/bench_grid.py")
    args = parser.parse_args()

    ma = bench_ma_sweep(args.bars, args.fast, args.slow, args.repeat)
    print("MA-cross sweep: quantlib.run_backtest vs raw vectorbt (best of "
          f"{args.repeat}, after warm-up)")
    print(f"  bars x combos           : {ma['bars']} x {ma['combos']}")
    print(f"  quantlib                : {ma['quantlib_s']:.3f} s")
    print(f"  raw vectorbt, RangeIndex: {ma['raw_vectorbt_s']:.3f} s  (tuned)")
    print(f"  raw vectorbt, UTC index : {ma['raw_vectorbt_datetime_s']:.3f} s  (as usually written)")
    print(f"  ratio quantlib / tuned  : {ma['ratio']:.2f}x  (target <= 1.2x)")
    print(f"  ratio quantlib / usual  : {ma['ratio_datetime']:.2f}x")
    print(f"  max |final equity diff| : {ma['max_rel_diff_final_equity']:.2e} (relative)")

    grid_path = Path(__file__).with_name("bench_grid.py")
    if grid_path.exists() and not args.skip_grid:
        spec = importlib.util.spec_from_file_location("bench_grid", grid_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print()
        module.run()


if __name__ == "__main__":
    main()
