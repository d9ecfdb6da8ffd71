"""The perp backtest kernel against a plain-Python loop written from the rule's text.

The reference below reads only the docstrings of ``quantlib/live/brokers/perp_rule_nb.py`` and
``quantlib/backtest/perp_nb.py``; it shares no code with them. It tests liquidation by the
isolated-equity inequality (``margin + qty * (mark - entry) <= mmr * |qty| * mark``) instead
of through a liquidation price, assigns funding events to bars by a linear scan, and keeps the
account in a dict. Random data is built to liquidate (high leverage, gaps, large funding).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest.perp import PerpConfig, run_perp_backtest
from quantlib.core.registry import StrategyKind


def _liquidation_outcome(acct, mmr, liq_fee):
    """Close at the price where isolated equity equals maintenance margin."""
    qty, entry, margin = acct["qty"], acct["entry"], acct["margin"]
    units = abs(qty)
    # margin + qty * (p - entry) = mmr * units * p, solved for p
    price = (margin - qty * entry) / (mmr * units - qty)
    left = margin + qty * (price - entry)
    fee = min(liq_fee * units * price, max(left, 0.0))
    acct["cash"] += max(left - fee, 0.0)
    acct.update(qty=0.0, entry=0.0, margin=0.0)
    return price, fee


def _under_water(acct, mark, mmr):
    qty = acct["qty"]
    if qty == 0:
        return False
    if qty > 0 and (acct["margin"] - qty * acct["entry"]) / (mmr * qty - qty) <= 0:
        return False  # a long whose liquidation price is not positive is never liquidated
    return acct["margin"] + qty * (mark - acct["entry"]) <= mmr * abs(qty) * mark


def reference_perp(open_, close, mopen, mhigh, mlow, target, fund_times, fund_rates,
                   bar_times, cfg: PerpConfig):
    n = len(close)
    slip, fee_rate, lev = cfg.slippage_bps / 1e4, cfg.fees, cfg.leverage
    mmr, liq_fee = cfg.maint_margin_rate, cfg.liquidation_fee
    events, k = {}, 0
    for t, r in zip(fund_times, fund_rates, strict=True):  # times are increasing
        while k < n and bar_times[k] < t:
            k += 1
        if k < n:  # paid at the first bar opening at or after it
            events.setdefault(k, []).append(r)
    acct = {"cash": cfg.init_cash, "qty": 0.0, "entry": 0.0, "margin": 0.0}
    equity, held, paid, fills = [], [], [0.0] * n, []

    def liquidate_if(k, low, high):
        worst = low if acct["qty"] > 0 else high
        if _under_water(acct, worst, mmr):
            qty = acct["qty"]
            price, fee = _liquidation_outcome(acct, mmr, liq_fee)
            fills.append((k, "liquidation", qty, price, fee))

    for k in range(n):
        liquidate_if(k, mopen[k], mopen[k])
        for rate in events.get(k, []):
            if acct["qty"] != 0:
                payment = acct["qty"] * mopen[k] * rate
                acct["margin"] -= payment
                paid[k] += payment
                liquidate_if(k, mopen[k], mopen[k])
        want = np.sign(target[k - 1]) if k >= 1 else 0.0
        before = np.sign(target[k - 2]) if k >= 2 else 0.0
        if k >= 1 and want != before:
            qty = acct["qty"]
            if qty != 0 and np.sign(qty) != want:
                price = open_[k] * (1 - slip) if qty > 0 else open_[k] * (1 + slip)
                fee = abs(qty) * price * fee_rate
                acct["cash"] += acct["margin"] + qty * (price - acct["entry"]) - fee
                acct.update(qty=0.0, entry=0.0, margin=0.0)
                fills.append((k, "close", qty, price, fee))
            if want != 0 and acct["qty"] == 0 and acct["cash"] > 0:
                price = open_[k] * (1 + slip) if want > 0 else open_[k] * (1 - slip)
                if cfg.size_type == "percent":
                    notional = cfg.size * acct["cash"] / (1 / lev + fee_rate)
                else:
                    notional = cfg.size / open_[k] * price
                    notional = min(notional, acct["cash"] / (1 / lev + fee_rate))
                units = notional / price
                if units >= 1e-8:
                    fee = notional * fee_rate
                    acct["cash"] -= notional / lev + fee
                    acct.update(qty=want * units, entry=price, margin=notional / lev)
                    fills.append((k, "open", want * units, price, fee))
        if acct["qty"] != 0:
            liquidate_if(k, mlow[k], mhigh[k])
        equity.append(acct["cash"] + acct["margin"] + acct["qty"] * (close[k] - acct["entry"]))
        held.append(acct["qty"])
    return np.array(equity), np.array(held), np.array(paid), fills


def _given_targets(target: np.ndarray) -> StrategyKind:
    return StrategyKind("test_perp_given", params=(), signal=lambda df, p: target)


def _random_market(seed: int, n: int = 600):
    rng = np.random.default_rng(seed)
    ret = rng.standard_t(3, n) * 0.012
    ret[rng.random(n) < 0.02] *= 6  # occasional jumps: gaps through liquidation prices
    close = 100 * np.exp(np.cumsum(ret))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.004, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    ohlcv = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                          "volume": np.ones(n)}, index=index)
    ohlcv.attrs["timeframe"] = "1h"
    basis = 1 + rng.normal(0, 0.002, (n, 3))
    mark = pd.DataFrame({"open": open_ * basis[:, 0], "close": close * basis[:, 1]},
                        index=index)
    mark["high"] = np.maximum(high * basis[:, 2], mark[["open", "close"]].max(axis=1))
    mark["low"] = np.minimum(low * basis[:, 2], mark[["open", "close"]].min(axis=1))
    mark["volume"] = 0.0
    # funding every 8h, some off the bar grid (inside bars), large enough to matter
    stamps = index[0] + pd.to_timedelta(np.arange(0, n, 8) * 3600 + rng.choice([0, 0, 1800],
                                        len(range(0, n, 8))), unit="s")
    funding = pd.DataFrame({"funding_rate": rng.normal(0.0005, 0.004, len(stamps))},
                           index=pd.DatetimeIndex(stamps, name="timestamp"))
    held = np.repeat(rng.choice([-1.0, 0.0, 1.0], n // 10 + 1), 10)[:n]
    flips = rng.random(n) < 0.05
    target = np.where(flips, -held, held)
    return ohlcv, mark, funding, target


def _compare(ohlcv, mark, funding, target, cfg):
    res = run_perp_backtest(_given_targets(target), ohlcv, None, cfg, funding=funding,
                            mark=mark)
    equity, held, paid, fills = reference_perp(
        ohlcv["open"].to_numpy(), ohlcv["close"].to_numpy(), mark["open"].to_numpy(),
        mark["high"].to_numpy(), mark["low"].to_numpy(), target,
        list(funding.index) if funding is not None else [],
        list(funding["funding_rate"]) if funding is not None else [], list(ohlcv.index), cfg)
    np.testing.assert_allclose(res.equity[0].to_numpy(), equity, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res.positions[0].to_numpy(), held, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.extras["funding"][0].to_numpy(), paid, rtol=1e-9,
                               atol=1e-12)
    got = res.fills_of(0)
    assert list(got["kind"]) == [f[1] for f in fills]
    assert list(got["time"]) == [ohlcv.index[f[0]] for f in fills]
    np.testing.assert_allclose(got["size"], [abs(f[2]) for f in fills], rtol=1e-9)
    np.testing.assert_allclose(got["price"], [f[3] for f in fills], rtol=1e-9)
    np.testing.assert_allclose(got["fee"], [f[4] for f in fills], rtol=1e-9, atol=1e-12)
    assert res.metrics.loc[0, "n_liquidations"] == sum(f[1] == "liquidation" for f in fills)
    return res, fills


CONFIGS = [
    PerpConfig(leverage=25, maint_margin_rate=0.005, liquidation_fee=0.0125, fees=0.0005,
               slippage_bps=2, size=0.1),
    PerpConfig(leverage=10, maint_margin_rate=0.01, liquidation_fee=0.004, fees=0.0004,
               size=0.5),
    PerpConfig(leverage=3, size_type="value", size=20_000.0, fees=0.0002, slippage_bps=5),
    PerpConfig(leverage=1, fees=0.001),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cfg", CONFIGS, ids=["25x", "10x-half", "3x-value", "1x"])
def test_kernel_equals_the_reference_loop_on_random_data(seed, cfg):
    ohlcv, mark, funding, target = _random_market(seed)
    _compare(ohlcv, mark, funding, target, cfg)


def test_the_random_cases_exercise_every_path():
    # the comparison above means something only if liquidations (by gap and intrabar), flips
    # and funding of both signs happen in it
    kinds, gap = set(), False
    for seed in (0, 1, 2):
        ohlcv, mark, funding, target = _random_market(seed)
        res, fills = _compare(ohlcv, mark, funding, target, CONFIGS[0])
        kinds |= {f[1] for f in fills}
        for k, kind, qty, price, _ in fills:
            if kind == "liquidation":
                m_open = mark["open"].iloc[k]
                gap |= (m_open <= price) if qty > 0 else (m_open >= price)
        flips = [(a[0], a[1], b[1]) for a, b in zip(fills, fills[1:], strict=False)
                 if a[0] == b[0] and a[1] == "close" and b[1] == "open"
                 and np.sign(a[2]) != np.sign(b[2])]
        assert flips
        assert res.metrics.loc[0, "funding_paid"] > 0 and res.metrics.loc[0, "funding_received"] > 0
    assert kinds == {"open", "close", "liquidation"} and gap


def test_kernel_equals_the_reference_on_real_data(shared_data):
    from quantlib.data.synthetic import synthetic_funding, synthetic_mark

    ohlcv = shared_data("btc_usdt_1h_2022_2023.csv").iloc[:3000]
    funding = synthetic_funding(ohlcv, seed=3)
    mark = synthetic_mark(ohlcv, seed=3)
    close = ohlcv["close"].to_numpy()
    fast = pd.Series(close).rolling(10).mean().to_numpy()
    slow = pd.Series(close).rolling(40).mean().to_numpy()
    target = np.nan_to_num(np.sign(fast - slow))
    res, fills = _compare(ohlcv, mark, funding, target, PerpConfig(leverage=20, slippage_bps=1))
    assert sum(f[1] == "liquidation" for f in fills) >= 1


def test_kernel_equals_the_reference_with_several_fundings_per_bar():
    # daily bars and 8-hourly funding: three payments fall due at each open, each followed by
    # its own liquidation check
    ohlcv, mark, _, target = _random_market(5, n=300)
    days = pd.date_range("2024-01-01", periods=len(ohlcv), freq="1D", tz="UTC", name="timestamp")
    ohlcv.index = mark.index = days
    ohlcv.attrs["timeframe"] = "1d"
    stamps = pd.date_range(days[0], days[-1], freq="8h", name="timestamp")
    rates = np.random.default_rng(6).normal(0.001, 0.01, len(stamps))
    funding = pd.DataFrame({"funding_rate": rates}, index=stamps)
    res, fills = _compare(ohlcv, mark, funding, target,
                          PerpConfig(leverage=15, size=0.2, slippage_bps=2))
    assert (res.extras["funding"][0] != 0).sum() > 50
    assert any(f[1] == "liquidation" for f in fills)
    none = run_perp_backtest(_given_targets(np.zeros(len(ohlcv))), ohlcv, None,
                             PerpConfig(), funding=funding, mark=mark)
    assert none.fills.empty and none.trades.empty and (none.equity[0] == 10_000).all()
