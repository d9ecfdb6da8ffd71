"""Fused sweeps of shared-cash portfolios: many combinations of a signal kind on several symbols.

One ``prange`` call backtests every parameter combination of a built-in signal kind on a
portfolio of symbols that share one cash account, the way
:func:`quantlib.backtest.run_backtest` runs ``{symbol: frame}`` (and
:mod:`quantlib.backtest.rule_engine` restates it on the order and stop rules): every bar,
every symbol in the portfolio's order, completely (its stop check, then its signal) before the
next; each symbol's fill sees the cash the symbols before it left.

Per combination the kernel first computes each symbol's target path (one buffer of bars per
symbol, freed when the combination is done: memory grows with threads x symbols x bars, never
with combinations), then walks the bars once, with the code of the single-symbol sweep
(:func:`quantlib.backtest.sweep_nb._simulate_nb`, which treats one symbol as a portfolio of
one): targets decided as :mod:`quantlib.backtest.sweep_nb` decides them, signals the changes of
the clipped targets, fills through the order rule via
:func:`quantlib.backtest.sweep_fill_nb.account_fill_nb` (one account row per symbol, cash and
free cash carried from symbol to symbol), stops through
:func:`quantlib.backtest.sweep_fill_nb.stop_step_nb` (against the open alone on a bar whose
open fills an order closing or reversing the symbol's position: the rule of
``quantlib/core/stop_rule.py``), and only running sums leave the loop.

Equity at bar ``t`` is summed as the engine sums it: ``init_cash + cumulative (sum over
symbols of the bar's cash flows) + sum over symbols of units * close``. The output row holds
the single-symbol kernel's sums (columns ``S_*`` of :mod:`quantlib.backtest.sweep_nb`) plus
three benchmark sums (``P_*``): with ``b`` the benchmark's bar returns (buy-and-hold of the
symbols, equal weight, as the metrics function defines it), ``sum r (b - mean b)``, ``sum r``
over bars with ``b > 0`` and over bars with ``b < 0``: alpha, beta, correlation, information
ratio and capture ratios follow from them without a bars x combinations matrix.
"""

from __future__ import annotations

import numpy as np

from quantlib.backtest.sweep_nb import N_PSTATS, P_COV, P_DOWN, P_UP, _simulate_nb, outputs_nb
from quantlib.backtest.sweep_rows_nb import max_abs_nb
from quantlib.jit import njit, prange

# the benchmark sums' columns (defined with the kernel that writes them)
__all__ = ["N_PSTATS", "P_COV", "P_DOWN", "P_UP", "sweep_portfolio_nb"]


@njit(cache=True, parallel=True, error_model="numpy")
def sweep_portfolio_nb(kind, open_, high, low, close, price, bank_a, bank_b, meta_a, meta_b,
                       idx_a, idx_b, par1, par2, warmup, shift, size, sizing, fees, slippage,
                       sl_stop, tp_stop, trail, long_ok, short_ok, init_cash, bench_centred,
                       bench_rets, n_blocks):
    """Backtest every combination of one signal kind on a shared-cash portfolio.

    Parameters
    ----------
    kind : one of ``MA_CROSS .. MACD`` (:mod:`quantlib.backtest.sweep_nb`).
    open_, high, low, close, price : symbols x bars (``price``: the order price per bar).
    bank_a, bank_b, meta_a, meta_b : per symbol (first axis), the banks and row metadata
        :func:`quantlib.backtest.sweep_nb.sweep_signals_nb` takes for one symbol.
    idx_a, idx_b, par1, par2, warmup : per combination, as for ``sweep_signals_nb``.
    shift, size, sizing, fees, slippage, sl_stop, tp_stop, trail, long_ok, short_ok,
    init_cash : the configuration, as for ``sweep_signals_nb``.
    bench_centred, bench_rets : per bar, the benchmark's return minus its mean, and its return.
    n_blocks : CSCV blocks for the return moments (0: none).

    Returns
    -------
    ``(stats, block_sum, block_sumsq)``; ``stats`` is combinations x ``N_PSTATS``.

    Examples
    --------
    >>> import numpy as np
    >>> from quantlib.backtest import sweep_nb as snb
    >>> from quantlib.backtest.sweep_rows_nb import sma_rows_nb
    >>> px = np.vstack([np.linspace(100, 120, 60), np.linspace(50, 40, 60)])
    >>> banks = [sma_rows_nb(row, np.array([3, 9])) for row in px]
    >>> bank = np.stack([b[0] for b in banks])
    >>> meta = np.zeros((2, 2, 3)); meta[:, :, 0] = [3, 9]
    >>> meta[:, :, 2] = np.stack([b[1] for b in banks])
    >>> stats, _, _ = sweep_portfolio_nb(snb.MA_CROSS, px, px, px, px, px, bank,
    ...     np.zeros((2, 1, 1)), meta, np.zeros((2, 1, 3)), np.array([0]), np.array([1]),
    ...     np.zeros(1), np.zeros(1), np.array([8]), 1, 0.5, 0, 0.0, 0.0, np.nan, np.nan,
    ...     False, True, False, 1000.0, np.zeros(60), np.zeros(60), 0)
    >>> bool(stats[0, snb.S_FINAL] > 1000.0)  # long the rising symbol only
    True
    """
    n_combo = idx_a.shape[0]
    scales = np.empty(close.shape[0])  # per symbol, the rows' bound scale (sweep_rows_nb)
    for s in range(close.shape[0]):
        scales[s] = max_abs_nb(close[s])
    market = (open_, high, low, close, price, scales, bench_centred, bench_rets)
    combos = (idx_a, idx_b, par1, par2, warmup, np.zeros((1, 1)), np.full(n_combo, -1))
    rule = (shift, size, sizing, fees, slippage, sl_stop, tp_stop, trail, long_ok, short_ok,
            init_cash)
    outputs = outputs_nb(n_combo, close.shape[1], n_blocks, N_PSTATS)
    banks = (bank_a, bank_b, meta_a, meta_b)
    for c in prange(n_combo):
        _simulate_nb(kind, c, market, banks, combos, rule, outputs)
    stats, block_sum, block_sumsq, _ = outputs
    return stats, block_sum, block_sumsq
