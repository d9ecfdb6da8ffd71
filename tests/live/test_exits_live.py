"""Exits in live mode against the loopback Kraken: the stop-loss resting at the exchange
(``execution.stop_on_exchange``), a stop that fills while the runner is dead, and what live mode
refuses (trailing stops; exits without resting orders)."""

from __future__ import annotations

import io
import math

import pytest

from quantlib.live.brokers.ccxt_broker import CcxtBroker
from quantlib.live.feeds import frame_to_bars
from quantlib.live.logs import JsonLogger
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken

SL = 0.02


@pytest.fixture
def server(replay_frame):
    with KrakenServer(replay_frame.iloc[:50], symbol="BTC/USD") as srv:
        srv.set_balance("USD", 10_000.0)
        srv.set_price("BTC/USD", float(replay_frame["open"].iloc[0]))
        yield srv
        assert srv.errors == []


def _spec(**risk):
    return make_spec("ma_cross", {"fast": 3, "slow": 10}, exchange="kraken",
                     approval={"status": "approved", "by": "test"},
                     execution={"fees": 0.0, "stop_on_exchange": True},
                     risk={"sl_stop": SL, **risk})


def _runner(server, spec, store, feed):
    exchange = make_ccxt_kraken(server, timeout=2000)
    broker = CcxtBroker(store, spec, exchange, logger=JsonLogger(io.StringIO()), backoff=0.01)
    return LiveRunner(spec, broker, store, feed, mode="live", logger=JsonLogger(io.StringIO())), \
        exchange


def _stops(server, status="open"):
    return [o for o in server.orders.values()
            if o["descr"]["ordertype"] == "stop-loss" and o["status"] == status]


def _market_feed(server, bars, until=None):
    """Each bar's close is the market price when the runner acts on it; ``until(server)``
    ends the feed (the bot dies)."""
    for bar in bars:
        server.set_price("BTC/USD", bar.close)
        yield bar
        if until is not None and until(server):
            return


def test_stop_rests_at_the_exchange_fills_while_dead_and_is_recorded_once(server, replay_frame,
                                                                          tmp_path):
    bars = frame_to_bars(replay_frame)
    spec = _spec()
    store = StateStore(tmp_path / "live.db")
    runner, exchange = _runner(server, spec, store,
                               _market_feed(server, bars, until=lambda s: bool(_stops(s))))
    first = runner.run()
    # from the close of the entry's bar on, its stop-loss rests at the exchange
    (stop,) = _stops(server)
    entry = next(f for f in store.fills() if f[2] > 0)
    expected = float(exchange.price_to_precision("BTC/USD", entry[3] * (1 - SL)))
    assert float(stop["descr"]["price"]) == expected
    assert float(stop["vol"]) == pytest.approx(entry[4], rel=1e-8)
    assert server.balance("BTC") == pytest.approx(entry[4], rel=1e-8)
    # the bot is dead; the market falls through the trigger: the exchange sells
    server.set_price("BTC/USD", expected * 0.99)
    assert _stops(server, "closed") and server.balance("BTC") == pytest.approx(0.0, abs=1e-9)
    # restart on the bars after the last one processed
    done = first.bars_processed
    runner, _ = _runner(server, spec, store, _market_feed(server, bars))
    runner.run()
    stop_rows = [o for o in store.orders() if o.intent == "exit|sl" and
                 o.client_id == stop["cl_ord_id"]]
    assert [o.status for o in stop_rows] == ["filled"]
    assert [f.client_id for f in store.fills()].count(stop["cl_ord_id"]) == 1  # recorded once
    assert server.duplicate_client_ids() == {}
    # it traded on from a flat position: no sell was refused for want of BTC, and no buy came
    # before the target went flat and long again (the stop does not re-enter by itself)
    later = [o for o in store.orders() if o.bar_time > bars[done - 1].time]
    assert not any(o.status == "rejected" for o in store.orders())
    signals = [o for o in later if o.intent.startswith("signal|")]
    assert any(o.side > 0 and o.status == "filled" for o in signals), "it must enter again"
    assert signals[0].side < 0  # the target left long first (nothing to sell: cancelled)
    assert signals[0].status == "cancelled"
    assert store.get_float("position", math.nan) == pytest.approx(server.balance("BTC"),
                                                                   abs=1e-9)


def test_signal_exit_cancels_the_resting_stop(server, replay_frame, tmp_path):
    bars = frame_to_bars(replay_frame)
    spec = _spec(sl_stop=0.5)  # far away: the signal exits first
    store = StateStore(tmp_path / "live.db")
    runner, _ = _runner(server, spec, store, _market_feed(server, bars))
    runner.run()
    sells = [o for o in store.orders() if o.side < 0 and o.intent.startswith("signal|")
             and o.status == "filled"]
    assert sells, "the case must exit by signal"
    assert _stops(server, "canceled") and len(_stops(server, "canceled")) >= len(sells) - 1
    assert len(_stops(server)) <= 1  # at most the stop of a position still open at the end
    assert server.duplicate_client_ids() == {}


def test_trailing_stop_is_refused_in_live_mode_by_name(server, tmp_path):
    from quantlib.errors import SpecError

    spec = make_spec("ma_cross", {"fast": 3, "slow": 10}, exchange="kraken",
                     approval={"status": "approved", "by": "test"},
                     execution={"stop_on_exchange": True}, risk={"trail_stop": 0.02})
    with pytest.raises(SpecError, match=r"\$\.risk\.trail_stop cannot trade live.*tick by tick"):
        _runner(server, spec, StateStore(tmp_path / "x.db"), iter([]))


