"""Notebook defaults from the data (quantlib.report.defaults): the move scale in closed form, blind to the bars after its
leading window, scaling with the market, sized for real files, bad input named."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quantlib.errors import DataError, ParameterError
from quantlib.report.defaults import (
    MAX_WIDTH,
    MoveScale,
    grid_study_space,
    grid_sweep_space,
    move_scale,
    notebook_space,
)
from tests.conftest import shared_data_path
from tests.support.frames import assert_bad_bars_named


def _frame(log_returns: np.ndarray, start: float = 100.0) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(log_returns) + 1, freq="1h", tz="UTC")
    close = start * np.exp(np.r_[0.0, np.cumsum(log_returns)])
    return pd.DataFrame({"open": close, "high": close, "low": close, "close": close}, index=idx)


def test_alternating_returns_give_the_closed_form_scale():
    a = 0.02
    data = _frame(np.tile([a, -a], 202))  # 405 bars: the first 101 hold 100 returns, 50 of each
    s = move_scale(data)
    assert s.fit_bars == 101 and s.horizon == 405
    # mean 0, sum of squares 100 a^2, ddof=1
    assert s.bar_volatility == pytest.approx(a * math.sqrt(100 / 99), rel=1e-12)
    assert s.scale == pytest.approx(a * math.sqrt(100 / 99) * math.sqrt(405), rel=1e-12)
    assert s.widths([0.5]) == [float(f"{0.5 * s.scale:.3g}")]
    assert move_scale(data, horizon=100).scale == pytest.approx(s.bar_volatility * 10.0)


def test_bars_after_the_leading_window_change_nothing():
    rng = np.random.default_rng(7)
    rets = rng.normal(0, 0.01, 2000)
    base = move_scale(_frame(rets))
    crashed = rets.copy()
    crashed[base.fit_bars:] = rng.normal(-0.01, 0.05, len(rets) - base.fit_bars)
    assert move_scale(_frame(crashed)) == base  # same volatility, same length
    assert grid_sweep_space(_frame(crashed)) == grid_sweep_space(_frame(rets))


def test_widths_scale_with_the_market_and_stay_below_one():
    rng = np.random.default_rng(3)
    rets = rng.normal(0, 0.004, 1200)
    calm, wild = grid_sweep_space(_frame(rets)), grid_sweep_space(_frame(3 * rets))
    for name in ("lower_pct", "upper_pct"):
        for narrow, wide in zip(calm[name], wild[name], strict=True):
            assert wide == pytest.approx(3 * narrow, rel=0.02)  # 3 significant digits
    huge = MoveScale(0.05, 100, 40_000)  # scale 10
    assert huge.widths([0.1, 1.0, 2.0]) == [MAX_WIDTH]
    study = grid_study_space(_frame(rets))
    low, high = study["lower_pct"]
    assert low < high and study["upper_pct"] == (low, high)


def test_real_files_get_ranges_sized_for_their_own_market():
    from quantlib.data import load_ohlcv

    files = {}
    for name in ("btc_usdt_1h_2017_2020.csv", "btc_usdt_1h_2024_2025.csv"):
        data = load_ohlcv(shared_data_path(name))
        logs = np.log(data["close"]).diff().iloc[1: len(data) // 4]
        s = move_scale(data)
        assert s.bar_volatility == pytest.approx(logs.std(), rel=1e-9)  # pandas, ddof=1
        files[name] = (data, s)
    old, new = files["btc_usdt_1h_2017_2020.csv"], files["btc_usdt_1h_2024_2025.csv"]
    # 2.6 volatile years against one calmer year: a much wider default range
    assert old[1].scale > 1.5 * new[1].scale
    # the widest default sweep range keeps BTC 2017-2020 inside it far longer than the old
    # fixed +-20 %, which it left within weeks (independent count of closes in range)
    data = old[0]
    space = grid_sweep_space(data)
    first = data["open"].iloc[0]

    def share_in(lower: float, upper: float) -> float:
        close = data["close"]
        return float(((close >= first * (1 - lower)) & (close <= first * (1 + upper))).mean())

    assert share_in(max(space["lower_pct"]), max(space["upper_pct"])) > 2 * share_in(0.2, 0.2)


def test_notebook_space_defaults_only_what_is_missing():
    from quantlib.data import load

    data = load("sample:seed=1,bars=600")
    assert notebook_space("grid", data) == grid_sweep_space(data)
    assert notebook_space("grid", data, study=True) == grid_study_space(data)
    assert notebook_space("ma_cross", data) is None  # the kind's declared ranges
    given = {"n_levels": [4], "lower_pct": [0.1], "upper_pct": [0.1]}
    assert notebook_space("grid", data, given) is given


def test_bad_input_is_named():
    good = _frame(np.tile([0.01, -0.01], 100))
    assert_bad_bars_named(move_scale, good, "close", row=5)
    with pytest.raises(DataError, match="never moves"):
        move_scale(_frame(np.zeros(100)))
    with pytest.raises(DataError, match="at least 3"):
        move_scale(good.iloc[:2])
    with pytest.raises(ParameterError, match="fit_fraction"):
        move_scale(good, fit_fraction=0)
    with pytest.raises(ParameterError, match="horizon"):
        move_scale(good, horizon=0)
    with pytest.raises(ParameterError, match="multiples"):
        move_scale(good).widths([0.5, -1])
    with pytest.raises(ParameterError, match="width"):
        grid_study_space(good, width=(0.5, 0.5))


def test_notebook_helpers_fill_only_missing_widths():
    from quantlib.data import load
    from quantlib.report.defaults import (
        COMPARE_RANGE,
        GRID_RANGE,
        SWEEP_WIDTHS,
        fill_widths,
        grid_notebook_defaults,
    )

    data = load("sample:seed=2,bars=900")
    s = move_scale(data)
    d = grid_notebook_defaults(data)
    assert d["range_pct"] == float(f"{GRID_RANGE * s.scale:.3g}")
    assert d["compare_range_pct"] == float(f"{COMPARE_RANGE * s.scale:.3g}")
    assert d["sweep_widths"] == [float(f"{m * s.scale:.3g}") for m in SWEEP_WIDTHS]
    assert grid_notebook_defaults(data, sweep_widths=[0.1])["sweep_widths"] == [0.1]
    # the training part's volatility over the traded part's length (notebook 03's use)
    train, test = data.iloc[:600], data.iloc[600:]
    p = fill_widths({"n_levels": 10, "lower_pct": None}, train, 0.5, fit_fraction=1.0,
                    horizon=len(test))
    vol = np.log(train["close"]).diff().std()
    assert p["lower_pct"] == p["upper_pct"] == float(f"{0.5 * vol * math.sqrt(300):.3g}")
    assert fill_widths({"lower_pct": 0.2, "upper_pct": 0.3}, train) == {"lower_pct": 0.2,
                                                                      "upper_pct": 0.3}


def test_importing_the_defaults_loads_no_optimizer():
    """Notebooks 03, 06 and 07 import it: it must not pull optuna, scipy.stats or vectorbt
    (quantlib.optimize's package import costs seconds of CPU per kernel)."""
    import json
    import subprocess
    import sys

    code = ("import json, sys\nimport quantlib.report.defaults\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    heavy = {"optuna", "scipy.stats", "vectorbt", "quantlib.optimize", "sklearn"}
    assert loaded & heavy == set()
