"""Writes notebooks/01_data.ipynb."""

from make_notebook import build

build("notebooks/01_data.ipynb", [
    ("md", """# 01 · Data: load, validate, look

Loads one data source (the synthetic default, a file, or exchange data through ccxt), checks it
against the canonical OHLCV layout, lists gaps, and shows price, the return distribution and
volatility."""),
    ("params", """# Parameters (papermill overrides these)
source = "sample:bars=3000"   # sample[:seed=..,bars=..], file:PATH, or EXCHANGE:BASE/QUOTE:TF[:SINCE[:UNTIL]]
exchange = None               # when set with symbol: builds EXCHANGE:SYMBOL:TIMEFRAME:START:END
symbol = None
timeframe = "1h"
start = None
end = None"""),
    ("code", """import quantlib.data as qd
from quantlib.plotting import data as qplot
from quantlib.report.record import record_data, record_metrics

df = qd.load(qd.source_from_parts(source, exchange, symbol, timeframe, start, end))
record_data(df);"""),
    ("md", "## Validation summary and gaps"),
    ("code", """summary = qd.validate_ohlcv(df)
display(summary.to_dict())
summary.gaps.head(20)"""),
    ("md", "## Price"),
    ("code", "qplot.plot_candles(df)"),
    ("md", "## Returns and volatility"),
    ("code", """stats = qplot.return_stats(df)
record_metrics({"bars": int(stats.bars), "annualised_vol": stats.annualised_vol,
                "excess_kurtosis": stats.excess_kurtosis, "missing_bars": summary.n_missing})
qplot.plot_returns_distribution(df)"""),
    ("code", "qplot.plot_volatility(df)"),
])
