"""Param.check on hostile numbers: NaN, Infinity, 1e30, fractions and huge ints give a
ParameterError that names the parameter and says what was expected (never a raw traceback)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlib.core.registry import Param, get_kind
from quantlib.errors import ParameterError

FAST = Param("fast", int, 10, low=1, high=500)
RATE = Param("rate", float, 0.1, low=0.0, high=1.0)


@pytest.mark.parametrize("value, shown", [
    (float("nan"), "nan"), (float("inf"), "inf"), (-float("inf"), "-inf"),
    (np.float64("nan"), "nan"),
])
def test_non_finite_integer_names_parameter_and_expectation(value, shown):
    with pytest.raises(ParameterError) as info:
        FAST.check(value, "demo")
    msg = str(info.value)
    assert "parameter 'fast'" in msg and "expected an integer between 1 and 500" in msg
    assert f"non-finite number {shown}" in msg


def test_1e30_is_reported_as_written_not_as_a_31_digit_integer():
    with pytest.raises(ParameterError) as info:
        FAST.check(1e30, "demo")
    msg = str(info.value)
    assert msg == ("strategy kind 'demo', parameter 'fast': expected an integer between 1 and "
                   "500, got 1e+30")
    assert str(int(1e30)) not in msg


def test_fraction_and_huge_int_and_huge_int_for_a_float():
    with pytest.raises(ParameterError, match=r"got 2\.5 \(not a whole number\)"):
        FAST.check(2.5, "demo")
    # 10**5000 cannot even be printed by Python (4300-digit limit) nor converted to float.
    with pytest.raises(ParameterError, match=r"parameter 'fast': an integer of 16610 bits is "
                                             r"above the maximum 500"):
        FAST.check(10**5000, "demo")
    with pytest.raises(ParameterError, match=r"parameter 'rate': expected a finite number"):
        RATE.check(10**400, "demo")


def test_valid_values_still_coerce():
    assert FAST.check(5.0, "demo") == 5 and isinstance(FAST.check(np.int64(7), "demo"), int)
    assert FAST.check(500, "demo") == 500
    assert RATE.check(1, "demo") == 1.0


def test_kind_validate_names_the_kind():
    with pytest.raises(ParameterError, match=r"strategy kind 'ma_cross', parameter 'slow': "
                                             r"expected an integer"):
        get_kind("ma_cross").validate({"fast": 5, "slow": float("inf")})


@settings(max_examples=300, deadline=2000)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                 st.booleans(), st.text(max_size=5), st.none(),
                 st.integers(min_value=-(10**6000), max_value=10**6000)))
def test_any_scalar_is_a_clean_int_or_a_parameter_error(value):
    try:
        out = FAST.check(value, "demo")
    except ParameterError as exc:
        assert "parameter 'fast'" in str(exc)
        return
    # Accepted: an exact int within the declared range that equals what was given.
    assert type(out) is int and 1 <= out <= 500 and out == value
    assert not isinstance(value, bool) and not (isinstance(value, float)
                                                and not math.isfinite(value))
