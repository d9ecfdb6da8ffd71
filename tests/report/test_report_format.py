"""One formatter for metrics: the rules, and the index and provenance tables that use it."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from quantlib.report.format import format_metric, format_table, metric_kind
from quantlib.report.record import provenance_table_html


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("total_return", -0.644125, "-64.4 %"),         # the raw float
    ("max_drawdown", -0.25, "-25.0 %"),
    ("excess_return", 0.0312, "3.1 %"),
    ("n_trades", 76.0, "76"),
    ("max_drawdown_bars", 4942.0, "4,942"),
    ("max_drawdown_days", 205.9166, "205.9 d"),
    ("sharpe", 1.23456, "1.23"),
    ("beta", 0.012345, "0.0123"),
    ("information_ratio", -12.3456, "-12.3"),
    ("fees_paid", 1045.84813, "1,045.85"),
    ("profit_factor", math.inf, "∞"),
    ("approved", True, "yes"),
    ("kind", "ma_cross", "ma_cross"),
    ("sharpe", np.float64(2.0), "2.00"),
])
def test_rules(name, value, shown):
    assert format_metric(name, value) == shown


def test_undefined_values_say_why():
    assert format_metric("holdout_sharpe", None) == "n/a (zero volatility or too few bars)"
    assert format_metric("win_rate", float("nan")) == "n/a (no closed trades)"
    assert format_metric("alpha", np.nan) == "n/a (no benchmark)"
    assert format_metric("anything", None, reason="not run") == "n/a (not run)"
    assert "None" not in format_metric("x", None) and "nan" not in format_metric("y", np.nan)


def test_kinds_by_name():
    assert [metric_kind(n) for n in ("cagr", "ann_volatility", "win_rate", "exposure",
                                     "sweep_combos", "turnover", "psr")] == [
        "percent", "percent", "percent", "percent", "count", "ratio", "ratio"]


def test_format_table_by_row_or_column():
    summary = pd.DataFrame({"value": pd.Series({"total_return": -0.5, "n_trades": 3.0},
                                               dtype=object)})
    assert format_table(summary)["value"].tolist() == ["-50.0 %", "3"]
    wide = pd.DataFrame({"sharpe": [1.0, np.nan], "n_trades": [2.0, 0.0]})
    assert format_table(wide).to_dict("list") == {
        "sharpe": ["1.00", "n/a (zero volatility or too few bars)"], "n_trades": ["2", "0"]}


def test_provenance_is_a_table_not_json():
    html = provenance_table_html({"timeframe": "1h", "source": "file", "n_bars": 17520,
                                  "source_string": "file:/very/long/path.csv"})
    assert "{" not in html and html.count("<tr>") == 4
    assert html.index("source") < html.index("timeframe") < html.index("n bars")
    assert "17,520" in html and "word-break:break-all" in html


def test_index_formats_headline_metrics_and_excess(tmp_path):
    from quantlib.report.index import render_index

    run = tmp_path / "2026-01-01T000000Z-abc"
    run.mkdir()
    manifest = {"run_id": run.name, "git_commit": "abc", "entries": [{
        "notebook": "02_backtest", "param_set": "default", "status": "ok", "source": "sample",
        "duration_s": 3.0, "html": "x.html", "metrics": {
            "total_return": -0.644125, "n_trades": 76.0, "holdout_sharpe": None,
            "excess_return": 0.125, "benchmark_return": -0.769125}}]}
    (run / "run.json").write_text(json.dumps(manifest))
    page = render_index(tmp_path)
    assert "02_backtest" in page
    assert "-64.4 %" in page and "<b>n_trades</b>&nbsp;76<" in page
    assert "n/a (zero volatility or too few bars)" in page and "None" not in page
    assert "12.5 %" in page and "hold -76.9 %" in page
