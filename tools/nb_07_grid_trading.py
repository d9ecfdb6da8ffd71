"""Writes notebooks/07_grid_trading.ipynb."""

from make_notebook import build

build("notebooks/07_grid_trading.ipynb", [
    ("md", """# 07 Grid trading

The numba grid engine (`quantlib.backtest.grid`): the two fill rules side by side, then
arithmetic, geometric, Fibonacci and volatility (k x ATR) grids, the fills over price, and a
sweep heatmap of level count x range width. The rules (the default "bar" model that the paper
runner and the exchange grid follow, the optimistic "touch" option, gaps, stop-out, active mask)
are documented in `quantlib.core.grid_nb`."""),
    ("params", """# Parameters (papermill overrides these)
source = "sample:bars=2000"     # sample[:seed=..,bars=..], file:PATH, or EXCHANGE:BASE/QUOTE:TF
n_levels = 12
range_pct = None                # bounds = first open x (1 -/+ range_pct); None: from the data*
order_size = 0.08               # fraction of init_cash per level
stop_out = False
atr_period = 24
atr_k = 2.0
fill_model = "bar"              # "bar" (orders change at bar closes, as at an exchange) | "touch"
compare_n_levels = 41           # the fill-rule comparison's tight arithmetic grid
compare_range_pct = None        # None: from the data*
fees = 0.001
slippage_bps = 2.0
sweep_levels = [4, 8, 12, 16, 24]
sweep_widths = None             # range widths swept; None: from the data*
heatmap_metric = "sharpe"
# *multiples of the data's move scale (bar volatility x sqrt(bars), quantlib.report.defaults),
#  so the ranges fit the market given instead of one synthetic seed"""),
    ("code", """from quantlib.backtest import BacktestConfig
from quantlib.backtest.grid import (FILL_MODELS, SPACINGS, compare_fill_models,
                                    fill_model_summary, run_grid)
from quantlib.data import load
from quantlib.report.defaults import grid_notebook_defaults
from quantlib.plotting.backtest import plot_param_heatmap
from quantlib.plotting.grid import plot_grid_equity, plot_grid_fills
from quantlib.report.record import record_data, record_metrics

df = load(source)
record_data(df)
widths = grid_notebook_defaults(df, range_pct=range_pct, compare_range_pct=compare_range_pct,
                                sweep_widths=sweep_widths)
range_pct, compare_range_pct, sweep_widths = (widths["range_pct"], widths["compare_range_pct"],
                                              widths["sweep_widths"])
print(f"range_pct {range_pct}, compare_range_pct {compare_range_pct}, sweep_widths "
      f"{sweep_widths}")
print(f"({widths['note']})")
config = BacktestConfig(fees=fees, slippage_bps=slippage_bps)
base = dict(n_levels=n_levels, lower_pct=range_pct, upper_pct=range_pct,
            order_size=order_size, stop_out=stop_out, atr_period=atr_period, atr_k=atr_k,
            fill_model=fill_model)"""),
    ("md", """## The fill rule: "bar" (the default) vs the optimistic "touch"

"bar": the book decided at a close rests during the next bar, fills where that bar's range
reaches it at the limit prices, and its follow-up orders rest from the bar after: what a bot
whose orders change at bar closes gets from an exchange (and what the paper runner and the
exchange grid do). "touch" re-arms a level the instant the price passes it inside a bar, so
one bar can hold many round trips a real bot never makes, the more so the tighter the grid.
`touch_vs_bar` is how much larger the touch figure is."""),
    ("code", """tight = dict(base, spacing="arithmetic", n_levels=compare_n_levels,
             lower_pct=compare_range_pct, upper_pct=compare_range_pct,
             order_size=min(order_size, 0.9 / compare_n_levels))
models = compare_fill_models(df, tight, config)
comparison = fill_model_summary(models)
comparison"""),
    ("code", """plot_grid_equity(models, labels=list(FILL_MODELS))"""),
    ("md", """## The four spacing modes side by side (one kernel call)"""),
    ("code", """modes = run_grid(df, [dict(base, spacing=s) for s in SPACINGS], config)
table = modes.metrics.set_index(modes.params_frame()['spacing'])
table[['total_return', 'sharpe', 'max_drawdown', 'n_trades', 'exposure', 'fees_paid']]"""),
    ("code", """plot_grid_equity(modes)"""),
    ("md", """## Levels and fills over price"""),
    ("code", """plot_grid_fills(df, modes, combo=SPACINGS.index('geometric'))"""),
    ("code", """plot_grid_fills(df, modes, combo=SPACINGS.index('volatility'))"""),
    ("md", """## Sweep: number of levels x range width"""),
    ("code", """combos = [dict(base, spacing='geometric', n_levels=n, lower_pct=w, upper_pct=w)
          for n in sweep_levels for w in sweep_widths]
sweep = run_grid(df, combos, config)
plot_param_heatmap(sweep.table(), 'n_levels', 'lower_pct', heatmap_metric)"""),
    ("code", """best = sweep.best(heatmap_metric)
summary = record_metrics({'best_n_levels': sweep.params[best]['n_levels'],
                'best_range_pct': sweep.params[best]['lower_pct'],
                f'best_{heatmap_metric}': sweep.metrics[heatmap_metric].iloc[best],
                **{f'{s}_total_return': modes.metrics['total_return'].iloc[k]
                   for k, s in enumerate(SPACINGS)},
                **{f'{m}_round_trips': comparison.loc['round_trips', m] for m in FILL_MODELS},
                **{f'{m}_realized_pnl': comparison.loc['realized_pnl', m] for m in FILL_MODELS},
                'touch_vs_bar_round_trips': comparison.loc['round_trips', 'touch_vs_bar'],
                'touch_vs_bar_realized_pnl': comparison.loc['realized_pnl', 'touch_vs_bar']})"""),
    ("code", """# Tearsheet of the sweep's best grid against buy & hold of the same market
from quantlib.plotting import tearsheet
record_metrics({k: sweep.metrics[k].iloc[best] for k in ('excess_return', 'benchmark_return')},
               display_table=False)
tearsheet(sweep, best, benchmark=df).show()"""),
])
