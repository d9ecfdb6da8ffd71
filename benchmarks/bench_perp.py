"""Perp backtest benchmark: the numba bar kernel against the plain-Python reference loop of
tests/backtest/test_perp_reference.py (same fills), and a whole ``run_perp_backtest`` against the
spot ``run_backtest`` (vectorbt) on the same targets and bars.

Run: ``.venv/bin/python benchmarks/bench_perp.py`` (``--quick`` for a smaller run). Figures are
wall-clock medians of a few repeats, first call (JIT compile) excluded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from quantlib.backtest import BacktestConfig, run_backtest
from quantlib.backtest import perp_nb as knl
from quantlib.backtest.perp import PerpConfig, run_perp_backtest
from quantlib.data import load_perp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "backtest"))
from test_perp_reference import reference_perp  # noqa: E402


def _median_seconds(fn, repeats: int) -> float:
    fn()  # compile / warm caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 bars instead of 100,000")
    args = parser.parse_args()
    n_bars = 20_000 if args.quick else 100_000
    perp = load_perp(f"sample:bars={n_bars},timeframe=1h")
    ohlcv, mark, funding = perp.ohlcv, perp.mark, perp.funding
    params = {"fast": 10, "slow": 50}
    cfg = PerpConfig(leverage=5, size=0.3, slippage_bps=1)
    res = run_perp_backtest("ma_cross", ohlcv, params, cfg, funding=funding, mark=mark)
    target = res.extras["targets"][0].to_numpy()
    side = np.sign(target)
    fund_bar = np.searchsorted(ohlcv.index.as_unit("ns").asi8,
                               funding.index.as_unit("ns").asi8, side="left").astype(np.int64)
    keep = fund_bar < len(ohlcv)
    args_nb = (ohlcv["open"].to_numpy(), ohlcv["close"].to_numpy(), mark["open"].to_numpy(),
               mark["high"].to_numpy(), mark["low"].to_numpy(), side, fund_bar[keep],
               funding["funding_rate"].to_numpy()[keep], cfg.row())
    kernel = _median_seconds(lambda: knl.perp_backtest_nb(*args_nb), 5)
    ref_bars = min(n_bars, 20_000)
    cut = slice(0, ref_bars)
    reference = _median_seconds(lambda: reference_perp(
        args_nb[0][cut], args_nb[1][cut], args_nb[2][cut], args_nb[3][cut], args_nb[4][cut],
        target[cut], list(funding.index[funding.index <= ohlcv.index[ref_bars - 1]]),
        list(funding["funding_rate"][funding.index <= ohlcv.index[ref_bars - 1]]),
        list(ohlcv.index[cut]), cfg), 1) * n_bars / ref_bars
    wrapper = _median_seconds(lambda: run_perp_backtest("ma_cross", ohlcv, params, cfg,
                                                        funding=funding, mark=mark), 3)
    spot = _median_seconds(lambda: run_backtest("ma_cross", ohlcv, params, BacktestConfig(
        direction="both", size_type="value", size=3_000.0)), 3)
    print(f"perp backtest, {n_bars:,} 1h bars, ma_cross 10/50 at 5x, "
          f"{int(res.metrics.loc[0, 'n_trades'])} trades, "
          f"{int(res.metrics.loc[0, 'n_liquidations'])} liquidations")
    print(f"  kernel (perp_backtest_nb)         {kernel * 1e3:9.2f} ms  "
          f"{n_bars / kernel / 1e6:7.1f} M bars/s")
    print(f"  plain-Python reference loop       {reference * 1e3:9.2f} ms  "
          f"(x{reference / kernel:,.0f} the kernel; timed on {ref_bars:,} bars, scaled)")
    print(f"  run_perp_backtest (targets+wrap)  {wrapper * 1e3:9.2f} ms")
    print(f"  run_backtest spot (vectorbt)      {spot * 1e3:9.2f} ms  "
          f"(x{spot / wrapper:.2f} the perp run)")


if __name__ == "__main__":
    main()
