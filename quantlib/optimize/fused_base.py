"""The fused sweep's building blocks, on one frame: which kinds and settings it runs
(:func:`fused_unsupported`), the kernel's inputs (indicator banks per distinct window), the
plan over one frame (:class:`FusedPlan`), and the metrics and return moments from the kernel's
running sums. :func:`backtest_moments` is the other path, :func:`run_backtest`'s metrics with the
same moments, for what the kernel cannot run.

:mod:`quantlib.optimize.fused` (the entry points, :func:`~quantlib.optimize.fused.fused_plan` and
:func:`~quantlib.optimize.fused.fused_evaluate`), :mod:`quantlib.optimize.fused_mtf` (``htf_trend``)
and :mod:`quantlib.optimize.fused_portfolio` (portfolios) build on this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlib.backtest import sweep_nb as snb
from quantlib.backtest import sweep_rows_nb as rows_nb
from quantlib.backtest.engine import run_backtest
from quantlib.backtest.metrics import BENCHMARK_METRIC_NAMES, path_ratios, timeframe_seconds
from quantlib.core import kinds
from quantlib.core import order_rule_nb as rule
from quantlib.core.bars import as_bars
from quantlib.core.config import BacktestConfig
from quantlib.core.registry import StrategyKind
from quantlib.core.trend import HTF_TREND
from quantlib.data.timeframes import infer_timeframe
from quantlib.errors import KernelError, ParameterError
from quantlib.optimize.stats import ReturnMoments

# The metrics the fused kernel produces (compute_metrics_frame's definitions); any other metric
# (e.g. benchmark-relative ones) is not produced: requests for it take the run_backtest path.
FUSED_METRICS: tuple[str, ...] = (
    "total_return", "cagr", "ann_volatility", "sharpe", "sortino", "calmar", "max_drawdown",
    "max_drawdown_bars", "max_drawdown_days", "win_rate", "profit_factor", "expectancy",
    "exposure", "n_trades", "turnover", "fees_paid", "final_equity",
)


def _kind_codes() -> dict[Any, int]:
    return {kinds.MA_CROSS.signal: snb.MA_CROSS, kinds.EMA_CROSS.signal: snb.EMA_CROSS,
            kinds.RSI_REVERSION.signal: snb.RSI_REVERSION,
            kinds.BOLLINGER_REVERSION.signal: snb.BOLLINGER,
            kinds.DONCHIAN_BREAKOUT.signal: snb.DONCHIAN, kinds.MACD.signal: snb.MACD}


def fused_unsupported(kind: StrategyKind, data: Any, config: Any = None,
                      objective: str | None = None, *, benchmark_ok: bool = False) -> str | None:
    """Why ``kind`` on ``data`` with ``config`` cannot use the fused path, or None if it can.

    A ``{symbol: frame}`` portfolio runs on :mod:`quantlib.optimize.fused_portfolio`, whose rows
    hold the benchmark-relative metrics too; on one frame those are produced when the caller
    asks :func:`fused_plan` for them (``benchmark=True``), which ``benchmark_ok=True`` says.

    Examples
    --------
    >>> from quantlib.data import load
    >>> from quantlib.core import get_kind
    >>> fused_unsupported(get_kind("ma_cross"), load("sample:bars=100")) is None
    True
    """
    if kind.engine != "signals" or (kind.signal not in _kind_codes() and not is_htf_trend(kind)):
        return f"kind {kind.name!r} is not one of the built-in signal kinds"

    portfolio = not isinstance(data, pd.DataFrame)
    if portfolio and not isinstance(data, Mapping):
        return f"data is a {type(data).__name__}, not a frame or a {{symbol: frame}} mapping"
    relative = objective in BENCHMARK_METRIC_NAMES
    if is_htf_trend(kind) and (portfolio or relative):
        return "htf_trend is fused on one symbol without benchmark-relative metrics only"
    cfg = BacktestConfig.coerce(dict(config) if isinstance(config, Mapping) else config)
    if cfg.sl_stop is not None and cfg.trail_stop is not None:
        return "sl_stop with trail_stop is refused by run_backtest"
    if cfg.direction == "both" and cfg.size_type == "percent":
        return "direction='both' with size_type='percent' is refused by run_backtest"
    if objective is not None and objective not in FUSED_METRICS and not (
            relative and (portfolio or benchmark_ok)):
        return f"metric {objective!r} is not produced by the fused kernel"
    return None


def _meta(windows: list[int], alphas: list[float] | None, err: np.ndarray) -> np.ndarray:
    meta = np.zeros((len(windows), 3))
    meta[:, snb.M_WINDOW] = windows
    meta[:, snb.M_ALPHA] = alphas if alphas is not None else 0.0
    meta[:, snb.M_ERR] = err
    return meta


def _indexed(values: list[Any]) -> tuple[list[Any], np.ndarray]:
    distinct = sorted(set(values))
    where = {v: i for i, v in enumerate(distinct)}
    return distinct, np.array([where[v] for v in values], dtype=np.int64)


def _i64(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def _kernel_inputs(code: int, kind: StrategyKind, bars: Any,
                   params: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Indicator banks (one row per distinct window, O(bars) each, with their error bounds:
    :mod:`quantlib.backtest.sweep_rows_nb`) and per-combination indices/parameters for
    ``sweep_signals_nb``: the arguments the kinds pass to their indicator kernels
    (``quantlib.core.kinds``)."""
    m = len(params)
    par1, par2 = np.zeros(m), np.zeros(m)
    warmup = np.array([kind.warmup(p) for p in params], dtype=np.int64)
    unused, no_meta = np.zeros((1, 1)), np.zeros((1, 3))
    close = np.ascontiguousarray(bars.close, dtype=np.float64)
    bank_b, meta_b = unused, no_meta
    if code in (snb.MA_CROSS, snb.EMA_CROSS, snb.MACD):
        windows, idx = _indexed([p["fast"] for p in params] + [p["slow"] for p in params])
        if code == snb.MA_CROSS:
            bank_a, err = rows_nb.sma_rows_nb(close, _i64(windows))
            meta_a = _meta(windows, None, err)
        else:  # kinds.ema: alpha 2 / (span + 1) over ema_length(span) bars
            lengths = [kinds.ema_length(w) for w in windows]
            alphas = [2.0 / (w + 1.0) for w in windows]
            bank_a, err = rows_nb.ema_rows_nb(close, _i64(lengths), np.asarray(alphas))
            meta_a = _meta(lengths, alphas, err)
        idx_a, idx_b = idx[:m], idx[m:]
        if code == snb.MACD:
            par1[:] = [2.0 / (p["signal"] + 1.0) for p in params]
            par2[:] = [kinds.ema_length(p["signal"]) for p in params]
    else:
        windows, idx_a = _indexed([p["window"] for p in params])
        idx_b = idx_a
        if code == snb.RSI_REVERSION:  # kinds.rsi: alpha 1 / window over 2 ema_length changes
            lengths = [kinds.ema_length(w) * 2 for w in windows]
            alphas = [1.0 / w for w in windows]
            bank_a, bank_b = rows_nb.rsi_rows_nb(close, _i64(lengths), np.asarray(alphas))
            meta_a = _meta(lengths, alphas, np.zeros(len(windows)))
            par1[:] = [p["lower"] for p in params]
            par2[:] = [p["upper"] for p in params]
        elif code == snb.BOLLINGER:
            bank_a, err_mid = rows_nb.sma_rows_nb(close, _i64(windows))
            bank_b, err_std = rows_nb.std_rows_nb(close, _i64(windows))
            meta_a, meta_b = _meta(windows, None, err_mid), _meta(windows, None, err_std)
            par1[:] = [p["k"] for p in params]
        else:  # Donchian: the rolling high and low of each window (exact)
            bank_a = rows_nb.extreme_rows_nb(np.ascontiguousarray(bars.high), _i64(windows), 1)
            bank_b = rows_nb.extreme_rows_nb(np.ascontiguousarray(bars.low), _i64(windows), -1)
            meta_a = _meta(windows, None, np.zeros(len(windows)))
            par1[:] = [p["window"] for p in params]
    return dict(bank_a=bank_a, bank_b=bank_b, meta_a=meta_a, meta_b=meta_b, idx_a=idx_a,
                idx_b=idx_b, par1=par1, par2=par2, warmup=warmup, mask=np.zeros((1, 1)),
                idx_m=np.full(m, -1, dtype=np.int64))


