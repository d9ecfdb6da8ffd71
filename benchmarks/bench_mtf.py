"""Benchmark multi-timeframe sweeps: ``htf_trend`` (ma_cross gated by a 4h trend) against the
same ma_cross sweep without the filter (issue 18's target: within 1.5x).

Usage::

    .venv/bin/python benchmarks/bench_mtf.py            # 50,000 1h bars, 100 combinations
    .venv/bin/python benchmarks/bench_mtf.py --quick    # small sizes (smoke run)

Both sweeps go through the same engine (``engine="vectorbt"``: the broadcast run_backtest path)
so the ratio is the cost of the filter (resampling + alignment once per chunk, one 4h average
per trend window, the gate). A second line compares with the fused kernel, which serves the
built-in kinds but not yet ``htf_trend``. Times are the median of ``--repeat`` runs after a
warm-up run (numba compilation excluded).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _grid(n: int) -> list[dict]:
    side = max(1, int(round(n ** 0.5)))
    return [{"fast": 3 + 2 * i, "slow": 40 + 10 * j} for i in range(side) for j in range(side)][:n]


def _timed(fn, repeat: int) -> float:
    fn()  # warm-up: compilation and imports
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=50_000)
    parser.add_argument("--combos", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.bars, args.combos, args.repeat = 5_000, 16, 1

    from quantlib.data import load
    from quantlib.optimize.sweep import sweep

    data = load(f"sample:bars={args.bars},timeframe=1h,seed=5")
    inner = _grid(args.combos)
    filtered = [{"inner_kind": "ma_cross", "inner_params": p, "trend_timeframe": "4h",
                 "trend_kind": "ma", "trend_window": 20} for p in inner]
    windows = (10, 20, 40, 80)
    varied = [{**f, "trend_window": windows[i % len(windows)]} for i, f in enumerate(filtered)]

    def run(kind, params, engine="vectorbt"):
        return lambda: sweep(kind, data, params, progress=False, engine=engine)

    plain = _timed(run("ma_cross", inner), args.repeat)
    fixed = _timed(run("htf_trend", filtered), args.repeat)
    spread = _timed(run("htf_trend", varied), args.repeat)
    fused = _timed(run("ma_cross", inner, "auto"), args.repeat)
    print(f"{args.bars} 1h bars, {len(inner)} combinations, median of {args.repeat}")
    print(f"  ma_cross sweep (run_backtest path)          {plain:8.3f} s")
    print(f"  htf_trend, one 4h window                    {fixed:8.3f} s  {fixed / plain:5.2f}x "
          f"(target <= 1.5x)")
    print(f"  htf_trend, 4 trend windows over the combos  {spread:8.3f} s  {spread / plain:5.2f}x")
    print(f"  ma_cross on the fused kernel                {fused:8.3f} s  (htf_trend has no fused "
          f"path: {fixed / fused:5.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
