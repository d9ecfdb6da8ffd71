"""A signal exit due at the open comes before the bar's stops, in every engine.

The rule (``quantlib/core/stop_rule.py``, "A signal exit due at the open comes first"):
on a bar whose open fills an order that closes or reverses the position, the stops of that
position see only the open (high = low = open, for the check and the trailing base); a level
the bar opens beyond still exits at the open, as a stop, without slippage. Every other bar is
checked against its whole range, before its orders.

The independent computation is :func:`reference`, a plain-Python loop written from that text
(it calls none of the engines' code). Hand-built bars check it and the engines against fills
worked out by hand; random and real bars check that ``run_backtest`` (vectorbt), the rule
engine, the fused sweep and the paper broker all give the reference's fills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest.engine import run_backtest
from quantlib.backtest.rule_engine import run_signal_rules
from quantlib.core.config import BacktestConfig
from quantlib.core.registry import StrategyKind, get_kind, register

REL = 1e-9


def _volume_target(bars, params):
    # the target is written into the volume column (1 -> short, 2 -> flat, 3 -> long), so a
    # hand-built frame carries its own decisions into every engine, the paper runner included
    return bars.column("volume") - 2.0


VOLUME_TARGET = register(StrategyKind("test_volume_target", params=(), signal=_volume_target,
                                      inputs="bars"), replace=True)


def frame_of(bars: list[tuple[float, float, float, float]], target: list[float]) -> pd.DataFrame:
    """Canonical hourly frame from ``(open, high, low, close)`` rows and the target per bar."""
    index = pd.date_range("2024-01-01", periods=len(bars), freq="1h", tz="UTC",
                          name="timestamp")
    df = pd.DataFrame(bars, columns=["open", "high", "low", "close"], index=index,
                      dtype=np.float64)
    df["volume"] = np.asarray(target, dtype=np.float64) + 2.0
    df.attrs.update(source="synthetic", symbol="BTC/USD", timeframe="1h", exchange="hand",
                    source_string="hand")
    return df


# -- the reference: the rule's text as a loop --------------------------------------------------
@dataclass
class Setup:
    """The settings the reference and the engines share (next-open execution only)."""

    sl: float | None = None
    tp: float | None = None
    trail: float | None = None
    direction: str = "longonly"
    size_type: str = "percent"
    size: float = 1.0
    fees: float = 0.0
    slippage_bps: float = 0.0
    init_cash: float = 10_000.0

    def config(self) -> BacktestConfig:
        return BacktestConfig(sl_stop=self.sl, tp_stop=self.tp, trail_stop=self.trail,
                              direction=self.direction, size_type=self.size_type,
                              size=self.size, fees=self.fees, slippage_bps=self.slippage_bps,
                              init_cash=self.init_cash)


def _clip(value: float, direction: str) -> int:
    side = 1 if value > 0 else (-1 if value < 0 else 0)
    if direction == "longonly":
        return max(side, 0)
    if direction == "shortonly":
        return min(side, 0)
    return side


def reference(frame: pd.DataFrame, target: np.ndarray, s: Setup, *, open_first: bool = True):
    """Fills ``(bar, side, price, units, why)`` and final equity of one symbol.

    Written from the rule text: a stop is armed by the fill that opens or reverses, its own bar
    unchecked; each later bar is checked before its order (stop-loss first; a level the bar
    opens beyond fills at the open, one inside low..high at the level; the trailing base takes
    the bar's best price after the check); a stop exit is the whole position, no slippage, and
    drops the bar's order. ``open_first``: on a bar whose order closes or reverses the
    position, only the open is checked (False: the old rule, the whole bar).
    """
    o, h, lo, c = (frame[k].to_numpy(float) for k in ("open", "high", "low", "close"))
    stop_loss = s.trail if s.trail is not None else s.sl
    slip = s.slippage_bps / 1e4
    cash, units = s.init_cash, 0.0  # units signed
    sl_base = tp_base = math.nan
    fills = []

    def trade(t, side, price, amount, why):
        nonlocal cash, units
        fee = amount * price * s.fees
        if side > 0:
            assert amount * price + fee <= cash * (1 + 1e-12), "the data must not cut a buy"
            cash -= amount * price + fee
        else:
            cash += amount * price - fee
        before = units
        units = before + side * amount
        if abs(units) <= 1e-9 * max(abs(before), amount):
            units = 0.0
        fills.append((t, side, price, amount, why))
        return before

    for t in range(1, len(o)):
        want, had = _clip(target[t - 1], s.direction), _clip(target[t - 2] if t >= 2 else 0,
                                                              s.direction)
        closing = had != 0 and want != had  # the order at this open closes or reverses
        if units != 0 and (stop_loss is not None or s.tp is not None):
            hi, low = (o[t], o[t]) if (closing and open_first) else (h[t], lo[t])
            price, why = math.nan, ""
            for dist, base, is_loss in ((stop_loss, sl_base, True), (s.tp, tp_base, False)):
                if dist is None or not math.isnan(price):
                    continue
                under = (units > 0) == is_loss  # a level below the base
                level = base * (1 - dist) if under else base * (1 + dist)
                if (o[t] <= level) if under else (o[t] >= level):
                    price, why = o[t], "gap"
                elif low <= level <= hi:
                    price, why = level, "sl" if is_loss else "tp"
            if s.trail is not None:
                sl_base = max(sl_base, hi) if units > 0 else min(sl_base, low)
            if not math.isnan(price):
                trade(t, -1 if units > 0 else 1, price, abs(units), why)
                sl_base = tp_base = math.nan
                continue
        if want == had:
            continue
        held = 1 if units > 0 else (-1 if units < 0 else 0)
        # signals: entering a side (from flat or reversing), or going flat from a side
        if want == 0:
            if held == had:
                trade(t, -held, o[t] * (1 - held * slip), abs(units), "signal")
                sl_base = tp_base = math.nan
            continue
        if held == want:
            continue  # entries never add
        side = want
        fill = o[t] * (1 + side * slip)
        if s.size_type == "value":
            amount = abs(units) + s.size / o[t]
        else:
            assert held == 0 and side > 0, "percent sizing: long entries from flat only"
            amount = s.size * cash / (fill * (1 + s.fees))
        trade(t, side, fill, amount, "signal")
        sl_base = tp_base = fill
    return fills, cash + units * c[-1]


# -- the engines -------------------------------------------------------------------------------
def _as_rows(fills: pd.DataFrame, index: pd.DatetimeIndex) -> list[tuple]:
    bars = index.get_indexer(pd.DatetimeIndex(fills["time"]))
    return [(int(b), int(sd), float(p), float(z)) for b, sd, p, z in
            zip(bars, fills["side"], fills["price"], fills["size"], strict=True)]


def backtest_fills(frame, s: Setup, kind=VOLUME_TARGET, params=None):
    res = run_backtest(kind, frame, params or {}, s.config())
    return _as_rows(res.fills, frame.index), float(res.equity.iloc[-1, 0])


def rule_fills(frame, s: Setup, kind=VOLUME_TARGET, params=None):
    res = run_signal_rules(kind, frame, params or {}, s.config())
    return _as_rows(res.fills, frame.index), float(res.equity.iloc[-1, 0])


def paper_fills(frame, s: Setup, tmp_path, kind="test_volume_target", params=None):
    from quantlib.data import save_ohlcv
    from quantlib.live.state import StateStore
    from tests.live.conftest import make_spec, paper_replay

    path = save_ohlcv(frame, tmp_path / "bars.csv")
    spec = make_spec(kind, params or {},
                     execution={"fees": s.fees, "slippage_bps": s.slippage_bps,
                                "direction": s.direction},
                     risk={"sl_stop": s.sl, "tp_stop": s.tp, "trail_stop": s.trail,
                           "size_type": s.size_type, "order_size": s.size,
                           "init_cash": s.init_cash})
    store = StateStore(tmp_path / "paper.db")
    summary = paper_replay(spec, store, path)
    times = frame.index.as_unit("ms").asi8.tolist()
    rows = [(times.index(t), int(sd), float(p), float(z)) for _, t, sd, p, z, _ in store.fills()]
    return rows, float(summary.equity)


ENGINES = {"run_backtest": backtest_fills, "rule_engine": rule_fills, "paper": paper_fills}


def engine_fills(name, frame, s, tmp_path):
    if name == "paper":
        return paper_fills(frame, s, tmp_path)
    return ENGINES[name](frame, s)


def assert_same(got: list[tuple], want: list[tuple], where: str = "") -> None:
    assert len(got) == len(want), (where, got, want)
    for g, w in zip(got, want, strict=True):
        assert g[:2] == tuple(w[:2]), (where, g, w)
        assert g[2] == pytest.approx(w[2], rel=REL), (where, g, w)
        assert g[3] == pytest.approx(w[3], rel=REL), (where, g, w)


# -- hand-built bars ---------------------------------------------------------------------------
FLAT = (100.0, 101.0, 99.5, 100.0)


def _exit_bar_case(exit_bar, setup):
    """Long from bar 1's open (100); the target goes flat at bar 2's close, so the exit is due
    at bar 3's open, and bar 3 is ``exit_bar``."""
    bars = [FLAT, FLAT, FLAT, exit_bar, FLAT]
    return frame_of(bars, [1, 1, 0, 0, 0]), setup


HAND = {
    # bar 3 opens at 99 and falls to 90 (the 5 % stop-loss at 95 comes after the open):
    # the exit sells at the open, 100 units at 99 (the old rule: at 95)
    "stop-loss later in the bar": (
        *_exit_bar_case((99.0, 99.5, 90.0, 91.0), Setup(sl=0.05)),
        [(1, 1, 100.0, 100.0), (3, -1, 99.0, 100.0)]),
    # bar 3 opens at 101 and rises to 115 (the 10 % take-profit at 110 comes later): the
    # exit sells at 101 (the old rule: at 110)
    "take-profit later in the bar": (
        *_exit_bar_case((101.0, 115.0, 100.5, 112.0), Setup(tp=0.10)),
        [(1, 1, 100.0, 100.0), (3, -1, 101.0, 100.0)]),
    # bar 3 opens at 94, under the stop-loss level 95: a gap; the stop exits at the open
    # without slippage (94, not the signal exit's 94 * (1 - 0.001)); buy at 100 * 1.001
    "gap beyond the stop": (
        *_exit_bar_case((94.0, 96.0, 90.0, 92.0), Setup(sl=0.05, slippage_bps=10.0)),
        [(1, 1, 100.1, 10_000 / 100.1), (3, -1, 94.0, 10_000 / 100.1)]),
}


def _flip_case():
    """Long 10 units at 100 (bar 1), a 5 % trailing stop, value sizing 1000.

    Bar 2 (checked) raises the base to its high 108. The target flips short at bar 2's close,
    due at bar 3's open (106): bar 3 is checked against 106 alone (the long's level 102.6 is
    not reached, though bar 3's low is 100), so the flip sells 10 + 1000/106 units at 106. The
    short's base is its fill, 106; bar 3 is its own bar (unchecked: its low 100 does not move
    the base). Bar 4 is checked against 111.3 and lowers the base to its low 99; bar 5 reaches
    99 * 1.05 = 103.95 and exits there.
    """
    bars = [FLAT, (100.0, 104.0, 99.0, 103.0), (103.0, 108.0, 102.0, 107.0),
            (106.0, 107.0, 100.0, 101.0), (101.0, 103.0, 99.0, 100.0),
            (100.0, 104.0, 100.0, 103.0), (103.0, 103.5, 102.5, 103.0)]
    frame = frame_of(bars, [1, 1, -1, -1, -1, -1, -1])
    setup = Setup(trail=0.05, direction="both", size_type="value", size=1000.0)
    want = [(1, 1, 100.0, 10.0), (3, -1, 106.0, 10.0 + 1000.0 / 106.0),
            (5, 1, 99.0 * 1.05, 1000.0 / 106.0)]
    return frame, setup, want


HAND["flip with a trailing stop"] = _flip_case()


@pytest.mark.parametrize("case", list(HAND))
def test_reference_gives_the_hand_worked_fills(case):
    frame, setup, want = HAND[case]
    got, _ = reference(frame, frame["volume"].to_numpy() - 2.0, setup)
    assert_same([f[:4] for f in got], want, case)
    # the rule matters on these bars (the old order gives other fills), except at a gap,
    # where both orders exit at the open as a stop
    old, _ = reference(frame, frame["volume"].to_numpy() - 2.0, setup, open_first=False)
    assert ([f[:4] for f in old] == [f[:4] for f in got]) == case.startswith("gap")


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("case", list(HAND))
def test_engines_give_the_hand_worked_fills(engine, case, tmp_path):
    frame, setup, want = HAND[case]
    got, _ = engine_fills(engine, frame, setup, tmp_path)
    assert_same(got, want, f"{engine}: {case}")


# -- random bars -------------------------------------------------------------------------------
def random_market(seed: int, n: int) -> pd.DataFrame:
    """A random walk whose opens gap from the previous closes, with wide bars (stops reached
    often) and a random target held for a few bars at a time."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, 0.004, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.008, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.008, n)))
    target = np.repeat(rng.choice([-1.0, 0.0, 1.0], size=n // 3 + 1), 3)[:n]
    return frame_of(list(zip(open_, high, low, close, strict=True)), target.tolist())


SETUPS = [
    Setup(sl=0.01, tp=0.02, fees=0.001, slippage_bps=3.0),
    Setup(trail=0.015, tp=0.03, fees=0.0005, size=0.5),
    Setup(sl=0.02, tp=0.01, direction="both", size_type="value", size=2500.0, fees=0.001,
          slippage_bps=2.0),
    Setup(trail=0.01, direction="shortonly", size_type="value", size=3000.0, fees=0.002),
    Setup(tp=0.015, direction="both", size_type="value", size=4000.0, slippage_bps=5.0),
]


def _rule_matters(frame, target, setup) -> int:
    """Bars whose exit differs between the rule and the old order (the test must have some)."""
    new, _ = reference(frame, target, setup)
    old, _ = reference(frame, target, setup, open_first=False)
    return len({f[:4] for f in new} ^ {f[:4] for f in old})


@pytest.mark.parametrize("setup", SETUPS, ids=range(len(SETUPS)))
def test_backtest_and_rule_engine_equal_the_reference_on_random_bars(setup):
    frame = random_market(7 + len(setup.direction), 3000)
    target = frame["volume"].to_numpy() - 2.0
    want, equity = reference(frame, target, setup)
    assert _rule_matters(frame, target, setup) > 0
    for name in ("run_backtest", "rule_engine"):
        got, got_equity = ENGINES[name](frame, setup)
        assert_same(got, [f[:4] for f in want], name)
        assert got_equity == pytest.approx(equity, rel=REL)


@pytest.mark.parametrize("setup", [SETUPS[0], SETUPS[2]], ids=["long-sl-tp", "both-sl-tp"])
def test_paper_broker_equals_the_reference_on_random_bars(setup, tmp_path):
    frame = random_market(3, 600)
    target = frame["volume"].to_numpy() - 2.0
    want, equity = reference(frame, target, setup)
    assert _rule_matters(frame, target, setup) > 0
    got, got_equity = paper_fills(frame, setup, tmp_path)
    assert_same(got, [f[:4] for f in want], "paper")
    assert got_equity == pytest.approx(equity, rel=REL)


def _fused_row(frame, params, setup, portfolio_kernel=False):
    """The fused sweep's metrics row (``portfolio_kernel``: the shared-cash portfolio kernel,
    which fused_evaluate runs on one symbol when asked for benchmark-relative metrics)."""
    from quantlib.optimize.fused import fused_evaluate

    metrics, _ = fused_evaluate(get_kind("ma_cross"), frame, [params], setup.config(),
                                n_splits=2, benchmark=portfolio_kernel)
    return metrics.iloc[0]


def _closed_trades(fills) -> int:
    """Trades the reference closed: each fill that reduces or reverses a position."""
    held, n = 0.0, 0
    for _, side, _, amount, _ in fills:
        if held != 0 and (side > 0) != (held > 0):
            n += 1
        held += side * amount
        held = 0.0 if abs(held) < 1e-9 else held
    return n


@pytest.mark.parametrize("setup", SETUPS, ids=range(len(SETUPS)))
def test_fused_sweep_equals_the_reference_on_random_bars(setup):
    frame = random_market(11, 2000)
    params = {"fast": 3, "slow": 8}
    target = get_kind("ma_cross").signals(frame, params)
    want, equity = reference(frame, target, setup)
    assert _rule_matters(frame, target, setup) > 0
    for portfolio_kernel in (False, True):
        row = _fused_row(frame, params, setup, portfolio_kernel)
        assert row["final_equity"] == pytest.approx(equity, rel=REL)
        assert row["n_trades"] == _closed_trades(want)


# -- the real market ---------------------------------------------------------------------------
REAL = [({"fast": 10, "slow": 40}, Setup(sl=0.02, tp=0.04, fees=0.001)),
        ({"fast": 5, "slow": 20}, Setup(sl=0.01, tp=0.02, fees=0.001))]


@pytest.mark.parametrize(("params", "setup"), REAL, ids=["10-40", "5-20"])
def test_every_engine_equals_the_reference_on_btc_1h(shared_data, params, setup):
    frame = shared_data("btc_usdt_1h_2022_2023.csv")
    target = get_kind("ma_cross").signals(frame, params)
    want, equity = reference(frame, target, setup)
    assert _rule_matters(frame, target, setup) > 0
    for name in ("run_backtest", "rule_engine"):
        got, got_equity = ENGINES[name](frame, setup, get_kind("ma_cross"), params)
        assert_same(got, [f[:4] for f in want], name)
        assert got_equity == pytest.approx(equity, rel=REL)
    for portfolio_kernel in (False, True):
        row = _fused_row(frame, params, setup, portfolio_kernel)
        assert row["final_equity"] == pytest.approx(equity, rel=REL)
        assert row["n_trades"] == _closed_trades(want)


# -- vectorbt stays the reference on every other bar -------------------------------------------
def _raw_vectorbt_fills(frame, target, s: Setup) -> list[tuple]:
    """vectorbt's ``from_signals`` on the bars as they are (stops checked before every order),
    called directly: signals from the target's changes, filled at the next open."""
    import vectorbt as vbt

    t = np.array([_clip(v, s.direction) for v in target], dtype=float)
    prev = np.r_[0.0, t[:-1]]
    signals = {"entries": (t > 0) & ~(prev > 0), "exits": (t == 0) & (prev > 0),
               "short_entries": (t < 0) & ~(prev < 0), "short_exits": (t == 0) & (prev < 0)}
    signals = {k: np.r_[False, v[:-1]] for k, v in signals.items()}
    stop_loss = s.trail if s.trail is not None else s.sl
    pf = vbt.Portfolio.from_signals(
        close=frame["close"].to_numpy(), price=frame["open"].to_numpy(),
        open=frame["open"].to_numpy(), high=frame["high"].to_numpy(),
        low=frame["low"].to_numpy(), **signals, size=s.size, size_type=s.size_type,
        fees=s.fees, slippage=s.slippage_bps / 1e4, init_cash=s.init_cash,
        sl_stop=np.nan if stop_loss is None else stop_loss, sl_trail=s.trail is not None,
        tp_stop=np.nan if s.tp is None else s.tp, stop_entry_price="fillprice",
        upon_opposite_entry="reverse")
    rec = pf.orders.values
    return [(int(r["idx"]), 1 if r["side"] == 0 else -1, float(r["price"]), float(r["size"]))
            for r in rec]