def _metrics(stats: np.ndarray, n_bars: int, init_cash: float, periods_per_year: float,
             bar_seconds: float) -> pd.DataFrame:
    n = float(n_bars)
    s1, s2 = stats[:, snb.S_SUM_R], stats[:, snb.S_SUM_R2]
    mean = s1 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.maximum(s2 - s1 * mean, 0.0) / (n - 1.0) if n_bars > 1 else np.full_like(s1,
                                                                                         np.nan)
        std = np.sqrt(var)
        downside = np.sqrt(stats[:, snb.S_DOWN_SQ] / n)
        total_return = stats[:, snb.S_FINAL] / init_cash - 1.0
        max_dd = stats[:, snb.S_MAX_DD]
        cagr, ann_vol, sharpe, sortino, calmar = path_ratios(
            total_return, n_bars, periods_per_year, mean, std, downside, max_dd)
        n_trades = stats[:, snb.S_N_TRADES]
        traded = n_trades > 0
        gross_profit, gross_loss = stats[:, snb.S_GROSS_PROFIT], stats[:, snb.S_GROSS_LOSS]
        profit_factor = np.where(gross_loss > 0, gross_profit / gross_loss,
                                 np.where(gross_profit > 0, np.inf, np.nan))
        dd_bars = stats[:, snb.S_DD_BARS]
        out = pd.DataFrame({
            "total_return": total_return, "cagr": cagr, "ann_volatility": ann_vol,
            "sharpe": sharpe, "sortino": sortino, "calmar": calmar, "max_drawdown": max_dd,
            "max_drawdown_bars": dd_bars, "max_drawdown_days": dd_bars * bar_seconds / 86400.0,
            "win_rate": np.where(traded, stats[:, snb.S_WINS] / n_trades, np.nan),
            "profit_factor": np.where(traded, profit_factor, np.nan),
            "expectancy": np.where(traded, stats[:, snb.S_PNL_SUM] / n_trades, np.nan),
            "exposure": stats[:, snb.S_EXPOSED] / n, "n_trades": n_trades,
            "turnover": stats[:, snb.S_TRADED] / (stats[:, snb.S_SUM_VALUE] / n),
            "fees_paid": stats[:, snb.S_FEES], "final_equity": stats[:, snb.S_FINAL],
        })
    return out[list(FUSED_METRICS)]


