"""Per-bar latency (closed candle -> order intent) and RSS of the paper runner, per kind.

Run: ``.venv/bin/python benchmarks/bench_live.py [--bars 2000]``. Each kind runs twice in fresh
processes, replaying synthetic bars through the paper broker:

- a latency process drives ``LiveRunner`` directly and prints p50/p99 of the decision part of
  each step (broker settlement at the open, bounded-window signal, risk, intent) and the mean of
  the whole step including the SQLite commit;
- an RSS process runs the real command line, ``quantlib live run --mode paper --feed
  replay:FILE``, and reports its peak RSS (VmHWM) at exit: what a trader's machine sees.

The floor for comparison: a process that imports only numpy, pandas (which loads pyarrow) and
numba and calls one cached numba kernel.

Targets (issue 7): p99 <= 1 ms, RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Unlike ``getrusage``'s ru_maxrss, which Linux carries
    over from a forking parent across exec, VmHWM belongs to this process alone."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _xgb_params(df, tmp: Path) -> dict:
    from quantlib.ml.artifacts import save_model
    from quantlib.ml.features import FeatureConfig
    from quantlib.ml.model import XGBSignalClassifier, build_dataset
    from quantlib.ml.strategy import make_params

    ds = build_dataset(df.iloc[:1000], FeatureConfig(), horizon=4)
    clf = XGBSignalClassifier(n_estimators=200, max_depth=4, early_stopping_rounds=None
                              ).fit(ds.X, ds.y)
    return make_params(save_model(clf.booster_, tmp / "m.model.json"), FeatureConfig(),
                       entry=0.5, exit=0.48, memory=24)


def _child(kind: str, params_json: str, bars: int, tmp: str) -> None:
    from quantlib.data import synthetic_ohlcv
    from quantlib.live.brokers import PaperBroker
    from quantlib.live.feeds import ReplayFeed
    from quantlib.live.logs import JsonLogger
    from quantlib.live.runner import LiveRunner
    from quantlib.live.state import StateStore
    from quantlib.strategy.spec import StrategySpec

    df = synthetic_ohlcv(n_bars=bars, seed=1).ohlcv
    spec = StrategySpec(name=f"bench_{kind}", kind=kind, params=json.loads(params_json),
                        symbols=["BTC/USD"])
    store = StateStore(Path(tmp) / f"{kind}.db")
    runner = LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(df),
                        logger=JsonLogger(io.StringIO()))
    t0 = time.perf_counter()
    runner.run()
    wall = time.perf_counter() - t0
    lat = np.array(runner.latencies_ns[50:]) / 1e6  # skip first-call warm-up
    print(json.dumps({"kind": kind, "bars": bars, "p50_ms": float(np.percentile(lat, 50)),
                      "p99_ms": float(np.percentile(lat, 99)),
                      "step_ms_mean": 1e3 * wall / bars,
                      "rss_mb": peak_rss_mb()}))


def _cli_child(argv_json: str) -> None:
    """Run ``quantlib`` with these arguments; print this process's peak RSS when it exits."""
    import atexit

    def report() -> None:
        status = {line.split(":")[0]: int(line.split()[1]) / 1024
                  for line in Path("/proc/self/status").read_text().splitlines()
                  if line.startswith(("RssAnon:", "RssFile:"))}
        print(json.dumps({"rss_mb": peak_rss_mb(), "anon_mb": status.get("RssAnon", 0.0),
                          "file_mb": status.get("RssFile", 0.0)}), flush=True)

    atexit.register(report)
    sys.argv = ["quantlib", *json.loads(argv_json)]
    from quantlib.cli import main

    main()


def _cli_rss(kind: str, params: dict, df, tmp: Path) -> dict:
    from quantlib.data import save_ohlcv
    from quantlib.strategy.spec import StrategySpec

    bars = tmp / "bars.parquet"
    if not bars.exists():
        save_ohlcv(df, bars)
    spec_path = tmp / f"cli_{kind}.json"
    spec_path.write_text(StrategySpec(name=f"bench_{kind}", kind=kind, params=params,
                                      symbols=["BTC/USD"]).model_dump_json())
    argv = ["live", "run", "--strategy", str(spec_path), "--mode", "paper",
            "--feed", f"replay:{bars}", "--state", str(tmp / f"cli_{kind}.db")]
    out = subprocess.run([sys.executable, __file__, "--cli", json.dumps(argv)],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _floor_rss() -> float:
    code = ("import numpy as np, pandas, numba\n"
            "from quantlib.backtest import indicators_nb as nb\n"
            "from benchmarks.bench_live import peak_rss_mb\n"
            "nb.rolling_mean_nb(np.ones(10), 3)\n"
            "print(peak_rss_mb())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    return float(out.stdout.split()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--cli":
        _cli_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=2000)
    args = parser.parse_args()
    from quantlib.data import synthetic_ohlcv

    df = synthetic_ohlcv(n_bars=args.bars, seed=1).ohlcv
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("ma_cross", {"fast": 10, "slow": 50}), ("grid", {"n_levels": 10}),
                 ("xgb_classifier", _xgb_params(df, Path(tmp)))]
        for kind, params in cases:
            out = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(params),
                                  str(args.bars), tmp], capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                sys.exit(out.stderr[-3000:])
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            rows[-1].update(_cli_rss(kind, params, df, Path(tmp)))
    print(f"{'kind':16s} {'bars':>6s} {'p50 ms':>8s} {'p99 ms':>8s} {'step ms':>8s} "
          f"{'RSS MB':>7s}  targets p99 <= 1 ms, RSS < 200 MB (RSS: `quantlib live run`)")
    for r in rows:
        print(f"{r['kind']:16s} {r['bars']:6d} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} "
              f"{r['step_ms_mean']:8.3f} {r['rss_mb']:7.0f}  p99/target={r['p99_ms']:.2f}x "
              f"RSS/target={r['rss_mb'] / 200:.2f}x (at exit: {r['anon_mb']:.0f} MB private, "
              f"{r['file_mb']:.0f} MB mapped files)")
    print(f"RSS floor of numpy + pandas + numba with one cached kernel: {_floor_rss():.0f} MB")


if __name__ == "__main__":
    main()
