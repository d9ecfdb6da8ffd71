"""Walk-forward optimization: rolling or anchored splits, optimize in-sample, trade out-of-sample.

For every split the in-sample window is optimized (grid / random sweep, or any optuna sampler);
the chosen parameters are backtested on the test window with only *past* bars as warm-up (the
last ``warmup + 1`` in-sample bars, during which the signal is 0, so every test window starts
flat and pays its own entry fee), and the test-window returns are stitched into one OOS equity
curve. Walk-forward efficiency compares OOS with IS performance; parameter stability shows how
much the chosen parameters move between splits.

Every OOS figure has its benchmark beside it: buy-and-hold of the traded symbol over the same
test bars (per split ``oos_benchmark_return`` / ``oos_excess_return``; for the stitched curve
:attr:`WalkForwardResult.oos_benchmark` and :meth:`WalkForwardResult.oos_metrics`, which hold the
symbol only while a test window runs, so gaps between windows count for neither side).

The in-sample searches of built-in signal kinds run on the fused sweep kernel
(:mod:`quantlib.optimize.fused`, through :func:`~quantlib.optimize.sweep.sweep` and the optuna
objective) whenever the configuration and objective allow it; the ``is_engine`` column says
which path each split took. The test-window backtest of the chosen parameters stays a
:func:`~quantlib.backtest.run_backtest` call (one combination, its bar returns are stitched).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quantlib.backtest import run_backtest
from quantlib.backtest.metrics import compute_metrics_frame
from quantlib.core.config import BacktestConfig
from quantlib.core.registry import get_kind
from quantlib.errors import ParameterError
from quantlib.optimize.fused import fused_unsupported
from quantlib.optimize.study import run_study
from quantlib.optimize.sweep import sweep


@dataclass(frozen=True)
class WalkForwardSplitter:
    """Bar-count splits: ``train`` bars in-sample, ``test`` bars out-of-sample, advance ``step``.

    ``anchored=True`` keeps every in-sample window starting at bar 0 (expanding window).

    Examples
    --------
    >>> WalkForwardSplitter(train=100, test=50).split(300)
    [((0, 100), (100, 150)), ((50, 150), (150, 200)), ((100, 200), (200, 250)), ((150, 250), (250, 300))]
    >>> WalkForwardSplitter(train=100, test=100, anchored=True).split(300)
    [((0, 100), (100, 200)), ((0, 200), (200, 300))]
    """

    train: int
    test: int
    step: int | None = None
    anchored: bool = False

    def split(self, n_bars: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """``[((train_start, train_end), (test_start, test_end)), ...]`` (end exclusive)."""
        step = self.test if self.step is None else self.step
        for name, value in (("train", self.train), ("test", self.test), ("step", step)):
            if not isinstance(value, int | np.integer) or value < 1:
                raise ParameterError(f"WalkForwardSplitter.{name}: expected a positive bar "
                                     f"count, got {value!r}")
        if step < self.test:
            raise ParameterError(f"WalkForwardSplitter.step={step} < test={self.test}: test "
                                 "windows would overlap and the OOS equity could not be stitched")
        out = []
        k = 0
        while True:
            train_start = 0 if self.anchored else k * step
            train_end = self.train + k * step
            test_end = train_end + self.test
            if test_end > n_bars:
                break
            out.append(((train_start, train_end), (train_end, test_end)))
            k += 1
        if not out:
            raise ParameterError(f"WalkForwardSplitter: {n_bars} bars are fewer than train + test "
                                 f"= {self.train + self.test}; no split fits")
        return out


@dataclass
class WalkForwardResult:
    """Per-split table, stitched OOS equity, efficiency and parameter stability."""

    splits: pd.DataFrame
    oos_returns: pd.Series
    oos_equity: pd.Series
    objective: str
    param_names: list[str]
    sweep_reports: list[Any] = field(default_factory=list)
    # Buy-and-hold of the traded symbol over the OOS bars (value per bar, starts at 1; the
    # holder earns each OOS bar's close-to-close return, none between windows).
    oos_benchmark: pd.Series | None = None
    timeframe: str | None = None
    year_days: float = 365.0
    init_cash: float = 10_000.0

    @property
    def efficiency(self) -> float:
        """Walk-forward efficiency: mean OOS objective / mean IS objective."""
        is_mean = float(self.splits["is_value"].mean())
        return float(self.splits["oos_value"].mean()) / is_mean if is_mean != 0 else float("nan")

    def parameter_stability(self) -> pd.DataFrame:
        """Per parameter: distinct values chosen, share of splits where it changed, and the
        coefficient of variation (numeric parameters)."""
        rows = {}
        for name in self.param_names:
            values = self.splits[f"param_{name}"]
            changed = (values.astype(str) != values.astype(str).shift()).iloc[1:]
            numeric = pd.to_numeric(values, errors="coerce")
            cv = float(numeric.std(ddof=0) / abs(numeric.mean())) if numeric.notna().all() and \
                numeric.mean() != 0 else float("nan")
            rows[name] = {"n_distinct": int(values.astype(str).nunique()),
                          "change_rate": float(changed.mean()) if len(changed) else 0.0,
                          "cv": cv}
        return pd.DataFrame(rows).T

    def oos_metrics(self) -> pd.DataFrame:
        """The shared metrics of the stitched OOS equity (one row, ``"oos"``) against
        buy-and-hold over the same OOS bars: ``benchmark_return``, ``excess_return``, alpha,
        beta, information ratio... (see :mod:`quantlib.backtest.metrics`).

        Examples
        --------
        >>> # walk_forward(...).oos_metrics()[["total_return", "benchmark_return", "beta"]]
        """
        return compute_metrics_frame(
            pd.DataFrame({"oos": self.oos_equity.to_numpy()}, index=self.oos_equity.index),
            timeframe=self.timeframe, year_days=self.year_days, init_cash=self.init_cash,
            benchmark=self.oos_benchmark)

    def summary(self) -> str:
        oos_total = float(np.prod(1.0 + self.oos_returns.to_numpy()) - 1.0)
        bench = ("" if self.oos_benchmark is None else
                 f" (buy-and-hold over the same bars "
                 f"{self.oos_benchmark.iloc[-1] / self.oos_benchmark.iloc[0] - 1.0:.2%})")
        return (f"walk-forward: {len(self.splits)} splits, objective {self.objective}; "
                f"mean IS {self.splits['is_value'].mean():.4g}, mean OOS "
                f"{self.splits['oos_value'].mean():.4g}, efficiency {self.efficiency:.3g}; "
                f"stitched OOS total return {oos_total:.2%}{bench}")


def oos_benchmark_values(close: pd.Series, oos_index: pd.Index) -> pd.Series:
    """Buy-and-hold value (starting at 1) over the bars of ``oos_index`` only: each OOS bar
    after the first earns its own close-to-close return, bars outside the test windows none.

    Examples
    --------
    >>> idx = pd.date_range("2024-01-01", periods=5, freq="1h", tz="UTC")
    >>> close = pd.Series([10.0, 11.0, 20.0, 22.0, 11.0], index=idx)
    >>> oos_benchmark_values(close, idx[[0, 1, 3, 4]]).round(3).tolist()  # bar 2 skipped
    [1.0, 1.1, 1.21, 0.605]
    """
    bar_returns = np.array(close.pct_change().reindex(oos_index), dtype=np.float64)
    bar_returns[0] = 0.0  # held from the first OOS bar's close
    return pd.Series(np.cumprod(1.0 + bar_returns), index=oos_index, name="oos_benchmark")


def _oos_returns(kind: str, data: pd.DataFrame, params: dict, test: tuple[int, int],
                 config: Any) -> pd.Series:
    kind_obj = get_kind(kind)
    # warmup_bars: informative inputs (e.g. a 4h trend) need their history in base bars too
    warmup = int(kind_obj.warmup_bars(params, config.timeframe or data.attrs.get("timeframe")))
    start = max(0, test[0] - warmup - 1)
    window = data.iloc[start:test[1]]
    result = run_backtest(kind, window, [params], config)
    equity = result.equity.iloc[:, 0].to_numpy(dtype=np.float64)
    prev = np.concatenate([[float(result.config.init_cash)], equity[:-1]])
    rets = equity / prev - 1.0
    offset = test[0] - start
    return pd.Series(rets[offset:], index=data.index[test[0]:test[1]], name="oos_return")


def _optimize(kind: str, data: pd.DataFrame, space: Any, method: str, n_trials: int | None,
              objective: str, config: Any, seed: int, n_splits: int):
    if method in ("grid", "random"):
        res = sweep(kind, data, space, method=method, n_samples=n_trials, seed=seed,
                    config=config, objective=objective, progress=False, n_splits=n_splits)
        best = res.table.loc[res.report.best_index]
        return res.best_params, float(best[objective]), res.report, res.engine

    res = run_study(kind, data, space=space, sampler=method, n_trials=n_trials or 20,
                    objectives=(objective,), storage="memory", seed=seed, config=config,
                    n_splits=n_splits)
    best = res.best_trials[0]
    # the study's objective asks the fused rows for benchmark metrics when it needs them
    reason = fused_unsupported(get_kind(kind), data, config, objective, benchmark_ok=True)
    engine = "fused" if reason is None else f"vectorbt ({reason})"
    return res.best_params, float(best.user_attrs["metrics"][objective]), res.report, engine


def walk_forward(kind: str, data: pd.DataFrame, splitter: WalkForwardSplitter, *,
                 space: Any = None, method: str = "grid", n_trials: int | None = None,
                 objective: str = "sharpe", config: Any = None, seed: int = 0,
                 n_splits: int = 8) -> WalkForwardResult:
    """Optimize on each in-sample window, evaluate on the next test window, stitch OOS equity.

    Parameters
    ----------
    method : ``"grid"``, ``"random"`` (a random sweep of ``n_trials`` draws) or an optuna
        sampler name (``"tpe"``, ``"cmaes"``) run for ``n_trials`` trials in memory.
    n_splits : CSCV blocks for the PBO of each in-sample search.

    Examples
    --------
    >>> from quantlib.data import load
    >>> wf = walk_forward("ma_cross", load("sample:bars=1200"),
    ...                   WalkForwardSplitter(train=600, test=200),
    ...                   space={"fast": [5, 10], "slow": [30, 60]})  # doctest: +SKIP
    """
    kind_obj = get_kind(kind)
    cfg = BacktestConfig.coerce(config)
    rows, pieces, reports = [], [], []
    for (tr0, tr1), (te0, te1) in splitter.split(len(data)):
        params, is_value, report, engine = _optimize(kind_obj.name, data.iloc[tr0:tr1], space, method,
                                             n_trials, objective, cfg, seed, n_splits)
        rets = _oos_returns(kind_obj.name, data, params, (te0, te1), cfg)
        oos_equity = cfg.init_cash * np.cumprod(1.0 + rets.to_numpy())
        oos_metrics = compute_metrics_frame(
            pd.DataFrame({"oos": oos_equity}, index=rets.index), timeframe=cfg.timeframe or
            data.attrs.get("timeframe"), year_days=cfg.year_days, init_cash=cfg.init_cash,
            benchmark=data["close"])
        oos_value = float(oos_metrics[objective].iloc[0]) if objective in oos_metrics else np.nan
        rows.append({"train_start": data.index[tr0], "train_end": data.index[tr1 - 1],
                     "test_start": data.index[te0], "test_end": data.index[te1 - 1],
                     "is_value": is_value, "oos_value": oos_value,
                     "oos_return": float(np.prod(1.0 + rets.to_numpy()) - 1.0),
                     "oos_benchmark_return": float(oos_metrics["benchmark_return"].iloc[0]),
                     "oos_excess_return": float(oos_metrics["excess_return"].iloc[0]),
                     "n_trials": report.n_trials, "dsr": report.dsr, "pbo": report.pbo,
                     "is_engine": engine,
                     **{f"param_{k}": v for k, v in params.items()}})
        pieces.append(rets)
        reports.append(report)
    splits = pd.DataFrame(rows)
    splits.index.name = "split"
    oos = pd.concat(pieces)
    equity = pd.Series(cfg.init_cash * np.cumprod(1.0 + oos.to_numpy()), index=oos.index,
                       name="oos_equity")
    names = [p.name for p in kind_obj.params if f"param_{p.name}" in splits]
    return WalkForwardResult(splits=splits, oos_returns=oos, oos_equity=equity,
                             objective=objective, param_names=names, sweep_reports=reports,
                             oos_benchmark=oos_benchmark_values(data["close"], oos.index),
                             timeframe=cfg.timeframe or data.attrs.get("timeframe"),
                             year_days=cfg.year_days, init_cash=float(cfg.init_cash))


__all__ = ["WalkForwardSplitter", "WalkForwardResult", "oos_benchmark_values", "walk_forward"]
