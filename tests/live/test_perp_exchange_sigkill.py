"""CRASH SAFETY of live perp trading: the runner with :class:`PerpCcxtBroker` on the loopback
Binance USD-M venue, SIGKILLed at progress points and restarted, ends with the venue's orders
(each client id once), position and cash of an uninterrupted run.

The venue runs in its own process and moves one bar when a runner first asks for it (``GET
/test/advance``, idempotent), so the market does not move again however often runners die.
"""

from __future__ import annotations

import pytest

from tests.live._perp_children import live_child, perp_spec, venue_process
from tests.live.test_crash_safety import _exchange_report, _kill_loop, _snapshot, _start_exchange

N_BARS = 80
SEED = 5
N_KILLS = 5


def _start_venue():
    """The loopback Binance USD-M venue (``N_BARS`` bars of seed ``SEED``) in its own process:
    (process, its end of the pipe, base URL)."""
    return _start_exchange(venue_process, N_BARS, SEED, ping="/fapi/v1/ping")


_venue_report = _exchange_report  # the venue's report, under the name other tests import


@pytest.mark.timeout(900)
def test_sigkill_live_perp_runner_ends_as_an_uninterrupted_run(tmp_path):
    from quantlib.strategy.spec import dump_spec

    spec_json = dump_spec(perp_spec())
    results = {}
    for label, n_kills in (("reference", 0), ("crashed", N_KILLS)):
        server, parent, url = _start_venue()
        state = tmp_path / f"{label}.db"
        try:
            progress = _kill_loop(live_child, (url, spec_json, N_BARS, SEED, str(state)),
                                  state, n_kills, N_BARS, seed=17)
        finally:
            report = _venue_report(server, parent)
        results[label] = (report, _snapshot(state))
        if n_kills:
            assert len(progress) == n_kills, f"the run finished after {len(progress)} kills"
            assert len({p for p in progress if p is not None}) >= 4  # kills spread over the run
    (ref, ref_state), (got, got_state) = results["reference"], results["crashed"]
    assert ref["errors"] == [] and got["errors"] == []
    assert ref["duplicates"] == {} and got["duplicates"] == {}
    assert len(ref["orders"]) >= 8 and sum(o[4] for o in ref["orders"]) >= 3  # reduce-only
    assert got["orders"] == ref["orders"]  # the same legs reached the venue, each once
    assert got["position"] == ref["position"] and got["cash"] == ref["cash"]
    assert got["funding"] == ref["funding"]
    # every start set leverage and isolated margin (the venue answers -4046 after the first)
    assert set(got["margin_calls"]) == {("/fapi/v1/leverage", "3"),
                                        ("/fapi/v1/marginType", "ISOLATED")}
    assert len(got["margin_calls"]) >= 2 * (N_KILLS + 1)
    assert got_state["orders"] == ref_state["orders"]
    assert got_state["fills"] == ref_state["fills"]
    for key in ("cash", "position", "entry_price", "margin", "funding_net", "last_bar"):
        assert got_state["meta"][key] == ref_state["meta"][key], key
