"""Grid-trading engine: pandas wrapper over :mod:`quantlib.backtest.grid_nb`, the ``grid`` kind,
and a one-bar stepping API (:class:`GridState`, :func:`step_bar`) for the live runner.

The simulation rule (levels, orders, intrabar path, gaps, costs, stop-out, active mask,
volatility re-centring) is documented once, in :mod:`quantlib.backtest.grid_nb`.

Bounds: ``lower``/``upper`` (absolute prices, > 0) when given, else
``ref * (1 - lower_pct)`` and ``ref * (1 + upper_pct)`` with ``ref`` = **the open of the first bar
of the data** (known before any order is placed, so no lookahead; a live run started on the same
first bar gets the same grid). Order size per level: ``order_value`` (quote notional) when > 0, else
``order_size * config.init_cash``. Fees and slippage come from :class:`BacktestConfig`.

Examples
--------
>>> from quantlib.data import load
>>> from quantlib.backtest.grid import run_grid
>>> res = run_grid(load("sample:bars=300"), [{"spacing": "geometric", "n_levels": 8}])
>>> list(res.fills.columns)[:6]
['combo', 'time', 'side', 'price', 'size', 'fee']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quantlib.backtest import grid_nb as nb
from quantlib.backtest.config import BacktestConfig
from quantlib.backtest.metrics import compute_metrics_frame, pnl_per_combo
from quantlib.backtest.result import BacktestResult
from quantlib.backtest.trades_nb import grid_round_trips_nb
from quantlib.errors import DataError, ParameterError
from quantlib.strategy.registry import Param, StrategyKind, get_kind, register

SPACINGS = ("arithmetic", "geometric", "fibonacci", "volatility")
_MODE = {name: i for i, name in enumerate(SPACINGS)}
_FILL_CAP = 1024

GRID_PARAMS = (
    Param("spacing", str, "arithmetic", choices=SPACINGS, doc="level spacing mode"),
    Param("n_levels", int, 10, low=2, high=nb.MAX_FIB_LEVELS, step=1, doc="number of levels"),
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
)


def _bounds_ok(p: Mapping[str, Any]) -> str | None:
    if (p["lower"] > 0) != (p["upper"] > 0):
        return "give both absolute bounds 'lower' and 'upper' or neither"
    if p["lower"] > 0 and p["upper"] <= p["lower"]:
        return f"'upper' ({p['upper']}) must be above 'lower' ({p['lower']})"
    return None


def _check_data(df: pd.DataFrame) -> tuple[np.ndarray, ...]:
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"grid data: expected an OHLCV DataFrame, got {type(df).__name__}")
    missing = [c for c in ("open", "high", "low", "close") if c not in df.columns]
    if missing:
        raise DataError(f"grid data: missing column(s) {missing}; expected open high low close")
    if len(df) == 0:
        raise DataError("grid data: expected at least one bar, got an empty frame")
    cols = [np.ascontiguousarray(df[c].to_numpy(dtype=np.float64)) for c in
            ("open", "high", "low", "close")]
    for name, values in zip(("open", "high", "low", "close"), cols, strict=True):
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"grid data: column {name!r} at row {row} ({df.index[row]}) is "
                            f"{values[row]!r}; expected a finite price > 0")
    return tuple(cols)


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
    return row


def _prepare(data, params_list, config, active):
    config = BacktestConfig.coerce(config)
    if isinstance(params_list, Mapping) or params_list is None:
        params_list = [params_list or {}]
    kind = get_kind("grid")
    checked = [kind.validate(p) for p in params_list]
    o, h, lo, c = _check_data(data)
    rows = np.array([params_row(p, float(o[0]), config) for p in checked]).reshape(-1, nb.N_PARAMS)
    if active is None:
        mask = np.ones(len(c), dtype=np.bool_)
    else:
        mask = np.asarray(active)
        if mask.shape != (len(c),) or mask.dtype != np.bool_:
            raise ParameterError(f"active: expected a bool array of shape ({len(c)},), got "
                                 f"dtype {mask.dtype} shape {mask.shape}")
    return config, checked, (o, h, lo, c), rows, np.ascontiguousarray(mask)


def _run_kernel(bars, mask, rows, config, record_series, fill_cap):
    o, h, lo, c = bars
    max_levels = int(rows[:, nb.P_N_LEVELS].max())
    tr_cap = int(rows[:, nb.P_ATR_PERIOD].max())
    return nb.grid_run_nb(o, h, lo, c, mask, rows, float(config.init_cash), max_levels, tr_cap,
                          record_series, fill_cap)


def _round_trips(out: tuple, index: pd.DatetimeIndex, max_levels: int) -> pd.DataFrame:
    # A buy at level i is closed by the next sell of level i, or pro rata by a stop-out (-1).
    combo, level, entry_bar, exit_bar, entry_price, exit_price, size, pnl = \
        grid_round_trips_nb(*out[3:10], max_levels)
    return pd.DataFrame({"combo": combo, "level": level, "entry_time": index[entry_bar],
                         "exit_time": index[exit_bar], "entry_price": entry_price,
                         "exit_price": exit_price, "size": size, "pnl": pnl})


def run_grid(data: pd.DataFrame, params_list: Sequence[Mapping[str, Any]] | Mapping | None = None,
             config: BacktestConfig | dict | None = None, *,
             active: np.ndarray | None = None) -> BacktestResult:
    """Backtest one or many grid parameter combinations in one kernel call.

    Parameters
    ----------
    data : canonical OHLCV frame.
    params_list : ``grid`` kind parameter dicts (or one dict).
    config : fees, slippage, init_cash, year_days.
    active : optional bool per bar; ``active[t]`` must be known before bar ``t`` opens (shift a
        close-based regime signal by one bar). Inactive bars place no buys (see grid_nb).

    Returns
    -------
    BacktestResult with equity, fills (plus ``level`` and ``bar`` columns; stop-out level -1),
    round-trip trades, metrics and ``positions`` (base units held); ``extras["cash"]``.

    Examples
    --------
    >>> from quantlib.data import load
    >>> res = run_grid(load("sample:bars=300"), [{"n_levels": n} for n in (5, 10)])
    >>> res.equity.shape[1]
    2
    """
    config, checked, bars, rows, mask = _prepare(data, params_list, config, active)
    out = _run_kernel(bars, mask, rows, config, True, _FILL_CAP)
    n_fills = out[9]
    if n_fills.max(initial=0) > _FILL_CAP:  # rerun with a log large enough for every combo
        out = _run_kernel(bars, mask, rows, config, True, int(n_fills.max()))
    cash, inv, equity = out[0], out[1], out[2]
    fb, fs, fp, fz, ff, fl = out[3:9]
    combo_ids = np.repeat(np.arange(len(rows)), n_fills)
    take = np.arange(fb.shape[1])[None, :] < n_fills[:, None]
    index = data.index
    fills = pd.DataFrame({
        "combo": combo_ids, "time": index[fb[take]], "side": fs[take].astype(np.int64),
        "price": fp[take], "size": fz[take], "fee": ff[take], "level": fl[take], "bar": fb[take],
    })
    trades = _round_trips(out, index, int(rows[:, nb.P_N_LEVELS].max()))
    cols = pd.RangeIndex(len(rows))
    equity_df = pd.DataFrame(equity, index=index, columns=cols)
    inv_df = pd.DataFrame(inv, index=index, columns=cols)
    traded = (fills["price"] * fills["size"]).groupby(fills["combo"]).sum()
    metrics = compute_metrics_frame(
        equity_df,
        trade_pnl=pnl_per_combo(trades["combo"].to_numpy(), trades["pnl"].to_numpy(), len(rows)),
        position=inv_df, traded_value=traded.reindex(cols, fill_value=0.0).to_numpy(),
        fees_paid=out[13], timeframe=config.timeframe or data.attrs.get("timeframe"),
        year_days=config.year_days, init_cash=config.init_cash)
    return BacktestResult(equity=equity_df, fills=fills, trades=trades, metrics=metrics,
                          params=checked, kind="grid", config=config, positions=inv_df,
                          extras={"cash": pd.DataFrame(cash, index=index, columns=cols)})


def wrapped_active(kind: Any, data: pd.DataFrame, params: Mapping[str, Any]) -> np.ndarray:
    """The engine's ``active`` mask of a (validated) grid kind: a wrapping kind's
    ``grid_allowed`` shifted one bar (buys rest during bar t when the condition held at bar
    t-1's close); all True for the plain grid."""
    if kind.grid_allowed is None:
        return np.ones(len(data), dtype=np.bool_)
    allowed = np.asarray(kind.grid_allowed(data, params), dtype=np.bool_)
    return np.r_[False, allowed[:-1]]


def run_wrapped_grid(kind: Any, data: pd.DataFrame, params_list: Sequence[Mapping[str, Any]],
                     config: BacktestConfig | dict | None = None) -> BacktestResult:
    """Backtest a kind that wraps the grid (``kind.grid_params``/``kind.grid_allowed``), one
    kernel call per parameter set (each has its own ``active`` mask); results stacked as combos,
    the masks in ``extras["active"]``."""
    runs = []
    for params in params_list:
        checked = kind.validate(params)
        active = wrapped_active(kind, data, checked)
        runs.append((checked, run_grid(data, [kind.grid_params(checked)], config, active=active),
                     active))
    return stack_results(runs, kind.name)


def stack_results(runs: Sequence[tuple[dict, BacktestResult, np.ndarray]],
                  kind_name: str) -> BacktestResult:
    """One result from single-combo grid results ``(params, result, active mask)``."""
    def stack(attr: str) -> pd.DataFrame:
        parts = []
        for combo, (_, res, _) in enumerate(runs):
            frame = getattr(res, attr).copy()
            if "combo" in frame.columns:
                frame["combo"] = combo
            parts.append(frame)
        return pd.concat(parts, ignore_index=True)

    first = runs[0][1]
    cols = pd.RangeIndex(len(runs))
    index = first.equity.index

    def columns(get) -> pd.DataFrame:
        return pd.DataFrame(np.column_stack([get(r) for r in runs]), index=index, columns=cols)

    return BacktestResult(
        equity=columns(lambda r: r[1].equity.iloc[:, 0]), fills=stack("fills"),
        trades=stack("trades"), metrics=pd.concat([r.metrics for _, r, _ in runs],
                                                  ignore_index=True),
        params=[p for p, _, _ in runs], kind=kind_name, config=first.config,
        positions=columns(lambda r: r[1].positions.iloc[:, 0]),
        extras={"active": columns(lambda r: r[2])})


def sweep_grid(data: pd.DataFrame, params_list: Sequence[Mapping[str, Any]],
               config: BacktestConfig | dict | None = None, *, active: np.ndarray | None = None,
               chunk: int = 2048) -> pd.DataFrame:
    """Final figures of many combinations without storing series (memory O(chunk)).

    Returns one row per combination: ``final_equity, total_return, max_drawdown, n_fills,
    fees_paid, final_inventory``.

    Examples
    --------
    >>> from quantlib.data import load
    >>> sweep_grid(load("sample:bars=300"), [{"n_levels": n} for n in (4, 8)]).shape
    (2, 6)
    """
    config, _, bars, rows, mask = _prepare(data, params_list, config, active)
    parts = []
    for start in range(0, len(rows), chunk):
        out = _run_kernel(bars, mask, rows[start:start + chunk], config, False, 0)
        parts.append(np.column_stack([out[12], out[12] / config.init_cash - 1.0, out[14],
                                      out[9], out[13], out[11]]))
    return pd.DataFrame(np.vstack(parts), columns=["final_equity", "total_return", "max_drawdown",
                                                   "n_fills", "fees_paid", "final_inventory"])


@dataclass
class GridState:
    """State of one grid combination for bar-by-bar stepping (the live runner's PaperBroker).

    Build it with :meth:`start` from the validated params and the open of the first bar; feed each
    *closed* bar to :func:`step_bar`. Backtest and live thus run the same ``grid_step_nb``.

    Examples
    --------
    >>> s = GridState.start({"n_levels": 5}, first_open=100.0)
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


def level_history(data: pd.DataFrame, params: Mapping[str, Any],
                  config: BacktestConfig | dict | None = None, *,
                  active: np.ndarray | None = None) -> pd.DataFrame:
    """Grid levels in force after each bar (one column per level), by stepping :class:`GridState`.

    Fixed grids give constant columns; a volatility grid shows its re-centring; NaN before the
    volatility grid exists and after a stop-out.

    Examples
    --------
    >>> from quantlib.data import load
    >>> level_history(load("sample:bars=50"), {"n_levels": 3}).shape
    (50, 3)
    """
    o, h, lo, c = _check_data(data)
    state = GridState.start(params, float(o[0]), config)
    out = np.full((len(c), len(state.levels)), np.nan)
    for t in range(len(c)):
        step_bar(state, (o[t], h[t], lo[t], c[t]), active=True if active is None else active[t])
        if not state.stopped:
            out[t] = state.levels
    return pd.DataFrame(out, index=data.index, columns=[f"level_{j}" for j in range(out.shape[1])])


def _grid_signal(df: pd.DataFrame, params: Mapping[str, Any]) -> np.ndarray:
    # Normalised inventory (inventory value / equity, in [0, 1]) of a default-config run: the
    # kernel only ever uses bars <= t, so this is causal by construction.
    config, _, bars, rows, mask = _prepare(df, [params], None, None)
    out = _run_kernel(bars, mask, rows, config, True, 0)
    return out[1][:, 0] * bars[3] / out[2][:, 0]


def _grid_warmup(params: Mapping[str, Any]) -> int:
    return int(params["atr_period"]) if params["spacing"] == "volatility" else 0


GRID_KIND = register(StrategyKind(
    "grid", params=GRID_PARAMS, signal=_grid_signal, warmup=_grid_warmup,
    constraints=(_bounds_ok,), engine="grid",
    doc="grid bot: buy limits at levels below price, sell one level above each filled buy",
), replace=True)

__all__ = ["GRID_KIND", "GRID_PARAMS", "GridState", "SPACINGS", "level_history", "params_row",
           "run_grid", "step_bar", "sweep_grid"]
