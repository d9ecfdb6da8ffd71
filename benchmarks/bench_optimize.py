"""Benchmark the optimizer: fused signal sweeps vs today's sweep vs raw vectorbt, every signal
kind's fused rate, a 3-symbol fused portfolio sweep vs run_backtest, optuna trials/s (fused vs run_backtest trials; 1 vs 2 workers), sweep peak
memory (10,000 combos x 100,000 bars, fused MA-cross and the grid kind).

Usage::

    .venv/bin/python benchmarks/bench_optimize.py            # everything, issue sizes
    .venv/bin/python benchmarks/bench_optimize.py --quick    # small sizes (smoke run)
    .venv/bin/python benchmarks/bench_optimize.py --only fused   # the fused figures alone
    .venv/bin/python benchmarks/bench_optimize.py --only portfolio   # 3-symbol fused portfolio
    .venv/bin/python benchmarks/bench_optimize.py --only memory --mem-bars 100000 --mem-combos 10000

Prints one line per figure. Throughput is measured after a warm-up call (numba compilation is
reported separately); peak memory is the max RSS of a fresh subprocess running only the sweep
(baseline taken after data generation and numba compilation).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _ma_grid(n: int) -> list[dict]:
    """Up to 100 fast x 100 slow windows (the 10,000-combination grid of the memory run)."""
    side = max(1, int(np.ceil(np.sqrt(n))))
    out = [{"fast": 2 + i, "slow": 105 + 3 * j} for i in range(side) for j in range(side)]
    return out[:n]


def _ma_params(n: int) -> list[dict]:
    out = []
    fast, slow = 2, 10
    while len(out) < n:
        out.append({"fast": fast, "slow": slow})
        slow += 1
        if slow > 400:
            fast, slow = fast + 1, fast + 10
    return out


def _grid_params(n: int) -> list[dict]:
    return [{"n_levels": 4 + i % 40, "lower_pct": 0.02 + 0.01 * ((i // 40) % 25),
             "upper_pct": 0.02 + 0.01 * ((i // 1000) % 25)} for i in range(n)]


def bench_sweep(kind: str, bars: int, combos: int) -> None:
    from quantlib.data import load
    from quantlib.optimize.sweep import sweep

    data = load(f"sample:seed=1,bars={bars}")
    params = _ma_params(combos) if kind == "ma_cross" else _grid_params(combos)
    t0 = time.perf_counter()
    sweep(kind, data, params[:2], progress=False, n_splits=4)  # compile / warm caches
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = sweep(kind, data, params, progress=False)
    dt = time.perf_counter() - t0
    print(f"sweep {kind:9s} bars={bars:>7d} combos={combos:>6d}: {dt:7.2f} s  "
          f"{combos / dt:10.1f} combos/s  {bars * combos / dt / 1e6:8.2f} M bar*combo/s  "
          f"(warm-up {warm:.1f} s; DSR {res.dsr:.3f} PBO {res.pbo:.3f})")


REAL_DATA = ROOT.parent / "shared" / "data" / "btc_usdt_1h_2017_2020.csv"

# 90 combinations per kind on the real hours (MA-cross: 10 fast x 9 slow windows).
KIND_PARAMS = {
    "ma_cross": [{"fast": f, "slow": s} for f in range(5, 55, 5) for s in range(60, 240, 20)],
    "ema_cross": [{"fast": f, "slow": s} for f in range(4, 44, 4) for s in range(50, 140, 10)],
    "rsi_reversion": [{"window": w, "lower": lo, "upper": 100.0 - lo}
                      for w in range(4, 34, 2) for lo in (20.0, 25.0, 30.0, 35.0, 40.0, 45.0)],
    "bollinger_reversion": [{"window": w, "k": k} for w in range(10, 100, 10)
                            for k in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0)],
    "donchian_breakout": [{"window": w} for w in range(5, 185, 2)],
    "macd": [{"fast": f, "slow": s, "signal": g} for f in (4, 8, 12) for s in (20, 26, 34, 50, 70)
             for g in (3, 5, 7, 9, 12, 15)],
}


def _real_or_sample(quick: bool):
    from quantlib.data import load, load_ohlcv

    if REAL_DATA.exists() and not quick:
        return load_ohlcv(REAL_DATA), REAL_DATA.name
    why = "--quick" if quick else "real file absent"
    return load("sample:seed=1,bars=21453"), f"synthetic hourly bars ({why})"


def _best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _raw_vectorbt_ma(data, params) -> None:
    """The same 90 MA crosses written directly in vectorbt: its MA indicator, crossover signals,
    Portfolio.from_signals on the closes, then total return and Sharpe per column."""
    import vectorbt as vbt

    close = data["close"]
    fast = vbt.MA.run(close, [p["fast"] for p in params], short_name="fast")
    slow = vbt.MA.run(close, [p["slow"] for p in params], short_name="slow")
    entries = fast.ma_crossed_above(slow)
    exits = fast.ma_crossed_below(slow)
    pf = vbt.Portfolio.from_signals(close, entries, exits, fees=0.001, freq="1h")
    pf.total_return()
    pf.sharpe_ratio()


PATHS = {
    "fused": "fused sweep (engine='fused': metrics, DSR, PBO)",
    "kernel": "fused kernel call (fused_evaluate: metrics + moments)",
    "vectorbt": "today's vectorbt path (engine='vectorbt', run_backtest)",
    "raw": "raw vectorbt (MA.run + from_signals + 2 metrics)",
}


def _path_child(path: str, quick: bool) -> None:
    """One path of the MA-cross comparison in a fresh process: best-of wall time, the CPU time
    of that run (all threads) and peak RSS above the after-warm-up baseline, as JSON."""
    from quantlib.core import get_kind
    from quantlib.optimize.fused import fused_evaluate
    from quantlib.optimize.sweep import sweep

    data, _ = _real_or_sample(quick)
    params = KIND_PARAMS["ma_cross"]
    run = {"fused": lambda p: sweep("ma_cross", data, p, progress=False, engine="fused"),
           "kernel": lambda p: fused_evaluate(get_kind("ma_cross"), data, p),
           "vectorbt": lambda p: sweep("ma_cross", data, p, progress=False, engine="vectorbt"),
           "raw": lambda p: _raw_vectorbt_ma(data, p)}[path]
    run(params[:2])  # compile, warm caches
    base = peak_rss_mb()
    best = (np.inf, np.inf)
    for _ in range(5 if path in ("fused", "kernel") else 2):
        c0, t0 = time.process_time(), time.perf_counter()
        run(params)
        best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
    print(json.dumps({"wall": best[0], "cpu": best[1], "base_mb": base, "peak_mb": peak_rss_mb(),
                      "cells": len(data) * len(params)}))


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         cwd=ROOT)
    if out.returncode:
        print(out.stderr[-3000:])
        raise SystemExit(out.returncode)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_fused(quick: bool) -> None:
    """MA-cross 90 combos: the fused sweep, today's vectorbt path and raw vectorbt side by side
    (each in its own process: time and peak memory), then every kind's fused rate."""
    from quantlib.core import get_kind
    from quantlib.optimize.fused import fused_evaluate

    data, label = _real_or_sample(quick)
    n = len(data)
    load = os.getloadavg()[0]
    print(f"MA-cross {len(KIND_PARAMS['ma_cross'])} combos on {label} ({n:,} bars), load "
          f"average {load:.1f} on {os.cpu_count()} CPUs (wall figures shrink with load; CPU "
          f"time counts every thread, numba's idle spinning included):")
    res = {path: _child("--path-child", path, str(int(quick))) for path in PATHS}
    for path, r in res.items():
        print(f"  {PATHS[path]:58s} {r['wall'] * 1e3:8.1f} ms {r['cells'] / r['wall']:9.3g} "
              f"bar x combo/s  (CPU {r['cpu'] * 1e3:7.1f} ms)  peak RSS {r['peak_mb']:6.0f} MB "
              f"(+{max(r['peak_mb'] - r['base_mb'], 0.0):.0f} MB over the warmed-up process)")
    fused = res["fused"]["wall"]
    print(f"  fused sweep vs today's vectorbt path: {res['vectorbt']['wall'] / fused:.1f}x "
          f"faster; vs raw vectorbt: {res['raw']['wall'] / fused:.1f}x faster")
    cpu = _child("--cpu-child", str(int(quick)))
    for kind, kparams in KIND_PARAMS.items():
        k = get_kind(kind)
        fused_evaluate(k, data, kparams[:2])
        dt = _best_of(lambda k=k, kparams=kparams: fused_evaluate(k, data, kparams))
        print(f"  fused {kind:20s} {len(kparams):3d} combos: {dt * 1e3:8.1f} ms "
              f"{n * len(kparams) / dt:10.3g} bar x combo/s (with metrics); 1 thread: "
              f"{cpu[kind]:9.3g} bar x combo per CPU-second")
    print(f"  load average now {os.getloadavg()[0]:.1f}; the 1-thread CPU-time rates do not "
          f"count time waiting for a core (numba's thread pool spins, so 2-thread CPU time is "
          f"not comparable)")


