"""Exits and every fill setting of a backtest reach the spec (schema version 2), or export says
which setting it cannot carry; old-version specs are refused with what changed."""

from __future__ import annotations

import dataclasses
import json

import pytest

from quantlib.backtest.engine import run_backtest
from quantlib.core.config import BacktestConfig
from quantlib.data import load
from quantlib.errors import SpecError
from quantlib.strategy.spec import (
    CONFIG_TO_SPEC,
    SCHEMA_VERSION,
    StrategySpec,
    dump_spec,
    export,
    load_spec,
)

# One non-default value per BacktestConfig field (a field missing here fails the walk below).
OTHER_VALUES = {
    "init_cash": 2_500.0, "fees": 0.0025, "slippage_bps": 7.0, "size": 0.5,
    "size_type": "value", "sl_stop": 0.03, "tp_stop": 0.08, "trail_stop": 0.05,
    "direction": "shortonly", "execution": "close", "year_days": 252.0, "timeframe": "4h",
}


def _spec_value(spec: StrategySpec, field: str):
    if field == "timeframe":
        return spec.timeframe
    return getattr(spec.backtest_config(), field)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(BacktestConfig)])
def test_every_config_field_is_carried_or_refused_by_name(field):
    assert field in OTHER_VALUES, f"new BacktestConfig field {field!r}: say how export treats it"
    value = OTHER_VALUES[field]
    extra = {"size": 500.0} if field == "size_type" else {}
    config = BacktestConfig(**{field: value, **extra})
    assert getattr(config, field) != getattr(BacktestConfig(), field)
    try:
        spec = export("walk", kind="ma_cross", params={"fast": 5, "slow": 20},
                      symbols=["BTC/USD"], config=config)
    except SpecError as exc:
        assert f"BacktestConfig.{field}" in str(exc)
        assert field == "execution"  # the one setting a live spec cannot trade
        return
    if CONFIG_TO_SPEC[field] is None:  # changes no fill: checked by running both
        data = load("sample:bars=400,seed=2")
        a = run_backtest("ma_cross", data, {"fast": 5, "slow": 20}, config)
        b = run_backtest("ma_cross", data, {"fast": 5, "slow": 20},
                         config.replace(**{field: getattr(BacktestConfig(), field)}))
        assert len(a.fills) > 0
        assert a.fills.equals(b.fills)
        return
    assert _spec_value(spec, field) == value
    # and it survives the JSON round trip
    assert _spec_value(load_spec(dump_spec(spec)), field) == value


def test_exported_exits_round_trip_from_a_result():
    data = load("sample:bars=300,seed=4")
    config = BacktestConfig(sl_stop=0.03, tp_stop=0.08, fees=0.002, slippage_bps=3.0)
    res = run_backtest("ma_cross", data, {"fast": 5, "slow": 20}, config)
    spec = export("x", result=res, exchange="kraken", symbols=["BTC/USD"])
    assert (spec.risk.sl_stop, spec.risk.tp_stop, spec.risk.trail_stop) == (0.03, 0.08, None)
    assert spec.backtest_config() == config.replace(timeframe=None)
    assert spec.schema_version == SCHEMA_VERSION == 2


def test_grid_exits_are_refused_by_name():
    with pytest.raises(SpecError, match=r"BacktestConfig\.tp_stop"):
        export("g", kind="grid", symbols=["BTC/USD"], config=BacktestConfig(tp_stop=0.1))


def test_sl_and_trail_together_are_refused_with_the_path():
    with pytest.raises(SpecError, match=r"\$\.risk.*sl_stop and trail_stop"):
        load_spec({"name": "x", "kind": "ma_cross", "symbols": ["BTC/USD"],
                   "risk": {"sl_stop": 0.1, "trail_stop": 0.1}})


def test_old_version_spec_says_what_changed_and_how_to_re_export():
    spec = json.loads(dump_spec(StrategySpec(name="v", kind="ma_cross", symbols=["BTC/USD"])))
    spec["schema_version"] = 1
    with pytest.raises(SpecError) as info:
        load_spec(json.dumps(spec))
    message = str(info.value)
    assert "$.schema_version is 1" in message
    assert "sl_stop" in message and "Re-export" in message and "export(" in message


@pytest.mark.parametrize("value", [0.0, -0.1])
def test_stop_distances_must_be_positive(value):
    with pytest.raises(SpecError, match=r"\$\.risk\.tp_stop"):
        load_spec({"name": "x", "kind": "ma_cross", "symbols": ["BTC/USD"],
                   "risk": {"tp_stop": value}})


def test_portfolio_export_keeps_every_symbol_or_says_which_are_missing():
    frames = {s: load(f"sample:bars=200,seed={k}") for k, s in enumerate(("BTC/USD", "ETH/USD"))}
    res = run_backtest("ma_cross", frames, {"fast": 5, "slow": 20}, BacktestConfig(size=0.5))
    assert export("p", result=res).symbols == ["BTC/USD", "ETH/USD"]
    with pytest.raises(SpecError, match=r"symbols: the backtest ran the 2-symbol portfolio"):
        export("p", result=res, symbols=["BTC/USD"])


def test_cli_backtest_refuses_one_source_for_a_portfolio_spec(tmp_path):
    # one source string is one market: a portfolio spec needs SYMBOL=SOURCE for each symbol
    from quantlib.strategy.cli import backtest_spec
    from quantlib.strategy.spec import save_spec

    spec = StrategySpec(name="folio", kind="ma_cross", symbols=["BTC/USD", "ETH/USD"])
    path = save_spec(spec, tmp_path / "folio.json")
    with pytest.raises(SpecError, match=r"\$\.symbols: the spec trades .* SYMBOL=SOURCE"):
        backtest_spec(path, "sample:bars=200")
