"""Per-bar latency (closed candle -> order intent) and RSS of the paper runner.

Run: ``.venv/bin/python benchmarks/bench_live.py [--bars 2000]``. Prints p50/p99 of the decision
part of each step (broker settlement at the open, bounded-window signal, risk, intent) and the
whole step including the SQLite commit, plus the process's peak RSS.
"""

from __future__ import annotations

import argparse
import io
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from quantlib.data import synthetic_ohlcv
from quantlib.live.brokers import PaperBroker
from quantlib.live.feeds import ReplayFeed
from quantlib.live.logs import JsonLogger
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from quantlib.strategy.spec import StrategySpec


def _xgb_params(df, tmp: Path) -> dict:
    from quantlib.ml.artifacts import save_model
    from quantlib.ml.features import FeatureConfig
    from quantlib.ml.model import XGBSignalClassifier, build_dataset
    from quantlib.ml.strategy import make_params

    ds = build_dataset(df.iloc[:1000], FeatureConfig(), horizon=4)
    clf = XGBSignalClassifier(n_estimators=50, max_depth=3).fit(ds.X, ds.y)
    return make_params(save_model(clf.booster_, tmp / "m.model.json"), FeatureConfig(),
                       entry=0.5, exit=0.48, memory=24)


def bench(kind: str, params: dict, df, tmp: Path) -> dict:
    spec = StrategySpec(name=f"bench_{kind}", kind=kind, params=params, symbols=["BTC/USD"])
    store = StateStore(tmp / f"{kind}.db")
    runner = LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(df),
                        logger=JsonLogger(io.StringIO()))
    t0 = time.perf_counter()
    runner.run()
    wall = time.perf_counter() - t0
    lat = np.array(runner.latencies_ns[50:]) / 1e6  # skip numba/first-call warm-up
    return {"kind": kind, "bars": len(df), "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "step_ms_mean": 1e3 * wall / len(df)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=2000)
    args = parser.parse_args()
    df = synthetic_ohlcv(n_bars=args.bars, seed=1).ohlcv
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = [bench("ma_cross", {"fast": 10, "slow": 50}, df, tmp),
                bench("grid", {"n_levels": 10}, df, tmp),
                bench("xgb_classifier", _xgb_params(df, tmp), df, tmp)]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'kind':16s} {'bars':>6s} {'p50 ms':>8s} {'p99 ms':>8s} {'step ms':>8s}  target p99<=1ms")
    for r in rows:
        print(f"{r['kind']:16s} {r['bars']:6d} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} "
              f"{r['step_ms_mean']:8.3f}  p99/target={r['p99_ms']:.2f}x")
    print(f"peak RSS {rss_mb:.0f} MB (target < 200 MB, ratio {rss_mb / 200:.2f})")


if __name__ == "__main__":
    main()
