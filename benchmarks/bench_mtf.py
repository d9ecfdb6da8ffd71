"""Benchmark multi-timeframe sweeps: ``htf_trend`` (ma_cross gated by a 4h trend) against the
same ma_cross sweep without the filter (issue 18's target: within 1.5x).

Usage::

    .venv/bin/python benchmarks/bench_mtf.py            # 50,000 1h bars, 100 combinations
    .venv/bin/python benchmarks/bench_mtf.py --quick    # small sizes (smoke run)

Both sweeps take ``sweep(engine="auto")``, i.e. the fused kernel (``htf_trend``:
:mod:`quantlib.optimize.fused_mtf`), so the ratio is the cost of the filter: resampling and
alignment once per trend timeframe, one trend mask per distinct trend setting, the per-bar gate.
``--vectorbt`` adds the same two sweeps on the broadcast run_backtest path
(``engine="vectorbt"``) for comparison. Times are the median of ``--repeat`` runs after a
warm-up run (numba compilation excluded) and include building the plan (indicator rows, masks).
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
    parser.add_argument("--vectorbt", action="store_true",
                        help="also time both sweeps on the run_backtest path")
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

    def run(kind, params, engine="auto"):
        return lambda: sweep(kind, data, params, progress=False, engine=engine)

    engines = {sweep("htf_trend", data, filtered[:2], progress=False, n_splits=4).engine}
    plain = _timed(run("ma_cross", inner), args.repeat)
    fixed = _timed(run("htf_trend", filtered), args.repeat)
    spread = _timed(run("htf_trend", varied), args.repeat)
    print(f"{args.bars} 1h bars, {len(inner)} combinations, median of {args.repeat} "
          f"(htf_trend engine: {', '.join(sorted(engines))})")
    print(f"  ma_cross fused sweep                        {plain:8.3f} s  "
          f"{args.bars * len(inner) / plain:9.3g} bar x combo/s")
    print(f"  htf_trend fused, one 4h window              {fixed:8.3f} s  {fixed / plain:5.2f}x "
          f"(target <= 1.5x)")
    print(f"  htf_trend fused, 4 trend windows            {spread:8.3f} s  {spread / plain:5.2f}x "
          f"(target <= 1.5x)")
    if args.vectorbt:
        slow_plain = _timed(run("ma_cross", inner, "vectorbt"), args.repeat)
        slow_fixed = _timed(run("htf_trend", filtered, "vectorbt"), args.repeat)
        print(f"  ma_cross on run_backtest                    {slow_plain:8.3f} s  "
              f"({slow_plain / plain:5.1f}x the fused sweep)")
        print(f"  htf_trend on run_backtest, one 4h window    {slow_fixed:8.3f} s  "
              f"({slow_fixed / fixed:5.1f}x the fused htf_trend sweep)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