def _bar_seconds(frame: pd.DataFrame, timeframe: str | None) -> float:
    timeframe = timeframe or infer_timeframe(frame.index)
    if timeframe is None:
        raise ParameterError("timeframe: cannot infer the bar length of the data; set "
                             "BacktestConfig.timeframe (e.g. '1h')")
    return timeframe_seconds(timeframe)


def order_rule_args(cfg: Any) -> tuple:
    """A configuration's order-rule settings as every fused sweep kernel takes them, in order.

    Size, size type, fees, slippage, stop-loss (the trailing stop when set; NaN: none),
    take-profit (NaN: none), whether the stop trails, whether longs and shorts are allowed, and
    the initial cash.
    """
    stop_loss = cfg.trail_stop if cfg.trail_stop is not None else cfg.sl_stop
    return (float(cfg.size), rule.PERCENT if cfg.size_type == "percent" else rule.VALUE,
            float(cfg.fees), float(cfg.slippage),
            np.nan if stop_loss is None else float(stop_loss),
            np.nan if cfg.tp_stop is None else float(cfg.tp_stop), cfg.trail_stop is not None,
            cfg.direction != "shortonly", cfg.direction != "longonly", float(cfg.init_cash))


def check_kernel_args(stats: np.ndarray, what: str, cfg: Any) -> None:
    """KernelError when the order rule refused an argument in any combination's row."""
    bad = stats[:, snb.S_BAD_ARG]
    if (bad >= 0).any():
        raise KernelError(f"{what}: the order rule refused argument #{int(bad[bad >= 0][0])} "
                          f"of signal_fill_nb (configuration {cfg})")


