"""Approve a spec for live mode the only way there is: `quantlib strategy promote`, which
records its hash in the approvals ledger (tests of live mode use this, never a hand-typed
``"status": "approved"``)."""

from __future__ import annotations

from pathlib import Path

from quantlib.strategy.spec import ApprovalSpec, EvidenceSpec, StrategySpec, save_spec

# Gates every test spec passes: these tests are about trading, not about the gates.
LAX_GATES = ["--min-oos-sharpe", "-1e9", "--min-dsr", "0", "--max-pbo", "1",
             "--min-trades", "0"]


def promoted(spec: StrategySpec, folder: Path) -> Path:
    """Promote ``spec`` through the CLI; returns ``folder/strategies/<name>.json`` (its ledger
    is ``folder/approvals.db``, where `live run` looks by default)."""
    from typer.testing import CliRunner

    from quantlib.cli import app

    draft = spec.model_copy(update={
        "approval": ApprovalSpec(),
        "evidence": EvidenceSpec(out_of_sample={"sharpe": 0.0}, dsr=1.0, pbo=0.0, n_trades=0,
                                 lookahead_passed=True)})
    draft_path = save_spec(draft, folder / f"{spec.name}.draft.json")
    out = CliRunner().invoke(app, ["strategy", "promote", str(draft_path), "--out-dir",
                                   str(folder / "strategies"), "--approver", "test",
                                   *LAX_GATES])
    assert out.exit_code == 0, out.output
    return folder / "strategies" / f"{spec.name}.json"
