"""Refit the synthetic default market (quantlib/data/synthetic.py) to real BTC/USDT 1h bars.

Usage: ``.venv/bin/python tools/fit_synthetic.py [DATA_DIR]`` (default ``../shared/data``).
Prints the numbers to paste into ``DEFAULT_TRANSITION``, ``DEFAULT_HOURLY_VOL``,
``DEFAULT_HOURLY_DRIFT`` and ``DEFAULT_TAIL_DF``.

Method:
1. hourly log returns of each ``btc_usdt_1h_*.csv`` file (returns never span two files);
2. a 3-regime Gaussian HMM (:class:`quantlib.regime.GaussianHMMRegime`, regimes ordered calm to
   volatile) fitted to all of them: its transition matrix, and per regime the volatility
   ``sqrt(var)`` and drift ``mean + var / 2`` (the generator subtracts ``var / 2`` from the drift
   so that ``drift`` is the expected simple growth rate);
3. the tail shape: the Student-t degrees of freedom whose simulated market (the fitted regimes,
   the generator's intrabar sub-steps, 20 seeds x 20,000 bars) has the hourly-return kurtosis of
   the real data (median over files), chosen from a grid.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TAIL_GRID = (2.5, 2.75, 3.0, 3.25, 3.5, 4.0, 5.0, 6.0, 8.0)


def real_returns(data_dir: Path) -> dict[str, np.ndarray]:
    """Hourly log returns of every BTC/USDT 1h file in ``data_dir``, by file name."""
    from quantlib.data import load_ohlcv

    files = sorted(data_dir.glob("btc_usdt_1h_*.csv"))
    if not files:
        sys.exit(f"no btc_usdt_1h_*.csv in {data_dir}")
    return {f.name: np.diff(np.log(load_ohlcv(f)["close"].to_numpy())) for f in files}


def kurtosis(x: np.ndarray) -> float:
    """Pearson kurtosis (3 for a normal distribution)."""
    z = x - x.mean()
    return float(np.mean(z**4) / np.mean(z**2) ** 2)


def fit_regimes(returns: dict[str, np.ndarray], seed: int = 0):
    """(transition, hourly_vol, hourly_drift) of a 3-regime Gaussian HMM on all files."""
    from quantlib.regime import GaussianHMMRegime

    pooled = np.concatenate(list(returns.values()))
    model = GaussianHMMRegime(n_regimes=3, n_restarts=3, random_state=seed).fit(pooled[:, None])
    var = model.covars_[:, 0, 0]
    return model.transmat_, np.sqrt(var), model.means_[:, 0] + var / 2


def fit_tail(transition, vol, drift, target_kurtosis: float) -> float:
    """The grid's Student-t df whose simulated hourly returns have kurtosis nearest the target."""
    from quantlib.data.synthetic import synthetic_ohlcv

    best, best_gap = TAIL_GRID[0], np.inf
    for df in TAIL_GRID:
        values = []
        for seed in range(20):
            close = synthetic_ohlcv(20_000, seed=seed, transition_matrix=transition,
                                    hourly_vol=vol, hourly_drift=drift,
                                    tail_df=df).ohlcv["close"].to_numpy()
            values.append(kurtosis(np.diff(np.log(close))))
        gap = abs(np.median(values) - target_kurtosis)
        print(f"  tail_df {df}: median simulated kurtosis {np.median(values):.1f}")
        if gap < best_gap:
            best, best_gap = df, gap
    return best


def main() -> None:
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
    returns = real_returns(data_dir)
    for name, r in returns.items():
        print(f"{name}: {len(r)} returns, annual vol {r.std() * np.sqrt(8760):.2f}, "
              f"kurtosis {kurtosis(r):.1f}")
    transition, vol, drift = fit_regimes(returns)
    target = float(np.median([kurtosis(r) for r in returns.values()]))
    print(f"target kurtosis (median over files): {target:.1f}")
    tail_df = fit_tail(transition, vol, drift, target)
    np.set_printoptions(precision=6, suppress=True)
    print("DEFAULT_TRANSITION =", np.round(transition, 6).tolist())
    print("DEFAULT_HOURLY_VOL =", np.round(vol, 6).tolist())
    print("DEFAULT_HOURLY_DRIFT =", np.round(drift, 7).tolist())
    print("DEFAULT_TAIL_DF =", tail_df)
    print("expected regime durations (h):", np.round(1 / (1 - np.diag(transition)), 1).tolist())


if __name__ == "__main__":
    main()