def _portfolio_data(quick: bool) -> tuple[dict, str]:
    """BTC/ETH/SOL 1h 2022-2023 (their common hours), or three synthetic symbols."""
    from quantlib.data import load, load_ohlcv

    files = [REAL_DATA.parent / f"{s}_usdt_1h_2022_2023.csv" for s in ("btc", "eth", "sol")]
    if not quick and all(f.exists() for f in files):
        return ({f.name[:3].upper(): load_ohlcv(f) for f in files},
                "BTC/ETH/SOL 1h 2022-2023")
    why = "--quick" if quick else "real files absent"
    return ({f"S{k}": load(f"sample:seed={k + 1},bars=10000") for k in range(3)},
            f"3 synthetic symbols ({why})")


def bench_portfolio(quick: bool) -> None:
    """MA-cross 90 combos on a 3-symbol shared-cash portfolio: the fused portfolio kernel and
    sweep against run_backtest (vectorbt's grouped from_signals) on the same combinations."""
    from quantlib.backtest import run_backtest
    from quantlib.backtest.engine import as_frames
    from quantlib.core import get_kind
    from quantlib.optimize.fused import fused_evaluate
    from quantlib.optimize.fused_portfolio import portfolio_plan
    from quantlib.optimize.sweep import sweep

    data, label = _portfolio_data(quick)
    data = as_frames(data)  # aligned on common bars once, outside the timings
    params = KIND_PARAMS["ma_cross"]
    n = len(next(iter(data.values())))
    kind = get_kind("ma_cross")
    fused_evaluate(kind, data, params[:2])  # compile / load the cache
    kernel = _best_of(lambda: fused_evaluate(kind, data, params))
    plan = portfolio_plan(kind, data, params)
    call = _best_of(plan.evaluate)
    fused = _best_of(lambda: sweep("ma_cross", data, params, progress=False, engine="fused"))
    run_backtest("ma_cross", data, params[:2])
    slow = _best_of(lambda: run_backtest("ma_cross", data, params), repeats=2)
    cells = n * len(params)
    print(f"3-symbol portfolio MA-cross {len(params)} combos on {label} ({n:,} bars each), load "
          f"average {os.getloadavg()[0]:.1f}:")
    for what, dt in (("fused portfolio kernel call (built plan: metrics + moments)", call),
                     ("fused_evaluate (+ data checks, indicator rows)", kernel),
                     ("fused portfolio sweep (engine='fused': + DSR, PBO)", fused),
                     ("run_backtest (vectorbt, shared cash, all metrics)", slow)):
        print(f"  {what:58s} {dt * 1e3:9.1f} ms {cells / dt:9.3g} bar x combo/s "
              f"({3 * cells / dt:9.3g} symbol-bar x combo/s)")
    print(f"  fused portfolio sweep vs run_backtest: {slow / fused:.1f}x faster")


