"""The built-in default market: synthetic, regime-switching, crypto-like OHLCV.

Machines here and a user's fresh laptop may be offline, so the main job needs data that is always
there. Prices follow a hidden Markov chain of regimes (known transition matrix) with per-regime
drift and volatility, Student-t (fat-tailed) shocks, and intrabar paths from which high and low are
taken, so bars are internally consistent. The true regime path is returned, so regime models can be
checked against ground truth. Everything is labelled ``source="synthetic"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlib.data.timeframes import timeframe_to_seconds, timeframe_to_timedelta
from quantlib.errors import ParameterError

# Fitted to real BTC/USDT 1h bars (2017-2020, 2022-2023, 2024-2025; 39,785 hourly returns) by
# tools/fit_synthetic.py, which refits them: a 3-regime Gaussian HMM on the hourly log returns
# gives the transition matrix (expected stays ~14, ~8 and ~5 hours: calm, normal, stressed)
# and per-regime volatility and drift (drift = mean log return + var / 2); the Student-t tail
# shape is the one whose simulated market matches the median hourly-return kurtosis of the
# files (15.2). Stationary drift ~ +4e-5 per hour; annualised volatility ~0.78 (real: 0.47 to
# 0.94 depending on the years).
DEFAULT_TRANSITION = np.array([
    [0.927370, 0.067180, 0.005450],
    [0.072272, 0.881355, 0.046373],
    [0.000002, 0.183602, 0.816396],
])
DEFAULT_HOURLY_VOL = np.array([0.002328, 0.006143, 0.020526])
DEFAULT_HOURLY_DRIFT = np.array([0.0000667, 0.0001193, -0.0003373])
DEFAULT_TAIL_DF = 6.0
_START = pd.Timestamp("2024-01-01", tz="UTC")


@dataclass
class SyntheticMarket:
    """Output of :func:`synthetic_ohlcv`: the data and the truth behind it."""

    ohlcv: pd.DataFrame
    regimes: pd.Series
    transition_matrix: np.ndarray
    regime_vol: np.ndarray
    regime_drift: np.ndarray


def _check_transition(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ParameterError(f"transition_matrix must be square, got shape {matrix.shape}")
    if np.any(matrix < 0) or not np.allclose(matrix.sum(axis=1), 1.0):
        raise ParameterError("transition_matrix rows must be probabilities summing to 1")
    return matrix


def _regime_path(rng: np.random.Generator, matrix: np.ndarray, n_bars: int) -> np.ndarray:
    cumulative = np.cumsum(matrix, axis=1)
    states = np.empty(n_bars, dtype=np.int64)
    # Start from the stationary distribution so the path has no start-up transient.
    eigvals, eigvecs = np.linalg.eig(matrix.T)
    stationary = np.real(eigvecs[:, np.argmin(np.abs(eigvals - 1))])
    stationary = stationary / stationary.sum()
    states[0] = rng.choice(len(matrix), p=stationary)
    draws = rng.random(n_bars)
    for t in range(1, n_bars):
        states[t] = min(int(np.searchsorted(cumulative[states[t - 1]], draws[t])), len(matrix) - 1)
    return states


def synthetic_ohlcv(
    n_bars: int = 5000,
    timeframe: str = "1h",
    seed: int = 0,
    *,
    start: str | pd.Timestamp = _START,
    start_price: float = 30_000.0,
    transition_matrix: np.ndarray | None = None,
    hourly_vol: np.ndarray | None = None,
    hourly_drift: np.ndarray | None = None,
    tail_df: float = DEFAULT_TAIL_DF,
    substeps: int = 8,
    symbol: str = "SYN/USD",
) -> SyntheticMarket:
    """Generate a regime-switching, fat-tailed, crypto-like OHLCV market.

    Parameters
    ----------
    n_bars : number of bars.
    timeframe : bar length; volatility scales with sqrt(time), drift with time.
    seed : random seed (same seed, same market).
    transition_matrix : K x K Markov transition matrix of the hidden regimes.
    hourly_vol, hourly_drift : per-regime log-return volatility and drift per hour, regimes
        ordered from calmest (0) to most volatile.
    tail_df : degrees of freedom of the Student-t shocks (lower = fatter tails).
    substeps : points of the intrabar path that high and low are taken from.

    Examples
    --------
    >>> market = synthetic_ohlcv(500, seed=3)
    >>> market.ohlcv.attrs["source"], len(market.ohlcv), market.transition_matrix.shape
    ('synthetic', 500, (3, 3))
    """
    if int(n_bars) < 2:
        raise ParameterError(f"n_bars must be at least 2, got {n_bars!r}")
    if tail_df <= 2:
        raise ParameterError(f"tail_df must be > 2 for a finite variance, got {tail_df}")
    matrix = _check_transition(DEFAULT_TRANSITION if transition_matrix is None else transition_matrix)
    vol = np.asarray(DEFAULT_HOURLY_VOL if hourly_vol is None else hourly_vol, dtype=np.float64)
    drift = np.asarray(DEFAULT_HOURLY_DRIFT if hourly_drift is None else hourly_drift, dtype=np.float64)
    if vol.shape != (len(matrix),) or drift.shape != (len(matrix),):
        raise ParameterError("hourly_vol and hourly_drift need one value per regime "
                             f"({len(matrix)}), got {vol.shape} and {drift.shape}")
    hours = timeframe_to_seconds(timeframe) / 3600.0
    bar_vol, bar_drift = vol * np.sqrt(hours), drift * hours

    rng = np.random.default_rng(seed)
    states = _regime_path(rng, matrix, int(n_bars))
    # Unit-variance Student-t shocks on an intrabar grid; the bar's return is their sum.
    shocks = rng.standard_t(tail_df, size=(int(n_bars), substeps)) / np.sqrt(tail_df / (tail_df - 2))
    step_sigma = (bar_vol[states] / np.sqrt(substeps))[:, None]
    step_mu = (bar_drift[states] / substeps)[:, None]
    log_steps = step_mu - 0.5 * step_sigma**2 + step_sigma * shocks
    path = np.log(start_price) + np.cumsum(log_steps.ravel()).reshape(int(n_bars), substeps)
    close_log = path[:, -1]
    open_log = np.concatenate([[np.log(start_price)], close_log[:-1]])
    high_log = np.maximum(path.max(axis=1), open_log)
    low_log = np.minimum(path.min(axis=1), open_log)
    abs_ret = np.abs(close_log - open_log) / bar_vol.mean()
    volume = np.exp(rng.normal(3.0, 0.4, int(n_bars))) * (1.0 + abs_ret)

    index = pd.date_range(pd.Timestamp(start).tz_convert("UTC") if pd.Timestamp(start).tzinfo
                          else pd.Timestamp(start, tz="UTC"),
                          periods=int(n_bars), freq=timeframe_to_timedelta(timeframe), name="timestamp")
    frame = pd.DataFrame({
        "open": np.exp(open_log), "high": np.exp(high_log), "low": np.exp(low_log),
        "close": np.exp(close_log), "volume": volume,
    }, index=index)
    frame.attrs.update(
        source="synthetic", exchange="synthetic", symbol=symbol, timeframe=timeframe,
        source_string=f"sample:seed={seed},bars={int(n_bars)},timeframe={timeframe}",
    )
    regimes = pd.Series(states, index=index, name="regime")
    return SyntheticMarket(frame, regimes, matrix, bar_vol, bar_drift)


__all__ = ["SyntheticMarket", "synthetic_ohlcv", "DEFAULT_TRANSITION", "DEFAULT_HOURLY_VOL",
           "DEFAULT_HOURLY_DRIFT", "DEFAULT_TAIL_DF"]
