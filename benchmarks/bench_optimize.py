"""Benchmark the optimizer: sweep throughput, optuna trials/s (1 vs 2 workers), sweep peak memory.

Usage::

    .venv/bin/python benchmarks/bench_optimize.py            # everything, issue sizes
    .venv/bin/python benchmarks/bench_optimize.py --quick    # small sizes (smoke run)
    .venv/bin/python benchmarks/bench_optimize.py --only memory --mem-bars 100000 --mem-combos 10000

Prints one line per figure. Throughput is measured after a warm-up call (numba compilation is
reported separately); peak memory is the max RSS of a fresh subprocess running only the sweep
(baseline taken after data generation and numba compilation).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


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
    from quantlib.optimize.sweep import chunk_size_for, sweep

    data = load(f"sample:seed=1,bars={bars}")
    params = _ma_params(combos) if kind == "ma_cross" else _grid_params(combos)
    # Compile first: numba/LLVM compilation alone costs a few hundred MB of RSS.
    sweep(kind, data.iloc[:2000], params[:2], progress=False, n_splits=4)
    base = peak_rss_mb()
    t0 = time.perf_counter()
    res = sweep(kind, data, params, progress=False, memory_budget_mb=budget)
    dt = time.perf_counter() - t0
    peak = peak_rss_mb()
    chunk = chunk_size_for(bars, budget)
    print(json.dumps({"kind": kind, "bars": bars, "combos": combos, "seconds": dt,
                      "baseline_mb": base, "peak_mb": peak, "chunk": chunk,
                      "bytes_per_cell": (peak - base) * 2**20 / (bars * min(chunk, combos)),
                      "dsr": res.dsr, "pbo": res.pbo}))


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
    print(f"memory {r['kind']} sweep {r['combos']} combos x {r['bars']} bars, budget {budget:.0f}"
          f" MB (chunks of {r['chunk']}): peak RSS {r['peak_mb']:.0f} MB (after compiling: "
          f"{r['baseline_mb']:.0f} MB) in {r['seconds']:.1f} s = "
          f"{r['combos'] * r['bars'] / r['seconds'] / 1e6:.1f} M bar*combo/s; {in_flight}; "
          f"the full equity matrix would be {r['bars'] * r['combos'] * 8 / 2**30:.1f} GiB")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        _memory_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["sweep", "optuna", "memory"])
    ap.add_argument("--mem-kind", default="grid", help="grid (default) or ma_cross (slower)")
    ap.add_argument("--mem-bars", type=int, default=100_000)
    ap.add_argument("--mem-combos", type=int, default=10_000)
    ap.add_argument("--budget-mb", type=float, default=512)
    args = ap.parse_args()
    bars, combos, trials = (5_000, 100, 12) if args.quick else (20_000, 500, 200)
    if args.only in (None, "sweep"):
        bench_sweep("ma_cross", bars, combos)
        bench_sweep("grid", bars, combos)
    if args.only in (None, "optuna"):
        one = bench_optuna(trials, 1)
        two = bench_optuna(trials, 2)
        print(f"optuna 2 workers / 1 worker throughput ratio: {two / one:.2f}")
    if args.only in (None, "memory"):
        mem_bars, mem_combos = (20_000, 500) if args.quick else (args.mem_bars, args.mem_combos)
        bench_memory(args.mem_kind, mem_bars, mem_combos, args.budget_mb)


if __name__ == "__main__":
    main()
