"""CRASH SAFETY of a 3-symbol portfolio spec: SIGKILL at random progress points, restart, and
end where an uninterrupted run ends (paper: the whole state; live on the loopback Kraken: the
same orders, each once, and the same balances)."""

from __future__ import annotations

import json

import pytest

from quantlib.live.state import StateStore
from quantlib.strategy.spec import dump_spec
from tests.live._portfolio_children import (
    SYMBOLS,
    ccxt_portfolio_child,
    paper_portfolio_child,
    portfolio_server_process,
)
from tests.live.conftest import make_spec
from tests.live.test_crash_safety import (
    _assert_resumed_exactly,
    _assert_same_exchange_run,
    _reference_and_crashed,
    _replay_feed,
    _save_markets,
)

N_BARS = 1500


@pytest.fixture(scope="module")
def portfolio_files(tmp_path_factory):
    from quantlib.data import synthetic_ohlcv

    frames = {symbol: synthetic_ohlcv(n_bars=N_BARS, seed=seed).ohlcv
              for seed, symbol in enumerate(SYMBOLS, start=21)}
    return _save_markets(tmp_path_factory.mktemp("portfolio"), frames)


def _spec(**overrides):
    return make_spec("ma_cross", {"fast": 3, "slow": 10}, symbols=list(SYMBOLS),
                     risk={"order_size": 0.3, "sl_stop": 0.03}, **overrides)


@pytest.mark.timeout(900)
def test_sigkill_paper_portfolio_resumes_exactly(portfolio_files, tmp_path):
    files, _ = portfolio_files
    spec_json = dump_spec(_spec())
    (ref,), (got,) = _reference_and_crashed(
        tmp_path, paper_portfolio_child, (spec_json, _replay_feed(files)), 10, N_BARS, seed=17,
        min_points=8)
    store = StateStore(tmp_path / "reference.db")
    filled = {o.symbol for o in store.orders() if o.status == "filled"}
    store.close()
    assert len(ref["fills"]) >= 30 and filled == set(SYMBOLS), "every symbol must trade"
    _assert_resumed_exactly(ref, got)  # meta (cash, every symbol's position and stops) included
    assert json.loads(got["meta"]["symbols"]) == list(SYMBOLS)


@pytest.mark.timeout(900)
def test_sigkill_live_portfolio_never_orders_twice(portfolio_files, tmp_path):
    files, closes = portfolio_files
    spec_json = dump_spec(_spec(exchange="kraken", approval={"status": "approved", "by": "t"},
                                execution={"fees": 0.0, "stop_on_exchange": True}))
    n_bars = 600
    short = {}
    for symbol, path in files.items():  # the first 600 bars of each market
        lines = path.read_text().splitlines()
        short[symbol] = tmp_path / path.name
        short[symbol].write_text("\n".join(lines[:n_bars + 1]) + "\n")
    reference, crashed = _reference_and_crashed(
        tmp_path, ccxt_portfolio_child, (spec_json, _replay_feed(short)), 10, n_bars, seed=19,
        min_points=6, exchange=(portfolio_server_process, closes))
    ref_orders = _assert_same_exchange_run(reference, crashed)
    assert {o[1] for o in ref_orders} == set(SYMBOLS), "every market must trade"
    assert len(ref_orders) >= 12
