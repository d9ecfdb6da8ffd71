"""StrategySpec: one SpecError listing every problem by JSON path; exact round trips; schema file."""

from __future__ import annotations

import json

import pytest

from quantlib.errors import SpecError
from quantlib.strategy.spec import (
    SCHEMA_PATH,
    StrategySpec,
    dump_spec,
    export,
    load_spec,
    spec_json_schema,
    validate_spec,
)

GOOD = {"name": "ma_demo", "kind": "ma_cross", "params": {"fast": 5, "slow": 20},
        "exchange": "kraken", "symbols": ["BTC/USD"], "timeframe": "1h"}


def test_every_problem_is_listed_with_its_path_in_one_error():
    bad = dict(GOOD, timeframe="1x", symbols=["btc"], params={"fast": "five", "nope": 1},
               risk={"max_position": 2, "oops": True}, execution={"fees": -1})
    with pytest.raises(SpecError) as info:
        validate_spec(bad)
    msg = str(info.value)
    for path in ("$.timeframe", "$.symbols", "$.risk.max_position", "$.risk.oops",
                 "$.execution.fees", "$.params.fast", "$.params.nope"):
        assert path in msg, path
    assert "7 problem(s)" in msg


def test_unknown_kind_and_constraint_violation():
    with pytest.raises(SpecError, match=r"\$\.kind: unknown strategy kind 'nope'"):
        validate_spec(dict(GOOD, kind="nope"))
    with pytest.raises(SpecError, match=r"\$\.params"):
        validate_spec(dict(GOOD, params={"fast": 30, "slow": 10}))  # fast must be < slow
    with pytest.raises(SpecError, match=r"\$\.params\.slow"):
        validate_spec(dict(GOOD, params={"fast": 5, "slow": 10**9}))  # out of range


def test_round_trip_is_exact(tmp_path):
    spec = export("rt", kind="ma_cross", params={"fast": 5, "slow": 20}, symbols=["BTC/USD"],
                  timeframe="4h", dsr=0.5, pbo=0.25, n_trials=12, lookahead_passed=True)
    text = dump_spec(spec)
    again = load_spec(text)
    assert again == spec and dump_spec(again) == text
    path = tmp_path / "s.json"
    path.write_text(text)
    assert dump_spec(load_spec(path)) == text
    assert json.loads(text)["approval"]["status"] == "draft"


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",\n "kind": }')
    with pytest.raises(SpecError, match=r"broken\.json: not valid JSON at line 2"):
        load_spec(path)


def test_checked_in_schema_matches_the_model():
    assert json.loads(SCHEMA_PATH.read_text()) == json.loads(json.dumps(spec_json_schema(),
                                                                        sort_keys=True))
    # And the schema rejects unknown top-level fields, like the model.
    assert spec_json_schema()["additionalProperties"] is False


def test_export_from_backtest_result_records_provenance():
    from quantlib.backtest.engine import run_backtest
    from quantlib.data import load
    from quantlib.strategy.spec import sha256_frame

    data = load("sample:bars=300")
    res = run_backtest("ma_cross", data, {"fast": 5, "slow": 20})
    spec = export("from_bt", result=res, data=data, symbols=["BTC/USD"])
    assert spec.kind == "ma_cross" and spec.params["fast"] == 5
    assert spec.provenance.data_sha256 == sha256_frame(data)
    assert spec.provenance.start == data.index[0].to_pydatetime()
    assert spec.evidence.in_sample  # metrics copied
    assert isinstance(spec, StrategySpec)
