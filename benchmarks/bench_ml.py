"""Machine-learning benchmarks (a script, not a test): training time and per-bar inference.

    .venv/bin/python benchmarks/bench_ml.py [--bars 4000] [--estimators 200] [--repeat 300]

1. Feature matrix on the whole series (finite-window numba kernels).
2. XGBoost training (``XGBSignalClassifier``, early stopping on the inner validation split, and
   a fixed number of rounds) with 1 and 2 threads.
3. Walk-forward evaluation (3 purged folds, XGBoost + logistic regression + buy-and-hold).
4. Live per-bar inference: ``xgb_classifier`` signal on a bounded window of ``warmup + 1``
   bars (what the live runner holds): features + the numba tree evaluator (the kind predicts
   with it in backtest and live alike) + threshold rule, wall clock (median) and CPU time,
   against the 1 ms budget; plus its parts, and XGBoost's own ``inplace_predict`` for scale.

Timings exclude imports and numba compilation (one warm-up call first). Wall times on a shared
machine include waiting for the CPU; the CPU-time column is the cost of the code itself.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _per_call(fn, repeat: int) -> tuple[float, float]:
    """(median wall seconds, mean CPU seconds) per call after one warm-up call."""
    fn()
    walls = []
    cpu0 = time.process_time()
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), (time.process_time() - cpu0) / repeat


def _once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=4000)
    parser.add_argument("--estimators", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()

    from quantlib.core.ml_features import feature_array
    from quantlib.core.model_files import load_tree_model
    from quantlib.core.registry import get_kind
    from quantlib.data import load
    from quantlib.ml import FeatureConfig, XGBSignalClassifier, build_dataset, make_params
    from quantlib.ml.artifacts import load_booster
    from quantlib.ml.evaluate import walk_forward_evaluate

    df = load(f"sample:seed=1,bars={args.bars}")
    cfg = FeatureConfig()
    print(f"data: {len(df)} synthetic 1h bars; {len(cfg.names)} features, window {cfg.window}")

    wall, cpu = _per_call(lambda: feature_array(df, cfg), 5)
    print(f"features, whole series: {wall * 1e3:8.2f} ms  ({wall / len(df) * 1e6:.2f} us/bar)")

    ds = build_dataset(df, cfg, horizon=12)
    print(f"training rows: {len(ds.X)}")
    models = {}
    for n_jobs in (1, 2):
        for label, extra in (("early stopping", {}),
                             ("fixed rounds", {"early_stopping_rounds": None})):
            est = XGBSignalClassifier(n_estimators=args.estimators, n_jobs=n_jobs,
                                      validation_gap=12, **extra)
            seconds = _once(lambda est=est: est.fit(ds.X, ds.y))
            models[(n_jobs, label)] = est
            print(f"train n_jobs={n_jobs} {label:15s}: {seconds:7.3f} s "
                  f"({est.best_iteration_ + 1} trees kept)")

    seconds = _once(lambda: walk_forward_evaluate(df, cfg, horizon=12, n_splits=3,
                                                  model_params={"n_estimators": args.estimators}))
    print(f"walk-forward, 3 folds, 3 models (n_jobs=2): {seconds:7.2f} s")

    # Live inference uses the fixed-rounds model so the tree count is realistic.
    model = models[(1, "fixed rounds")]
    out = Path(tempfile.mkdtemp(prefix="quantlib_bench_ml_"))
    ref = model.save(str(out / "bench.model.json"))
    params = make_params(ref, cfg, entry=0.52, exit=0.5, memory=24)
    kind = get_kind("xgb_classifier")
    warm = kind.warmup(params)
    window = df.iloc[-(warm + 1):]
    booster = load_booster(ref.path, ref.sha256)
    trees = load_tree_model(ref.path, ref.sha256)
    X_window = feature_array(window, cfg)
    row = np.ascontiguousarray(X_window[-1:])
    rows = np.ascontiguousarray(X_window[-24:])
    print(f"\nlive window: {len(window)} bars (warmup {warm}); model {model.best_iteration_ + 1} "
          f"trees")
    parts = {
        "signal on bounded window (total)": lambda: kind.signals(window, params),
        "  features on the window": lambda: feature_array(window, cfg),
        "  numba trees (what trades), 24 rows": lambda: trees.predict_proba(rows),
        "  xgboost inplace_predict, 24 rows": lambda: booster.inplace_predict(rows),
        "  xgboost inplace_predict, 1 row": lambda: booster.inplace_predict(row),
    }
    for name, fn in parts.items():
        wall, cpu = _per_call(fn, args.repeat)
        print(f"{name:40s} wall {wall * 1e6:8.1f} us  cpu {cpu * 1e6:8.1f} us")
    wall, cpu = _per_call(lambda: kind.signals(window, params), args.repeat)
    print(f"per-bar live inference / 1 ms budget: wall {wall / 1e-3:.2f}, cpu {cpu / 1e-3:.2f}")
    full = _once(lambda: kind.signals(df, params))
    print(f"backtest signal, whole series: {full * 1e3:.1f} ms ({full / len(df) * 1e6:.2f} us/bar)")


if __name__ == "__main__":
    main()