def _cpu_child(quick: bool) -> None:
    """Every kind's fused_evaluate on one numba thread: bar x combo per CPU-second (best of 5),
    a figure the other jobs on the machine distort much less than wall time."""
    from quantlib.core import get_kind
    from quantlib.optimize.fused import fused_evaluate

    data, _ = _real_or_sample(quick)
    out = {}
    for kind, kparams in KIND_PARAMS.items():
        k = get_kind(kind)
        fused_evaluate(k, data, kparams[:2])
        best = np.inf
        for _ in range(5):
            c0 = time.process_time()
            fused_evaluate(k, data, kparams)
            best = min(best, time.process_time() - c0)
        out[kind] = len(data) * len(kparams) / best
    print(json.dumps(out))


def bench_optuna_signal(trials: int) -> None:
    """optuna on ma_cross (real hours), in memory, 1 worker: TPE trials per second with every
    trial on run_backtest (as before the fused kernel) and on the fused kernel; random-sampler
    trials one by one (batch_size=1) and batched (one fused call per batch)."""
    from quantlib.optimize import study as study_mod

    data, label = _real_or_sample(False)
    space = {"fast": (2, 60), "slow": (61, 300)}

    def run(sampler: str, n: int, fused: bool = True, batch_size: int = 1) -> float:
        original = study_mod.Objective._fused
        if not fused:  # the trial path as it was: every trial through run_backtest
            study_mod.Objective._fused = lambda self: False
        try:
            study_mod.run_study("ma_cross", data, space=space, sampler="random", n_trials=2,
                                storage="memory", seed=0, batch_size=batch_size)
            t0 = time.perf_counter()
            study_mod.run_study("ma_cross", data, space=space, sampler=sampler, n_trials=n,
                                storage="memory", seed=0, batch_size=batch_size)
            return n / (time.perf_counter() - t0)
        finally:
            study_mod.Objective._fused = original

    before, after = run("tpe", trials, fused=False), run("tpe", trials)
    print(f"optuna TPE ma_cross on {label}, {trials} trials in memory: run_backtest trials "
          f"{before:6.2f} trials/s, fused trials {after:6.2f} trials/s = {after / before:.1f}x")
    n_random = 5 * trials
    one, batched = run("random", n_random), run("random", n_random, batch_size=256)
    print(f"optuna random ma_cross, {n_random} trials: one by one (fused) {one:7.2f} trials/s, "
          f"batched by 256 {batched:7.2f} trials/s = {batched / one:.1f}x; vs TPE on "
          f"run_backtest: {batched / before:.0f}x")


