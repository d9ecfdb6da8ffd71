"""Writes notebooks/09_multi_timeframe.ipynb."""

from make_notebook import build

build("notebooks/09_multi_timeframe.ipynb", [
    ("md", """# 09 · Multi-timeframe: 1h entries in the direction of the 4h trend

`htf_trend` wraps any signal kind: its target is kept only when its direction agrees with the
trend of the last **closed** higher-timeframe bar (close above / below its moving average).
The rule, stated once in `quantlib.core.informative`: at 1h bar *t* (decided at its close)
a 4h bar is visible only if it closed at or before *t*'s close, so the 08:00-12:00 bar is seen
from the 11:00-12:00 bar on, never its still-forming value. Missing bars are errors, not
forward fills.

Below: the alignment on the first bars, then the same 1h sweep with and without the filter on
the same data, with the Deflated Sharpe Ratio and the Probability of Backtest Overfitting over
each sweep (the filter's extra parameters are extra trials, and DSR/PBO count them)."""),
    ("params", """# Parameters (papermill overrides these)
source = "sample:bars=3000,timeframe=1h"   # 1h base data: sample[...], file:PATH or EXCHANGE:BASE/QUOTE:1h
inner_kind = "ma_cross"
inner_grid = {"fast": [5, 10, 20], "slow": [40, 80]}
trend_timeframe = "4h"
trend_grid = {"trend_kind": ["ma", "ema"], "trend_window": [10, 20]}
objective = "sharpe"
regime_source = "sample:seed=2,bars=3000,timeframe=1h"   # source string of the gating symbol, e.g. BTC
regime_grid = {"allowed_regimes": [[0], [1]], "min_proba": [0.5, 0.7]}"""),
    ("code", """import itertools

import pandas as pd
import plotly.graph_objects as go

import quantlib.data as qd
from quantlib.backtest import check_lookahead, check_recursive, run_backtest
from quantlib.optimize.sweep import sweep
from quantlib.report.format import format_table
from quantlib.report.record import record_data, record_metrics
from quantlib.core.bars import Bars
from quantlib.core.informative import InformativeInput, align

df = qd.load(source)
record_data(df);"""),
    ("md", "## The alignment on the first bars: which 4h bar each 1h bar sees"),
    ("code", """trend = align(Bars.from_frame(df), InformativeInput("trend", trend_timeframe), None)
visible = [pd.Timestamp(trend.bars.time[j], tz="UTC") if j >= 0 else None for j in trend.index]
pd.DataFrame({"1h bar opens": df.index[:14], "visible 4h bar opens": visible[:14],
              "its close": trend.at_base(trend.bars.close)[:14]})"""),
    ("md", "## The same 1h sweep, unfiltered and filtered"),
    ("code", """def combos(grid):
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]

inner = [p for p in combos(inner_grid) if p.get("fast", 0) < p.get("slow", 1)]
filtered = [{"inner_kind": inner_kind, "inner_params": p, "trend_timeframe": trend_timeframe, **t}
            for p in inner for t in combos(trend_grid)]
plain_sweep = sweep(inner_kind, df, inner, objective=objective, progress=False)
trend_sweep = sweep("htf_trend", df, filtered, objective=objective, progress=False)
overfit = pd.DataFrame({
    "trials": [plain_sweep.n_trials, trend_sweep.n_trials],
    f"best {objective}": [plain_sweep.table[objective].max(), trend_sweep.table[objective].max()],
    "DSR": [plain_sweep.dsr, trend_sweep.dsr], "PBO": [plain_sweep.pbo, trend_sweep.pbo]},
    index=[f"{inner_kind} (unfiltered)", f"htf_trend {trend_timeframe}"])
format_table(overfit)"""),
    ("md", """## Best of each, backtested side by side

The filter's best combination and the unfiltered best are both picked in-sample; DSR/PBO above say
how much of the difference the extra trials explain."""),
    ("code", """best_plain, best_trend = plain_sweep.best_params, trend_sweep.best_params
plain_run, trend_run = run_backtest(inner_kind, df, best_plain), run_backtest("htf_trend", df, best_trend)
side = pd.concat([plain_run.metrics, trend_run.metrics])
side.index = [f"{inner_kind} {best_plain}", f"htf_trend {best_trend['trend_kind']} "
              f"{best_trend['trend_window']} on {best_trend['inner_params']}"]
format_table(side[["total_return", "sharpe", "max_drawdown", "n_trades", "exposure"]
                  if "exposure" in side else ["total_return", "sharpe", "max_drawdown", "n_trades"]])"""),
    ("code", """figure = go.Figure()
for label, run in zip(side.index, (plain_run, trend_run)):
    figure.add_scatter(x=run.equity.index, y=run.equity.iloc[:, 0], name=label)
figure.update_layout(title="Equity: best unfiltered vs best 4h-filtered (in-sample picks)",
                     yaxis_title="equity")"""),
    ("md", """## Another symbol's regime gating the same entries

`regime_filter_cross`: the unfiltered best entries, traded only while a 2-state Gaussian HMM
(fitted on the other symbol's returns, in-sample) says its regime is allowed. The other symbol's
bars are aligned by the same rule (same timeframe: its bar with the same open time)."""),
    ("code", """from quantlib.regime import GaussianHMMRegime, regime_features
from quantlib.core.regime_kinds import regime_filter_params

other = qd.load(regime_source)
hmm = GaussianHMMRegime(2, n_restarts=1, random_state=0).fit(regime_features(other, ["returns"]))
base_params = {**regime_filter_params(hmm, inner_kind, best_plain, filter_window=60),
               "regime_symbol": "BTC/USD", "regime_source": regime_source}
gated = [{**base_params, **r} for r in combos(regime_grid)]
regime_sweep = sweep("regime_filter_cross", df, gated, objective=objective, progress=False)
cross = pd.DataFrame({"trials": [plain_sweep.n_trials, regime_sweep.n_trials],
                      f"best {objective}": [plain_sweep.table[objective].max(),
                                            regime_sweep.table[objective].max()],
                      "DSR": [plain_sweep.dsr, regime_sweep.dsr],
                      "PBO": [plain_sweep.pbo, regime_sweep.pbo]},
                     index=[f"{inner_kind} (unfiltered)", "gated by the other symbol's regime"])
format_table(cross)"""),
    ("md", """## Bias checks on the filtered kind

`check_lookahead` recomputes on prefixes (the 4h bars are rebuilt from the cut 1h data, so a
still-forming 4h bar cannot leak); `check_recursive` uses the warm-up including the 4h history."""),
    ("code", """lookahead = check_lookahead("htf_trend", df, best_trend, n_checks=30)
recursive = check_recursive("htf_trend", df, best_trend, n_checks=10, extra_history=(0, 7))
print("lookahead:", lookahead.passed, "-", lookahead.details)
print("recursive:", recursive.passed, "-", recursive.details)"""),
    ("code", """record_metrics({"inner_kind": inner_kind, "trend_timeframe": trend_timeframe,
                "plain_trials": plain_sweep.n_trials, "trend_trials": trend_sweep.n_trials,
                "plain_best": float(overfit.iloc[0, 1]), "trend_best": float(overfit.iloc[1, 1]),
                "plain_dsr": plain_sweep.dsr, "trend_dsr": trend_sweep.dsr,
                "plain_pbo": plain_sweep.pbo, "trend_pbo": trend_sweep.pbo,
                "regime_dsr": regime_sweep.dsr, "regime_pbo": regime_sweep.pbo,
                "lookahead_ok": lookahead.passed, "recursive_ok": recursive.passed});"""),
])
