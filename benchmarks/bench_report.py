"""Wall time of the full report (``quantlib report`` = ``make report``) cold and warm.

Cold: numba's on-disk cache points at a fresh empty directory (``NUMBA_CACHE_DIR``), so every
``@njit(cache=True)`` kernel compiles. Warm: the same command again with that cache filled.
Each run is a separate ``quantlib report`` process writing to a temporary reports directory.

Besides wall time, each run's CPU seconds (the report process and every kernel it ran, from
``getrusage(RUSAGE_CHILDREN)``) and the load average around it are printed: on a shared 2-core
machine the wall time mostly measures the other processes, the CPU time much less so.

Usage::

    .venv/bin/python benchmarks/bench_report.py                 # full config, default data
    .venv/bin/python benchmarks/bench_report.py --fast          # notebooks' fast defaults
    .venv/bin/python benchmarks/bench_report.py --skip-missing  # while notebooks are missing

Targets (issue 8): < 180 s cold, < 60 s warm.
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLD_TARGET_S, WARM_TARGET_S = 180.0, 60.0
_CPU: dict[str, tuple[float, float, float]] = {}  # label -> (CPU s, 1-min load before, after)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(label: str, args: list[str], out: Path, numba_cache: Path) -> tuple[float, dict]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache)}
    cmd = [sys.executable, "-m", "quantlib.cli", "report", "--out", str(out), *args]
    load_before, cpu_before = os.getloadavg()[0], _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    # kernels are waited for by the report process, so their CPU time is in its rusage
    _CPU[label] = (_children_cpu() - cpu_before, load_before, os.getloadavg()[0])
    runs = sorted((p for p in out.iterdir() if (p / "run.json").exists()),
                  key=lambda p: p.stat().st_mtime)
    if not runs:
        sys.exit(f"{label}: no run was written (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    manifest = json.loads((runs[-1] / "run.json").read_text())
    if proc.returncode != 0:
        print(f"{label}: exit code {proc.returncode} (failures are timed anyway)\n"
              f"{proc.stdout[-2000:]}")
    return wall, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="notebooks/reports.yaml")
    parser.add_argument("--data", default=None, help="data source (default: the config's)")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--skip-missing", action="store_true")
    parser.add_argument("--only", action="append", default=[])
    opts = parser.parse_args()
    args = ["--config", opts.config]
    args += ["--data", opts.data] if opts.data else []
    args += ["--fast"] if opts.fast else []
    args += ["--skip-missing"] if opts.skip_missing else []
    for name in opts.only:
        args += ["--only", name]

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        tmp = Path(tmp)
        numba_cache = tmp / "numba-cache"
        numba_cache.mkdir()
        cold, cold_manifest = _run("cold", args, tmp / "reports", numba_cache)
        warm, warm_manifest = _run("warm", args, tmp / "reports", numba_cache)
        cached = sum(1 for _ in numba_cache.rglob("*.nbi"))

    print(f"bench_report: {' '.join(args)}")
    print(f"{'notebook/params':<32}{'status':>8}{'cold s':>10}{'warm s':>10}")
    warm_by_key = {(e["notebook"], e["param_set"]): e for e in warm_manifest["entries"]}
    for entry in cold_manifest["entries"]:
        key = (entry["notebook"], entry["param_set"])
        other = warm_by_key.get(key, {})
        print(f"{'/'.join(key):<32}{entry['status']:>8}{entry.get('duration_s', 0):>10.1f}"
              f"{other.get('duration_s', 0):>10.1f}")
    print(f"total wall  cold {cold:7.1f} s (target < {COLD_TARGET_S:.0f})  "
          f"warm {warm:7.1f} s (target < {WARM_TARGET_S:.0f})  cold/warm {cold / warm:.2f}x")
    for label in ("cold", "warm"):
        cpu, before, after = _CPU[label]
        print(f"{label}: {cpu:7.1f} CPU s (report process + kernels); 1-min load average "
              f"{before:.1f} before, {after:.1f} after ({os.cpu_count()} CPUs)")
    print(f"numba cache entries written on the cold run: {cached}")


if __name__ == "__main__":
    main()