def bench_optuna(trials: int, workers: int) -> float:
    from quantlib.data import load
    from quantlib.optimize.study import run_study

    data = load("sample:seed=1,bars=5000")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        run_study("grid", data, space={"n_levels": (4, 40), "lower_pct": (0.02, 0.3)},
                  sampler="random", n_trials=2, storage="memory")  # warm-up in this process
        t0 = time.perf_counter()
        res = run_study("grid", data, space={"n_levels": (4, 40), "lower_pct": (0.02, 0.3)},
                        sampler="tpe", n_trials=trials, storage=url, n_workers=workers,
                        study_name=f"bench-{uuid.uuid4().hex}")
        dt = time.perf_counter() - t0
    rate = trials / dt
    print(f"optuna tpe grid kind, SQLite, {workers} worker(s): {trials} trials in {dt:6.2f} s = "
          f"{rate:6.2f} trials/s (includes worker start-up; {res.n_trials} trials stored)")
    return rate


def peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: Linux carries a forking parent's ru_maxrss over into the child.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory_child(kind: str, bars: int, combos: int, budget: float) -> None:
    from quantlib.data import load
    from quantlib.optimize.sweep import FUSED_CHUNK, chunk_size_for, sweep

    data = load(f"sample:seed=1,bars={bars}")
    params = _ma_grid(combos) if kind == "ma_cross" else _grid_params(combos)
    # Compile first: numba/LLVM compilation alone costs a few hundred MB of RSS.
    sweep(kind, data.iloc[:2000], params[:2], progress=False, n_splits=4)
    base = peak_rss_mb()
    t0 = time.perf_counter()
    res = sweep(kind, data, params, progress=False, memory_budget_mb=budget)
    dt = time.perf_counter() - t0
    peak = peak_rss_mb()
    chunk = chunk_size_for(bars, budget) if res.engine != "fused" else FUSED_CHUNK
    print(json.dumps({"kind": kind, "bars": bars, "combos": combos, "seconds": dt,
                      "baseline_mb": base, "peak_mb": peak, "chunk": chunk,
                      "bytes_per_cell": (peak - base) * 2**20 / (bars * min(chunk, combos)),
                      "dsr": res.dsr, "pbo": res.pbo, "engine": res.engine}))


