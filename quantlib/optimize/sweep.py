"""Grid and random sweeps: vectorized, chunked under a memory budget, with a progress bar.

Built-in signal kinds run on the fused kernel (:mod:`quantlib.optimize.fused`): indicator rows
once per distinct window, then every combination in one ``prange`` pass that keeps running sums
only. Anything else (the grid kind, notebook kinds, several symbols, a metric the kernel does not
produce) runs each chunk of combinations as one broadcast :func:`quantlib.backtest.run_backtest`
call (vectorbt columns, or one prange kernel call for the grid kind). Either way only the metrics
rows and the per-trial return moments (:class:`~quantlib.optimize.stats.ReturnMoments`) are
kept, so a 10,000-combination sweep over 100,000 bars never holds the full equity matrix; those
moments are all the DSR and the CSCV PBO need.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from quantlib.backtest.metrics import BENCHMARK_METRIC_NAMES
from quantlib.core.registry import StrategyKind, get_kind
from quantlib.errors import ParameterError
from quantlib.optimize.distributed import map_chunks
from quantlib.optimize.fused import fused_evaluate, fused_plan, fused_unsupported
from quantlib.optimize.fused_base import backtest_moments
from quantlib.optimize.space import SearchSpace
from quantlib.optimize.stats import (
    OverfittingReport,
    ReportFigures,
    ReturnMoments,
    overfitting_report,
)

# Working memory of one (bar x combination) cell inside a broadcast backtest: prices, targets,
# orders, cash, positions, equity, returns and the simulators' record buffers. Measured on
# 100,000-bar ma_cross chunks of 8 to 67 combinations (peak RSS growth per cell: ~75 to ~320 B,
# allocator slack included); the budget bounds this working set, not the whole process (the
# interpreter and libraries add ~0.5 GB). See benchmarks/bench_optimize.py.
BYTES_PER_CELL = 250

# Combinations per fused kernel call (progress granularity; memory does not depend on it).
FUSED_CHUNK = 2048

# Metrics where smaller is better; max_drawdown is compared by magnitude. Benchmark-relative
# objectives (excess_sharpe, excess_return, alpha, information_ratio, up_capture) are maximised;
# down_capture (share of the benchmark's falls taken) is minimised.
MINIMIZE_METRICS = frozenset({"max_drawdown", "max_drawdown_bars", "max_drawdown_days",
                              "ann_volatility", "turnover", "fees_paid", "down_capture"})


def objective_values(metrics: pd.DataFrame, objective: str) -> pd.Series:
    """Objective column oriented so that larger is better (NaN stays NaN)."""
    if objective not in metrics.columns:
        raise ParameterError(f"objective {objective!r} is not a metric; expected one of "
                             f"{list(metrics.columns)}")
    values = metrics[objective].astype(float)
    if objective == "max_drawdown":
        return -values.abs()
    return -values if objective in MINIMIZE_METRICS else values


def _cells_per_combination(data: Any) -> int:
    """Bars one combination holds in flight: a portfolio's frames all count, not its symbols."""
    if isinstance(data, Mapping):
        return sum(len(frame) for frame in data.values())
    return len(data)


