"""load_spec on hostile input: non-UTF-8 files, /dev/zero, huge files, NaN/Infinity anywhere,
1e30 in integer fields, and a hypothesis fuzz of random JSON and random bytes. Every outcome is
a StrategySpec or a SpecError whose message names the file; nothing else, never a hang."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlib.errors import SpecError
from quantlib.strategy.spec import (
    MAX_SPEC_BYTES,
    StrategySpec,
    dump_spec,
    load_spec,
    validate_spec,
)
from tests.strategy.test_spec import GOOD


def _problems(exc: SpecError) -> list[str]:
    return [line[4:] for line in str(exc).splitlines() if line.startswith("  - ")]


def test_non_utf8_file_is_a_spec_error_naming_file_byte_and_line(tmp_path):
    path = tmp_path / "latin1.json"
    text = json.dumps(dict(GOOD, name="caf\u00e9"), indent=1, ensure_ascii=False)  # latin-1: 1 byte
    path.write_bytes(text.encode("latin-1"))
    offset = text.encode("latin-1").index(b"\xe9")
    line = text[:text.index("\u00e9")].count("\n") + 1
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: not UTF-8 text (byte {offset} on line {line} "
                                      f"is b'\\xe9')")


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    assert load_spec(path).name == "ma_demo"


@pytest.mark.timeout(20)
def test_dev_zero_is_refused_quickly_without_reading_it_all():
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero on this system")
    started = time.perf_counter()
    with pytest.raises(SpecError, match=rf"^/dev/zero: larger than {MAX_SPEC_BYTES} bytes"):
        load_spec("/dev/zero")
    assert time.perf_counter() - started < 5


def test_file_just_over_the_cap_is_refused_and_at_the_cap_is_parsed(tmp_path):
    # A valid spec padded with whitespace to exactly the cap still loads; one byte more does not.
    text = json.dumps(GOOD)
    at_cap = tmp_path / "at.json"
    at_cap.write_text(text + " " * (MAX_SPEC_BYTES - len(text)))
    assert os.path.getsize(at_cap) == MAX_SPEC_BYTES
    assert load_spec(at_cap).name == "ma_demo"
    over = tmp_path / "over.json"
    over.write_text(text + " " * (MAX_SPEC_BYTES - len(text) + 1))
    with pytest.raises(SpecError, match=r"over\.json: larger than"):
        load_spec(over)


def test_fifo_is_refused_instead_of_blocking(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match=r"pipe\.json: cannot read strategy spec \(not a regular"):
        load_spec(fifo)


@pytest.mark.parametrize("where, literal", [
    ("risk.init_cash", "Infinity"), ("risk.max_position", "NaN"),
    ("execution.fees", "-Infinity"), ("evidence.dsr", "NaN"),
    ("evidence.in_sample.sharpe", "Infinity"), ("params.fast", "NaN"),
    ("provenance.notebook_params.x", "Infinity"), ("risk.order_size", "1e999"),
])
def test_non_finite_numbers_are_refused_everywhere_with_their_path(tmp_path, where, literal):
    spec = json.loads(json.dumps(GOOD))
    *parents, leaf = where.split(".")
    node = spec
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = "__HERE__"
    path = tmp_path / "nonfinite.json"
    path.write_text(json.dumps(spec).replace('"__HERE__"', literal))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    written = "Infinity" if literal == "1e999" else literal
    assert str(info.value).startswith(f"{path}: 1 problem(s)")
    assert _problems(info.value) == [f"$.{where}: expected a finite number, got {written} "
                                     "(JSON has no NaN or Infinity)"]


def test_non_finite_numbers_in_a_dict_are_refused_too():
    with pytest.raises(SpecError, match=r"\$\.risk\.init_cash: expected a finite number"):
        load_spec(dict(GOOD, risk={"init_cash": float("inf")}))


def test_1e30_in_an_integer_field_says_what_is_expected():
    with pytest.raises(SpecError) as info:
        load_spec(json.dumps(dict(GOOD, evidence={"n_trials": 1e30})))
    assert _problems(info.value) == ["$.evidence.n_trials: expected an integer of at most 19 "
                                     "digits (got 1e+30)"]
    with pytest.raises(SpecError) as info:
        load_spec(json.dumps(dict(GOOD, params={"fast": 1e30, "slow": 20})))
    assert _problems(info.value) == ["$.params.fast: strategy kind 'ma_cross', parameter 'fast': "
                                     "expected an integer between 1 and 500, got 1e+30"]


def test_deep_nesting_and_giant_integers_are_spec_errors(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(SpecError, match=r"deep\.json: "):
        load_spec(deep)
    giant = tmp_path / "giant.json"
    giant.write_text(json.dumps(GOOD)[:-1] + ', "x": ' + "9" * 5000 + "}")
    with pytest.raises(SpecError, match=r"giant\.json: not a usable JSON document"):
        load_spec(giant)


# ------------------------------------------------------------------------------------ fuzzing
_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
_FIELDS = ("name", "kind", "params", "exchange", "symbols", "timeframe", "execution", "risk",
           "provenance", "evidence", "approval", "artifacts", "schema_version")
_NESTED = ("fast", "slow", "init_cash", "fees", "max_position", "n_trials", "dsr", "status",
           "data_sha256", "in_sample", "notebook_params", "path")


@st.composite
def _mutated_specs(draw):
    """A valid spec with random fields replaced by random JSON (reaches deep validators)."""
    spec = json.loads(json.dumps(GOOD))
    for field in draw(st.lists(st.sampled_from(_FIELDS), max_size=4)):
        if draw(st.booleans()):
            spec[field] = draw(_JSON)
        else:
            spec[field] = draw(st.dictionaries(st.sampled_from(_NESTED), _JSON, max_size=3))
    return spec


def _check_outcome(source, where: str) -> None:
    try:
        spec = load_spec(source)
    except SpecError as exc:
        assert str(exc).startswith(where) and len(str(exc)) > len(where) + 2
        return
    # Accepted: it must be a real, canonical, re-loadable spec.
    assert isinstance(spec, StrategySpec)
    assert load_spec(dump_spec(spec)) == spec


_FUZZ = settings(max_examples=250, deadline=5000,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.mark.timeout(600)
@_FUZZ
@given(st.one_of(_JSON, _mutated_specs()))
def test_fuzz_random_json_text_is_a_spec_or_a_spec_error(value):
    text = json.dumps(value)  # may hold NaN / Infinity: Python's json writes them
    source = text if text.lstrip().startswith("{") else "{" + text  # a JSON string, not a path
    _check_outcome(source, "spec: ")


@pytest.mark.timeout(600)
@_FUZZ
@given(st.one_of(_JSON, _mutated_specs()))
def test_fuzz_random_json_objects_are_a_spec_or_a_spec_error(value):
    if isinstance(value, dict):
        _check_outcome(value, "spec: ")
    else:
        with pytest.raises(SpecError, match="^spec: expected a JSON object at"):
            validate_spec(value)


@pytest.mark.timeout(600)
@_FUZZ
@given(data=st.binary(max_size=400) | st.builds(
    lambda spec, cut, junk: json.dumps(spec).encode()[:cut] + junk,
    _mutated_specs(), st.integers(0, 300), st.binary(max_size=8)))
def test_fuzz_random_bytes_in_a_file_are_a_spec_or_a_spec_error(tmp_path, data):
    path = tmp_path / "fuzz.json"
    path.write_bytes(data)
    _check_outcome(path, f"{path}: ")
