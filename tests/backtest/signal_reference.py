"""Plain-Python event loop: the independent reference for the vectorbt signal engine.

State based (it compares the wanted side with the held side every bar), while the engine is edge
based (vectorbt signals on target changes): without stops the two must agree fill for fill.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def reference_backtest(frames: dict[str, pd.DataFrame], targets: dict[str, np.ndarray], *,
                       init_cash=10_000.0, fees=0.001, slippage_bps=0.0, size=1.0,
                       size_type="percent", direction="longonly", execution="next_open"):
    """Returns (equity list, fills list of dicts) for one shared-cash portfolio."""
    symbols = list(frames)
    n = len(frames[symbols[0]])
    opens = {s: frames[s]["open"].to_numpy() for s in symbols}
    closes = {s: frames[s]["close"].to_numpy() for s in symbols}
    slip = slippage_bps / 1e4
    cash = init_cash
    pos = {s: 0.0 for s in symbols}
    equity, fills = [], []
    for t in range(n):
        for s in symbols:
            df = frames[s]
            if execution == "next_open":
                if t == 0:
                    continue
                decision, price = targets[s][t - 1], opens[s][t]
            else:
                decision, price = targets[s][t], closes[s][t]
            want = 1 if decision > 0 else (-1 if decision < 0 else 0)
            if direction == "longonly":
                want = max(want, 0)
            elif direction == "shortonly":
                want = min(want, 0)
            held = 1 if pos[s] > 0 else (-1 if pos[s] < 0 else 0)
            if want == held:
                continue
            if size_type == "value":
                new_units = want * size / price
            elif want == 0:
                new_units = 0.0
            else:  # percent of the cash available, fees included (entries only start flat)
                adj = price * (1 + slip) if want > 0 else price * (1 - slip)
                new_units = want * size * cash / (adj * (1 + fees))
            delta = new_units - pos[s]
            side = 1 if delta > 0 else -1
            fill_price = price * (1 + slip * side)
            fee = abs(delta) * fill_price * fees
            cash -= delta * fill_price + fee
            pos[s] = new_units
            fills.append({"symbol": s, "time": df.index[t], "side": side, "price": fill_price,
                          "size": abs(delta), "fee": fee})
        equity.append(cash + sum(pos[s] * closes[s][t] for s in symbols))
    return equity, fills


def make_frame(open_, high, low, close, start="2024-01-01", freq="1h") -> pd.DataFrame:
    """Canonical OHLCV frame from hand-written price lists."""
    index = pd.date_range(start, periods=len(close), freq=freq, tz="UTC", name="timestamp")
    df = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                       "volume": np.ones(len(close))}, index=index, dtype=np.float64)
    df.attrs.update(source="synthetic", symbol="HAND/USD", timeframe=freq, exchange="hand",
                    source_string="hand")
    return df
