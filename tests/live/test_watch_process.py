"""`quantlib live run --notify/--metrics-port` in the real trading process: notifications
arrive, nothing heavy is loaded, apprise only when asked for."""

from __future__ import annotations

import json
import re

import pytest

from quantlib.live.state import StateStore
from quantlib.strategy.spec import save_spec
from tests.live._trader import heavy_modules, run_trader
from tests.live.conftest import make_spec
from tests.support.webhook import WebhookReceiver


@pytest.fixture(scope="module", autouse=True)
def _aot_kernels():
    from quantlib import jit

    jit.ensure_built()


def _top(loaded: set[str]) -> set[str]:
    return {m.split(".")[0] for m in loaded}


def test_notifications_from_the_trading_process(replay_file, tmp_path):
    spec_path = save_spec(make_spec("ma_cross", {"fast": 3, "slow": 10}), tmp_path / "spec.json")
    state, log = tmp_path / "s.db", tmp_path / "log.jsonl"
    with WebhookReceiver() as hook:
        done, loaded = run_trader(
            ["live", "run", "--strategy", str(spec_path), "--mode", "paper", "--feed",
             f"replay:{replay_file}", "--state", str(state), "--log-file", str(log),
             "--notify", hook.url, "--notify-on", "start,stop,fill", "--metrics-port", "0"],
            tmp_path)
        texts, received = hook.texts(), list(hook.received)
    assert done.returncode == 0, done.stderr[-3000:]
    assert heavy_modules(loaded) == []
    assert {"apprise", "prometheus_client"} <= _top(loaded)
    everything = "\n".join(texts)
    assert "started (paper)" in everything and "stopped: feed_end" in everything
    store = StateStore(state)
    fills = store.fills()
    equity = store.bars()[-1].equity
    store.close()
    # each fill said (in full, or counted when a burst holds more than 20)
    said = 0
    for message in received:  # a merged message lists its parts in the body
        merged = " more: " in message["title"]
        text = message["message"] if merged else message["title"]
        said += text.count("t_ma_cross: fill: ")
        said += sum(int(n) for n in re.findall(r"\.\.\. and (\d+) more fills", text))
    assert said == len(fills) > 0
    assert len(texts) < len(fills)  # bursts merged
    assert f"equity: {equity}" in everything
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert "metrics" in events and "notify_failed" not in events


def test_without_notify_apprise_is_not_loaded_and_bad_options_are_refused(replay_file,
                                                                          tmp_path):
    spec_path = save_spec(make_spec("ma_cross", {"fast": 3, "slow": 10}), tmp_path / "spec.json")
    args = ["live", "run", "--strategy", str(spec_path), "--mode", "paper", "--feed",
            f"replay:{replay_file}", "--max-bars", "20"]
    done, loaded = run_trader([*args, "--state", str(tmp_path / "a.db")], tmp_path,
                              {"QUANTLIB_NOTIFY_URLS": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    assert not {"apprise", "prometheus_client"} & _top(loaded)
    bad, _ = run_trader([*args, "--state", str(tmp_path / "b.db"), "--notify",
                         "json://127.0.0.1:9/x", "--notify-on", "fills"], tmp_path)
    assert bad.returncode == 2 and "unknown event(s) ['fills']" in bad.stderr
    assert not (tmp_path / "b.db").exists()  # refused before trading: no state left behind


def test_the_environment_variable_names_the_channels(replay_file, tmp_path):
    spec_path = save_spec(make_spec("ma_cross", {"fast": 3, "slow": 10}), tmp_path / "spec.json")
    with WebhookReceiver() as hook:
        done, _ = run_trader(["live", "run", "--strategy", str(spec_path), "--mode", "paper",
                              "--feed", f"replay:{replay_file}", "--state", str(tmp_path / "e.db"),
                              "--max-bars", "5", "--notify-on", "start"], tmp_path,
                             {"QUANTLIB_NOTIFY_URLS": hook.url})
        titles = [m["title"] for m in hook.received]
    assert done.returncode == 0, done.stderr[-3000:]
    assert titles == ["quantlib t_ma_cross: started (paper)"]