@pytest.mark.parametrize("risk, named", [({"sl_stop": 0.02}, r"\$\.risk\.sl_stop in"),
                                         ({"tp_stop": 0.05}, r"\$\.risk\.tp_stop in"),
                                         ({"sl_stop": 0.02, "tp_stop": 0.05},
                                          r"\$\.risk\.sl_stop and \$\.risk\.tp_stop in")])
def test_exits_without_resting_orders_are_refused_in_live_mode(server, tmp_path, risk, named):
    from quantlib.errors import SpecError

    spec = make_spec("ma_cross", {"fast": 3, "slow": 10}, exchange="kraken",
                     approval={"status": "approved", "by": "test"}, risk=risk)
    with pytest.raises(SpecError, match=named + r".*\$\.execution\.stop_on_exchange: true"):
        _runner(server, spec, StateStore(tmp_path / "x.db"), iter([]))
    # the same spec trades in paper mode, where exits fill at the level
    from quantlib.live.brokers import PaperBroker

    store = StateStore(":memory:")
    LiveRunner(spec, PaperBroker(store, spec), store, iter([]))


class _Died(Exception):
    """The process dies here (the test stops the run at this exact point)."""


def test_death_between_entry_fill_and_stop_placement_is_repaired_on_restart(
        server, replay_frame, tmp_path, monkeypatch):
    bars = frame_to_bars(replay_frame)
    spec = _spec()
    store = StateStore(tmp_path / "live.db")
    send = CcxtBroker.submit

    def die_on_exits(self, order):
        if order.order_type == "stop":  # the exits are committed, the process dies sending
            raise _Died
        send(self, order)

    with monkeypatch.context() as patch:
        patch.setattr(CcxtBroker, "submit", die_on_exits)
        runner, _ = _runner(server, spec, store, _market_feed(server, bars))
        with pytest.raises(_Died):
            runner.run()
    # the entry filled at the exchange, its stop-loss was queued but never sent
    queued = [o for o in store.orders() if o.order_type == "stop"]
    assert [o.status for o in queued] == ["new"]
    assert _stops(server) == [] and server.balance("BTC") > 0
    # the restart sends it before trading any further bar
    runner, _ = _runner(server, spec, store, iter([]))
    runner.run()
    (stop,) = _stops(server)
    assert stop["cl_ord_id"] == queued[0].client_id
    assert float(stop["vol"]) == pytest.approx(server.balance("BTC"), rel=1e-8)
    assert store.get_order(queued[0].client_id).status == "sent"
    # and a second restart does not send it again
    runner, _ = _runner(server, spec, store, iter([]))
    runner.run()
    assert len(_stops(server)) == 1 and server.duplicate_client_ids() == {}


def _both_exits_resting(server) -> bool:
    kinds = [o["descr"]["ordertype"] for o in server.orders.values() if o["status"] == "open"]
    return sorted(kinds) == ["stop-loss", "take-profit"]


@pytest.mark.parametrize("deposit", [0.0, 5.0], ids=["spot", "sibling-filled-anyway"])
def test_both_exits_triggered_while_dead_are_reconciled_once(server, replay_frame, tmp_path,
                                                              deposit):
    """While the bot is dead the market falls through the stop-loss, then rises through the
    take-profit. On a spot account the take-profit finds nothing to sell and the exchange
    cancels it; with more BTC in the account (a deposit meanwhile) it sells anyway. Either
    way the restarted runner records what the exchange did, once, sends no further sell, and
    its position is the exchange's balance."""
    bars = frame_to_bars(replay_frame)
    spec = _spec(tp_stop=0.03)
    store = StateStore(tmp_path / "live.db")
    runner, _ = _runner(server, spec, store, _market_feed(server, bars, until=_both_exits_resting))
    runner.run()
    sl_row, tp_row = (next(o for o in store.orders() if o.intent == f"exit|{w}")
                      for w in ("sl", "tp"))
    held = server.balance("BTC")
    server.set_balance("BTC", held + deposit)
    server.set_price("BTC/USD", sl_row.price * 0.99)  # the stop-loss sells the position
    server.set_price("BTC/USD", tp_row.price * 1.01)  # the take-profit triggers
    tp = next(o for o in server.orders.values() if o["cl_ord_id"] == tp_row.client_id)
    assert tp["status"] == ("canceled" if deposit == 0 else "closed")
    sells_before = len(server.requests_for("AddOrder"))
    log = io.StringIO()
    restarted = CcxtBroker(store, spec, make_ccxt_kraken(server, timeout=2000),
                           logger=JsonLogger(log), backoff=0.01)
    LiveRunner(spec, restarted, store, iter([]), mode="live",
               logger=JsonLogger(io.StringIO())).run()
    assert len(server.requests_for("AddOrder")) == sells_before  # nothing sold again
    assert store.get_order(sl_row.client_id).status == "filled"
    fills = [f.client_id for f in store.fills()]
    assert fills.count(sl_row.client_id) == 1
    if deposit == 0:
        assert store.get_order(tp_row.client_id).status == "cancelled"
        assert tp_row.client_id not in fills
    else:
        assert store.get_order(tp_row.client_id).status == "filled"
        assert fills.count(tp_row.client_id) == 1  # recorded as the exchange made it, once
        assert "sibling_exit_filled" in log.getvalue()
    assert store.get_float("position", math.nan) == pytest.approx(server.balance("BTC"),
                                                                   abs=1e-12)
    assert server.balance("BTC") == pytest.approx(deposit if deposit == 0 else
                                                  held + deposit - 2 * held, abs=1e-9)
    assert server.duplicate_client_ids() == {}