class _Combinations:
    """What a plan over ``inputs["idx_a"]`` combinations knows of them."""

    inputs: dict[str, np.ndarray]

    @property
    def n_combos(self) -> int:
        return len(self.inputs["idx_a"])

    def part(self, start: int, stop: int | None) -> slice:
        """Combinations ``start:stop`` (``stop`` None: to the last)."""
        return slice(start, self.n_combos if stop is None else stop)


@dataclass
class FusedPlan(_Combinations):
    """Everything one fused sweep needs, built once: the bars, the indicator banks of every
    distinct window, the per-combination indices and the order rule's settings.
    :meth:`evaluate` runs any slice of the combinations (a sweep's chunks share the banks)."""

    kind: StrategyKind
    code: int
    bars: Any
    inputs: dict[str, np.ndarray]
    config: Any
    n_splits: int
    bar_seconds: float

    def evaluate(self, start: int = 0, stop: int | None = None) -> tuple[pd.DataFrame, Any]:
        """Metrics (:data:`FUSED_METRICS`, one row per combination) and
        :class:`~quantlib.optimize.stats.ReturnMoments` of combinations ``start:stop``."""
        cfg, bars, inp = self.config, self.bars, self.inputs
        part = self.part(start, stop)
        next_open = cfg.execution == "next_open"
        n_part = len(range(*part.indices(self.n_combos)))
        kernel = snb.sweep_signals_nb if n_part > 1 else snb.sweep_signals_serial_nb
        stats, block_sum, block_sumsq = kernel(
            self.code, bars.open, bars.high, bars.low, bars.close,
            bars.open if next_open else bars.close, inp["bank_a"], inp["bank_b"],
            inp["meta_a"], inp["meta_b"], inp["idx_a"][part], inp["idx_b"][part],
            inp["par1"][part], inp["par2"][part], inp["warmup"][part], inp["mask"],
            inp["idx_m"][part], 1 if next_open else 0, *order_rule_args(cfg),
            int(self.n_splits))
        check_kernel_args(stats, f"fused sweep of {self.kind.name!r}", cfg)
        n_bars = len(bars.close)
        periods = cfg.year_days * 86400.0 / self.bar_seconds
        metrics = _metrics(stats, n_bars, float(cfg.init_cash), periods, self.bar_seconds)
        return metrics, _moments(ReturnMoments, stats, n_bars, block_sum, block_sumsq,
                                 self.n_splits)


def checked_request(kind: StrategyKind, params: Sequence[Mapping[str, Any]],
                    config: Any) -> tuple[Any, list[dict[str, Any]]]:
    """A fused sweep's configuration as a BacktestConfig and its combinations validated by the
    kind; ParameterError when there is no combination."""
    cfg = BacktestConfig.coerce(dict(config) if isinstance(config, Mapping) else config)
    checked = [kind.validate(p) for p in params]
    if not checked:
        raise ParameterError("params: expected at least one combination")
    return cfg, checked


def check_splits(n_splits: int, n_bars: int) -> None:
    """ParameterError unless ``n_splits`` is even, >= 2, and the bars fill two per block."""
    if n_splits < 2 or n_splits % 2:
        raise ParameterError(f"n_splits: expected an even number >= 2, got {n_splits}")
    if n_bars < 2 * n_splits:
        raise ParameterError(f"data: {n_bars} bars are too few for {n_splits} CSCV blocks "
                             f"(need >= {2 * n_splits})")


