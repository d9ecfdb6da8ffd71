"""Independent plain-Python event loop of the grid bot, written from the spec in
``quantlib/core/grid_nb.py``'s module docstring (not from the kernel's code).

It keeps an explicit order book (a list of resting limit orders). "touch": it walks each bar's
price path point by point, filling the nearest touched order first. "bar": at each close it
writes down the book of the next bar (a list of orders, the buys paid for out of the cash left
as it goes), then lets the next bar's range fill that list. Its structure differs from the
kernel's level-array scans. Used by the tests and as the pure-Python baseline of the benchmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PHI = (1.0 + 5.0**0.5) / 2.0
# the spec's *Degenerate grids*: neighbouring levels at least this x the price apart
MIN_STEP_REL = 1e-10


def fib_ratios(n: int) -> list[float]:
    """First ``n`` ratios of the priority list: classic 7, then phi**-k and 1 - phi**-k."""
    ratios = [0.0, 1.0, 0.5, 0.382, 0.618, 0.236, 0.786]
    k = 4
    while len(ratios) < n:
        ratios += [PHI**-k, 1.0 - PHI**-k]
        k += 1
    return sorted(ratios[:n])


def fixed_levels(spacing: str, lower: float, upper: float, n: int) -> list[float]:
    if spacing == "arithmetic":
        step = (upper - lower) / (n - 1)
        return [lower + j * step for j in range(n)]
    if spacing == "geometric":
        return [lower * (upper / lower) ** (j / (n - 1)) for j in range(n)]
    if spacing == "fibonacci":
        return [lower + r * (upper - lower) for r in fib_ratios(n)]
    raise ValueError(spacing)


@dataclass
class Order:
    side: int  # +1 buy, -1 sell
    price: float
    level: int  # level whose inventory the order opens (buy) or closes (sell)
    qty: float


@dataclass
class RefResult:
    fills: list[tuple[int, int, float, float, float, int]] = field(default_factory=list)
    cash: list[float] = field(default_factory=list)
    inventory: list[float] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)


def run_reference(bars, *, fill_model="bar", **kwargs) -> RefResult:
    """Simulate one combination. ``bars``: sequence of (open, high, low, close).

    Keywords: ``spacing, lower, upper, n_levels, order_value, init_cash, fee=0.0,
    slippage=0.0, stop_margin=None, atr_k=1.0, atr_period=14, active=None``. ``lower``/``upper``
    are absolute prices (ignored by the volatility grid). Returns fills as
    ``(bar, side, price, size, fee, level)`` with level -1 for a stop-out.
    """
    if fill_model == "bar":
        return _run_bar(bars, **kwargs)
    if fill_model == "touch":
        return _run_touch(bars, **kwargs)
    raise ValueError(fill_model)


def _true_range(bar, prev_close):
    _, h, lo, _ = bar
    if prev_close is None:
        return h - lo
    return max(h - lo, abs(h - prev_close), abs(lo - prev_close))


def _vol_grid(centre, true_ranges, atr_period, atr_k, n_levels):
    """Levels around ``centre`` from the last ``atr_period`` true ranges; None when the step is
    below ``MIN_STEP_REL * centre`` (a degenerate grid is not built)."""
    atr = 0.0
    for tr in true_ranges[-atr_period:]:
        atr += tr
    spacing_abs = atr_k * (atr / atr_period)
    if not spacing_abs >= MIN_STEP_REL * centre:
        return None
    half = (n_levels - 1) / 2.0
    return [centre + (j - half) * spacing_abs for j in range(n_levels)]


def _run_bar(bars, *, spacing, lower, upper, n_levels, order_value, init_cash, fee=0.0,
             slippage=0.0, stop_margin=None, atr_k=1.0, atr_period=14, active=None):
    """"bar": the book written down at close t is what bar t+1's range may fill."""
    out = RefResult()
    cash = init_cash
    holdings: dict[int, float] = {}
    levels = None if spacing == "volatility" else fixed_levels(spacing, lower, upper, n_levels)
    stopped = False
    true_ranges: list[float] = []
    prev_close = None
    book: list[Order] = []  # what rests during the current bar

    def next_book(close: float, buys_on: bool) -> list[Order]:
        orders = [Order(-1, levels[i + 1], i, qty) for i, qty in holdings.items()]
        if not buys_on:
            return orders
        left = cash  # every resting buy's cost is set aside at the close
        below = [i for i in range(n_levels - 1) if i not in holdings and 0 < levels[i] < close]
        for i in sorted(below, reverse=True):  # nearest the close first
            qty = order_value / levels[i]
            value = qty * (levels[i] * (1 + slippage))
            cost = value * fee
            if value + cost > left:
                break  # this level and every one below it wait for a later close
            left = left - value - cost
            orders.append(Order(1, levels[i], i, qty))
        return orders

    for t, bar in enumerate(bars):
        _, h, lo, c = bar
        reached = [o for o in book if (lo <= o.price if o.side == 1 else h >= o.price)]
        for order in sorted(reached, key=lambda o: o.level):
            # at the limit price, even when the bar opened beyond it; no cash check: set aside
            if order.side == 1:
                px = order.price * (1 + slippage)
                value = order.qty * px
                cost = value * fee
                cash = cash - value - cost
                holdings[order.level] = order.qty
            else:
                px = order.price * (1 - slippage)
                value = order.qty * px
                cost = value * fee
                cash = cash + value - cost
                del holdings[order.level]
            out.fills.append((t, order.side, px, order.qty, cost, order.level))
        # the close
        true_ranges.append(_true_range(bar, prev_close))
        prev_close = c
        if spacing == "volatility" and not stopped and not holdings \
                and len(true_ranges) >= atr_period \
                and (levels is None or c < levels[0] or c > levels[-1]):
            levels = _vol_grid(c, true_ranges, atr_period, atr_k, n_levels) or levels
        if not stopped and levels is not None and stop_margin is not None \
                and not levels[0] * (1 - stop_margin) <= c <= levels[-1] * (1 + stop_margin):
            qty = sum(holdings.values())
            if qty > 0:
                px = c * (1 - slippage)
                cash += qty * px - qty * px * fee
                out.fills.append((t, -1, px, qty, qty * px * fee, -1))
            holdings.clear()
            stopped = True
        buys_on = active is None or t + 1 >= len(active) or bool(active[t + 1])
        book = [] if stopped or levels is None else next_book(c, buys_on)
        inventory = sum(holdings.values())
        out.cash.append(cash)
        out.inventory.append(inventory)
        out.equity.append(cash + inventory * c)
    return out


