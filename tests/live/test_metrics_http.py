"""The /metrics endpoint scraped during a replay: counters move, gauges equal the state file."""

from __future__ import annotations

import io
import json
import threading
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from quantlib.live.brokers import PaperBroker
from quantlib.live.feeds import Feed, frame_to_bars
from quantlib.live.logs import JsonLogger
from quantlib.live.metrics_http import RunMetrics
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from quantlib.live.watch import RunWatcher, attach
from tests.live.conftest import make_spec
from tests.support.ready import wait_for_server, wait_until


class PausingFeed(Feed):
    """Replay bars, stopping before each index in ``pauses`` until ``go`` is set again."""

    timeframe, symbol = "1h", "BTC/USD"

    def __init__(self, bars, pauses):
        self.bars, self.pauses = bars, set(pauses)
        self.go, self.waiting = threading.Event(), threading.Event()

    def __iter__(self):
        for i, bar in enumerate(self.bars):
            if i in self.pauses:
                self.go.clear()
                self.waiting.set()
                self.go.wait(30)
                self.waiting.clear()
            yield bar


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _state_now(path) -> dict:
    store = StateStore(path, create=False)
    try:
        bars, fills, orders = store.bars(), store.fills(), store.orders()
        return {"bars": len(bars), "last": bars[-1], "fills": len(fills),
                "filled": sum(o.status == "filled" for o in orders),
                "position": store.get_float("position", 0.0)}
    finally:
        store.close()


def test_metrics_move_during_a_replay_and_match_the_state(tmp_path, replay_frame):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    state = tmp_path / "s.db"
    log = io.StringIO()
    logger = JsonLogger(log)
    feed = PausingFeed(frame_to_bars(replay_frame), pauses=(120, 240))

    def run():  # SQLite connections belong to the thread that opens them
        store = StateStore(state)
        LiveRunner(spec, PaperBroker(store, spec), store, feed, logger=logger).run()

    watcher = attach(logger, state, spec, metrics_port=0)
    url = next(json.loads(line)["url"] for line in log.getvalue().splitlines()
               if '"event": "metrics"' in line)
    wait_for_server(url, 10)
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    seen = []
    try:
        for processed in (120, 240):
            wait_until(feed.waiting.is_set, 30, describe=f"the feed's pause at bar {processed}")
            def caught_up(n=processed):  # the watcher reads the state after the bar events
                scraped = _scrape(url)
                return (scraped.get(("quantlib_bars_total", ())) == n
                        and scraped.get(("quantlib_equity", ())) == _state_now(state)["last"][5])

            wait_until(caught_up, 10, describe=f"{processed} bars in /metrics")
            seen.append((_scrape(url), _state_now(state)))
            feed.go.set()
        worker.join(30)
    finally:
        feed.go.set()
        watcher.close()
    for metrics, now in seen:
        bar_time, _, _, position, cash, equity, _ = now["last"]
        assert metrics[("quantlib_equity", ())] == pytest.approx(equity, rel=1e-12)
        assert metrics[("quantlib_cash", ())] == pytest.approx(cash, rel=1e-12)
        assert metrics[("quantlib_position", (("symbol", "BTC/USD"),))] == pytest.approx(position)
        assert metrics[("quantlib_last_bar_timestamp_seconds", ())] == bar_time / 1000
        age = metrics[("quantlib_last_bar_age_seconds", ())]
        assert age > 0  # a replay's bars closed long ago
        assert metrics[("quantlib_fills_total", ())] == now["fills"]
        assert metrics[("quantlib_orders", (("status", "filled"),))] == now["filled"]
        assert metrics[("quantlib_step_latency_seconds_count", ())] == now["bars"]
    first, second = seen[0][0], seen[1][0]
    assert second[("quantlib_bars_total", ())] - first[("quantlib_bars_total", ())] == 120
    assert second[("quantlib_fills_total", ())] > first[("quantlib_fills_total", ())] > 0
    assert (second[("quantlib_step_latency_seconds_sum", ())]
            > first[("quantlib_step_latency_seconds_sum", ())])


def test_errors_retries_and_halts_are_counted_by_kind(tmp_path):
    metrics = RunMetrics(["BTC/USD"])
    watcher = RunWatcher(tmp_path / "none.db", "1h", metrics=metrics).start()
    for record in ({"event": "exchange_retry", "call": "fetch_balance"},
                   {"event": "exchange_retry", "call": "fetch_balance"},
                   {"event": "order_retry", "client_id": "x"},
                   {"event": "order_rejected", "client_id": "x"},
                   {"event": "risk_halt", "reason": "drawdown"},
                   {"event": "run_error", "kind": "ExchangeError", "error": "down"}):
        watcher(record)
    watcher.close()
    parsed = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for f in text_string_to_metric_families(metrics.exposition().decode())
              for s in f.samples}
    assert parsed[("quantlib_retries_total", (("kind", "fetch_balance"),))] == 2
    assert parsed[("quantlib_retries_total", (("kind", "order_retry"),))] == 1
    assert parsed[("quantlib_errors_total", (("kind", "order_rejected"),))] == 1
    assert parsed[("quantlib_errors_total", (("kind", "ExchangeError"),))] == 1
    assert parsed[("quantlib_halts_total", ())] == 1 and parsed[("quantlib_halted", ())] == 1


def test_the_metrics_port_is_loopback_by_default_and_a_busy_port_is_refused():
    from quantlib.errors import LiveError

    metrics = RunMetrics()
    server = metrics.serve(0)
    try:
        assert server.server_address[0] == "127.0.0.1"
        with pytest.raises(LiveError, match=f"--metrics-port {server.server_port}"):
            RunMetrics().serve(server.server_port)
    finally:
        server.shutdown()