def plan_of(kind: StrategyKind, frame: pd.DataFrame, checked: list[dict[str, Any]], cfg: Any,
            n_splits: int) -> FusedPlan:
    """The :class:`FusedPlan` of a built-in kind on a validated frame, parameters and
    configuration (what :func:`fused_plan` builds once it has checked them)."""
    code = _kind_codes()[kind.signal]
    bars = as_bars(frame)
    return FusedPlan(kind=kind, code=code, bars=bars,
                     inputs=_kernel_inputs(code, kind, bars, checked), config=cfg,
                     n_splits=n_splits, bar_seconds=_bar_seconds(frame, cfg.timeframe))


def is_htf_trend(kind: StrategyKind) -> bool:
    """Whether ``kind`` is the built-in ``htf_trend`` wrapper (fused around its inner kind:
    :mod:`quantlib.optimize.fused_mtf`)."""
    return kind.signal is HTF_TREND.signal


def _moments(cls: Any, stats: np.ndarray, n_bars: int, block_sum: np.ndarray,
             block_sumsq: np.ndarray, n_splits: int) -> Any:
    """:class:`ReturnMoments` from power sums: scipy's bias-corrected skew and Pearson
    kurtosis (NaN -> 0 and 3, as ``ReturnMoments.from_returns``), per-bar Sharpe (0 when the
    std is 0)."""
    n = float(n_bars)
    s1, s2, s3, s4 = (stats[:, k] for k in (snb.S_SUM_R, snb.S_SUM_R2, snb.S_SUM_R3,
                                             snb.S_SUM_R4))
    mean = s1 / n
    m2 = np.maximum(s2 / n - mean * mean, 0.0)
    m3 = s3 / n - 3.0 * mean * s2 / n + 2.0 * mean**3
    m4 = s4 / n - 4.0 * mean * s3 / n + 6.0 * mean**2 * s2 / n - 3.0 * mean**4
    std = np.sqrt(m2 * n / (n - 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        zero = m2 <= (np.finfo(np.float64).resolution * mean) ** 2  # scipy's "constant" test
        skew = np.where(zero, np.nan, m3 / m2**1.5)
        kurt = np.where(zero, np.nan, m4 / m2**2)
        if n > 2:
            skew = np.where(zero, skew, np.sqrt((n - 1.0) * n) / (n - 2.0) * skew)
        if n > 3:
            kurt = np.where(zero, kurt, 1.0 / (n - 2.0) / (n - 3.0) * (
                (n * n - 1.0) * m4 / m2**2 - 3.0 * (n - 1.0) ** 2) + 3.0)
        sharpe = np.where(std > 0, mean / std, 0.0)
    return cls(n_obs=np.full(len(s1), n_bars, dtype=np.int64), sharpe=sharpe,
               skew=np.nan_to_num(skew), kurtosis=np.nan_to_num(kurt, nan=3.0),
               block_n=np.full(n_splits, n_bars // n_splits, dtype=np.int64),
               block_sum=block_sum[:n_splits], block_sumsq=block_sumsq[:n_splits])


def backtest_moments(kind: StrategyKind, data: pd.DataFrame, params: list[dict[str, Any]],
                     config: Any = None, n_splits: int = 16,
                     informative: Mapping[str, Any] | None = None,
                     ) -> tuple[pd.DataFrame, ReturnMoments]:
    """Metrics rows of :func:`run_backtest` (every metric) and the return moments of its equity,
    as the fused path gives them: the path for combinations the kernel cannot run."""
    result = run_backtest(kind, data, list(params), config, informative=informative)
    init_cash = float(result.config.init_cash)
    values = result.equity.to_numpy(dtype=np.float64)
    # First bar's return is against the initial cash, like the shared metrics.
    prev = np.vstack([np.full((1, values.shape[1]), init_cash), values[:-1]])
    returns = values / prev - 1.0
    metrics = result.metrics.reset_index(drop=True)
    return metrics, ReturnMoments.from_returns(returns, n_splits)


__all__ = ["FUSED_METRICS", "FusedPlan", "backtest_moments", "check_splits", "checked_request",
           "fused_unsupported", "is_htf_trend", "plan_of"]
