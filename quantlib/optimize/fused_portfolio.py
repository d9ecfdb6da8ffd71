"""Fused sweeps of shared-cash portfolios, with benchmark-relative metrics.

:func:`portfolio_plan` builds, for every symbol of a ``{symbol: frame}`` portfolio, the indicator
rows of each distinct window (the single-symbol path's
:func:`quantlib.optimize.fused_base._kernel_inputs`), and :meth:`PortfolioPlan.evaluate` runs
:func:`quantlib.backtest.sweep_portfolio_nb.sweep_portfolio_nb` over the combinations: the
portfolio ``run_backtest`` simulates (one cash account, symbols settled in the mapping's order
within each bar), as metrics rows and return moments, without a bars x combinations matrix.

The rows hold every metric of :func:`quantlib.backtest.metrics.compute_metrics_frame`, the
benchmark-relative ones included, against the same benchmark the backtest engine gives it: the
buy-and-hold of the traded symbol(s), equal weight at the first close. The benchmark's own
figures (its return, CAGR, Sharpe, drawdown) do not depend on the combination and come from the
metrics module itself; alpha, beta, correlation, information ratio and capture ratios come from
three running sums of the kernel (see :mod:`quantlib.backtest.sweep_portfolio_nb`). A single
frame runs as a one-symbol portfolio: that is how the fused path serves a benchmark-relative
objective.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlib.backtest import sweep_nb as snb
from quantlib.backtest import sweep_portfolio_nb as pnb
from quantlib.backtest.benchmark import benchmark_values, relative_from_moments, undefined_relative
from quantlib.backtest.engine import as_frames
from quantlib.backtest.metrics import METRIC_NAMES, _benchmark_metrics
from quantlib.core.bars import as_bars
from quantlib.core.registry import StrategyKind
from quantlib.errors import ParameterError
from quantlib.optimize.fused_base import (
    _bar_seconds,
    _Combinations,
    _kernel_inputs,
    _kind_codes,
    _metrics,
    _moments,
    check_kernel_args,
    check_splits,
    checked_request,
    fused_unsupported,
    order_rule_args,
)
from quantlib.optimize.stats import ReturnMoments


def _stack(per_symbol: list[dict[str, np.ndarray]], name: str) -> np.ndarray:
    return np.ascontiguousarray(np.stack([inp[name] for inp in per_symbol]))


def _wide(bars: list[Any], name: str) -> np.ndarray:
    return np.ascontiguousarray(np.stack([np.asarray(getattr(b, name), dtype=np.float64)
                                          for b in bars]))


@dataclass
class BenchmarkInputs:
    """The benchmark over the sweep's bars: its bar returns (the first is 0: held from the
    first close, as the equity's first return is against the initial cash), and its own
    metrics (the same for every combination)."""

    rets: np.ndarray
    own: dict[str, float]

    @classmethod
    def of(cls, close: np.ndarray, index: pd.Index, periods: float) -> BenchmarkInputs:
        """From the symbols' closes (bars x symbols), with the metrics module's definitions."""
        values = benchmark_values(close, index)
        path = np.concatenate([values[:1], values])
        rets = np.diff(path) / path[:-1]
        n = len(rets)
        # the benchmark-only entries of the metrics function (a placeholder equity column)
        own = _benchmark_metrics(close, index, np.zeros((n, 1)), np.ones((n + 1, 1)), True,
                                 np.zeros(1), np.zeros(1), np.zeros(1), periods, n / periods,
                                 np.zeros(1))
        keep = ("benchmark_return", "benchmark_cagr", "benchmark_sharpe",
                "benchmark_max_drawdown")
        return cls(rets=rets, own={k: float(own[k][0]) for k in keep})


def relative_from_sums(stats: np.ndarray, n_bars: int, bench: np.ndarray,
                       periods_per_year: float) -> dict[str, np.ndarray]:
    """Alpha, beta, correlation, information ratio and capture ratios of every combination
    from the kernel's sums (by :func:`quantlib.backtest.benchmark.relative_from_moments`, the
    definitions :func:`~quantlib.backtest.benchmark.relative_stats` uses)."""
    n = float(n_bars)
    s1, s2 = stats[:, snb.S_SUM_R], stats[:, snb.S_SUM_R2]
    if n_bars < 2:
        return undefined_relative(len(s1))
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 - s1 * mean, 0.0) / (n - 1.0))
    return relative_from_moments(mean, std, stats[:, pnb.P_COV] / (n - 1.0),
                                 stats[:, pnb.P_UP], stats[:, pnb.P_DOWN], bench, n,
                                 periods_per_year)


@dataclass
class PortfolioPlan(_Combinations):
    """Everything a fused portfolio sweep needs, built once (the single-symbol
    :class:`~quantlib.optimize.fused.FusedPlan`'s counterpart): per-symbol bars and indicator
    banks, per-combination indices, the benchmark and the configuration."""

    kind: StrategyKind
    code: int
    symbols: list[str]
    arrays: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]
    bench: BenchmarkInputs
    config: Any
    n_splits: int
    bar_seconds: float

    def evaluate(self, start: int = 0, stop: int | None = None) -> tuple[pd.DataFrame, Any]:
        """Every metric of :data:`quantlib.backtest.metrics.METRIC_NAMES` (one row per
        combination) and the return moments of combinations ``start:stop``."""
        cfg, a, inp = self.config, self.arrays, self.inputs
        part = self.part(start, stop)
        next_open = cfg.execution == "next_open"
        bench = self.bench.rets
        stats, block_sum, block_sumsq = pnb.sweep_portfolio_nb(
            self.code, a["open"], a["high"], a["low"], a["close"],
            a["open"] if next_open else a["close"], inp["bank_a"], inp["bank_b"],
            inp["meta_a"], inp["meta_b"], inp["idx_a"][part], inp["idx_b"][part],
            inp["par1"][part], inp["par2"][part], inp["warmup"][part], 1 if next_open else 0,
            *order_rule_args(cfg), bench - bench.mean(), bench, int(self.n_splits))
        check_kernel_args(stats, f"fused portfolio sweep of {self.kind.name!r}", cfg)
        n_bars = a["close"].shape[1]
        periods = cfg.year_days * 86400.0 / self.bar_seconds
        base = _metrics(stats, n_bars, float(cfg.init_cash), periods, self.bar_seconds)
        own = self.bench.own
        columns = {name: base[name].to_numpy() for name in base.columns}
        full = np.ones(len(base))
        columns.update({name: full * value for name, value in own.items()})
        columns["excess_return"] = columns["total_return"] - own["benchmark_return"]
        columns["excess_sharpe"] = columns["sharpe"] - own["benchmark_sharpe"]
        columns.update(relative_from_sums(stats, n_bars, bench, periods))
        # one frame from whole columns (setting columns one by one costs more than the kernel)
        metrics = pd.DataFrame({name: columns[name] for name in METRIC_NAMES})
        return metrics, _moments(ReturnMoments, stats, n_bars, block_sum, block_sumsq,
                                 self.n_splits)


def portfolio_plan(kind: StrategyKind, data: pd.DataFrame | Mapping[str, pd.DataFrame],
                   params: Sequence[Mapping[str, Any]], config: Any = None,
                   n_splits: int = 16) -> PortfolioPlan:
    """Validate a portfolio sweep and build its indicator banks (one frame: a one-symbol
    portfolio); raises ParameterError naming what the fused path cannot do.

    Examples
    --------
    >>> from quantlib.data import load
    >>> from quantlib.core import get_kind
    >>> data = {"A": load("sample:bars=300,seed=1"), "B": load("sample:bars=300,seed=2")}
    >>> plan = portfolio_plan(get_kind("ma_cross"), data, [{"fast": 5, "slow": 20}],
    ...                       n_splits=4)
    >>> metrics, _ = plan.evaluate()
    >>> float(metrics["benchmark_return"].iloc[0]) == float(
    ...     (data["A"].close.iloc[-1] / data["A"].close.iloc[0]
    ...      + data["B"].close.iloc[-1] / data["B"].close.iloc[0]) / 2 - 1)
    True
    """
    frames = as_frames(data)
    first = next(iter(frames.values()))
    reason = fused_unsupported(kind, first, config)  # the kind and configuration checks
    if reason is None and kind.signal not in _kind_codes():
        reason = "htf_trend is fused on one symbol without benchmark-relative metrics only"
    if reason is not None:
        raise ParameterError(f"fused sweep of {kind.name!r}: {reason}")
    cfg, checked = checked_request(kind, params, config)
    check_splits(n_splits, len(first))
    code = _kind_codes()[kind.signal]
    bars = [as_bars(df) for df in frames.values()]
    per_symbol = [_kernel_inputs(code, kind, b, checked) for b in bars]
    inputs = {name: _stack(per_symbol, name) for name in ("bank_a", "bank_b", "meta_a",
                                                          "meta_b")}
    inputs.update({name: per_symbol[0][name] for name in ("idx_a", "idx_b", "par1", "par2",
                                                          "warmup")})
    arrays = {name: _wide(bars, name) for name in ("open", "high", "low", "close")}
    bar_seconds = _bar_seconds(first, cfg.timeframe)
    periods = cfg.year_days * 86400.0 / bar_seconds
    bench = BenchmarkInputs.of(arrays["close"].T, first.index, periods)
    return PortfolioPlan(kind=kind, code=code, symbols=list(frames), arrays=arrays,
                         inputs=inputs, bench=bench, config=cfg, n_splits=int(n_splits),
                         bar_seconds=bar_seconds)


def portfolio_evaluate(kind: StrategyKind, data: pd.DataFrame | Mapping[str, pd.DataFrame],
                       params: Sequence[Mapping[str, Any]], config: Any = None,
                       n_splits: int = 16) -> tuple[pd.DataFrame, Any]:
    """Metrics (every metric, benchmark-relative included) and return moments of a built-in
    signal kind's shared-cash portfolio, from one fused kernel call (see
    :func:`portfolio_plan`)."""
    return portfolio_plan(kind, data, params, config, n_splits).evaluate()


__all__ = ["BenchmarkInputs", "PortfolioPlan", "portfolio_evaluate", "portfolio_plan",
           "relative_from_sums"]
