"""CcxtBroker against the loopback Kraken server: faults, reconciliation, secrets."""

from __future__ import annotations

import io

import pytest

from quantlib.live.brokers.base import client_order_id
from quantlib.live.brokers.ccxt_broker import CcxtBroker, credentials_from_env
from quantlib.live.logs import JsonLogger
from quantlib.live.state import OrderRow, StateStore
from tests.live._approve import promoted
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken


@pytest.fixture
def server(replay_frame):
    with KrakenServer(replay_frame.iloc[:50], symbol="BTC/USD") as srv:
        srv.set_balance("USD", 10_000.0)
        srv.set_price("BTC/USD", 100.0)
        srv.fault_delay = 4.0  # outlasts the client's timeout, which a loaded machine needs
        yield srv


def _broker(server, tmp_path):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10}, approval={"status": "approved"})
    store = StateStore(tmp_path / "s.db")
    ex = make_ccxt_kraken(server, timeout=2000)
    log = io.StringIO()
    return CcxtBroker(store, spec, ex, logger=JsonLogger(log), backoff=0.01), store, log


def _intent(store, amount=1.0, side=1, bar=1_700_000_000_000):
    cid = client_order_id("t", "BTC/USD", bar, "signal|0.0|1.0")
    order = OrderRow(client_id=cid, bar_time=bar, symbol="BTC/USD", intent="signal|0.0|1.0",
                     side=side, amount=amount, target=1.0, order_type="market", price=None,
                     status="new", exchange_id=None, detail="", attempts=0)
    with store.transaction():
        store.add_order(order)
    return order


@pytest.mark.parametrize(("kind", "status", "times"), [
    ("http", 429, 2), ("http", 503, 2), ("http", 500, 1), ("timeout", None, 1),
    ("malformed", None, 2), ("lost", None, 1),
])
def test_faults_back_off_reconcile_and_never_double_order(server, tmp_path, kind, status, times):
    broker, store, log = _broker(server, tmp_path)
    broker.reconcile()
    order = _intent(store)
    server.inject_fault("AddOrder", kind, times=times, status=status)
    broker.submit(order)
    assert server.duplicate_client_ids() == {}
    placed = [o for o in server.orders.values() if o["cl_ord_id"] == order.client_id]
    assert len(placed) == 1, store.get_order(order.client_id)
    assert store.get_order(order.client_id).status == "filled"
    assert [f.client_id for f in store.fills()] == [order.client_id]
    assert server.balance("BTC") == pytest.approx(1.0)
    assert store.get_float("position", 0.0) == pytest.approx(1.0)
    if kind == "lost":  # the order existed: it was found by client id, not sent again
        assert len(server.requests_for("AddOrder")) == 1
    assert '"event": "order_retry"' in log.getvalue()


def test_insufficient_funds_is_rejected_not_retried(server, tmp_path):
    broker, store, _ = _broker(server, tmp_path)
    order = _intent(store, amount=1_000.0)
    broker.submit(order)
    assert store.get_order(order.client_id).status == "rejected"
    assert "insufficient" in store.get_order(order.client_id).detail
    assert len(server.requests_for("AddOrder")) == 1 and server.orders == {}


def test_restart_reconciles_an_order_the_exchange_has(server, tmp_path):
    # Crash after AddOrder reached the exchange, before we recorded anything: status 'sent'.
    broker, store, _ = _broker(server, tmp_path)
    order = _intent(store)
    broker.exchange.load_markets()
    broker.exchange.create_order("BTC/USD", "market", "buy", 1.0, None,
                                 {"clientOrderId": order.client_id})
    with store.transaction():
        store.update_order(order.client_id, status="sent")
    fresh, store2, _ = _broker(server, tmp_path)  # a new process on the same state file
    fresh.reconcile()
    fresh.resubmit_pending()
    assert store2.get_order(order.client_id).status == "filled"
    assert len(server.requests_for("AddOrder")) == 1
    assert store2.get_float("cash", 0.0) == pytest.approx(server.balance("USD"))


def test_keys_only_from_env_and_never_in_any_output(server, replay_frame, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from quantlib.cli import app
    from quantlib.data import save_ohlcv

    with pytest.raises(Exception, match="QUANTLIB_KRAKEN_API_KEY"):
        credentials_from_env("kraken", {})
    monkeypatch.setenv("QUANTLIB_KRAKEN_API_KEY", server.api_key)
    monkeypatch.setenv("QUANTLIB_KRAKEN_SECRET", server.secret)
    monkeypatch.setenv("QUANTLIB_KRAKEN_API_URL", server.url)
    server.set_price("BTC/USD", float(replay_frame["close"].iloc[119]))
    replay = tmp_path / "r.csv"
    save_ohlcv(replay_frame.iloc[:120], replay)
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    spec_path = promoted(spec, tmp_path)
    state, logf = tmp_path / "live.db", tmp_path / "live.log"
    runner = CliRunner()
    out = runner.invoke(app, ["live", "run", "--strategy", str(spec_path), "--mode", "live",
                              "--feed", f"replay:{replay}", "--state", str(state),
                              "--log-file", str(logf)])
    assert out.exit_code == 0, out.output
    assert len(server.orders) >= 2  # it really traded with the keys
    status = runner.invoke(app, ["live", "status", "--state", str(state)])
    # A wrong secret: the authentication error must not echo either secret.
    monkeypatch.setenv("QUANTLIB_KRAKEN_SECRET", server.secret[::-1])
    bad = runner.invoke(app, ["live", "run", "--strategy", str(spec_path), "--mode", "live",
                              "--feed", f"replay:{replay}", "--state", str(tmp_path / "b.db"),
                              "--log-file", str(logf)])
    assert bad.exit_code != 0
    blobs = [out.output, status.output, bad.output, str(bad.exception or ""), logf.read_text(),
             spec_path.read_text()]
    blobs += [p.read_bytes().decode("latin-1") for p in tmp_path.iterdir()
              if p.is_file() and p.suffix in (".db", ".json", ".log", ".wal", ".shm")]
    for secret in (server.api_key, server.secret, server.secret[::-1]):
        for blob in blobs:
            assert secret not in blob
