"""Promotion gates: approval only when every gate passes; refusals name gate and value."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from quantlib.core.model_files import sha256_file
from quantlib.errors import SpecError
from quantlib.strategy.gates import GateConfig, check_gates, promote
from quantlib.strategy.spec import StrategySpec, load_spec, save_spec


def _spec(**evidence) -> StrategySpec:
    ev = {"out_of_sample": {"sharpe": 1.4}, "dsr": 0.97, "pbo": 0.2, "n_trades": 60,
          "lookahead_passed": True}
    ev.update(evidence)
    return StrategySpec(name="g", kind="ma_cross", symbols=["BTC/USD"], evidence=ev)


def test_all_gates_pass_and_spec_is_written(tmp_path):
    approved = promote(_spec(), out_dir=tmp_path, by="alice")
    assert approved.approval.status == "approved" and approved.approval.by == "alice"
    assert set(approved.approval.gates_passed) == {"oos_sharpe", "dsr", "pbo", "min_trades",
                                                   "lookahead"}
    assert load_spec(tmp_path / "g.json") == approved


def test_refusal_lists_each_failed_gate_with_measured_value(tmp_path):
    spec = _spec(out_of_sample={"sharpe": 0.3}, dsr=0.5, pbo=0.8, n_trades=3,
                 lookahead_passed=False)
    with pytest.raises(SpecError) as info:
        promote(spec, out_dir=tmp_path)
    msg = str(info.value)
    assert "5 gate(s) failed" in msg
    for part in ("oos_sharpe: measured 0.3", "dsr: measured 0.5", "pbo: measured 0.8",
                 "min_trades: measured 3", "lookahead: measured False"):
        assert part in msg
    assert not (tmp_path / "g.json").exists()


def test_thresholds_are_configurable_and_boundaries_inclusive():
    spec = _spec(out_of_sample={"sharpe": 0.8}, n_trades=30)
    names = {g.name for g in check_gates(spec) if not g.passed}
    assert names == {"oos_sharpe"}
    assert all(g.passed for g in check_gates(spec, GateConfig(min_oos_sharpe=0.8)))


def test_artifact_hash_gate(tmp_path):
    art = tmp_path / "model.json"
    art.write_text("{}")
    spec = _spec().model_copy(update={"artifacts": []})
    spec = StrategySpec.model_validate(dict(spec.model_dump(mode="json"), artifacts=[
        {"path": "model.json", "sha256": sha256_file(art)}]))
    assert all(g.passed for g in check_gates(spec, base_dir=tmp_path))
    art.write_text('{"tampered": 1}')
    failed = [g for g in check_gates(spec, base_dir=tmp_path) if not g.passed]
    assert [g.name for g in failed] == ["artifact:model.json"]


def test_cli_promote_and_validate(tmp_path):
    from quantlib.cli import app

    draft = save_spec(_spec(dsr=0.2), tmp_path / "draft.json")
    runner = CliRunner()
    out = runner.invoke(app, ["strategy", "promote", str(draft), "--out-dir", str(tmp_path / "s")])
    assert out.exit_code == 2 and "dsr: measured 0.2" in out.output
    out = runner.invoke(app, ["strategy", "promote", str(draft), "--out-dir", str(tmp_path / "s"),
                              "--min-dsr", "0.1"])
    assert out.exit_code == 0, out.output
    assert json.loads((tmp_path / "s" / "g.json").read_text())["approval"]["status"] == "approved"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "b", "kind": "ma_cross", "symbols": ["BTC/USD"],
                               "risk": {"typo": 1}}))
    out = runner.invoke(app, ["strategy", "validate", str(bad)])
    assert out.exit_code == 2 and "$.risk.typo" in out.output


def test_cli_backtest_spec_matches_run_backtest(tmp_path):
    from quantlib.backtest.engine import run_backtest
    from quantlib.cli import app
    from quantlib.data import load

    spec = StrategySpec(name="b", kind="ma_cross", params={"fast": 5, "slow": 20},
                        symbols=["BTC/USD"], execution={"fees": 0.002})
    path = save_spec(spec, tmp_path / "b.json")
    out = CliRunner().invoke(app, ["backtest", "--strategy", str(path), "--data",
                                   "sample:bars=300"])
    assert out.exit_code == 0, out.output
    printed = json.loads(out.output)
    ref = run_backtest("ma_cross", load("sample:bars=300"), spec.params, {"fees": 0.002})
    key = next(k for k in printed if k in ("total_return", "sharpe"))
    assert printed[key] == pytest.approx(float(ref.metrics.iloc[0][key]), nan_ok=True)
