"""Overfitting statistics: PSR, DSR and PBO (CSCV).

* Probabilistic Sharpe Ratio (Bailey & Lopez de Prado 2012): probability that the true Sharpe
  ratio exceeds a benchmark, given the sample length, skewness and kurtosis of the returns.
* Deflated Sharpe Ratio (Bailey & Lopez de Prado 2014): the PSR whose benchmark is the Sharpe
  ratio one would expect as the *maximum* of ``n_trials`` unskilled trials, given the variance of
  the trials' Sharpe ratios.
* Probability of Backtest Overfitting by combinatorially symmetric cross-validation
  (Bailey, Borwein, Lopez de Prado & Zhu 2015): split the return matrix (bars x trials) into ``S``
  row blocks; for every half/half combination pick the in-sample best trial and look up its
  relative rank out of sample; PBO is the share of combinations where that rank is at or below the
  median (logit <= 0).

All Sharpe ratios here are **per bar** (not annualised), as in the papers' formulas.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from quantlib.errors import ParameterError

EULER_GAMMA = 0.5772156649015329


def _as_matrix(returns, name: str = "returns") -> np.ndarray:
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ParameterError(f"{name}: expected a 1-D or 2-D array (bars x trials), got {arr.ndim}-D")
    if not np.all(np.isfinite(arr)):
        row = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise ParameterError(f"{name}: not finite at row {row}; fill or drop missing returns first")
    return arr


def sharpe_ratio(returns) -> np.ndarray | float:
    """Per-bar Sharpe ratio ``mean / std`` (ddof=1) of each column; 0 where the std is 0.

    Examples
    --------
    >>> round(sharpe_ratio([0.01, 0.03]), 4)
    1.4142
    """
    arr = _as_matrix(returns)
    mean = arr.mean(axis=0)
    std = arr.std(axis=0, ddof=1)
    out = np.divide(mean, std, out=np.zeros_like(mean), where=std > 0)
    return float(out[0]) if np.ndim(returns) == 1 else out


def probabilistic_sharpe_ratio(sharpe: float, n_obs: int, skew: float = 0.0,
                               kurtosis: float = 3.0, sharpe_benchmark: float = 0.0) -> float:
    """PSR: ``Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))``.

    Parameters
    ----------
    sharpe : observed per-bar Sharpe ratio.
    n_obs : number of return observations ``T``.
    skew, kurtosis : skewness and (Pearson, normal = 3) kurtosis of the returns.
    sharpe_benchmark : per-bar benchmark ``SR*``.

    Examples
    --------
    >>> round(probabilistic_sharpe_ratio(0.1, 101), 4)  # Phi(0.1 * 10 / sqrt(1.005))
    0.8407
    """
    if n_obs < 2:
        raise ParameterError(f"n_obs: expected at least 2 return observations, got {n_obs}")
    denom = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not denom > 0:
        raise ParameterError(
            f"skew={skew}, kurtosis={kurtosis}: PSR variance term {denom:.4g} is not positive"
        )
    z = (sharpe - sharpe_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denom)
    return float(sps.norm.cdf(z))


def expected_max_sharpe(n_trials: int, var_sharpe: float) -> float:
    """Expected maximum per-bar Sharpe of ``n_trials`` unskilled trials (False Strategy Theorem).

    ``sqrt(V) * ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``; 0 for one trial.

    Examples
    --------
    >>> round(expected_max_sharpe(100, 0.5 / 250), 4)  # the DSR paper's example
    0.1132
    """
    if n_trials < 1:
        raise ParameterError(f"n_trials: expected >= 1, got {n_trials}")
    if var_sharpe < 0:
        raise ParameterError(f"var_sharpe: expected >= 0, got {var_sharpe}")
    if n_trials == 1:
        return 0.0
    z1 = sps.norm.ppf(1.0 - 1.0 / n_trials)
    z2 = sps.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(var_sharpe) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))


def deflated_sharpe_ratio(sharpe: float, n_obs: int, n_trials: int, var_sharpe: float,
                          skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """DSR: the PSR of ``sharpe`` against :func:`expected_max_sharpe` of the trials.

    Examples
    --------
    >>> round(deflated_sharpe_ratio(2.5 / 250**0.5, 1250, 100, 0.5 / 250, -3, 10), 3)
    0.9
    """
    sr0 = expected_max_sharpe(n_trials, var_sharpe)
    return probabilistic_sharpe_ratio(sharpe, n_obs, skew, kurtosis, sharpe_benchmark=sr0)


@dataclass
class ReturnMoments:
    """Per-trial sufficient statistics of bar returns: enough for DSR and for CSCV PBO.

    Keeping these instead of the full bars x trials matrix lets a 10,000-combination sweep on
    100,000 bars run in bounded memory.
    """

    n_obs: np.ndarray            # (N,)
    sharpe: np.ndarray           # (N,) per-bar
    skew: np.ndarray             # (N,)
    kurtosis: np.ndarray         # (N,) Pearson
    block_n: np.ndarray          # (S,) rows per CSCV block (same for every trial)
    block_sum: np.ndarray        # (S, N)
    block_sumsq: np.ndarray      # (S, N)

    @classmethod
    def from_returns(cls, returns, n_splits: int = 16) -> ReturnMoments:
        """Moments of a bars x trials return matrix (blocks: ``n_splits`` equal row slices).

        The first ``T mod S`` rows are dropped from the blocks (not from the moments) so every
        block has the same length, as CSCV requires.
        """
        arr = _as_matrix(returns)
        t = arr.shape[0]
        if n_splits < 2 or n_splits % 2:
            raise ParameterError(f"n_splits: expected an even number >= 2, got {n_splits}")
        if t < 2 * n_splits:
            raise ParameterError(
                f"returns: {t} bars are too few for {n_splits} CSCV blocks (need >= {2 * n_splits})"
            )
        blocks = arr[t % n_splits:].reshape(n_splits, t // n_splits, arr.shape[1])
        with np.errstate(invalid="ignore", divide="ignore"):
            skew = np.nan_to_num(sps.skew(arr, axis=0, bias=False))
            kurt = np.nan_to_num(sps.kurtosis(arr, axis=0, fisher=False, bias=False), nan=3.0)
        return cls(
            n_obs=np.full(arr.shape[1], t, dtype=np.int64),
            sharpe=np.atleast_1d(sharpe_ratio(arr)),
            skew=np.atleast_1d(skew), kurtosis=np.atleast_1d(kurt),
            block_n=np.full(n_splits, t // n_splits, dtype=np.int64),
            block_sum=blocks.sum(axis=1), block_sumsq=(blocks**2).sum(axis=1),
        )

    @classmethod
    def concat(cls, parts: list[ReturnMoments]) -> ReturnMoments:
        """Join the moments of disjoint trial sets (e.g. sweep chunks) column-wise."""
        if not parts:
            raise ParameterError("ReturnMoments.concat: no parts")
        return cls(
            n_obs=np.concatenate([p.n_obs for p in parts]),
            sharpe=np.concatenate([p.sharpe for p in parts]),
            skew=np.concatenate([p.skew for p in parts]),
            kurtosis=np.concatenate([p.kurtosis for p in parts]),
            block_n=parts[0].block_n,
            block_sum=np.concatenate([p.block_sum for p in parts], axis=1),
            block_sumsq=np.concatenate([p.block_sumsq for p in parts], axis=1),
        )

    @property
    def n_trials(self) -> int:
        return int(self.sharpe.shape[0])


@dataclass
class PBOResult:
    """CSCV outcome: ``pbo`` plus one logit / IS / OOS figure per combination."""

    pbo: float
    logits: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    n_splits: int
    n_trials: int
    prob_oos_loss: float = field(default=float("nan"))

    def summary(self) -> str:
        return (f"PBO (CSCV, S={self.n_splits}, {len(self.logits)} combinations, "
                f"{self.n_trials} trials): {self.pbo:.3f}; median logit "
                f"{np.median(self.logits):.3f}; P(OOS Sharpe < 0) of the IS best "
                f"{self.prob_oos_loss:.3f}")


def _block_sharpe(n: np.ndarray, s: np.ndarray, ss: np.ndarray) -> np.ndarray:
    # Sharpe (ddof=1) of the union of blocks from summed count / sum / sum of squares.
    mean = s / n
    var = (ss - s * mean) / (n - 1)
    std = np.sqrt(np.maximum(var, 0.0))
    return np.divide(mean, std, out=np.zeros_like(mean), where=std > 1e-15)


@functools.lru_cache(maxsize=8)
def _cscv_splits(s_blocks: int, max_combinations: int | None) -> tuple[np.ndarray, ...]:
    """The IS block choices in itertools order, and each choice as two half-bitmasks.

    ``lo`` marks the chosen blocks among the first ``S/2``, ``hi`` among the last ``S/2``, so a
    choice's sum is ``table_lo[lo] + table_hi[hi]`` (see :func:`_subset_sums`).
    """
    combos = itertools.combinations(range(s_blocks), s_blocks // 2)
    if max_combinations is not None:
        combos = itertools.islice(combos, max_combinations)
    combos = np.array(list(combos), dtype=np.int64)                  # (C, S/2) IS blocks
    half = s_blocks // 2
    in_lo = combos < half
    lo = np.where(in_lo, np.left_shift(1, np.where(in_lo, combos, 0)), 0).sum(axis=1)
    hi = np.where(in_lo, 0, np.left_shift(1, np.where(in_lo, 0, combos - half))).sum(axis=1)
    for arr in (combos, lo, hi):
        arr.flags.writeable = False  # cached: shared by every call
    return combos, lo, hi


def _subset_sums(rows: np.ndarray) -> np.ndarray:
    """``out[mask]`` = sum of ``rows[j]`` over the bits ``j`` set in ``mask`` (all 2**h masks)."""
    h = rows.shape[0]
    out = np.zeros((1 << h,) + rows.shape[1:])
    for j in range(h):
        # the masks whose highest bit is j are the masks below 2**j plus row j
        out[1 << j: 1 << (j + 1)] = out[: 1 << j] + rows[j]
    return out


# Subset-sum tables cost 2**(S/2) x trials x 3 floats; past this the sums are gathered per split.
_SUBSET_TABLE_BYTES = 256 * 2**20


def _is_sums(moments: ReturnMoments, max_combinations: int | None):
    """Per split (in itertools order): IS bar count, per-trial IS sum and sum of squares.

    Yields chunks ``(n_is (c, 1), s_is (c, N), ss_is (c, N))`` so memory stays bounded.
    """
    s_blocks, n_trials = len(moments.block_n), moments.n_trials
    half = s_blocks // 2
    combos, lo, hi = _cscv_splits(s_blocks, max_combinations)
    bn = moments.block_n.astype(np.float64)
    chunk = max(1, min(512, 4_000_000 // (half * n_trials)))
    if 3 * 8 * (2 << half) * n_trials <= _SUBSET_TABLE_BYTES:
        # Meet in the middle: each split's sum is one table row from each half, two adds
        # instead of S/2 gathers (the sweep's PBO cost more than its backtests before this).
        tables = [(_subset_sums(x[:half]), _subset_sums(x[half:]))
                  for x in (bn[:, None], moments.block_sum, moments.block_sumsq)]
        for start in range(0, len(combos), chunk):
            a, b = lo[start:start + chunk], hi[start:start + chunk]
            yield tuple(t_lo[a] + t_hi[b] for t_lo, t_hi in tables)
        return
    # Gathers by fancy indexing, not a 0/1 matrix product: BLAS threads fight numba's OpenMP
    # pool after a backtest and made the matmul ~30x slower.
    for start in range(0, len(combos), chunk):
        idx = combos[start:start + chunk]
        yield (bn[idx].sum(axis=1)[:, None], moments.block_sum[idx].sum(axis=1),
               moments.block_sumsq[idx].sum(axis=1))


def pbo_from_moments(moments: ReturnMoments, max_combinations: int | None = None) -> PBOResult:
    """CSCV PBO from per-block sums (see :class:`ReturnMoments`).

    For each choice ``J`` of ``S/2`` blocks (all ``C(S, S/2)`` of them, or the first
    ``max_combinations``): the IS Sharpe of every trial on ``J``, the OOS Sharpe on the rest;
    ``n*`` = IS argmax; ``omega`` = rank of ``n*`` among OOS Sharpes / (N + 1) (average rank for
    ties); logit ``log(omega / (1 - omega))``. PBO = share of logits <= 0.
    """
    s_blocks = len(moments.block_n)
    n_trials = moments.n_trials
    if n_trials < 2:
        raise ParameterError(f"PBO needs at least 2 trials, got {n_trials}")
    tot_n = float(moments.block_n.sum())
    tot_s, tot_ss = moments.block_sum.sum(0), moments.block_sumsq.sum(0)
    logits, is_perf, oos_perf = [], [], []
    for n_is, s_is, ss_is in _is_sums(moments, max_combinations):
        sr_is = _block_sharpe(n_is, s_is, ss_is)
        sr_oos = _block_sharpe(tot_n - n_is, tot_s - s_is, tot_ss - ss_is)
        best = np.argmax(sr_is, axis=1)
        rows = np.arange(len(best))
        chosen_oos = sr_oos[rows, best]
        below = (sr_oos < chosen_oos[:, None]).sum(axis=1)
        ties = (sr_oos == chosen_oos[:, None]).sum(axis=1)
        rank = below + (ties + 1) / 2.0                       # average rank, 1..N
        omega = rank / (n_trials + 1.0)
        logits.append(np.log(omega / (1.0 - omega)))
        is_perf.append(sr_is[rows, best])
        oos_perf.append(chosen_oos)
    logits_arr = np.concatenate(logits)
    oos = np.concatenate(oos_perf)
    return PBOResult(pbo=float(np.mean(logits_arr <= 0.0)), logits=logits_arr,
                     is_performance=np.concatenate(is_perf), oos_performance=oos,
                     n_splits=s_blocks, n_trials=n_trials, prob_oos_loss=float(np.mean(oos < 0)))


def probability_of_backtest_overfitting(returns, n_splits: int = 16,
                                        max_combinations: int | None = None) -> PBOResult:
    """PBO by CSCV over a bars x trials return matrix.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> res = probability_of_backtest_overfitting(rng.normal(size=(400, 20)), n_splits=8)
    >>> 0.0 <= res.pbo <= 1.0
    True
    """
    return pbo_from_moments(ReturnMoments.from_returns(returns, n_splits), max_combinations)


@dataclass
class OverfittingReport:
    """What every sweep / study result carries: n_trials, the best trial's PSR and DSR, PBO."""

    n_trials: int
    best_index: int
    best_sharpe: float            # per bar
    expected_max_sharpe: float    # per bar, SR0 of the DSR
    var_trial_sharpe: float
    psr: float
    dsr: float
    pbo: float
    pbo_result: PBOResult | None = None

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("n_trials", "best_sharpe", "expected_max_sharpe",
                                              "var_trial_sharpe", "psr", "dsr", "pbo")}

    def verdict(self) -> str:
        """One line a researcher can act on."""
        if self.n_trials < 2:
            return "single trial: no selection bias to deflate"
        ok_dsr = self.dsr >= 0.95
        ok_pbo = not (self.pbo >= 0.5)
        if ok_dsr and ok_pbo:
            return f"edge survives deflation (DSR {self.dsr:.2f} >= 0.95, PBO {self.pbo:.2f} < 0.5)"
        why = []
        if not ok_dsr:
            why.append(f"DSR {self.dsr:.2f} < 0.95")
        if not ok_pbo:
            why.append(f"PBO {self.pbo:.2f} >= 0.5")
        return "likely overfit: " + ", ".join(why)

    def summary(self) -> str:
        return (f"trials={self.n_trials} best SR/bar={self.best_sharpe:.4f} "
                f"E[max SR]={self.expected_max_sharpe:.4f} PSR={self.psr:.3f} DSR={self.dsr:.3f} "
                f"PBO={self.pbo:.3f} -> {self.verdict()}")


