"""One definition of every cost and sizing field (quantlib/core/costs.py): BacktestConfig and the
strategy spec accept and refuse the same values, field by field, at and around the bounds, and
a backtest config at the bounds always exports.

The expected bounds are written out here by hand (independent of the module), so a change of
a bound must be made on purpose in both places.
"""

from __future__ import annotations

import math

import pytest

from quantlib.core.config import BacktestConfig
from quantlib.core.costs import FIELDS
from quantlib.errors import ParameterError, SpecError
from quantlib.strategy.spec import StrategySpec, export, validate_spec

# name -> (low, high, low refused?) as the README and docstrings state them
EXPECTED = {
    "init_cash": (0.0, math.inf, True),
    "fees": (0.0, 0.1, False),
    "slippage_bps": (0.0, 1000.0, False),
    "size": (0.0, math.inf, True),
    "sl_stop": (0.0, math.inf, True),
    "tp_stop": (0.0, math.inf, True),
    "trail_stop": (0.0, math.inf, True),
}
# value sizing for `size`: percent sizing adds its own cap of 1 (tested below)
CONTEXT = {"size": {"size_type": "value"}}


def _probes(low: float, high: float) -> list[object]:
    values: list[object] = [low, math.nextafter(low, -math.inf), math.nextafter(low, math.inf),
                            low - 1.0, math.nan, math.inf, -math.inf, True, "0.01", None]
    if math.isfinite(high):
        values += [high, math.nextafter(high, math.inf), math.nextafter(high, -math.inf),
                   high * 2]
    else:
        values += [1e300]
    return values


def _config_accepts(name: str, value: object) -> bool:
    if value is None:  # None means "no stop" for the stops, and is no number elsewhere
        return name.endswith("_stop")
    try:
        BacktestConfig(**{name: value, **CONTEXT.get(name, {})})
    except ParameterError as exc:
        assert f"BacktestConfig.{name}" in str(exc)  # the message names the field
        return False
    return True


def _spec_accepts(name: str, value: object) -> bool:
    block, key = FIELDS[name].spec_path.split(".")
    raw = {"name": "c", "kind": "ma_cross", "symbols": ["BTC/USD"],
           "risk": {"size_type": "value"} if name == "size" else {}, "execution": {}}
    raw[block][key] = value
    try:
        validate_spec(raw)
    except SpecError as exc:
        assert f"$.{block}.{key}" in str(exc)  # the message names the JSON path
        return False
    return True


def test_every_field_is_walked():
    assert set(FIELDS) == set(EXPECTED)
    # every field is a field of both: a BacktestConfig attribute and a spec path
    spec_fields = StrategySpec.model_fields
    for name, field in FIELDS.items():
        assert name in BacktestConfig.__dataclass_fields__
        block, key = field.spec_path.split(".")
        assert key in spec_fields[block].annotation.model_fields


@pytest.mark.parametrize("name", list(EXPECTED))
def test_config_and_spec_accept_the_same_values(name):
    low, high, low_open = EXPECTED[name]
    for value in _probes(low, high):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        expected = number and math.isfinite(value) and (value > low if low_open else
                                                        value >= low) and value <= high
        if value is None:
            expected = name.endswith("_stop")
        assert _config_accepts(name, value) == expected, (name, value)
        if isinstance(value, bool) or isinstance(value, str):
            continue  # pydantic coerces "0.01" and True in lax mode: not a cost question
        assert _spec_accepts(name, value) == expected, (name, value)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_config_at_the_bounds_exports(name):
    # the finding of issue 16: a valid backtest (fees 0.3) failed to export (spec fees <= 0.1)
    low, high, low_open = EXPECTED[name]
    values = [high] if math.isfinite(high) else [1e6]
    values += [math.nextafter(low, math.inf)] if low_open else [low]
    for value in values:
        config = BacktestConfig(**{name: value, **CONTEXT.get(name, {})})
        spec = export("bounds", kind="ma_cross", symbols=["BTC/USD"], config=config)
        block, key = FIELDS[name].spec_path.split(".")
        assert getattr(getattr(spec, block), key) == value


def test_percent_size_is_a_fraction_in_the_config():
    assert BacktestConfig(size=1.0).size == 1.0
    with pytest.raises(ParameterError, match=r"BacktestConfig\.size: with size_type='percent'"):
        BacktestConfig(size=math.nextafter(1.0, 2.0))
