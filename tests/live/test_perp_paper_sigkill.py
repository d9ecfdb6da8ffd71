"""CRASH SAFETY of the paper perp account: SIGKILL the runner at random moments, restart, and
end exactly where an uninterrupted run ends (account, orders, fills, equity curve).

The kill loop is the spot test's (:func:`tests.live.test_crash_safety._kill_loop`): forked
children killed mid-run, inside a bar's transaction, between commit and send, or between bars.
The perp account adds margin, entry price, pending funding and liquidations to what must
survive; the case trades both ways at 20x so kills land around flips, funding payments and
liquidations.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from quantlib.live.brokers.perp_paper import PaperPerpBroker
from quantlib.live.feed_factory import make_feed
from quantlib.live.logs import JsonLogger
from quantlib.live.replay_feeds import save_perp_replay
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from tests.live._crash_children import run_paper_at
from tests.live.test_crash_safety import _kill_loop, _snapshot
from tests.live.test_perp_paper import perp_spec

N_KILLS = 8
BARS = 2000


def _perp_child(spec_json: str, feed: str, state: str) -> None:
    run_paper_at(PaperPerpBroker, spec_json, feed, state)


@pytest.mark.timeout(900)
def test_sigkill_paper_perp_runner_resumes_exactly(tmp_path: Path):
    from quantlib.data.perp import load_perp
    from quantlib.strategy.spec import dump_spec

    perp = load_perp(f"sample:bars={BARS},seed=4")
    feed = save_perp_replay(perp, tmp_path / "replay")
    spec = perp_spec(leverage=20.0)
    spec_json = dump_spec(spec)
    reference = tmp_path / "reference.db"
    store = StateStore(reference)
    LiveRunner(spec, PaperPerpBroker(store, spec), store, make_feed(feed),
               logger=JsonLogger(io.StringIO())).run()
    store.close()
    crashed = tmp_path / "crashed.db"
    progress = _kill_loop(_perp_child, (spec_json, feed, str(crashed)), crashed, N_KILLS, BARS,
                          seed=11)
    assert len(progress) == N_KILLS, f"the run finished after {len(progress)} kills"
    assert len({p for p in progress if p is not None}) >= N_KILLS - 2
    ref, got = _snapshot(reference), _snapshot(crashed)
    liquidations = [o for o in ref["orders"] if o[2].startswith("liquidation")]
    assert len(ref["fills"]) >= 20 and liquidations
    assert float(ref["meta"]["funding_net"]) != 0.0
    # meta (cash, qty, entry, margin, liquidation price, funding paid and pending, last bar),
    # orders, fills and the equity curve
    assert got == ref