def chunk_size_for(n_bars: int, memory_budget_mb: float) -> int:
    """Combinations per chunk so that ``bars x chunk x BYTES_PER_CELL`` fits the budget."""
    if memory_budget_mb <= 0:
        raise ParameterError(f"memory_budget_mb: expected > 0, got {memory_budget_mb}")
    return max(1, int(memory_budget_mb * 2**20 // (max(n_bars, 1) * BYTES_PER_CELL)))


def evaluate_chunk(kind: str, data: pd.DataFrame, params: list[dict[str, Any]],
                   config: Any = None, n_splits: int = 16, fused: bool | None = None,
                   data_validated: bool = False,
                   informative: Mapping[str, Any] | None = None, benchmark: bool = False,
                   ) -> tuple[pd.DataFrame, ReturnMoments]:
    """Backtest ``params`` in one broadcast call; return (metrics rows, return moments).

    ``fused``: True = the fused kernel (:mod:`quantlib.optimize.fused`; only
    :data:`~quantlib.optimize.fused.FUSED_METRICS`), False = :func:`run_backtest` (every
    metric), None = fused whenever the kind and configuration allow it. ``data_validated``:
    the caller already validated ``data`` (the fused path then skips ``validate_ohlcv``).
    ``informative``: other symbols' frames for a kind's informative inputs, as
    :func:`run_backtest` takes them (such kinds run on ``run_backtest``). ``benchmark``: the
    fused rows hold the benchmark-relative metrics too (a portfolio's always do).
    A plain function of picklable arguments so dask workers and processes can run it.
    """
    kind_obj = get_kind(kind) if isinstance(kind, str) else kind
    if fused is None:
        fused = fused_unsupported(kind_obj, data, config) is None
    if fused and not informative:
        return fused_evaluate(kind_obj, data, list(params), config, n_splits,
                              data_validated=data_validated, benchmark=benchmark)
    return backtest_moments(kind_obj, data, list(params), config, n_splits, informative)


def _resolve_params(kind: StrategyKind, space: Any, method: str, n_samples: int | None,
                    seed: int) -> list[dict[str, Any]]:
    if isinstance(space, Sequence) and not isinstance(space, str) and (
            len(space) == 0 or isinstance(space[0], Mapping)):
        if len(space) == 0:
            raise ParameterError("sweep: the parameter list is empty")
        return [kind.validate(p) for p in space]
    if space is None or isinstance(space, Mapping):
        space = SearchSpace.from_kind(kind, space)
    if not isinstance(space, SearchSpace):
        raise ParameterError(f"space: expected a SearchSpace, a dict of ranges or a list of "
                             f"param dicts, got {type(space).__name__}")
    if method == "grid":
        return space.grid()
    if method == "random":
        if not n_samples or n_samples < 1:
            raise ParameterError(f"n_samples: random sweeps need n_samples >= 1, got {n_samples}")
        return space.sample(n_samples, seed)
    raise ParameterError(f"method: expected 'grid' or 'random', got {method!r}")


@dataclass
class SweepResult(ReportFigures):
    """Tidy sweep outcome: one row per combination (params + every metric) and the
    overfitting statistics of the selection (``n_trials``, ``dsr``, ``pbo``)."""

    table: pd.DataFrame
    param_names: list[str]
    objective: str
    kind: str
    report: OverfittingReport
    moments: ReturnMoments
    engine: str = "vectorbt"  # "fused", or "vectorbt" with the reason the fused path was not used

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.table.loc[self.report.best_index, "params"])

    def sorted(self, by: str | None = None, ascending: bool | None = None) -> pd.DataFrame:
        """The table sorted best-first by ``by`` (default: the objective); NaN last."""
        by = by or self.objective
        if ascending is None:
            ascending = by in MINIMIZE_METRICS and by != "max_drawdown"
            if by == "max_drawdown":  # negative fractions: closest to 0 first
                ascending = False
        return self.table.sort_values(by, ascending=ascending, na_position="last")

    def top(self, n: int = 10) -> pd.DataFrame:
        return self.sorted().head(n)

    def summary(self) -> str:
        best = self.table.loc[self.report.best_index]
        shown = {k: v for k, v in best["params"].items() if k in self.param_names}
        return (f"sweep of {self.kind!r}: {len(self.table)} combinations, objective "
                f"{self.objective}; best {shown} {self.objective}={best[self.objective]:.4g}\n"
                + self.report.summary())


def sweep(kind: str | StrategyKind, data: pd.DataFrame, space: Any = None, *,
          method: str = "grid", n_samples: int | None = None, seed: int = 0,
          config: Any = None, objective: str = "sharpe", memory_budget_mb: float = 512,
          chunk_size: int | None = None, progress: bool = True, n_splits: int = 16,
          scheduler: Any = None, engine: str = "auto",
          informative: Mapping[str, Any] | None = None) -> SweepResult:
    """Evaluate every combination of a kind's search space and rank them.

    Parameters
    ----------
    kind : registered kind (name or object).
    data : canonical OHLCV frame.
    space : None (the kind's declared space), a dict of ranges (see
        :meth:`SearchSpace.from_kind`), a :class:`SearchSpace`, or an explicit list of params.
    method : ``"grid"`` (Cartesian product) or ``"random"`` (``n_samples`` draws, ``seed``).
    objective : metric used to pick the best trial (and for DSR); smaller-is-better metrics
        (drawdown, volatility...) are handled.
    memory_budget_mb, chunk_size : combinations per broadcast backtest call (explicit
        ``chunk_size`` wins over the budget).
    n_splits : CSCV blocks for PBO.
    scheduler : None (in process), ``"local"`` (dask LocalCluster), a scheduler address or a
        ``distributed.Client``: chunks fan out over dask; the result is identical.
    engine : ``"auto"`` (the fused kernel of :mod:`quantlib.optimize.fused` whenever the kind,
        data, configuration and objective allow it, else :func:`run_backtest`), ``"fused"``
        (refused with the reason when it cannot run) or ``"vectorbt"``. The fused path's table
        holds :data:`~quantlib.optimize.fused.FUSED_METRICS` only, unless ``data`` is a
        ``{symbol: frame}`` portfolio or ``objective`` is benchmark-relative (then every
        metric: :mod:`quantlib.optimize.fused_portfolio`); ``result.engine`` says which path
        ran and why.
    informative : informative input name -> its data (another symbol's frame), as
        :func:`run_backtest` takes it (e.g. ``{"regime": btc}`` for ``regime_filter_cross``).

    Examples
    --------
    >>> from quantlib.data import load
    >>> res = sweep("ma_cross", load("sample:bars=600"), {"fast": [5, 10], "slow": [20, 40]},
    ...             progress=False, n_splits=4)
    >>> len(res.table), res.n_trials
    (4, 4)
    """
    kind_obj = get_kind(kind) if isinstance(kind, str) else kind
    params = _resolve_params(kind_obj, space, method, n_samples, seed)
    if engine not in ("auto", "fused", "vectorbt"):
        raise ParameterError(f"engine: expected 'auto', 'fused' or 'vectorbt', got {engine!r}")
    reason = ("engine='vectorbt' was asked for" if engine == "vectorbt"
              else fused_unsupported(kind_obj, data, config, objective, benchmark_ok=True))
    if reason is None and informative:
        reason = "informative inputs were given"
    if engine == "fused" and reason is not None:
        raise ParameterError(f"sweep of {kind_obj.name!r}: engine='fused' cannot run: {reason}")
    fused = reason is None

    benchmark = objective in BENCHMARK_METRIC_NAMES  # fused rows must hold the objective
    # The fused kernel holds no bars x combinations cells: chunks only pace the progress bar.
    size = chunk_size or (FUSED_CHUNK if fused else chunk_size_for(_cells_per_combination(data), memory_budget_mb))
    if size < 1:
        raise ParameterError(f"chunk_size: expected >= 1, got {size}")
    chunks = [params[i:i + size] for i in range(0, len(params), size)]
    if scheduler is None:
        outputs = _run_in_process(kind_obj, data, params, chunks, config, n_splits, fused,
                                  progress, informative, benchmark)
    else:
        outputs = map_chunks(partial(evaluate_chunk, fused=fused, informative=informative,
                                     benchmark=benchmark),
                             chunks, data=data,
                             scheduler=scheduler, kind=kind_obj.name, config=config,
                             n_splits=n_splits, progress=progress)
    metrics = pd.concat([m for m, _ in outputs], ignore_index=True)
    moments = ReturnMoments.concat([mo for _, mo in outputs])
    result = _build_result(kind_obj, params, metrics, moments, objective)
    result.engine = "fused" if fused else f"vectorbt ({reason})"
    return result


def _run_in_process(kind: StrategyKind, data: pd.DataFrame, params: list[dict[str, Any]],
                    chunks: list[list[dict[str, Any]]], config: Any, n_splits: int,
                    fused: bool, progress: bool, informative: Mapping[str, Any] | None = None,
                    benchmark: bool = False) -> list[tuple[pd.DataFrame, ReturnMoments]]:
    plan = None
    if fused:  # one set of indicator rows for every chunk

        plan = fused_plan(kind, data, params, config, n_splits, benchmark=benchmark)
    outputs = []
    start = 0
    with tqdm(total=len(params), disable=not progress, unit="combo",
              desc=f"sweep {kind.name}") as bar:
        for chunk in chunks:
            if plan is not None:
                outputs.append(plan.evaluate(start, start + len(chunk)))
            else:
                outputs.append(evaluate_chunk(kind.name, data, chunk, config, n_splits, False,
                                              informative=informative))
            start += len(chunk)
            bar.update(len(chunk))
    return outputs


def _build_result(kind: StrategyKind, params: list[dict[str, Any]], metrics: pd.DataFrame,
                  moments: ReturnMoments, objective: str) -> SweepResult:
    oriented = objective_values(metrics, objective)
    best = int(oriented.fillna(-np.inf).to_numpy().argmax())
    report = overfitting_report(moments, best_index=best) if len(params) > 1 else \
        overfitting_report(moments, best_index=0)
    names = [p.name for p in kind.params]
    table = pd.concat([pd.DataFrame(params), metrics], axis=1)
    table["params"] = params
    table.index.name = "combo"
    searched = [n for n in names if pd.Series([p[n] for p in params]).astype(str).nunique() > 1]
    return SweepResult(table=table, param_names=searched or names, objective=objective,
                       kind=kind.name, report=report, moments=moments)


__all__ = ["sweep", "SweepResult", "evaluate_chunk", "objective_values", "chunk_size_for",
           "MINIMIZE_METRICS", "BYTES_PER_CELL"]
