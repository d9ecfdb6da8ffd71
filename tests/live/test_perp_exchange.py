"""Live perp trading on the loopback Binance USD-M venue (real ``ccxt.binanceusdm``).

The venue (``tests/support/binanceusdm_account.py``) keeps its account by the perp rule written
in plain Python; the live runner with :class:`PerpCcxtBroker` must end where the paper perp
runner and the perp backtest end, set leverage and isolated margin before trading, survive
order faults without ordering twice, and never show its keys.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from quantlib.errors import ExchangeError, SpecError
from quantlib.live.brokers.perp_ccxt import PerpCcxtBroker
from quantlib.live.logs import JsonLogger
from quantlib.live.state import StateStore
from tests.live._perp_children import (
    FEE,
    LIQ_FEE,
    MMR,
    SYMBOL,
    AdvancingFeed,
    make_exchange_for,
    perp_data,
    perp_spec,
    replay_feed,
    run_live,
    run_paper,
    start_venue,
    venue_report,
)
from tests.support.binanceusdm_server import BinanceUsdmServer

N_BARS = 160
SEED = 5


@pytest.fixture(scope="module")
def data():
    return perp_data(N_BARS, SEED)


def _live_run(data, tmp_path, label, *, faults=None, spec=None):
    """One live run on a fresh venue; ``faults`` maps a bar index to ``(path, kind,
    status)`` faults queued when the feed reaches it. Returns (venue report, store)."""
    candles, mark, funding = data
    spec = spec or perp_spec()
    with BinanceUsdmServer(fee_rate=FEE, mmr=MMR, liq_fee=LIQ_FEE) as server:
        server.fault_delay = 0.05  # a lost answer: the connection drops after this
        start_venue(server, candles, mark, funding)

        def advance(index: int) -> None:
            server.advance(index)
            for method, path, kind, status, *delay in (faults or {}).get(index, []):
                server.inject_fault(path, kind, status=status, method=method,
                                    delay=delay[0] if delay else None)

        feed = AdvancingFeed(replay_feed(candles, mark, funding, N_BARS), advance)
        store = run_live(spec, make_exchange_for(server.url), str(tmp_path / f"{label}.db"),
                         feed)
        report = venue_report(server)
        report["unused_faults"] = server.pending_faults()
        report["requests"] = [(r.method, r.path, r.fault) for r in server.requests]
    return report, store


def _quiet_broker(store: StateStore, spec, server: BinanceUsdmServer) -> PerpCcxtBroker:
    """A live perp broker on ``server`` that logs to nowhere and retries after 10 ms."""
    return PerpCcxtBroker(store, spec, make_exchange_for(server.url),
                          logger=JsonLogger(io.StringIO()), backoff=0.01)


@pytest.fixture(scope="module")
def clean_run(data, tmp_path_factory):
    return _live_run(data, tmp_path_factory.mktemp("perp_live"), "clean")


def _rel(a, b, tol):
    return abs(a - b) <= tol * max(abs(a), abs(b), 1e-12)


def _same_fills(live_rows: list, other_rows: list) -> None:
    """Time, side and price bit for bit (the same open); size and fee to 1e-6 relative, the
    live size never above (the venue's lot step truncates it)."""
    assert len(live_rows) == len(other_rows)
    for got, want in zip(live_rows, other_rows, strict=True):
        assert got[:3] == want[:3]
        assert _rel(got[3], want[3], 1e-6) and got[3] <= want[3]
        assert _rel(got[4], want[4], 1e-6)


def test_live_equals_paper_equals_backtest(data, clean_run, tmp_path):
    """Fills (time, side, price exactly; size and fee to the venue's 1e-8 lot step), funding
    and the account: live on the venue = paper perp runner = run_perp_backtest."""
    from quantlib.backtest.perp import run_perp_backtest

    candles, mark, funding = data
    spec = perp_spec()
    report, live = clean_run
    assert report["errors"] == [] and report["duplicates"] == {}
    paper = run_paper(spec, str(tmp_path / "paper.db"),
                      replay_feed(candles, mark, funding, N_BARS))
    # the backtest sees the venue's extra bar: the last decision fills at its open
    result = run_perp_backtest("ma_cross", candles, spec.params, spec.perp_config(),
                               funding=funding, mark=mark)
    bt = result.fills
    bt_rows = [(int(t.value // 1_000_000), int(s), p, z, f)
               for t, s, p, z, f in zip(bt["time"], bt["side"], bt["price"], bt["size"],
                                        bt["fee"], strict=True)]
    live_rows = [row[1:] for row in live.fills()]
    paper_rows = [row[1:] for row in paper.fills()]
    assert len(bt_rows) >= 12
    assert {kind for kind in bt["kind"]} == {"open", "close"}
    assert (bt.loc[bt["kind"] == "open", "side"] < 0).sum() >= 4, "the spec must short"
    assert len(live_rows) == len(bt_rows)
    last_open = int(candles.index[-1].value // 1_000_000)
    _same_fills([r for r in live_rows if r[0] < last_open], paper_rows)
    _same_fills(live_rows, bt_rows)
    # funding: the venue charged the backtest's payments (paid at the mark's opens)
    paid = sum(-float(income) for _, income in report["funding"])
    bt_funding = result.extras["funding"]
    assert len(report["funding"]) >= 8 and abs(paid) > 1.0
    assert _rel(paid, float(np.sum(bt_funding)), 1e-6)
    assert _rel(live.get_float("funding_net", 0.0), paid, 1e-12)
    # the account the runner keeps is the venue's
    qty, entry, margin = report["position"]
    assert live.get_float("position", 0.0) == qty and live.get_float("margin", 0.0) == margin
    assert live.get_float("cash", 0.0) == pytest.approx(report["cash"], rel=1e-12)
    if all(row[0] < last_open for row in live_rows):  # paper holds what the venue holds
        assert _rel(live.get_float("cash", 0.0), paper.get_float("cash", 0.0), 1e-6)
        assert _rel(paper.get_float("position", 0.0), qty, 1e-6)


def test_leverage_and_isolated_margin_set_before_the_first_order(clean_run):
    report, _ = clean_run
    assert report["margin_calls"] == [("/fapi/v1/leverage", "3"),
                                      ("/fapi/v1/marginType", "ISOLATED")]
    paths = [path for _, path, _ in report["requests"]]
    first_order = paths.index("/fapi/v1/order")  # GET look-ups come first; find the POST
    posts = [i for i, (m, p, _) in enumerate(report["requests"])
             if m == "POST" and p == "/fapi/v1/order"]
    assert posts and paths.index("/fapi/v1/marginType") < posts[0]
    assert first_order < posts[0]  # every leg is looked up before it is sent
    # exits are reduce-only: every order that closed a position carried the flag
    orders = report["orders"]
    assert sum(o[4] for o in orders) >= 6 and not all(o[4] for o in orders)


def test_restart_finds_margin_mode_already_set_and_changes_nothing(data, clean_run, tmp_path):
    """A second start on the same venue: -4046 "No need to change margin type." is success;
    reconcile copies the venue's position and places no order."""
    candles, mark, funding = data
    spec = perp_spec()
    with BinanceUsdmServer(fee_rate=FEE, mmr=MMR, liq_fee=LIQ_FEE) as server:
        start_venue(server, candles, mark, funding)
        store = StateStore(tmp_path / "s.db")
        log = JsonLogger(io.StringIO())
        first = PerpCcxtBroker(store, spec, make_exchange_for(server.url), logger=log)
        first.reconcile()
        server.advance(5)
        server.account.market_order("BTCUSDT", "SELL", 0.1, "manual-1", False)
        again = PerpCcxtBroker(store, spec, make_exchange_for(server.url), logger=log)
        again.reconcile()
        answers = [r for r in server.requests if r.path == "/fapi/v1/marginType"]
        assert len(answers) == 2 and server.account.position("BTCUSDT").margin_type == "ISOLATED"
        assert [o["clientOrderId"] for o in server.account.orders] == ["manual-1"]
        pos = server.account.position("BTCUSDT")
        assert store.get_float("position", 0.0) == pos.qty == -0.1
        assert store.get_float("margin", 0.0) == pos.margin
        assert store.get_float("cash", 0.0) == server.account.cash
        assert store.get_float("entry_price", 0.0) == pos.entry == candles["open"].iloc[5]


def test_wrong_secret_is_refused_and_never_shown(data, tmp_path, monkeypatch):
    """ccxt signs against the venue: a wrong secret ends the start with an ExchangeError that
    names the variables, not the keys; with the right keys from the environment, neither key
    reaches the log or the state file."""
    candles, mark, funding = data
    spec = perp_spec()
    with BinanceUsdmServer(fee_rate=FEE, mmr=MMR, liq_fee=LIQ_FEE) as server:
        start_venue(server, candles, mark, funding)
        wrong = server.secret[::-1]
        for key, secret in ((server.api_key, wrong), (server.api_key, server.secret)):
            monkeypatch.setenv("QUANTLIB_BINANCEUSDM_API_KEY", key)
            monkeypatch.setenv("QUANTLIB_BINANCEUSDM_SECRET", secret)
            monkeypatch.setenv("QUANTLIB_BINANCEUSDM_API_URL", server.url)
            logf = io.StringIO()
            store = StateStore(tmp_path / f"{secret[:4]}.db")
            broker = PerpCcxtBroker(store, spec, logger=JsonLogger(logf))
            if secret == wrong:
                with pytest.raises(ExchangeError, match="QUANTLIB_BINANCEUSDM_API_KEY") as err:
                    broker.reconcile()
                assert any(r.path == "/sapi/v1/capital/config/getall" or r.path.startswith(
                    "/fapi") for r in server.requests)
                blobs = [str(err.value), logf.getvalue()]
            else:
                broker.reconcile()
                assert store.get_float("cash", 0.0) == 10_000.0
                store.close()
                blobs = [logf.getvalue(), (tmp_path / f"{secret[:4]}.db").read_bytes()
                         .decode("latin-1")]
            for blob in blobs:
                assert server.secret not in blob and wrong not in blob
                assert server.api_key not in blob


def test_order_faults_never_order_twice(data, clean_run, tmp_path):
    """HTTP 500, a garbled body and a timeout on the order (not acted on), a client timeout
    after the venue accepted it and dropped answers (acted on), faults on the look-up, the
    position and the income history: the venue ends with the clean run's orders, each once,
    and the same account."""
    order = "/fapi/v1/order"
    faults = {12: [("POST", order, "lost", None)], 25: [("POST", order, "http", 500)],
              40: [("POST", order, "malformed", None)], 55: [("POST", order, "lost", None)],
              70: [("GET", order, "http", 503)], 80: [("GET", order, "malformed", None)],
              90: [("POST", order, "timeout", None)],
              # accepted, then no answer within ccxt's 2 s timeout: RequestTimeout
              100: [("POST", order, "lost", None, 2.5)],
              110: [("GET", "/fapi/v3/positionRisk", "http", 502)],
              120: [("GET", "/fapi/v1/income", "malformed", None)],
              # garbled reads ccxt parses into "no position", "no cash", "no trades", ...
              130: [("GET", "/fapi/v3/positionRisk", "malformed", None),
                    ("GET", "/fapi/v3/account", "malformed", None),
                    ("GET", "/fapi/v1/ticker/24hr", "malformed", None),
                    ("GET", "/fapi/v1/userTrades", "malformed", None),
                    ("GET", "/fapi/v1/allOrders", "malformed", None)]}
    report, store = _live_run(data, tmp_path, "faulty", faults=faults)
    clean, clean_store = clean_run
    assert report["unused_faults"] == 0, "every fault must hit"
    hit = {(m, p, f) for m, p, f in report["requests"] if f}
    assert {("POST", order, kind) for kind in ("lost", "http", "malformed", "timeout")} <= hit
    assert ("GET", order, "malformed") in hit
    assert sum(f == "lost" for _, _, f in report["requests"]) == 3
    assert report["errors"] == [] and report["duplicates"] == {} and clean["duplicates"] == {}
    assert report["orders"] == clean["orders"]  # the same legs, by client id, each once
    assert report["cash"] == pytest.approx(clean["cash"], rel=1e-12)
    assert report["position"] == pytest.approx(clean["position"], rel=1e-12)
    assert store.fills() == clean_store.fills()
    assert [(o.client_id, o.status) for o in store.orders()] == [
        (o.client_id, o.status) for o in clean_store.orders()]


def test_venue_liquidation_is_recorded(tmp_path):
    """A 20x long through a mark crash: the venue liquidates at the rule's price; the broker
    records the liquidation and copies the flat account (checked by hand below)."""
    import pandas as pd

    from quantlib.live.replay_feeds import PerpReplayFeed

    times = pd.date_range("2024-01-01", periods=6, freq="1h", tz="UTC", name="timestamp")
    opens = [100.0, 100.0, 100.0, 100.0, 100.0, 100.0]
    candles = pd.DataFrame({"open": opens, "high": 101.0, "low": 99.0, "close": opens,
                            "volume": 1.0}, index=times)
    candles.attrs.update(symbol=SYMBOL, timeframe="1h")
    mark = candles.copy()
    mark.loc[times[3], "low"] = 90.0  # the mark dips through a 20x long's liquidation price
    funding = pd.DataFrame({"funding_rate": [0.0]}, index=times[:1])
    with BinanceUsdmServer(fee_rate=FEE, mmr=MMR, liq_fee=LIQ_FEE) as server:
        start_venue(server, candles, mark, funding, cash=1000.0)
        spec = perp_spec(perp={"leverage": 20, "maint_margin_rate": MMR,
                               "liquidation_fee": LIQ_FEE})
        store = StateStore(tmp_path / "liq.db")
        broker = _quiet_broker(store, spec, server)
        broker.reconcile()
        server.advance(1)
        server.account.market_order("BTCUSDT", "BUY", 1.0, "manual-long", False)
        # by the rule: margin 100 / 20 = 5, fee 0.04; liquidation (100 - 5) / (1 - mmr)
        liq = (100.0 - 5.0) / (1 - MMR)
        feed = AdvancingFeed(PerpReplayFeed(candles.iloc[:5], mark.iloc[:5]), server.advance)
        for bar in feed:
            with store.transaction():
                broker.on_bar({SYMBOL: bar})
        rows = [o for o in store.orders() if o.order_type == "liquidation"]
        assert len(rows) == 1 and rows[0].client_id.startswith("autoclose-")
        assert rows[0].price == pytest.approx(liq, rel=1e-12) and rows[0].side == -1
        fill = [f for f in store.fills() if f[0] == rows[0].client_id]
        # the fee is capped at the isolated equity left, mmr * |qty| * liq (liq_fee > mmr)
        assert fill[0][5] == pytest.approx(MMR * liq, rel=1e-9)
        assert store.get_float("position", 1.0) == 0.0
        assert store.get_float("cash", 0.0) == pytest.approx(1000.0 - 5.0 - 0.04, rel=1e-12)
        assert json.loads(json.dumps(broker.status()))["margin"] == 0.0


def test_restart_after_the_close_leg_finds_it_and_opens_once(data, tmp_path):
    """The process died after its close leg reached the venue (intent ``sent``, nothing
    recorded): on restart the close leg is found by its client id, recorded, and only the open
    leg is sent, sized from the cash after the close."""
    from quantlib.live.brokers.base import client_order_id
    from quantlib.live.brokers.perp_ccxt import leg_client_id
    from quantlib.live.state import OrderRow

    candles, mark, funding = data
    spec = perp_spec()
    with BinanceUsdmServer(fee_rate=FEE, mmr=MMR, liq_fee=LIQ_FEE) as server:
        start_venue(server, candles, mark, funding)
        store = StateStore(tmp_path / "c.db")
        broker = _quiet_broker(store, spec, server)
        broker.reconcile()
        server.advance(3)
        server.account.market_order("BTCUSDT", "BUY", 0.1, "earlier-long", False)
        bar_time, intent = int(candles.index[3].value // 1_000_000), "signal|1.0|-1.0"
        row = OrderRow(client_id=client_order_id(spec.name, SYMBOL, bar_time, intent),
                       bar_time=bar_time, symbol=SYMBOL, intent=intent, side=-1, amount=0.0,
                       target=-1.0, order_type="market", price=None, status="sent",
                       exchange_id=None, detail="", attempts=1)
        with store.transaction():
            store.add_order(row)
        close_id = leg_client_id(spec.name, row, "close")
        server.account.market_order("BTCUSDT", "SELL", 0.1, close_id, True)  # then SIGKILL
        cash_after_close = server.account.cash
        _quiet_broker(store, spec, server).resubmit_pending()
        ids = [o["clientOrderId"] for o in server.account.orders]
        assert ids == ["earlier-long", close_id, leg_client_id(spec.name, row, "open")]
        assert server.account.duplicate_client_ids() == {}
        price = float(candles["open"].iloc[3])
        units = 0.5 * cash_after_close / (1 / 3 + FEE) / price  # the rule's percent entry
        assert server.account.position("BTCUSDT").qty == pytest.approx(-units, rel=1e-7)
        fills = store.fills()
        assert [(f[2], f[4]) for f in fills] == [(-1, 0.1), (-1, pytest.approx(units, rel=1e-7))]
        assert store.get_order(row.client_id).status == "filled"


def test_spec_refusals_name_the_field(tmp_path):
    store = StateStore(tmp_path / "r.db")
    with pytest.raises(SpecError, match=r"\$\.perp\.leverage"):
        PerpCcxtBroker(store, perp_spec(perp={"leverage": 2.5, "maint_margin_rate": MMR,
                                              "liquidation_fee": LIQ_FEE}), exchange=object())
    with pytest.raises(SpecError, match=r"\$\.exchange"):
        PerpCcxtBroker(store, perp_spec(exchange="kraken"), exchange=object())
