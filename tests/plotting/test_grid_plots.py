"""Grid fill chart: the level lines drawn from their change points only are, bar by bar, the
levels in force (as level_history gives them), in far fewer points."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlib.backtest.grid import level_history, run_grid
from quantlib.data import load
from quantlib.plotting.grid import plot_grid_fills


def test_level_steps_redraw_every_bar_exactly():
    df = load("sample:bars=900,seed=4")
    res = run_grid(df, [{"spacing": "volatility", "n_levels": 5, "atr_period": 8, "atr_k": 2.0},
                        {"n_levels": 6, "lower_pct": 0.1, "upper_pct": 0.1}])
    for combo in (0, 1):
        fig = plot_grid_fills(df, res, combo, max_bars=600)
        levels = level_history(df, res.params[combo]).iloc[-600:]
        traces = [tr for tr in fig.data if tr.name.startswith("level")]
        assert [tr.name for tr in traces] == list(levels.columns)
        bars = levels.index.asi8
        for tr in traces:
            assert tr.line.shape == "hv"
            x = pd.DatetimeIndex(tr.x).asi8
            y = np.asarray(tr.y, dtype=np.float64)
            # a step line holds each point's value until the next point (plain lookup)
            drawn = y[np.searchsorted(x, bars, side="right") - 1]
            np.testing.assert_array_equal(drawn, levels[tr.name].to_numpy())
        if combo == 1:  # a fixed grid: two points per level instead of 600
            assert all(len(tr.x) == 2 for tr in traces)
