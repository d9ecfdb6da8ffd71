"""The regime kinds (``regime_filter``, ``regime_grid``) as JSON strategy specs: exact round trips,
``quantlib backtest --strategy`` against the library backtest, and the lookahead check."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from quantlib.backtest import check_lookahead, run_backtest
from quantlib.backtest.grid import run_grid
from quantlib.core.regime_kinds import grid_active, regime_filter_params, regime_ok
from quantlib.core.registry import get_kind
from quantlib.data import load
from quantlib.errors import SpecError
from quantlib.regime import GaussianHMMRegime, regime_features
from quantlib.regime.attribution import run_regime_grid
from quantlib.strategy.spec import StrategySpec, dump_spec, load_spec, save_spec, validate_spec

# A market where the calm regime switches the kinds on and off and the grid stays in range
# (seed 5 left the calibrated default market's grid out of range: 20 bars held).
SOURCE = "sample:seed=1,bars=1200"
INNER = {"ma_cross": {"fast": 5, "slow": 20}, "grid": {"n_levels": 8}}
EXECUTION = {"fees": 0.002, "slippage_bps": 5.0}
RISK = {"init_cash": 5000.0}
# The BacktestConfig the spec's execution and risk sections stand for.
CONFIG = {**EXECUTION, **RISK}


@pytest.fixture(scope="module")
def data():
    return load(SOURCE)


@pytest.fixture(scope="module")
def hmm(data):
    return GaussianHMMRegime(2, n_restarts=1, random_state=0).fit(
        regime_features(data.iloc[:800], ["returns"]))


@pytest.fixture(scope="module")
def params(hmm):
    """kind -> JSON-ready parameters: trade only while the calm regime (0) holds."""
    return {"regime_filter": regime_filter_params(hmm, "ma_cross", INNER["ma_cross"],
                                                  allowed_regimes=[0], filter_window=50),
            "regime_grid": regime_filter_params(hmm, "grid", INNER["grid"],
                                                allowed_regimes=[0], filter_window=50)}


def _spec(kind, params):
    return StrategySpec(name=kind.replace("_", "-"), kind=kind, params=params, symbols=["SYN/USD"],
                        execution=EXECUTION, risk=RISK)


def _cli_metrics(tmp_path, spec):
    from quantlib.cli import app

    path = save_spec(spec, tmp_path / f"{spec.name}.json")
    out = CliRunner().invoke(app, ["backtest", "--strategy", str(path), "--data", SOURCE])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def _assert_same_metrics(printed, metrics_row):
    assert set(printed) == set(metrics_row.index)
    for key, value in metrics_row.items():
        assert float(printed[key]) == pytest.approx(float(value), rel=1e-12, nan_ok=True), key


@pytest.mark.parametrize("kind", ["regime_filter", "regime_grid"])
def test_spec_round_trips_through_json(kind, params, hmm, tmp_path):
    spec = _spec(kind, params[kind])
    text = dump_spec(spec)
    loaded = load_spec(text)
    assert loaded == spec and dump_spec(loaded) == text
    # The fitted model's floats survive exactly (JSON keeps every double's repr).
    assert loaded.params == params[kind]
    assert loaded.params["transmat"] == hmm.transmat_.tolist()
    assert loaded.params["covars"] == hmm.covars_.tolist()
    assert load_spec(save_spec(spec, tmp_path / "s.json")) == spec
    k = get_kind(kind)
    assert k.validate(loaded.params) == k.validate(params[kind])
    # A spec with a bad regime parameter is rejected, naming the JSON path.
    bad = json.loads(text)
    bad["params"]["allowed_regimes"] = [5]
    with pytest.raises(SpecError, match=r"\$\.params: .*allowed_regimes"):
        validate_spec(bad)


def test_cli_backtest_of_regime_filter_spec_matches_run_backtest(params, data, tmp_path):
    p = params["regime_filter"]
    printed = _cli_metrics(tmp_path, _spec("regime_filter", p))
    ref = run_backtest("regime_filter", data, p, CONFIG)
    _assert_same_metrics(printed, ref.metrics.iloc[0])
    # The regime mask is really applied: less time in the market than the unfiltered inner kind.
    inner = run_backtest("ma_cross", data, INNER["ma_cross"], CONFIG)
    assert printed["exposure"] < float(inner.metrics["exposure"].iloc[0]) - 0.05


def _grid_reference(data, p):
    """Independent of run_backtest's dispatch: the plain grid engine with the regime mask
    (regime_ok shifted one bar: buys rest during bar t when the regime held at t-1's close)."""
    checked = get_kind("regime_grid").validate(p)
    active = np.r_[False, regime_ok(data, checked)[:-1]]
    assert 0 < active.mean() < 1  # the mask really switches
    return run_grid(data, [checked["inner_params"]], CONFIG, active=active)


def test_cli_backtest_of_regime_grid_spec_matches_the_masked_grid(params, data, tmp_path):
    # Regression: run_backtest sent regime_grid params to the plain grid engine, so
    # `quantlib backtest --strategy` failed on every regime_grid spec.
    p = params["regime_grid"]
    printed = _cli_metrics(tmp_path, _spec("regime_grid", p))
    _assert_same_metrics(printed, _grid_reference(data, p).metrics.iloc[0])


def test_run_backtest_of_regime_grid_equals_the_masked_grid(params, data):
    p = params["regime_grid"]
    ref = _grid_reference(data, p)
    res = run_backtest("regime_grid", data, p, CONFIG)
    np.testing.assert_allclose(res.equity.to_numpy(), ref.equity.to_numpy(), rtol=1e-12)
    _assert_same_metrics(ref.metrics.iloc[0].to_dict(), res.metrics.iloc[0])
    assert res.kind == "regime_grid"
    # and it differs from the unmasked grid: the mask is really applied
    plain = run_grid(data, [get_kind("regime_grid").validate(p)["inner_params"]], CONFIG)
    assert not np.allclose(res.equity.to_numpy(), plain.equity.to_numpy())
    np.testing.assert_array_equal(run_regime_grid(data, p, CONFIG).equity.to_numpy(),
                                  res.equity.to_numpy())


def _mask(kind, data, p):
    checked = get_kind(kind).validate(p)
    return grid_active(data, checked) if kind == "regime_grid" else regime_ok(data, checked)


def _points(mask):
    # Every bar where the regime mask switches (where a leak would show first) plus an even
    # spread over the whole history.
    flips = np.flatnonzero(np.diff(mask.astype(int))) + 1
    return np.unique(np.r_[flips, np.linspace(0, len(mask) - 1, 40).astype(int)])


@pytest.mark.parametrize("kind", ["regime_filter", "regime_grid"])
def test_lookahead_check_passes_on_sample_data(kind, params, data):
    p = params[kind]
    mask = _mask(kind, data, p)
    assert 0.2 < mask.mean() < 0.9  # the regime really switches the strategy on and off
    assert np.count_nonzero(get_kind(kind).signals(data, p)) > 100  # and it holds positions
    if kind == "regime_grid":  # the mask changes what the grid holds
        masked = run_regime_grid(data, p).positions.to_numpy()
        plain = run_grid(data, [INNER["grid"]]).positions.to_numpy()
        assert not np.allclose(masked, plain)
    points = _points(mask)
    result = check_lookahead(kind, data, p, points=points)
    assert result.passed, result.details
    assert result.n_checked == len(points) > 100


@pytest.mark.parametrize(("kind", "ahead"), [("regime_filter", 1), ("regime_grid", 2)])
def test_lookahead_check_catches_a_mask_read_from_later_bars(kind, ahead, params, data,
                                                             monkeypatch):
    # The same kinds with the regime read `ahead` bars early (patched in memory for this test
    # only): on the same bars the check must fail, so the passing test above has the power to see
    # a leak of the regime. (For the grid, 1 bar ahead only undoes its one-bar shift: a same-bar
    # leak that prefix truncation cannot see; the next test covers it.)
    from quantlib.core import regime_kinds as regime_strategy

    honest = regime_strategy.regime_ok

    def leaky(df, prm):
        ok = honest(df, prm)
        return np.r_[ok[ahead:], np.zeros(min(ahead, len(ok)), dtype=bool)]

    monkeypatch.setattr(regime_strategy, "regime_ok", leaky)
    p = params[kind]
    result = check_lookahead(kind, data, p, points=_points(_mask(kind, data, p)))
    # (The grid's position at t differs only when a buy fills during bar t: few bars show it.)
    assert not result.passed and len(result.mismatches) >= (5 if kind == "regime_filter" else 1)


def test_grid_mask_is_known_before_the_bar_opens(params, data):
    # The grid places (or not) its buys during bar t, so the mask at bar t may use bars < t only:
    # wildly changing bar t itself (a 30% jump of all its prices) must not move active[t].
    checked = get_kind("regime_grid").validate(params["regime_grid"])
    active = grid_active(data, checked)
    ok = regime_ok(data, checked)
    moved = 0
    for t in _points(active):
        jumped = data.iloc[: t + 1].copy()
        jumped.iloc[-1, jumped.columns.get_indexer(["open", "high", "low", "close"])] *= 1.3
        assert grid_active(jumped, checked)[t] == active[t], t
        moved += regime_ok(jumped, checked)[t] != ok[t]
    assert moved > 20  # the jump does flip the regime at bar t's close: an unshifted mask fails


def test_regime_grid_resumes_from_persisted_state_exactly(params, data):
    from quantlib.backtest import check_recursive

    result = check_recursive("regime_grid", data, params["regime_grid"], n_checks=12)
    assert result.passed and "persisted state" in result.details
