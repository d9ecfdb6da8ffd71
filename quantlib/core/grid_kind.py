"""The ``grid`` strategy kind and its one-bar stepping API, without pandas.

The live runner imports this module (never :mod:`quantlib.backtest.grid`, the pandas wrapper of
backtests, sweeps and level plots): :class:`GridState` and :func:`step_bar` advance one grid by one
closed bar with the engine's own ``grid_step_nb`` kernel, so a live grid and a backtest fill alike.
The simulation rule (levels, orders, the "bar" and "touch" fill models, costs, stop-out, active
mask, volatility re-centring, degenerate grids) is documented once, in :mod:`quantlib.core.grid_nb`.

Examples
--------
Levels 90, 95, 100, 105, 110; the book decided at the first close (102) rests buys at 100, 95 and
90; the next bar's low (94) reaches the first two:

>>> s = GridState.start({"n_levels": 5}, first_open=100.0)
>>> step_bar(s, (100.0, 102.5, 99.5, 102.0))
[]
>>> [(f["side"], f["price"]) for f in step_bar(s, (102.0, 103.0, 94.0, 96.0))]
[(1, 95.0), (1, 100.0)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantlib.core import grid_nb as nb
from quantlib.core.bars import Bars, as_bars
from quantlib.core.config import BacktestConfig
from quantlib.core.registry import Param, StrategyKind, get_kind, register
from quantlib.errors import DataError

SPACINGS = ("arithmetic", "geometric", "fibonacci", "volatility")
_MODE = {name: i for i, name in enumerate(SPACINGS)}
# "bar": the book changes only at bar closes (what a bot at an exchange gets; the default);
# "touch": orders change the instant a level fills (optimistic). See quantlib.core.grid_nb.
FILL_MODELS = ("bar", "touch")
_FILL_MODEL = {"bar": nb.FILL_BAR, "touch": nb.FILL_TOUCH}

GRID_PARAMS = (
    Param("spacing", str, "arithmetic", choices=SPACINGS, doc="level spacing mode"),
    # log: a search over 2..1000 levels treats each decade alike (optuna samples log-uniformly)
    Param("n_levels", int, 10, low=2, high=nb.MAX_LEVELS, step=1, log=True,
          doc=f"number of levels (fibonacci: up to {nb.MAX_FIB_LEVELS})"),
    Param("lower_pct", float, 0.1, low=0.001, high=0.99, doc="lower bound below the first open"),
    Param("upper_pct", float, 0.1, low=0.001, high=10.0, doc="upper bound above the first open"),
    Param("lower", float, 0.0, low=0.0, doc="absolute lower bound (0 = use lower_pct)"),
    Param("upper", float, 0.0, low=0.0, doc="absolute upper bound (0 = use upper_pct)"),
    Param("order_size", float, 0.1, low=1e-6, high=1.0, doc="fraction of init_cash per level"),
    Param("order_value", float, 0.0, low=0.0, doc="quote notional per level (0 = order_size)"),
    Param("stop_out", bool, False, doc="flatten and stop when price leaves the range"),
    Param("stop_margin", float, 0.05, low=0.0, high=1.0, doc="stop distance beyond the range"),
    Param("atr_period", int, 14, low=1, high=1000, step=1, doc="volatility grid: ATR bars"),
    Param("atr_k", float, 1.0, low=1e-6, high=100.0, doc="volatility grid: spacing in ATRs"),
    # no declared choices: a modelling assumption, not a strategy parameter, so sweeps and
    # studies never search it (the constraint below checks the value)
    Param("fill_model", str, "bar",
          doc="'bar': orders change at bar closes (exchange-faithful, default); 'touch': "
              "intrabar re-arming, optimistic"),
)


def _fill_model_ok(p: Mapping[str, Any]) -> str | None:
    if p["fill_model"] not in FILL_MODELS:
        return f"'fill_model' must be one of {list(FILL_MODELS)}, got {p['fill_model']!r}"
    return None


def _fib_levels_ok(p: Mapping[str, Any]) -> str | None:
    if p["spacing"] == "fibonacci" and p["n_levels"] > nb.MAX_FIB_LEVELS:
        return (f"'n_levels' ({p['n_levels']}) is above {nb.MAX_FIB_LEVELS}, the most a "
                "fibonacci grid has distinct ratios for")
    return None


def _bounds_ok(p: Mapping[str, Any]) -> str | None:
    if (p["lower"] > 0) != (p["upper"] > 0):
        return "give both absolute bounds 'lower' and 'upper' or neither"
    if p["lower"] > 0 and p["upper"] <= p["lower"]:
        return f"'upper' ({p['upper']}) must be above 'lower' ({p['lower']})"
    return None


def smallest_step(spacing: str, lower: float, upper: float, n: int) -> float:
    """Smallest distance between neighbouring levels of a fixed grid (closed form of
    ``grid_nb.grid_levels_nb``: arithmetic steps are equal, geometric ones grow upwards,
    fibonacci ones are its sorted ratios' gaps scaled to the range).

    Examples
    --------
    >>> smallest_step("arithmetic", 90.0, 110.0, 5), smallest_step("fibonacci", 0.0, 100.0, 3)
    (5.0, 50.0)
    """
    if spacing == "arithmetic":
        return (upper - lower) / (n - 1)
    if spacing == "geometric":
        return lower * ((upper / lower) ** (1.0 / (n - 1)) - 1.0)
    ratios = np.sort(nb.FIB_RATIOS_PRIORITY[:n])
    return float(np.diff(ratios).min()) * (upper - lower)


def _distinct_levels_ok(p: Mapping[str, Any]) -> str | None:
    # the degenerate-grid rule of quantlib.core.grid_nb; a volatility grid's is checked as it is
    # built. Relative bounds scale with the first open, so their relative step is known here.
    if p["spacing"] == "volatility" or _bounds_ok(p) or _fib_levels_ok(p):
        return None  # not a fixed grid, or refused by another check
    if p["lower"] > 0:
        lower, upper, named = p["lower"], p["upper"], "'lower'/'upper'"
    else:
        lower, upper, named = 1.0 - p["lower_pct"], 1.0 + p["upper_pct"], "'lower_pct'/'upper_pct'"
    step = smallest_step(p["spacing"], lower, upper, p["n_levels"])
    if not step >= nb.MIN_STEP_REL * upper:
        return (f"the {p['spacing']} grid's levels would lie {step / upper:.3g} x the upper bound "
                f"apart, below {nb.MIN_STEP_REL:g}: not distinct prices; widen {named} or use "
                f"fewer 'n_levels' ({p['n_levels']})")
    return None


def grid_bars(data: Any) -> tuple[np.ndarray, ...]:
    """``(open, high, low, close)`` arrays of ``data`` (frame or Bars), checked: at least one
    bar, every price finite and > 0 (DataError names the column and row otherwise)."""
    bars = as_bars(data)
    if len(bars) == 0:
        raise DataError("grid data: expected at least one bar, got none")
    cols = tuple(bars.column(c) for c in ("open", "high", "low", "close"))
    for name, values in zip(("open", "high", "low", "close"), cols, strict=True):
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"grid data: column {name!r} at row {row} ({bars.label(row)}) is "
                            f"{values[row]!r}; expected a finite price > 0")
    return cols


def params_row(params: Mapping[str, Any], ref_price: float, config: BacktestConfig) -> np.ndarray:
    """Kernel parameter row (see ``grid_nb.P_*``) of one validated parameter dict."""
    if params["lower"] > 0:
        lower, upper = params["lower"], params["upper"]
    else:
        lower, upper = ref_price * (1 - params["lower_pct"]), ref_price * (1 + params["upper_pct"])
    row = np.zeros(nb.N_PARAMS)
    row[nb.P_MODE] = _MODE[params["spacing"]]
    row[nb.P_LOWER], row[nb.P_UPPER] = lower, upper
    row[nb.P_N_LEVELS] = params["n_levels"]
    row[nb.P_ORDER_VALUE] = params["order_value"] or params["order_size"] * config.init_cash
    row[nb.P_FEE], row[nb.P_SLIPPAGE] = config.fees, config.slippage
    row[nb.P_STOP_MARGIN] = params["stop_margin"] if params["stop_out"] else -1.0
    row[nb.P_ATR_K], row[nb.P_ATR_PERIOD] = params["atr_k"], params["atr_period"]
    row[nb.P_FILL_MODEL] = _FILL_MODEL[params["fill_model"]]
    return row


def wrapped_active(kind: StrategyKind, data: Any, params: Mapping[str, Any]) -> np.ndarray:
    """The engine's ``active`` mask of a (validated) grid kind on ``data`` (frame or Bars): a
    wrapping kind's ``grid_allowed`` shifted one bar (buys rest during bar t when the condition
    held at bar t-1's close); all True for the plain grid."""
    if kind.grid_allowed is None:
        return np.ones(len(data), dtype=np.bool_)
    allowed = kind.allowed(data, params)
    return np.r_[False, allowed[:-1]]


def run_kernel(bars: tuple[np.ndarray, ...], mask: np.ndarray, rows: np.ndarray,
               config: BacktestConfig, record_series: bool, fill_cap: int) -> tuple:
    """``grid_nb.grid_run_nb`` over ``(open, high, low, close)`` for every parameter row."""
    o, h, lo, c = bars
    max_levels = int(rows[:, nb.P_N_LEVELS].max())
    tr_cap = int(rows[:, nb.P_ATR_PERIOD].max())
    return nb.grid_run_nb(o, h, lo, c, mask, rows, float(config.init_cash), max_levels, tr_cap,
                          record_series, fill_cap)


@dataclass
class GridState:
    """State of one grid combination for bar-by-bar stepping (the live runner's PaperBroker).

    Build it with :meth:`start` from the validated params and the open of the first bar; feed each
    *closed* bar to :func:`step_bar`. Backtest and live thus run the same ``grid_step_nb``.

    Examples
    --------
    >>> s = GridState.start({"n_levels": 5, "fill_model": "touch"}, first_open=100.0)
    >>> fills = step_bar(s, (100.0, 101.0, 91.0, 95.0))
    >>> [f["side"] for f in fills], round(s.equity(95.0), 2) < 10_000
    ([1, 1], True)
    """

    params: dict[str, Any]
    row: np.ndarray
    state: np.ndarray
    levels: np.ndarray
    holding: np.ndarray
    tr_buf: np.ndarray
    fills: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, params: Mapping[str, Any], first_open: float,
              config: BacktestConfig | dict | None = None) -> GridState:
        config = BacktestConfig.coerce(config)
        checked = get_kind("grid").validate(params)
        row = params_row(checked, float(first_open), config)
        n = int(row[nb.P_N_LEVELS])
        self = cls(checked, row, np.empty(nb.N_STATE), np.empty(n), np.empty(n),
                   np.empty(int(row[nb.P_ATR_PERIOD])))
        nb.grid_init_nb(row, self.state, self.levels, self.holding, self.tr_buf, config.init_cash)
        return self

    @property
    def cash(self) -> float:
        return float(self.state[nb.S_CASH])

    @property
    def inventory(self) -> float:
        # the kernel's own running figure, so equity matches the backtest bit for bit
        return float(self.state[nb.S_INVENTORY])

    @property
    def stopped(self) -> bool:
        return bool(self.state[nb.S_STOPPED])

    def equity(self, price: float) -> float:
        return self.cash + self.inventory * price

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly snapshot (for a state store); restore with :meth:`from_dict`."""
        # NaN (no previous close / no volatility grid yet) becomes None: strict JSON has no NaN;
        # float values round-trip exactly through repr-based JSON
        def plain(a: np.ndarray) -> list:
            return [None if np.isnan(x) else float(x) for x in a]

        return {"params": self.params, "row": plain(self.row), "state": plain(self.state),
                "levels": plain(self.levels), "holding": plain(self.holding),
                "tr_buf": plain(self.tr_buf)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GridState:
        arr = {k: np.array([np.nan if x is None else x for x in d[k]], dtype=np.float64)
               for k in ("row", "state", "levels", "holding", "tr_buf")}
        # a snapshot of an older engine has fewer slots: the kernel would read past its arrays
        for key, size in (("row", nb.N_PARAMS), ("state", nb.N_STATE)):
            if len(arr[key]) != size:
                raise DataError(f"grid state: {key!r} has {len(arr[key])} entries, this engine "
                                f"expects {size}; the snapshot was written by another quantlib "
                                "version: start on a new state file")
        return cls(dict(d["params"]), **arr)


def step_bar(state: GridState, bar: Sequence[float] | Mapping[str, float], *,
             active: bool = True) -> list[dict[str, Any]]:
    """Advance ``state`` by one closed bar ``(open, high, low, close)``; return its new fills.

    Each fill is ``{"bar", "side", "price", "size", "fee", "level"}`` with ``bar`` the 0-based
    number of bars processed before this one (the backtest's row index).
    """
    if isinstance(bar, Mapping):
        bar = (bar["open"], bar["high"], bar["low"], bar["close"])
    o, h, lo, c = (float(x) for x in bar)
    n = len(state.holding)
    cap = 4 * n + 4  # more fills than legs x levels cannot happen in one bar
    logs = (np.zeros(cap, np.int64), np.zeros(cap, np.int8), np.zeros(cap), np.zeros(cap),
            np.zeros(cap), np.zeros(cap, np.int64))
    before = int(state.state[nb.S_N_FILLS])
    bar_no = int(state.state[nb.S_N_BARS])
    state.state[nb.S_N_FILLS] = 0.0
    nb.grid_step_nb(o, h, lo, c, bool(active), bar_no, state.row, state.state, state.levels,
                    state.holding, state.tr_buf, *logs)
    new = int(state.state[nb.S_N_FILLS])
    state.state[nb.S_N_FILLS] = before + new
    fills = [{"bar": int(logs[0][i]), "side": int(logs[1][i]), "price": float(logs[2][i]),
              "size": float(logs[3][i]), "fee": float(logs[4][i]), "level": int(logs[5][i])}
             for i in range(new)]
    state.fills.extend(fills)
    return fills


def inventory_share(bars: Bars, params: Mapping[str, Any], active: np.ndarray) -> np.ndarray:
    """Normalised inventory (inventory value / equity, in [0, 1]) of a default-config grid run
    with buys allowed where ``active``: the grid kinds' target. The kernel only ever uses bars
    <= t (and ``active[t]`` is known before bar t opens), so this is causal by construction."""
    config = BacktestConfig()
    prices = grid_bars(bars)
    rows = params_row(params, float(prices[0][0]), config).reshape(1, -1)
    out = run_kernel(prices, np.ascontiguousarray(active, dtype=np.bool_), rows, config, True, 0)
    return out[1][:, 0] * prices[3] / out[2][:, 0]


def _grid_signal(bars: Bars, params: Mapping[str, Any]) -> np.ndarray:
    return inventory_share(bars, params, np.ones(len(bars), dtype=np.bool_))


def _grid_warmup(params: Mapping[str, Any]) -> int:
    return int(params["atr_period"]) if params["spacing"] == "volatility" else 0


GRID_KIND = register(StrategyKind(
    "grid", params=GRID_PARAMS, signal=_grid_signal, warmup=_grid_warmup,
    constraints=(_bounds_ok, _fill_model_ok, _fib_levels_ok, _distinct_levels_ok), engine="grid",
    doc="grid bot: buy limits at levels below price, sell one level above each filled buy",
    inputs="bars",
), replace=True)

__all__ = ["FILL_MODELS", "GRID_KIND", "GRID_PARAMS", "GridState", "SPACINGS", "grid_bars",
           "inventory_share", "params_row", "run_kernel", "smallest_step", "step_bar",
           "wrapped_active"]
