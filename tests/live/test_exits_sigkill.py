"""A take-profit resting at the exchange fills while the runner is dead (SIGKILL).

The runner trades a stop-loss + take-profit spec against the loopback Kraken in a child
process; the exchange walks bars only up to a gate the test moves. The test picks, from the
backtest (vectorbt) of the same bars, an entry that the backtest closes by its take-profit; it
lets the runner reach the close of that entry's bar, waits until the runner has sent the exits
(the progress point: the take-profit's row ``sent`` in the state file), kills it with SIGKILL,
and walks the market on to the bar where the take-profit fills, with nobody watching. The
restarted runner must record the fill once, cancel the stop-loss still resting, and trade on from
a flat position: the whole run's fills equal the backtest's.
"""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest

from quantlib.data import synthetic_ohlcv
from quantlib.live.brokers.base import client_order_id
from quantlib.live.state import StateStore
from quantlib.strategy.spec import dump_spec
from tests.live._exit_children import exchange_control, gated_exchange_process, gated_runner_child
from tests.live.test_crash_safety import CTX, _exchange_report, _start_exchange
from tests.live.test_exits_take_profit import (
    TP,
    assert_same_fills,
    backtest_fills,
    exits_spec,
)
from tests.support.ready import wait_until

N_BARS = 200


def _row_status(state, client_id: str) -> str | None:
    if not state.exists():
        return None
    con = sqlite3.connect(state, timeout=30.0)
    try:
        row = con.execute("SELECT status FROM orders WHERE client_id=?", (client_id,)).fetchone()
    except sqlite3.OperationalError:  # tables not created yet
        return None
    finally:
        con.close()
    return row[0] if row else None


def _take_profit_trade(frame, expected):
    """(entry fill bar, take-profit bar) of the backtest's first take-profit exit."""
    times = list(frame.index.as_unit("ms").asi8)
    entry = None
    for t, side, price, _ in expected:
        if side > 0:
            entry = (times.index(t), price)
        elif price == pytest.approx(entry[1] * (1 + TP), rel=1e-12):
            return entry[0], times.index(t)
    raise AssertionError("the data must hold a take-profit exit")


@pytest.mark.timeout(600)
def test_take_profit_fills_while_dead_restart_records_it_once_and_cancels_the_stop(tmp_path):
    frame = synthetic_ohlcv(n_bars=N_BARS, seed=5).ohlcv
    expected = backtest_fills(frame)
    entry_bar, tp_bar = _take_profit_trade(frame, expected)
    assert tp_bar > entry_bar + 1  # the take-profit fills in a later bar than the exits rest
    times = frame.index.as_unit("ms").asi8
    rows = [(int(t), *map(float, r)) for t, r in
            zip(times, frame[["open", "high", "low", "close", "volume"]].to_numpy(), strict=True)]
    spec = exits_spec()
    # the entry was decided at the close before its fill; its exits are keyed by that bar
    tp_id, sl_id = (client_order_id(spec.name, "BTC/USD", int(times[entry_bar - 1]), f"exit|{w}")
                    for w in ("tp", "sl"))
    state = tmp_path / "live.db"
    server, parent, url = _start_exchange(gated_exchange_process, rows)
    exchange_control(url, "TestGate", n=entry_bar)  # the runner may see up to the entry's bar
    child = CTX.Process(target=gated_runner_child, args=(url, dump_spec(spec), rows, str(state)))
    child.start()
    # the progress point: the runner has sent the exits of the position (and waits at the gate)
    wait_until(lambda: _row_status(state, tp_id) == "sent", 300, process=child,
               describe="the take-profit to be sent")
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    resting = exchange_control(url, "TestOrders")
    assert resting[tp_id] == ["take-profit", "open"] and resting[sl_id] == ["stop-loss", "open"]
    # nobody watches: the market walks on to the bar where the take-profit fills
    exchange_control(url, "TestGate", n=tp_bar)
    exchange_control(url, "TestWalk", i=tp_bar)
    after = exchange_control(url, "TestOrders")
    assert after[tp_id] == ["take-profit", "closed"]
    assert after[sl_id] == ["stop-loss", "open"]  # its sibling still rests: the bot is dead
    # restart: reconcile, then trade the rest of the bars
    exchange_control(url, "TestGate", n=N_BARS)
    child = CTX.Process(target=gated_runner_child, args=(url, dump_spec(spec), rows, str(state)))
    child.start()
    child.join(600)
    assert child.exitcode == 0
    orders, usd, btc, duplicates, errors = _exchange_report(server, parent)
    assert errors == [] and duplicates == {}
    by_id = {o[1]: o for o in orders}
    assert by_id[tp_id][6] == "closed" and by_id[sl_id][6] == "canceled"
    store = StateStore(state)
    try:
        assert store.get_order(tp_id).status == "filled"
        assert store.get_order(sl_id).status == "cancelled"
        assert [f.client_id for f in store.fills()].count(tp_id) == 1  # recorded once
        assert store.get_float("position", -1.0) == pytest.approx(btc, abs=1e-12)
        assert store.get_float("cash", -1.0) == pytest.approx(usd, abs=1e-9)
    finally:
        store.close()
    # the whole run, dead time included, fills as the backtest does
    fills = sorted((int(times[bar]) if bar < N_BARS else -1,
                    1 if side == "buy" else -1, price, amount)
                   for bar, _, side, _, price, amount, status in orders if status == "closed")
    assert_same_fills(fills, expected)