def bench_memory(kind: str, bars: int, combos: int, budget: float) -> None:
    out = subprocess.run([sys.executable, __file__, "--memory-child", kind, str(bars),
                          str(combos), str(budget)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        print(out.stderr[-3000:])
        raise SystemExit(out.returncode)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    grew = r["peak_mb"] - r["baseline_mb"]
    in_flight = (f"measured {r['bytes_per_cell']:.0f} B per bar x combo in flight" if grew > 0
                 else "the sweep never rose above the compile-time high-water mark")
    print(f"memory {r['kind']} sweep ({r['engine']}) {r['combos']} combos x {r['bars']} bars, "
          f"DSR {r['dsr']:.3f} PBO {r['pbo']:.3f}, budget {budget:.0f}"
          f" MB (chunks of {r['chunk']}): peak RSS {r['peak_mb']:.0f} MB (after compiling: "
          f"{r['baseline_mb']:.0f} MB) in {r['seconds']:.1f} s = "
          f"{r['combos'] * r['bars'] / r['seconds'] / 1e6:.1f} M bar*combo/s; {in_flight}; "
          f"the full equity matrix would be {r['bars'] * r['combos'] * 8 / 2**30:.1f} GiB "
          f"(issue 22's targets for the fused MA-cross: < 60 s, < 1024 MB; load average now "
          f"{os.getloadavg()[0]:.1f})")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--cpu-child":
        os.environ["NUMBA_NUM_THREADS"] = "1"  # read when numba is first imported
        _cpu_child(bool(int(sys.argv[2])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--path-child":
        _path_child(sys.argv[2], bool(int(sys.argv[3])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        _memory_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["fused", "portfolio", "sweep", "optuna", "memory"])
    ap.add_argument("--mem-kind", default="both",
                    help="ma_cross (fused), grid, or both (default)")
    ap.add_argument("--mem-bars", type=int, default=100_000)
    ap.add_argument("--mem-combos", type=int, default=10_000)
    ap.add_argument("--budget-mb", type=float, default=512)
    args = ap.parse_args()
    bars, combos, trials = (5_000, 100, 12) if args.quick else (20_000, 500, 200)
    print("(figures depend on machine load: compare the rows of one run)")
    if args.only in (None, "fused"):
        bench_fused(args.quick)
    if args.only in (None, "fused", "portfolio"):
        bench_portfolio(args.quick)
    if args.only in (None, "optuna", "fused"):
        bench_optuna_signal(12 if args.quick else 100)
    if args.only in (None, "sweep"):
        bench_sweep("ma_cross", bars, combos)
        bench_sweep("grid", bars, combos)
    if args.only in (None, "optuna"):
        one = bench_optuna(trials, 1)
        two = bench_optuna(trials, 2)
        print(f"optuna 2 workers / 1 worker throughput ratio: {two / one:.2f}")
    if args.only in (None, "memory"):
        mem_bars, mem_combos = (20_000, 500) if args.quick else (args.mem_bars, args.mem_combos)
        for kind in (("ma_cross", "grid") if args.mem_kind == "both" else (args.mem_kind,)):
            bench_memory(kind, mem_bars, mem_combos, args.budget_mb)


if __name__ == "__main__":
    main()
