"""Start-up wall times of the command line, each a fresh process, and what ``import vectorbt``
costs alone.

Commands timed (the console script ``.venv/bin/quantlib``, as a user runs it):

- ``quantlib --help``
- ``quantlib backtest --strategy SPEC --data file:FILE`` on 10,000 synthetic hourly bars
  (``ma_cross``, a signal kind: simulated on the project's own order and stop rules,
  ``quantlib/backtest/rule_engine.py``; vectorbt is not imported)
- ``quantlib data validate FILE`` on the same file

and, for scale, an interpreter that imports nothing and one that runs ``import vectorbt``. Each
is run once untimed (disk and numba caches warm), then ``--repeats`` times; the table shows the
median and the fastest wall time, and the median CPU time (user + system) of the process, which
other load on the machine inflates much less than the wall time. A failing command stops the
script.

Usage::

    .venv/bin/python benchmarks/bench_startup.py [--repeats 5]

Targets (issue 16): ``--help`` < 1 s, ``backtest --strategy`` < 5 s, ``data validate`` < 2 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_BARS = 10_000
TARGETS_S = {"quantlib --help": 1.0, "quantlib backtest --strategy": 5.0,
             "quantlib data validate": 2.0}


def _fixtures(folder: Path) -> tuple[Path, Path]:
    """A 10,000-bar CSV and a ma_cross spec in ``folder``."""
    from quantlib.data import save_ohlcv, synthetic_ohlcv
    from quantlib.strategy.spec import StrategySpec, save_spec

    data = save_ohlcv(synthetic_ohlcv(n_bars=N_BARS, seed=1).ohlcv, folder / "bars.csv")
    spec = StrategySpec(name="bench_startup", kind="ma_cross", params={"fast": 10, "slow": 40},
                        symbols=["BTC/USD"], timeframe="1h")
    return data, save_spec(spec, folder / "spec.json")


def _times(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit code {done.returncode}\n{done.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _commands(data: Path, spec: Path) -> dict[str, list[str]]:
    script = str(Path(sys.executable).with_name("quantlib"))
    return {
        "python (imports nothing)": [sys.executable, "-c", "pass"],
        "quantlib --help": [script, "--help"],
        "quantlib backtest --strategy": [script, "backtest", "--strategy", str(spec), "--data",
                                         f"file:{data}"],
        "quantlib data validate": [script, "data", "validate", str(data)],
        "python -c 'import vectorbt'": [sys.executable, "-c", "import vectorbt"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        commands = _commands(*_fixtures(Path(tmp)))
        print(f"bench_startup: {N_BARS:,} bars, {args.repeats} runs each (fresh processes), "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"{'command':<32}{'median s':>10}{'fastest s':>11}{'cpu s':>8}{'target s':>10}")
        for label, cmd in commands.items():
            _times(cmd)  # warm-up: caches filled, not counted
            walls, cpus = zip(*(_times(cmd) for _ in range(args.repeats)), strict=True)
            wall, target = statistics.median(walls), TARGETS_S.get(label)
            verdict = "" if target is None else (
                f"{'< ' + str(target):>10}  {'ok' if wall < target else 'MISSED'}")
            print(f"{label:<32}{wall:>10.2f}{min(walls):>11.2f}{statistics.median(cpus):>8.2f}"
                  f"{verdict}")


if __name__ == "__main__":
    main()
