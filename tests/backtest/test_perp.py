"""Perp backtest: hand-computed cases, spot equivalence at leverage 1, no lookahead, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import BacktestConfig, run_backtest
from quantlib.backtest.perp import PerpConfig, run_perp_backtest
from quantlib.core.registry import StrategyKind
from quantlib.errors import DataError, ParameterError


def _given(target) -> StrategyKind:
    target = np.asarray(target, dtype=float)
    return StrategyKind("test_perp_given", params=(), signal=lambda df, p: target)


def _bars(opens, closes=None, highs=None, lows=None) -> pd.DataFrame:
    opens = np.asarray(opens, dtype=float)
    closes = opens if closes is None else np.asarray(closes, dtype=float)
    highs = np.maximum(opens, closes) if highs is None else np.asarray(highs, dtype=float)
    lows = np.minimum(opens, closes) if lows is None else np.asarray(lows, dtype=float)
    index = pd.date_range("2024-01-01", periods=len(opens), freq="1h", tz="UTC",
                          name="timestamp")
    df = pd.DataFrame({"open": opens, "high": highs, "low": lows, "close": closes,
                       "volume": 1.0}, index=index)
    df.attrs["timeframe"] = "1h"
    return df


def _funding(times: list[str], rates: list[float]) -> pd.DataFrame:
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True), name="timestamp")
    return pd.DataFrame({"funding_rate": rates}, index=index)


# --- funding sign ------------------------------------------------------------------------------
@pytest.mark.parametrize("side", [1.0, -1.0])
def test_funding_is_paid_by_longs_and_received_by_shorts_on_the_mark(side):
    df = _bars([100.0] * 6)
    mark = df.copy()
    mark.loc[mark.index[3], "open"] = 101.0  # funding is valued at the mark, not the last price
    mark.loc[mark.index[3], "high"] = 101.0
    # 01:00 is the open at which the position is filled: the payment due then is on the flat
    # account held at that instant; 03:00 is charged on the position
    funding = _funding(["2024-01-01 01:00", "2024-01-01 03:00"], [0.05, 0.001])
    res = run_perp_backtest(_given([side] * 6), df, None,
                            PerpConfig(leverage=2, fees=0.0, maint_margin_rate=0.01),
                            funding=funding, mark=mark)
    qty = side * 10_000 / 0.5 / 100.0  # all cash as margin at 2x: 200 units
    payment = qty * 101.0 * 0.001  # 20.2, positive for the long
    np.testing.assert_allclose(res.equity[0].to_numpy(),
                               [10_000, 10_000, 10_000] + [10_000 - payment] * 3, rtol=1e-12)
    m = res.metrics.loc[0]
    assert m["funding_paid"] == pytest.approx(max(payment, 0))
    assert m["funding_received"] == pytest.approx(max(-payment, 0))
    assert res.trades.loc[0, "funding"] == pytest.approx(payment)


# --- liquidation by a gap ----------------------------------------------------------------------
@pytest.mark.parametrize("gap_open", [80.0, 50.0])
def test_a_gap_through_the_liquidation_price_closes_there_with_the_loss_capped(gap_open):
    df = _bars([100.0, 100.0, 100.0, gap_open, gap_open], lows=[100, 100, 99, gap_open,
                                                                gap_open])
    cfg = PerpConfig(leverage=10, fees=0.0, maint_margin_rate=0.005, liquidation_fee=0.002)
    res = run_perp_backtest(_given([1.0] * 5), df, None, cfg)
    units = 10_000 / 0.1 / 100.0  # 1000 units, margin 10 000
    liq = (100.0 - 10_000 / units) / (1 - 0.005)  # 90.4523 (the long's liquidation price)
    fills = res.fills_of(0)
    assert list(fills["kind"]) == ["open", "liquidation"]
    assert fills.loc[1, "time"] == df.index[3] and fills.loc[1, "price"] == pytest.approx(liq)
    left = (0.005 - 0.002) * units * liq  # maintenance margin minus the liquidation fee
    assert fills.loc[1, "fee"] == pytest.approx(0.002 * units * liq)
    # the same outcome whatever the depth of the gap: the isolated margin caps the loss
    np.testing.assert_allclose(res.equity[0].to_numpy()[3:], [left, left], rtol=1e-12)
    assert res.metrics.loc[0, "n_liquidations"] == 1
    assert res.trades.loc[0, "end"] == "liquidation"
    # the target stays long: a liquidated position is not re-opened until the target changes
    assert (res.positions[0].to_numpy()[3:] == 0).all()


def test_a_gap_is_a_liquidation_before_the_funding_and_the_order_at_that_open():
    # the target goes flat at bar 2's close and funding falls due at bar 3's open, but the mark
    # opens bar 3 beyond the liquidation price: the exchange liquidated the position first, so
    # no close at the open (which would lose more than the isolated margin) and no funding
    df = _bars([100.0, 100.0, 100.0, 80.0, 80.0], lows=[100, 100, 99, 80, 80])
    funding = _funding(["2024-01-01 03:00"], [0.01])
    cfg = PerpConfig(leverage=10, fees=0.001, maint_margin_rate=0.005, liquidation_fee=0.002)
    res = run_perp_backtest(_given([1.0, 1.0, 0.0, 0.0, 0.0]), df, None, cfg, funding=funding)
    units = 10_000 / (0.1 + 0.001) / 100.0
    margin = units * 100.0 / 10
    liq = (100.0 - margin / units) / (1 - 0.005)
    fills = res.fills_of(0)
    assert list(fills["kind"]) == ["open", "liquidation"]
    assert fills.loc[1, "price"] == pytest.approx(liq)
    assert res.metrics.loc[0, "funding_net"] == 0.0
    assert res.equity[0].iloc[-1] == pytest.approx((0.005 - 0.002) * units * liq, rel=1e-12)


def test_a_liquidation_fee_above_the_maintenance_margin_takes_the_whole_margin():
    df = _bars([100.0, 100.0, 100.0, 80.0], lows=[100, 100, 99, 80])
    res = run_perp_backtest(_given([1.0] * 4), df, None,
                            PerpConfig(leverage=10, fees=0.0, liquidation_fee=0.0125))
    assert res.equity[0].iloc[-1] == 0.0


def test_intrabar_mark_liquidation_of_a_short():
    df = _bars([100.0] * 5, highs=[100, 100, 100, 100, 100])
    mark = df.copy()
    mark.loc[mark.index[2], "high"] = 125.0  # only the mark spikes: liquidated anyway
    cfg = PerpConfig(leverage=5, fees=0.0, maint_margin_rate=0.01, liquidation_fee=0.0)
    res = run_perp_backtest(_given([-1.0] * 5), df, None, cfg, mark=mark)
    units = 10_000 / 0.2 / 100.0
    liq = (100.0 + 10_000 / units) / 1.01
    fills = res.fills_of(0)
    assert list(fills["kind"]) == ["open", "liquidation"] and fills.loc[1, "time"] == df.index[2]
    assert fills.loc[1, "price"] == pytest.approx(liq)
    assert res.equity[0].iloc[-1] == pytest.approx(0.01 * units * liq)


# --- a flip long -> short ------------------------------------------------------------------------
def test_a_flip_closes_then_opens_in_one_bar_with_both_fees():
    df = _bars([100.0, 100.0, 105.0, 110.0, 108.0])
    cfg = PerpConfig(leverage=2, fees=0.001, size=0.5)
    res = run_perp_backtest(_given([1.0, 1.0, -1.0, -1.0, -1.0]), df, None, cfg)
    notional = 0.5 * 10_000 / (0.5 + 0.001)
    units = notional / 100.0
    cash = 10_000 - 0.5 * 10_000
    close_fee = units * 110.0 * 0.001
    cash = cash + notional / 2 + units * 10.0 - close_fee  # margin back plus the gain
    short_notional = 0.5 * cash / (0.5 + 0.001)
    fills = res.fills_of(0)
    assert list(fills["kind"]) == ["open", "close", "open"]
    assert list(fills["side"]) == [1, -1, -1]
    assert (fills["time"].iloc[1:] == df.index[3]).all()
    np.testing.assert_allclose(fills["fee"], [notional * 0.001, close_fee,
                                              short_notional * 0.001], rtol=1e-12)
    np.testing.assert_allclose(fills["size"], [units, units, short_notional / 110.0],
                               rtol=1e-12)
    short_units = short_notional / 110.0
    expected = (cash - short_notional / 2 - short_notional * 0.001 + short_notional / 2
                + short_units * (110.0 - 108.0))
    assert res.equity[0].iloc[-1] == pytest.approx(expected, rel=1e-12)
    assert list(res.trades["direction"]) == [1, -1]


# --- leverage 1, no funding = the spot backtest ---------------------------------------------------
@pytest.mark.parametrize(("direction", "size_type", "size"),
                         [("longonly", "percent", 1.0), ("shortonly", "percent", 0.7),
                          ("both", "value", 3_000.0)])
def test_leverage_one_without_funding_equals_the_spot_backtest(ohlcv, direction, size_type,
                                                              size):
    frame = ohlcv.iloc[:600]
    spot = run_backtest("ma_cross", frame, {"fast": 5, "slow": 20},
                        BacktestConfig(fees=0.001, slippage_bps=3, direction=direction,
                                       size=size, size_type=size_type))
    target = spot.extras["targets"][0].to_numpy()
    if direction == "longonly":
        target = np.maximum(target, 0.0)
    elif direction == "shortonly":
        target = np.minimum(target, 0.0)
    perp = run_perp_backtest(_given(target), frame, None,
                             PerpConfig(leverage=1, fees=0.001, slippage_bps=3, size=size,
                                        size_type=size_type))
    assert perp.metrics.loc[0, "n_liquidations"] == 0 and len(perp.fills) > 10
    np.testing.assert_allclose(perp.equity[0].to_numpy(), spot.equity[0].to_numpy(),
                               rtol=1e-9)
    assert perp.metrics.loc[0, "fees_paid"] == pytest.approx(spot.metrics.loc[0, "fees_paid"],
                                                             rel=1e-9)


# --- no lookahead ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "params"), [("ma_cross", {"fast": 5, "slow": 20}),
                                              ("funding_carry", {"threshold": 0.00005,
                                                                 "allow_long": True})])
def test_changing_the_future_changes_nothing_before_it(ohlcv, kind, params):
    from quantlib.data.synthetic import synthetic_funding, synthetic_mark

    frame = ohlcv.iloc[:400]
    funding, mark = synthetic_funding(frame, seed=4), synthetic_mark(frame, seed=4)
    cfg = PerpConfig(leverage=3, size=0.3)  # a liquidation must not end the account
    full = run_perp_backtest(kind, frame, params, cfg, funding=funding, mark=mark)
    rng = np.random.default_rng(0)
    for t in (150, 231, 300):
        decided = frame.index[t] + pd.Timedelta("1h")  # bar t's close
        future = frame.copy()
        future.iloc[t + 1:] *= rng.uniform(0.8, 1.2, (len(frame) - t - 1, 1))
        fut_funding = funding.copy()
        later = fut_funding.index > decided
        fut_funding.loc[later, "funding_rate"] = rng.normal(0, 0.001, later.sum())
        fut_mark = mark.copy()
        fut_mark.iloc[t + 1:] *= 0.5
        cut = run_perp_backtest(kind, future, params, cfg, funding=fut_funding, mark=fut_mark)
        np.testing.assert_array_equal(cut.extras["targets"][0].to_numpy()[:t + 1],
                                      full.extras["targets"][0].to_numpy()[:t + 1])
        np.testing.assert_array_equal(cut.equity[0].to_numpy()[:t + 1],
                                      full.equity[0].to_numpy()[:t + 1])
        truncated = run_perp_backtest(kind, frame.iloc[:t + 1], params, cfg,
                                      funding=funding[funding.index <= decided],
                                      mark=mark.iloc[:t + 1])
        np.testing.assert_array_equal(truncated.extras["targets"][0].to_numpy(),
                                      full.extras["targets"][0].to_numpy()[:t + 1])
    assert (full.extras["targets"][0] != 0).sum() > 50 and full.metrics.loc[0, "n_trades"] > 2


def test_funding_carry_follows_the_last_rate_known_at_each_close():
    df = _bars([100.0] * 24)
    funding = _funding(["2024-01-01 00:00", "2024-01-01 08:00", "2024-01-01 16:00"],
                       [0.0002, -0.0003, 0.00005])
    res = run_perp_backtest("funding_carry", df, {"threshold": 0.0001, "allow_long": True},
                            funding=funding)
    target = res.extras["targets"][0].to_numpy()
    # bars 0..6 close by 07:00 and know 0.0002 (short); bar 7 closes at 08:00 and knows -0.0003
    # (long); bar 15 closes at 16:00 and knows 0.00005 (flat)
    expected = np.r_[[-1.0] * 7, [1.0] * 8, [0.0] * 9]
    np.testing.assert_array_equal(target, expected)


# --- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fields", "match"), [
    ({"margin_mode": "cross"}, "margin_mode: only 'isolated'"),
    ({"leverage": 0.5}, "PerpConfig.leverage"),
    ({"leverage": 50, "maint_margin_rate": 0.02}, "must be < 1"),
    ({"size": 1.5}, "PerpConfig.size"),
    ({"fees": float("nan")}, "PerpConfig.fees"),
    ({"lev": 2}, "unknown field"),
])
def test_bad_config_is_named(fields, match):
    with pytest.raises(ParameterError, match=match):
        PerpConfig.coerce(fields)


def test_bad_funding_and_mark_are_named():
    df = _bars([100.0] * 5)
    with pytest.raises(DataError, match="'funding_rate' column"):
        run_perp_backtest("ma_cross", df, {"fast": 1, "slow": 2},
                          funding=pd.DataFrame({"rate": [0.1]}))
    bad = _funding(["2024-01-01 00:00", "2024-01-01 08:00"], [0.001, np.nan])
    with pytest.raises(DataError, match=r"row 1 .*'funding_rate': not a finite number"):
        run_perp_backtest("ma_cross", df, {"fast": 1, "slow": 2}, funding=bad)
    backwards = _funding(["2024-01-01 08:00", "2024-01-01 00:00"], [0.001, 0.002])
    with pytest.raises(DataError, match="strictly increasing; row 1"):
        run_perp_backtest("ma_cross", df, {"fast": 1, "slow": 2}, funding=backwards)
    with pytest.raises(DataError, match="mark: expected mark-price candles"):
        run_perp_backtest("ma_cross", df, {"fast": 1, "slow": 2}, mark=df.iloc[:3])
    with pytest.raises(ParameterError, match="'funding_carry': needs the column 'funding_rate'"):
        run_perp_backtest("funding_carry", df)


def test_a_perp_result_is_never_exported_as_a_spot_spec(ohlcv):
    # research = live: a perp backtest exports as a perp spec (tests/strategy/test_perp_spec.py),
    # never as a spot strategy; without its mark and funding (data=PerpData) it is refused
    from quantlib.errors import SpecError
    from quantlib.strategy.spec import export

    frame = ohlcv.iloc[:300]
    res = run_perp_backtest("ma_cross", frame, {"fast": 5, "slow": 20}, PerpConfig(leverage=3))
    with pytest.raises(SpecError, match="a perp result exports with data=PerpData"):
        export("perp_draft", result=res, data=frame)