def _run_touch(bars, *, spacing, lower, upper, n_levels, order_value, init_cash, fee=0.0,
               slippage=0.0, stop_margin=None, atr_k=1.0, atr_period=14, active=None):
    """"touch": each bar's price path walked point by point; orders re-arm at once."""
    out = RefResult()
    cash = init_cash
    holdings: dict[int, float] = {}  # level -> base units bought there
    levels: list[float] | None = None
    if spacing != "volatility":
        levels = fixed_levels(spacing, lower, upper, n_levels)
    stopped = False
    true_ranges: list[float] = []
    prev_close = None

    def inventory() -> float:
        return sum(holdings.values())

    def book(is_active: bool) -> list[Order]:
        # resting orders given current holdings; buys only where the level is empty
        orders = []
        if levels is None or stopped:
            return orders
        for i in range(n_levels - 1):
            if i in holdings:
                orders.append(Order(-1, levels[i + 1], i, holdings[i]))
            elif is_active:
                orders.append(Order(1, levels[i], i, order_value / levels[i]))
        return orders

    def execute(order: Order, price: float, t: int) -> None:
        nonlocal cash
        if order.side == 1:
            px = price * (1 + slippage)
            value = order.qty * px
            cost = value * fee
            if value + cost > cash:
                return  # no leverage: the buy stays armed
            cash = cash - value - cost
            holdings[order.level] = order.qty
        else:
            px = price * (1 - slippage)
            value = order.qty * px
            cost = value * fee
            cash = cash + value - cost
            del holdings[order.level]
        out.fills.append((t, order.side, px, order.qty, cost, order.level))

    def stop_out(price: float, t: int) -> None:
        nonlocal cash, stopped
        qty = inventory()
        if qty > 0:
            px = price * (1 - slippage)
            cash = cash + qty * px - qty * px * fee
            out.fills.append((t, -1, px, qty, qty * px * fee, -1))
        holdings.clear()
        stopped = True

    def thresholds():
        if stop_margin is None or levels is None:
            return -math.inf, math.inf
        return levels[0] * (1 - stop_margin), levels[-1] * (1 + stop_margin)

    def walk(a: float, b: float, gap: bool, is_active: bool, t: int) -> None:
        """Move the price from a to b, filling touched orders nearest first, then the stop."""
        if stopped or levels is None or a == b:
            return
        falling = b < a
        s_low, s_high = thresholds()
        stop_price = s_low if falling else s_high
        stop_hit = (b <= s_low < a) if falling else (a < s_high <= b)
        here = a
        while True:
            if falling:
                candidates = [o for o in book(is_active) if o.side == 1 and b <= o.price < here]
            else:
                candidates = [o for o in book(is_active) if o.side == -1 and here < o.price <= b]
            if stop_hit:  # orders beyond the stop threshold are never reached
                candidates = [o for o in candidates
                              if (o.price >= stop_price if falling else o.price <= stop_price)]
            if not candidates:
                break
            if falling:
                order = max(candidates, key=lambda o: o.price)
            else:
                order = min(candidates, key=lambda o: o.price)
            execute(order, b if gap else order.price, t)  # an unaffordable buy is passed by
            here = order.price
        if stop_hit:
            stop_out(b if gap else stop_price, t)

    for t, (o, h, lo, c) in enumerate(bars):
        is_active = True if active is None else bool(active[t])
        if prev_close is not None:
            walk(prev_close, o, True, is_active, t)
        if spacing == "volatility" and not stopped and len(true_ranges) >= atr_period:
            flat = inventory() == 0
            outside = levels is None or o < levels[0] or o > levels[-1]
            if flat and outside:
                atr = 0.0
                for tr in true_ranges[-atr_period:]:
                    atr += tr
                spacing_abs = atr_k * (atr / atr_period)
                half = (n_levels - 1) / 2.0
                # a degenerate grid (levels not distinct prices) is not built; the old one stays
                if spacing_abs >= MIN_STEP_REL * o:
                    levels = [o + (j - half) * spacing_abs for j in range(n_levels)]
        if not stopped and levels is not None:
            s_low, s_high = thresholds()
            if o < s_low or o > s_high:
                stop_out(o, t)
        path = [o, lo, h, c] if c >= o else [o, h, lo, c]
        for a, b in zip(path[:-1], path[1:], strict=True):
            walk(a, b, False, is_active, t)
        tr = h - lo if prev_close is None else max(h - lo, abs(h - prev_close), abs(lo - prev_close))
        true_ranges.append(tr)
        prev_close = c
        out.cash.append(cash)
        out.inventory.append(inventory())
        out.equity.append(cash + inventory() * c)
    return out