@pytest.mark.parametrize("setup", SETUPS, ids=range(len(SETUPS)))
def test_run_backtest_is_raw_vectorbt_up_to_the_first_bar_the_rule_decides(setup):
    """Until a signal exit due at an open meets a level its bar reaches later, run_backtest's
    fills are vectorbt's own on the unchanged bars; at that bar they part (the rule)."""
    frame = random_market(7 + len(setup.direction), 3000)
    target = frame["volume"].to_numpy() - 2.0
    new, _ = reference(frame, target, setup)
    old, _ = reference(frame, target, setup, open_first=False)
    first = next(i for i, (a, b) in enumerate(zip(new, old, strict=False)) if a[:4] != b[:4])
    raw = _raw_vectorbt_fills(frame, target, setup)
    got, _ = backtest_fills(frame, setup)
    assert first >= 3, "the comparison must cover some trades before the rule's bar"
    assert_same(got[:first], raw[:first], "before the rule's first bar")
    assert got[first][:3] != pytest.approx(raw[first][:3], rel=REL)
    # and raw vectorbt is the reference's old order, fill for fill
    assert_same(raw, [f[:4] for f in old], "raw vectorbt = the old order")


# -- a shared-cash portfolio -------------------------------------------------------------------
def test_portfolio_engines_equal_the_reference_per_symbol():
    """Two symbols on one cash account, sized by value (an order never depends on the cash
    left): each symbol's fills are the single-symbol reference's, in run_backtest, the rule
    engine and the fused portfolio kernel (whose final equity sums the two)."""
    from quantlib.optimize.fused import fused_evaluate

    setup = Setup(sl=0.01, tp=0.02, direction="both", size_type="value", size=2000.0,
                  fees=0.001, slippage_bps=2.0, init_cash=20_000.0)
    frames = {"BTC/USD": random_market(21, 1500), "ETH/USD": random_market(22, 1500)}
    params = {"fast": 3, "slow": 8}
    kind = get_kind("ma_cross")
    want, gain = {}, 0.0
    for symbol, frame in frames.items():
        fills, equity = reference(frame, kind.signals(frame, params), setup)
        assert _rule_matters(frame, kind.signals(frame, params), setup) > 0
        want[symbol], gain = [f[:4] for f in fills], gain + equity - setup.init_cash
    index = frames["BTC/USD"].index
    for run in (run_backtest, run_signal_rules):
        res = run(kind, frames, params, setup.config())
        for symbol in frames:
            mine = res.fills[res.fills["symbol"] == symbol]
            assert_same(_as_rows(mine, index), want[symbol], f"{run.__name__} {symbol}")
        assert float(res.equity.iloc[-1, 0]) == pytest.approx(setup.init_cash + gain, rel=REL)
    metrics, _ = fused_evaluate(kind, frames, [params], setup.config(), n_splits=2)
    assert metrics["final_equity"].iloc[0] == pytest.approx(setup.init_cash + gain, rel=REL)
