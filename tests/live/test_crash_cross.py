"""CRASH SAFETY of a kind reading another market (ETH traded while BTC's regime allows, fed
``replay:ETH/USD=FILE,BTC/USD=FILE``): SIGKILL at random progress points, restart, and end
where an uninterrupted run ends. Paper: the whole state (meta, orders, fills, equity). Live on
the loopback Kraken: the same orders, by client id, each once, and the same balances.

A restarted runner refills both markets' windows from the feed before it decides again, so the
first bar it decides after a kill sees the same BTC history as an uninterrupted run."""

from __future__ import annotations

import pytest

from quantlib.strategy.spec import dump_spec
from tests.live._cross_children import ccxt_cross_child, paper_cross_child
from tests.live._portfolio_children import portfolio_server_process
from tests.live.conftest import make_spec
from tests.live.test_crash_safety import (
    _assert_resumed_exactly,
    _assert_same_exchange_run,
    _reference_and_crashed,
    _replay_feed,
    _save_markets,
)

N_BARS = 900
PARAMS = {"inner_kind": "ma_cross", "inner_params": {"fast": 5, "slow": 20},
          "regime_symbol": "BTC/USD", "vol_window": 12, "filter_window": 48,
          "allowed_regimes": [0], "min_proba": 0.5}


@pytest.fixture(scope="module")
def cross_files(tmp_path_factory):
    from quantlib.data import load_ohlcv
    from tests.conftest import shared_data_path

    frames = {symbol: load_ohlcv(shared_data_path(name)).iloc[:N_BARS] for symbol, name in
              (("ETH/USD", "eth_usdt_1h_2022_2023.csv"), ("BTC/USD", "btc_usdt_1h_2022_2023.csv"))}
    return _save_markets(tmp_path_factory.mktemp("cross_crash"), frames)


def _spec(**overrides):
    return make_spec("regime_filter_cross", PARAMS, symbols=["ETH/USD"], **overrides)


@pytest.mark.timeout(900)
def test_sigkill_paper_cross_asset_resumes_exactly(cross_files, tmp_path):
    files, _ = cross_files
    spec_json = dump_spec(_spec())
    (ref,), (got,) = _reference_and_crashed(
        tmp_path, paper_cross_child, (spec_json, _replay_feed(files)), 6, N_BARS, seed=23,
        min_points=4)
    assert len(ref["fills"]) >= 10, "the case must trade to prove anything"
    _assert_resumed_exactly(ref, got)  # meta (cash, position, target) included


@pytest.mark.timeout(900)
def test_sigkill_live_cross_asset_never_orders_twice(cross_files, tmp_path):
    files, closes = cross_files
    spec_json = dump_spec(_spec(exchange="kraken", approval={"status": "approved", "by": "t"},
                                execution={"fees": 0.0}))
    reference, crashed = _reference_and_crashed(
        tmp_path, ccxt_cross_child, (spec_json, _replay_feed(files)), 5, N_BARS, seed=29,
        min_points=3, exchange=(portfolio_server_process, closes))
    ref_orders = _assert_same_exchange_run(reference, crashed)
    assert len(ref_orders) >= 8 and {o[1] for o in ref_orders} == {"ETH/USD"}
