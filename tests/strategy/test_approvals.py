"""The approvals ledger: only `quantlib strategy promote` approves, live mode checks the
spec's exact hash there, `retire` withdraws it, and promote re-derives the evidence it can."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from quantlib.cli import app
from quantlib.errors import LiveError
from quantlib.strategy import approvals
from quantlib.strategy.spec import StrategySpec, load_spec, save_spec

LAX = ["--min-oos-sharpe", "-1e9", "--min-dsr", "0", "--max-pbo", "1", "--min-trades", "0"]


def _draft(**evidence) -> StrategySpec:
    ev = {"out_of_sample": {"sharpe": 1.5}, "dsr": 0.97, "pbo": 0.1, "n_trades": 80,
          "lookahead_passed": True}
    ev.update(evidence)
    return StrategySpec(name="g", kind="ma_cross", params={"fast": 5, "slow": 20},
                        symbols=["BTC/USD"], evidence=ev)


def _cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_the_hash_covers_everything_but_the_approval_block(tmp_path):
    spec = _draft()
    path = save_spec(spec, tmp_path / "g.json")
    # independently: the file's own JSON without "approval", sorted and compact
    raw = json.loads(path.read_text())
    raw.pop("approval")
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    assert approvals.approval_hash(load_spec(path)) == hashlib.sha256(text.encode()).hexdigest()
    # layout of the file does not matter
    path.write_text(json.dumps(json.loads(path.read_text()), indent=7))
    assert approvals.approval_hash(load_spec(path)) == approvals.approval_hash(spec)
    forged = spec.model_copy(update={"approval": spec.approval.model_copy(
        update={"status": "approved", "by": "mallory"})})
    assert approvals.approval_hash(forged) == approvals.approval_hash(spec)
    for changed in (spec.model_copy(update={"params": {"fast": 6, "slow": 20}}),
                    spec.model_copy(update={"evidence": spec.evidence.model_copy(
                        update={"dsr": 0.99})})):
        assert approvals.approval_hash(changed) != approvals.approval_hash(spec)


def test_promote_records_hash_gates_who_and_when(tmp_path):
    draft = save_spec(_draft(), tmp_path / "draft.json")
    ledger = tmp_path / "ledger.db"
    before = datetime.now(UTC).replace(microsecond=0)
    out = _cli("strategy", "promote", draft, "--out-dir", tmp_path / "strategies",
               "--approver", "alice", "--ledger", ledger, "--min-dsr", "0.9")
    assert out.exit_code == 0, out.output
    after = datetime.now(UTC)
    approved = load_spec(tmp_path / "strategies" / "g.json")
    record = approvals.lookup(ledger, approvals.approval_hash(approved))
    assert record is not None and record.active and record.approver == "alice"
    assert before <= datetime.fromisoformat(record.approved_at) <= after
    assert record.spec_hash in out.output and record.name == "g"
    measured = {g["name"]: g["measured"] for g in record.gates}
    assert measured == {"oos_sharpe": 1.5, "dsr": 0.97, "pbo": 0.1, "min_trades": 80,
                        "lookahead": True}
    assert all(g["passed"] for g in record.gates)
    assert record.thresholds["min_dsr"] == 0.9 and record.thresholds["max_pbo"] == 0.5


def test_default_ledger_is_beside_the_strategies_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(approvals.LEDGER_ENV, raising=False)
    draft = save_spec(_draft(), tmp_path / "draft.json")
    out = _cli("strategy", "promote", draft, "--out-dir", tmp_path / "desk" / "strategies", *LAX)
    assert out.exit_code == 0, out.output
    assert (tmp_path / "desk" / "approvals.db").is_file()
    spec = load_spec(tmp_path / "desk" / "strategies" / "g.json")
    assert approvals.lookup(tmp_path / "desk" / "approvals.db",
                            approvals.approval_hash(spec)).active


def test_failed_gates_record_nothing(tmp_path):
    draft = save_spec(_draft(dsr=0.2), tmp_path / "draft.json")
    ledger = tmp_path / "ledger.db"
    out = _cli("strategy", "promote", draft, "--out-dir", tmp_path / "s", "--ledger", ledger)
    assert out.exit_code == 2 and "dsr: measured 0.2" in out.output
    assert not (tmp_path / "s" / "g.json").exists()
    assert not ledger.exists()


def _live(spec_path, tmp_path, *extra):
    return _cli("live", "run", "--strategy", spec_path, "--mode", "live", "--feed",
                f"replay:{tmp_path / 'none.csv'}", "--state", tmp_path / "live.db",
                "--kernels", "jit", *extra)


def test_a_hand_approved_spec_is_refused_in_live_mode(tmp_path):
    ledger = tmp_path / "approvals.db"
    # a ledger exists and approves another spec
    other = save_spec(_draft(), tmp_path / "other.json")
    assert _cli("strategy", "promote", other, "--out-dir", tmp_path / "s", "--ledger", ledger,
                *LAX).exit_code == 0
    typed = _draft(dsr=0.99).model_dump(mode="json")
    typed["approval"] = {"status": "approved", "by": "quantlib"}  # typed in by hand
    forged = StrategySpec.model_validate(typed)
    path = save_spec(forged, tmp_path / "forged.json")
    out = _live(path, tmp_path, "--ledger", ledger)
    assert out.exit_code == 2
    assert str(path) in out.output and approvals.approval_hash(forged) in out.output
    assert "not approved in the approvals ledger" in out.output
    assert "Traceback" not in out.output
    assert not (tmp_path / "live.db").exists()  # refused before any state was created
    # and with no ledger at all
    out = _live(path, tmp_path, "--ledger", tmp_path / "nowhere.db")
    assert out.exit_code == 2 and "does not exist" in out.output


def test_retire_withdraws_the_approval(tmp_path):
    draft = save_spec(_draft(), tmp_path / "draft.json")
    ledger = tmp_path / "ledger.db"
    assert _cli("strategy", "promote", draft, "--out-dir", tmp_path / "s", "--ledger", ledger,
                *LAX).exit_code == 0
    approved = tmp_path / "s" / "g.json"
    spec = load_spec(approved)
    assert approvals.require_approved(spec, ledger).active
    out = _cli("strategy", "retire", approved, "--ledger", ledger, "--reason", "decayed",
               "--by", "carol")
    assert out.exit_code == 0, out.output
    record = approvals.lookup(ledger, approvals.approval_hash(spec))
    assert not record.active and record.retired_by == "carol"
    assert record.retire_reason == "decayed"
    with pytest.raises(LiveError, match="was retired on .* by carol \\(decayed\\)"):
        approvals.require_approved(spec, ledger, approved)
    out = _live(approved, tmp_path, "--ledger", ledger)
    assert out.exit_code == 2 and "retired" in out.output and str(approved) in out.output
    again = _cli("strategy", "retire", approved, "--ledger", ledger)
    assert again.exit_code == 2 and "no active approval" in again.output
    # a new promotion approves it again
    assert _cli("strategy", "promote", draft, "--out-dir", tmp_path / "s", "--ledger", ledger,
                *LAX).exit_code == 0
    assert approvals.require_approved(spec, ledger).active


def test_a_foreign_database_is_not_used_as_a_ledger(tmp_path):
    foreign = tmp_path / "app.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE users (name TEXT)")
    con.commit()
    con.close()
    draft = save_spec(_draft(), tmp_path / "draft.json")
    out = _cli("strategy", "promote", draft, "--out-dir", tmp_path / "s", "--ledger", foreign,
               *LAX)
    assert out.exit_code == 2 and "not a quantlib approvals ledger" in out.output
    names = sqlite3.connect(foreign).execute("SELECT name FROM sqlite_master").fetchall()
    assert names == [("users",)]
    assert not (tmp_path / "s" / "g.json").exists()


# -- promote re-derives the evidence ----------------------------------------------------------

@pytest.fixture(scope="module")
def evidence_spec():
    """A real spec from the promotion pipeline: sample data, searched in sample, tested out
    of sample (its provenance names the data and its SHA-256)."""
    from quantlib.data import load
    from quantlib.optimize import export_and_promote, gather_evidence
    from quantlib.strategy.gates import GateConfig

    data = load("sample:seed=5,bars=800")
    ev = gather_evidence("ma_cross", data, [{"fast": 5, "slow": 20}, {"fast": 10, "slow": 40}],
                         n_splits=4)
    lax = GateConfig(min_oos_sharpe=-1e9, min_dsr=0.0, max_pbo=1.0, min_trades=0)
    spec, _ = export_and_promote(ev, "rederive", lax, symbols=["BTC/USD"])
    return spec, ev


def _tampered(spec, sample: str, metric: str, delta: float) -> StrategySpec:
    data = spec.model_dump(mode="json")
    data["approval"] = {"status": "draft"}
    data["evidence"][sample][metric] += delta
    return StrategySpec.model_validate(data)


def test_promote_reruns_the_backtest_and_accepts_true_evidence(evidence_spec, tmp_path):
    spec, ev = evidence_spec
    assert spec.evidence.in_sample["n_bars"] == ev.split_index
    draft = save_spec(_tampered(spec, "in_sample", "sharpe", 0.0), tmp_path / "d.json")
    out = _cli("strategy", "promote", draft, "--out-dir", tmp_path / "s", "--ledger",
               tmp_path / "l.db", *LAX)
    assert out.exit_code == 0, out.output
    assert "not re-derived" not in out.output


@pytest.mark.parametrize(("sample", "metric"), [("in_sample", "sharpe"),
                                                ("in_sample", "total_return"),
                                                ("out_of_sample", "sharpe")])
def test_promote_refuses_tampered_evidence(evidence_spec, tmp_path, sample, metric):
    from quantlib.backtest import run_backtest
    from quantlib.data import load

    spec, ev = evidence_spec
    stated = spec.evidence.model_dump()[sample][metric]
    draft = save_spec(_tampered(spec, sample, metric, 1e-3), tmp_path / "d.json")
    ledger = tmp_path / "l.db"
    out = _cli("strategy", "promote", draft, "--out-dir", tmp_path / "s", "--ledger", ledger,
               *LAX)
    assert out.exit_code == 2
    assert f"$.evidence.{sample}.{metric}: stated {stated + 1e-3!r}" in out.output
    # the rerun it reports is the backtest of the spec on the named rows, recomputed here
    data = load("sample:seed=5,bars=800")
    rows = data.iloc[:ev.split_index] if sample == "in_sample" else data.iloc[ev.split_index:]
    rerun = float(run_backtest("ma_cross", rows, spec.params,
                               spec.backtest_config()).metrics[metric].iloc[0])
    assert f"rerun {rerun!r}" in out.output
    assert rerun == pytest.approx(stated, rel=1e-9)
    assert not ledger.exists() and not (tmp_path / "s" / "rederive.json").exists()


def test_evidence_on_other_data_is_not_rederived_but_said(evidence_spec, tmp_path):
    spec, _ = evidence_spec
    data = spec.model_dump(mode="json")
    data["approval"] = {"status": "draft"}
    data["provenance"]["data_sha256"] = "0" * 64
    draft = save_spec(StrategySpec.model_validate(data), tmp_path / "d.json")
    out = _cli("strategy", "promote", draft, "--out-dir", tmp_path / "s", "--ledger",
               tmp_path / "l.db", *LAX)
    assert out.exit_code == 0, out.output
    assert "evidence not re-derived" in out.output and "another SHA-256" in out.output


def test_export_and_promote_records_in_a_ledger_when_given_one(evidence_spec, tmp_path):
    from quantlib.optimize import export_and_promote
    from quantlib.strategy.gates import GateConfig

    _, ev = evidence_spec
    lax = GateConfig(min_oos_sharpe=-1e9, min_dsr=0.0, max_pbo=1.0, min_trades=0)
    spec, _ = export_and_promote(ev, "nb", lax, tmp_path / "s", by="dave",
                                 symbols=["BTC/USD"], ledger=tmp_path / "l.db")
    written = load_spec(tmp_path / "s" / "nb.json")
    assert written == spec
    record = approvals.require_approved(written, tmp_path / "l.db")
    assert record.approver == "dave" and record.spec_file == str(tmp_path / "s" / "nb.json")
    # without a ledger the spec is written but live mode would refuse it
    export_and_promote(ev, "nb2", lax, tmp_path / "s", symbols=["BTC/USD"])
    with pytest.raises(LiveError, match="not approved"):
        approvals.require_approved(load_spec(tmp_path / "s" / "nb2.json"), tmp_path / "l.db")
