"""Per-bar latency (closed candle -> order intent) and RSS of the live runner, per kind.

Run: ``.venv/bin/python benchmarks/bench_live.py [--bars 2000]``. Each kind runs in fresh
processes, replaying synthetic bars through the paper broker, once with the trading process's
ahead-of-time compiled kernels (``--kernels aot``, the default of ``quantlib live run``) and once
with numba's JIT (``--kernels jit``: what the process ran before, the alternative):

- a latency process drives ``LiveRunner`` directly and prints p50/p99 of the decision part of
  each step (broker settlement at the open, bounded-window signal, risk, intent) and the mean of
  the whole step including the SQLite commit;
- an RSS process runs the real command line, ``quantlib live run --mode paper --feed
  replay:FILE``, and reports its peak RSS (VmHWM) at exit: what a trader's machine sees.

A last row runs ``--mode live`` against the loopback Kraken server (ccxt signs and parses every
request), the configuration that trades real money. The floor for comparison: a process that
imports only numpy.

Targets (issue 7): p99 <= 1 ms, RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import io
import json
import os
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
    from quantlib.core.ml_features import FeatureConfig
    from quantlib.core.xgb_kind import make_params
    from quantlib.ml.artifacts import save_model
    from quantlib.ml.model import XGBSignalClassifier, build_dataset

    ds = build_dataset(df.iloc[:1000], FeatureConfig(), horizon=4)
    clf = XGBSignalClassifier(n_estimators=200, max_depth=4, early_stopping_rounds=None
                              ).fit(ds.X, ds.y)
    return make_params(save_model(clf.booster_, tmp / "m.model.json"), FeatureConfig(),
                       entry=0.5, exit=0.48, memory=24)


def _child(kind: str, params_json: str, bars_path: str, tmp: str, kernels: str) -> None:
    if kernels == "aot":
        from quantlib import jit

        jit.use_aot()  # before any kernel module is imported, as `quantlib live run` does
    from quantlib.live.brokers import PaperBroker
    from quantlib.live.logs import JsonLogger
    from quantlib.live.replay_feeds import ReplayFeed
    from quantlib.live.runner import LiveRunner
    from quantlib.live.state import StateStore
    from quantlib.strategy.spec import StrategySpec

    spec = StrategySpec(name=f"bench_{kind}", kind=kind, params=json.loads(params_json),
                        symbols=["BTC/USD"])
    store = StateStore(Path(tmp) / f"{kind}-{kernels}.db")
    feed = ReplayFeed(bars_path)
    runner = LiveRunner(spec, PaperBroker(store, spec), store, feed,
                        logger=JsonLogger(io.StringIO()))
    t0 = time.perf_counter()
    runner.run()
    wall = time.perf_counter() - t0
    lat = np.array(runner.latencies_ns[50:]) / 1e6  # skip first-call warm-up
    print(json.dumps({"kind": kind, "kernels": kernels, "bars": len(feed),
                      "p50_ms": float(np.percentile(lat, 50)),
                      "p99_ms": float(np.percentile(lat, 99)),
                      "step_ms_mean": 1e3 * wall / len(feed)}))


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


def _cli_rss(argv: list[str], env: dict[str, str] | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--cli", json.dumps(argv)],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _spec_file(tmp: Path, kind: str, params: dict, **fields) -> Path:
    from quantlib.strategy.spec import StrategySpec

    path = tmp / f"spec_{kind}_{len(list(tmp.glob('spec_*')))}.json"
    path.write_text(StrategySpec(name=f"bench_{kind}", kind=kind, params=params,
                                 symbols=["BTC/USD"], **fields).model_dump_json())
    return path


def _paper_rss(kind: str, params: dict, bars: Path, tmp: Path, kernels: str) -> dict:
    spec = _spec_file(tmp, kind, params)
    return _cli_rss(["live", "run", "--strategy", str(spec), "--mode", "paper",
                     "--feed", f"replay:{bars}", "--state", str(tmp / f"cli_{kind}_{kernels}.db"),
                     "--kernels", kernels])


def _live_rss(df, tmp: Path) -> tuple[dict, int]:
    """``--mode live`` (CcxtBroker, market orders) against the loopback Kraken server."""
    sys.path.insert(0, str(ROOT))
    from quantlib.data import save_ohlcv
    from tests.support.kraken_server import KrakenServer

    bars = save_ohlcv(df, tmp / "live_bars.csv")
    from quantlib.strategy.spec import StrategySpec
    from tests.live._approve import promoted

    # Live mode trades only a spec whose hash `quantlib strategy promote` put in the ledger.
    spec = promoted(StrategySpec(name="bench_ma_cross_live", kind="ma_cross",
                                 params={"fast": 10, "slow": 50}, symbols=["BTC/USD"]), tmp)
    with KrakenServer(symbol="BTC/USD", balances={"USD": 10_000.0}) as server:
        server.set_price("BTC/USD", float(df["close"].iloc[-1]))
        env = {"QUANTLIB_KRAKEN_API_KEY": server.api_key, "QUANTLIB_KRAKEN_SECRET": server.secret,
               "QUANTLIB_KRAKEN_API_URL": server.url}
        row = _cli_rss(["live", "run", "--strategy", str(spec), "--mode", "live",
                        "--feed", f"replay:{bars}", "--state", str(tmp / "live.db")], env)
        return row, len(server.orders)


def _floor_rss() -> float:
    code = ("import numpy\n"
            "from benchmarks.bench_live import peak_rss_mb\n"
            "print(peak_rss_mb())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    return float(out.stdout.split()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(*sys.argv[2:7])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--cli":
        _cli_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=2000)
    args = parser.parse_args()
    from quantlib import jit
    from quantlib.data import save_ohlcv, synthetic_ohlcv

    build_start = time.perf_counter()
    fresh = not jit.extension_path().exists()
    jit.ensure_built()
    build_s = time.perf_counter() - build_start
    df = synthetic_ohlcv(n_bars=args.bars, seed=1).ohlcv
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bars = save_ohlcv(df, tmp / "bars.parquet")
        cases = [("ma_cross", {"fast": 10, "slow": 50}), ("grid", {"n_levels": 10}),
                 ("xgb_classifier", _xgb_params(df, tmp))]
        for kind, params in cases:
            for kernels in ("aot", "jit"):
                out = subprocess.run([sys.executable, __file__, "--child", kind,
                                      json.dumps(params), str(bars), str(tmp), kernels],
                                     capture_output=True, text=True, cwd=ROOT)
                if out.returncode:
                    sys.exit(out.stderr[-3000:])
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                rows[-1].update(_paper_rss(kind, params, bars, tmp, kernels))
        live, n_orders = _live_rss(df, tmp)
    print(f"{'kind':16s} {'kernels':7s} {'bars':>6s} {'p50 ms':>8s} {'p99 ms':>8s} "
          f"{'step ms':>8s} {'RSS MB':>7s}  targets p99 <= 1 ms, RSS < 200 MB "
          "(RSS: `quantlib live run`)")
    by_key = {(r["kind"], r["kernels"]): r for r in rows}
    for r in rows:
        ratio = ""
        if r["kernels"] == "aot":
            jit_row = by_key[(r["kind"], "jit")]
            ratio = f" RSS vs jit {r['rss_mb'] / jit_row['rss_mb']:.2f}x"
        print(f"{r['kind']:16s} {r['kernels']:7s} {r['bars']:6d} {r['p50_ms']:8.3f} "
              f"{r['p99_ms']:8.3f} {r['step_ms_mean']:8.3f} {r['rss_mb']:7.0f}  "
              f"p99/target={r['p99_ms']:.2f}x RSS/target={r['rss_mb'] / 200:.2f}x{ratio} "
              f"(at exit: {r['anon_mb']:.0f} MB private, {r['file_mb']:.0f} MB mapped files)")
    print(f"ma_cross, --mode live (ccxt, loopback Kraken, {n_orders} orders, aot kernels): "
          f"RSS {live['rss_mb']:.0f} MB, RSS/target={live['rss_mb'] / 200:.2f}x "
          f"({live['anon_mb']:.0f} MB private, {live['file_mb']:.0f} MB mapped files)")
    print(f"RSS floor of a Python process that imports numpy: {_floor_rss():.0f} MB")
    print(f"ahead-of-time kernels: {'built in' if fresh else 'cached, checked in'} "
          f"{build_s:.1f} s ({jit.extension_path()})")


if __name__ == "__main__":
    main()
