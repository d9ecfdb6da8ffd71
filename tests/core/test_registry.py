"""Registry contract: known kinds, clear errors, plug-in kinds."""

from __future__ import annotations

import numpy as np
import pytest

from quantlib.core import Param, StrategyKind, get_kind, list_kinds, register
from quantlib.core.kinds import BUILTIN_KINDS
from quantlib.errors import ParameterError


def test_builtin_kinds_are_registered():
    assert set(BUILTIN_KINDS) <= set(list_kinds())
    assert all(get_kind(name).engine == "signals" for name in BUILTIN_KINDS)


def test_unknown_kind_names_it_and_lists_known():
    with pytest.raises(ParameterError, match=r"unknown strategy kind 'nope'.*ma_cross"):
        get_kind("nope")


@pytest.mark.parametrize(("kind", "params", "pattern"), [
    ("ma_cross", {"fast": 0, "slow": 20}, r"'fast'.*below the minimum"),
    ("ma_cross", {"fast": 2.5, "slow": 20}, r"'fast'.*expected an integer"),
    ("ma_cross", {"fast": 30, "slow": 20}, r"fast \(30\) must be < slow \(20\)"),
    ("ma_cross", {"fastt": 3}, r"unknown parameter\(s\) \['fastt'\]"),
    ("rsi_reversion", {"lower": 60.0}, r"'lower'.*above the maximum"),
    ("rsi_reversion", {"lower": 50.0, "upper": 50.0}, r"lower \(50.0\) must be < upper"),
    ("bollinger_reversion", {"k": "wide"}, r"'k'.*expected a number"),
    ("macd", {"signal": 0}, r"'signal'.*below the minimum"),
    ("donchian_breakout", {"window": 5000}, r"'window'.*above the maximum"),
])
def test_out_of_range_parameters_are_named(kind, params, pattern):
    with pytest.raises(ParameterError, match=pattern):
        get_kind(kind).validate(params)


def test_defaults_fill_in_and_coerce():
    assert get_kind("ma_cross").validate({"fast": 3.0}) == {"fast": 3, "slow": 50}


def test_register_refuses_silent_overwrite():
    kind = StrategyKind("test_reg_dup", params=(Param("n", int, 1, low=1, high=5),),
                        signal=lambda df, p: np.zeros(len(df)))
    register(kind, replace=True)
    with pytest.raises(ParameterError, match="already registered"):
        register(kind)
    assert "test_reg_dup" in list_kinds()