class ReportFigures:
    """``n_trials``, ``dsr`` and ``pbo`` of a search result, read from its ``report``
    (an :class:`OverfittingReport`)."""

    report: OverfittingReport

    @property
    def n_trials(self) -> int:
        """Parameter sets the search evaluated: the DSR's N."""
        return self.report.n_trials

    @property
    def dsr(self) -> float:
        """Deflated Sharpe ratio of the selected trial (probability, per-bar Sharpes)."""
        return self.report.dsr

    @property
    def pbo(self) -> float:
        """CSCV probability of backtest overfitting of the search."""
        return self.report.pbo

def overfitting_report(moments: ReturnMoments, best_index: int | None = None,
                       n_trials: int | None = None, max_combinations: int | None = None
                       ) -> OverfittingReport:
    """DSR of the selected trial (default: highest Sharpe) and CSCV PBO of all trials.

    ``n_trials`` overrides the trial count used in the DSR (e.g. to count trials run elsewhere).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> rep = overfitting_report(ReturnMoments.from_returns(rng.normal(size=(320, 10)), 8))
    >>> rep.n_trials
    10
    """
    sr = moments.sharpe
    idx = int(np.argmax(sr)) if best_index is None else int(best_index)
    n = moments.n_trials if n_trials is None else int(n_trials)
    var = float(np.var(sr, ddof=1)) if len(sr) > 1 else 0.0
    t = int(moments.n_obs[idx])
    skew, kurt = float(moments.skew[idx]), float(moments.kurtosis[idx])
    # Extreme skew/kurtosis (e.g. a flat strategy) can make the variance term non-positive.
    if 1.0 - skew * sr[idx] + (kurt - 1.0) / 4.0 * sr[idx] ** 2 <= 0:
        skew, kurt = 0.0, 3.0
    psr = probabilistic_sharpe_ratio(float(sr[idx]), t, skew, kurt)
    dsr = deflated_sharpe_ratio(float(sr[idx]), t, n, var, skew, kurt)
    pbo_res = pbo_from_moments(moments, max_combinations) if len(sr) > 1 else None
    return OverfittingReport(
        n_trials=n, best_index=idx, best_sharpe=float(sr[idx]),
        expected_max_sharpe=expected_max_sharpe(n, var), var_trial_sharpe=var, psr=psr, dsr=dsr,
        pbo=pbo_res.pbo if pbo_res is not None else float("nan"), pbo_result=pbo_res,
    )


__all__ = [
    "sharpe_ratio", "probabilistic_sharpe_ratio", "expected_max_sharpe", "deflated_sharpe_ratio",
    "ReturnMoments", "PBOResult", "pbo_from_moments", "probability_of_backtest_overfitting",
    "OverfittingReport", "ReportFigures", "overfitting_report",
]
