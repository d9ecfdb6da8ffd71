"""Live mode trades what the approvals ledger approves, exactly: a promoted spec trades at the
(loopback) exchange; the same file edited afterwards, still saying "approved", is refused."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from quantlib.cli import app
from quantlib.data import save_ohlcv
from quantlib.strategy.approvals import approval_hash
from quantlib.strategy.spec import load_spec
from tests.live._approve import promoted
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer


def test_a_promoted_spec_trades_and_an_edited_one_is_refused(replay_frame, tmp_path,
                                                              monkeypatch):
    replay = save_ohlcv(replay_frame.iloc[:80], tmp_path / "bars.csv")
    spec_path = promoted(make_spec("ma_cross", {"fast": 3, "slow": 10}), tmp_path)
    args = ["live", "run", "--strategy", str(spec_path), "--mode", "live", "--feed",
            f"replay:{replay}", "--kernels", "jit"]
    with KrakenServer(symbol="BTC/USD", balances={"USD": 10_000.0}) as server:
        server.set_price("BTC/USD", float(replay_frame["close"].iloc[79]))
        monkeypatch.setenv("QUANTLIB_KRAKEN_API_KEY", server.api_key)
        monkeypatch.setenv("QUANTLIB_KRAKEN_SECRET", server.secret)
        monkeypatch.setenv("QUANTLIB_KRAKEN_API_URL", server.url)
        out = CliRunner().invoke(app, [*args, "--state", str(tmp_path / "a.db")])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output.strip().splitlines()[-1])["bars_processed"] == 80
        assert server.requests_for("AddOrder")  # it really traded
        placed = len(server.requests_for("AddOrder"))

        edited = json.loads(spec_path.read_text())
        assert edited["approval"]["status"] == "approved"
        edited["params"]["fast"] = 4  # a "small" change after the approval
        spec_path.write_text(json.dumps(edited))
        out = CliRunner().invoke(app, [*args, "--state", str(tmp_path / "b.db")])
        assert out.exit_code == 2
        assert approval_hash(load_spec(spec_path)) in out.output
        assert "not approved in the approvals ledger" in out.output
        assert len(server.requests_for("AddOrder")) == placed  # nothing more was sent
        assert not (tmp_path / "b.db").exists()
