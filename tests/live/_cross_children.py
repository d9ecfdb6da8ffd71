"""Child-process targets of the crash-safety tests of a kind reading another market
(test_crash_cross.py): a stable import name, as the other crash children."""

from __future__ import annotations

import io
import os

from quantlib.live.brokers import PaperBroker
from quantlib.live.feed_factory import make_feed
from quantlib.live.informative_feeds import spec_input_symbols
from quantlib.live.logs import JsonLogger
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore


def paper_cross_child(spec_json: str, feed: str, state: str) -> None:
    from quantlib.strategy.spec import load_spec

    spec = load_spec(spec_json)
    store = StateStore(state)
    LiveRunner(spec, PaperBroker(store, spec), store,
               make_feed(feed, inputs=spec_input_symbols(spec)),
               logger=JsonLogger(io.StringIO())).run()
    os._exit(0)


def ccxt_cross_child(url: str, spec_json: str, feed: str, state: str) -> None:
    from quantlib.strategy.spec import load_spec
    from tests.live._crash_children import _run_live_at

    spec = load_spec(spec_json)
    _run_live_at(url, spec_json, state, make_feed(feed, inputs=spec_input_symbols(spec)))
