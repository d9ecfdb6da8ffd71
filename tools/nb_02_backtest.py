"""Writes notebooks/02_backtest.ipynb."""

from make_notebook import build

build("notebooks/02_backtest.ipynb", [
    ("md", """# 02 · Backtest: signal strategies on vectorbt

Runs one registered signal kind (`ma_cross`, `ema_cross`, `rsi_reversion`, `bollinger_reversion`,
`donchian_breakout`, `macd`, or any kind you register) with fees, slippage and stops. Orders are
filled at the **next bar's open** after the signal bar closes. Then a parameter sweep (all
combinations in one vectorbt call), a heatmap of any metric, and the bias checks that prove the
signal neither looks ahead nor depends on history beyond its warm-up."""),
    ("params", """# Parameters (papermill overrides these)
source = "sample:bars=3000"     # sample[:seed=..,bars=..], file:PATH, or EXCHANGE:BASE/QUOTE:TF[:SINCE[:UNTIL]]
kind = "ma_cross"
params = {"fast": 10, "slow": 50}
sweep = {"fast": [5, 10, 20, 30], "slow": [40, 60, 100, 150]}   # grid over the kind's parameters
heatmap_metric = "sharpe"
fees = 0.001                    # fraction of traded value per fill
slippage_bps = 2.0
size = 1.0                      # fraction of cash (size_type="percent") or quote notional ("value")
size_type = "percent"
direction = "longonly"          # longonly | shortonly | both (both needs size_type="value")
execution = "next_open"         # next_open | close
sl_stop = None
tp_stop = None
trail_stop = None"""),
    ("code", """import itertools

import quantlib.data as qd
from quantlib.backtest import BacktestConfig, check_lookahead, check_recursive, run_backtest
from quantlib.plotting import backtest as qplot
from quantlib.plotting import tearsheet
from quantlib.report.format import format_table
from quantlib.report.record import record_data, record_metrics
from quantlib.core import get_kind

df = qd.load(source)
record_data(df);"""),
    ("code", """config = BacktestConfig(fees=fees, slippage_bps=slippage_bps, size=size, size_type=size_type,
                        direction=direction, execution=execution, sl_stop=sl_stop,
                        tp_stop=tp_stop, trail_stop=trail_stop)
strategy = get_kind(kind)
print(strategy.name, "-", strategy.doc)
print("declared parameters:", [(p.name, p.type.__name__, p.low, p.high, p.default) for p in strategy.params])
result = run_backtest(kind, df, params, config)
format_table(result.summary(0))"""),
    ("md", """## Tearsheet: the strategy against buy & hold of the same market

Cumulative return, drawdowns (the five worst marked and listed), calendar returns, rolling
Sharpe / volatility / beta, the bar-return distribution with its VaR and CVaR, trades and
exposure. Long series are thinned for drawing only; every number uses all bars."""),
    ("code", "tearsheet(result, 0, benchmark=df).show()"),
    ("md", "## Fills over price"),
    ("code", "qplot.plot_trades(result, df, 0)"),
    ("code", "result.fills.head(10)"),
    ("md", "## Parameter sweep: every combination in one vectorbt call"),
    ("code", """grid = [dict(params, **dict(zip(sweep, values))) for values in itertools.product(*sweep.values())]
grid = [p for p in grid if not ("fast" in p and "slow" in p) or p["fast"] < p["slow"]]
sweep_result = run_backtest(kind, df, grid, config)
format_table(sweep_result.summary().head(10))"""),
    ("code", """axes = list(sweep)
(qplot.plot_param_heatmap(sweep_result, axes[0], axes[1], heatmap_metric) if len(axes) >= 2
 else sweep_result.table().plot(x=axes[0], y=heatmap_metric))"""),
    ("md", """## Bias checks

`check_lookahead` recomputes the signal on truncated prefixes (is bar *t* the same when later bars
do not exist?); `check_recursive` recomputes it with different amounts of history before the
declared warm-up (does it depend on old history the live runner will not have?)."""),
    ("code", """lookahead = check_lookahead(kind, df, params)
recursive = check_recursive(kind, df, params)
print("lookahead:", lookahead.passed, "-", lookahead.details)
print("recursive:", recursive.passed, "-", recursive.details)"""),
    ("code", """best = sweep_result.best(heatmap_metric) if sweep_result.metrics[heatmap_metric].notna().any() else 0
m = result.metrics.iloc[0]
record_metrics({"kind": kind, "total_return": m["total_return"],
                "benchmark_return": m["benchmark_return"], "excess_return": m["excess_return"],
                "sharpe": m["sharpe"],
                "max_drawdown": m["max_drawdown"], "n_trades": m["n_trades"],
                "fees_paid": m["fees_paid"], "sweep_combos": len(grid),
                f"best_sweep_{heatmap_metric}": sweep_result.metrics[heatmap_metric].iloc[best],
                "best_sweep_params": str(sweep_result.params[best]),
                "lookahead_ok": lookahead.passed, "recursive_ok": recursive.passed});"""),
])
