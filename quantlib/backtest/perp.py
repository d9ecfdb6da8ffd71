"""Backtests of signal kinds on a linear USDT-margined perpetual swap (isolated margin).

The account rule is stated once in :mod:`quantlib.live.brokers.perp_rule_nb` (leverage,
margin, fees, funding, maintenance margin, liquidation) and the bar loop in
:mod:`quantlib.backtest.perp_nb` (order of events within a bar). This module validates inputs,
aligns funding and mark candles to the bars, runs the kernel per parameter combination and
builds a :class:`~quantlib.backtest.result.BacktestResult` whose metrics are those of
:func:`quantlib.backtest.metrics.compute_metrics_frame` plus :data:`PERP_METRIC_NAMES`.

Funding events are assigned to the first bar opening at or after their timestamp (the position,
which changes only at opens, is the one held at that time; it is paid at that bar's mark open).
Events after the last bar's open are outside the backtest. Equity is valued at the last price's
close; the mark only triggers liquidations and prices funding.

Perp metrics (one value per combination)
    ``funding_paid`` / ``funding_received``: sums over bars of the funding settled at each bar's
    open when it was paid / received (several events at one bar, as on daily bars, are netted
    first); ``funding_net`` = paid - received; ``n_liquidations``: liquidation fills;
    ``max_leverage``: the largest ``|qty| * close / equity`` at a bar close with positive equity
    (0 when never in a position). The trade log's ``pnl`` is net of both fees and the funding
    paid while the trade was open.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlib.backtest import perp_nb as knl
from quantlib.backtest.engine import resolve_kind, validate_params_list
from quantlib.backtest.metrics import compute_metrics_frame
from quantlib.backtest.result import FILL_COLUMNS, BacktestResult
from quantlib.core.bars import as_bars, indicator_cache
from quantlib.core.costs import FIELDS as COST_FIELDS
from quantlib.core.costs import PERP_FIELDS
from quantlib.core.perp_kinds import with_funding
from quantlib.core.registry import StrategyKind
from quantlib.data import validate_ohlcv
from quantlib.data.timeframes import infer_timeframe
from quantlib.errors import DataError, ParameterError
from quantlib.live.brokers.perp_rule_nb import PERCENT, VALUE

DIRECTIONS = ("both", "longonly", "shortonly")
PERP_METRIC_NAMES: tuple[str, ...] = ("funding_paid", "funding_received", "funding_net",
                                      "n_liquidations", "max_leverage")


@dataclass(frozen=True)
class PerpConfig:
    """How a perp backtest sizes, charges and liquidates; validated on construction.

    Parameters
    ----------
    init_cash : starting wallet balance (USDT).
    leverage : notional / initial margin of each position, in [1, 125].
    margin_mode : ``"isolated"`` (the only mode modelled).
    maint_margin_rate : maintenance margin as a fraction of notional; ``maint_margin_rate *
        leverage`` must be < 1 (else a position would be liquidated as it opens).
    liquidation_fee : fee on the notional at the liquidation price (capped by the rule).
    fees : taker fee on traded notional (every backtest fill is a market order at an open).
    slippage_bps : adverse price move on every market fill, in basis points.
    size, size_type : ``"percent"``: the fraction of the cash an entry spends on margin and
        fee; ``"value"``: the notional of an entry at the order price.
    year_days, timeframe : as in :class:`~quantlib.core.config.BacktestConfig`.
    direction : ``"both"`` trades the target's sign; ``"longonly"`` takes a short target as
        flat, ``"shortonly"`` a long one (as the spot backtest's signals do).

    Bounds are :data:`quantlib.core.costs.FIELDS` and :data:`quantlib.core.costs.PERP_FIELDS`, the ones a
    strategy spec checks too.

    Examples
    --------
    >>> PerpConfig(leverage=5, maint_margin_rate=0.01).leverage
    5
    """

    init_cash: float = 10_000.0
    leverage: float = 1.0
    margin_mode: str = "isolated"
    maint_margin_rate: float = 0.005
    liquidation_fee: float = 0.0125
    fees: float = 0.0005
    slippage_bps: float = 0.0
    size: float = 1.0
    size_type: str = "percent"
    year_days: float = 365.0
    timeframe: str | None = None
    direction: str = "both"

    def __post_init__(self) -> None:
        # one definition of every bound, shared with the strategy spec (quantlib.core.costs)
        for name in ("init_cash", "fees", "slippage_bps", "size"):
            COST_FIELDS[name].check(getattr(self, name), f"PerpConfig.{name}")
        for name, field in PERP_FIELDS.items():
            field.check(getattr(self, name), f"PerpConfig.{name}")
        days = self.year_days
        if (isinstance(days, bool) or not isinstance(days, int | float)
                or not math.isfinite(days) or not 0 < days <= 366):
            raise ParameterError(f"PerpConfig.year_days: expected a finite number > 0 and "
                                 f"<= 366, got {days!r}")
        if self.direction not in DIRECTIONS:
            raise ParameterError(f"PerpConfig.direction: expected one of {list(DIRECTIONS)}, "
                                 f"got {self.direction!r}")
        if self.margin_mode != "isolated":
            raise ParameterError(f"PerpConfig.margin_mode: only 'isolated' is modelled, got "
                                 f"{self.margin_mode!r}")
        if self.size_type not in ("percent", "value"):
            raise ParameterError(f"PerpConfig.size_type: expected 'percent' or 'value', got "
                                 f"{self.size_type!r}")
        if self.size_type == "percent" and self.size > 1:
            raise ParameterError(f"PerpConfig.size: with size_type='percent' expected a "
                                 f"fraction in (0, 1], got {self.size!r}")
        if self.maint_margin_rate * self.leverage >= 1:
            raise ParameterError(
                f"PerpConfig: maint_margin_rate ({self.maint_margin_rate}) x leverage "
                f"({self.leverage}) must be < 1, else a position is liquidated as it opens")

    @property
    def slippage(self) -> float:
        return self.slippage_bps / 1e4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def row(self) -> np.ndarray:
        """The kernel's config row (``perp_nb.C_*``)."""
        sizing = PERCENT if self.size_type == "percent" else VALUE
        return np.array([self.init_cash, self.size, sizing, self.fees, self.slippage,
                         self.leverage, self.maint_margin_rate, self.liquidation_fee])

    @classmethod
    def coerce(cls, config: PerpConfig | Mapping[str, Any] | None) -> PerpConfig:
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            unknown = sorted(set(config) - set(cls.__dataclass_fields__))
            if unknown:
                raise ParameterError(f"PerpConfig: unknown field(s) {unknown}; expected some "
                                     f"of {sorted(cls.__dataclass_fields__)}")
            return cls(**config)
        raise ParameterError(f"config: expected a PerpConfig, a dict or None, got "
                             f"{type(config).__name__}")


def _funding_arrays(funding: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    if funding is None:
        return np.empty(0, np.int64), np.empty(0)
    if not isinstance(funding, pd.DataFrame) or "funding_rate" not in funding.columns:
        raise DataError("funding: expected a DataFrame with a 'funding_rate' column indexed by "
                        f"UTC funding timestamps, got {type(funding).__name__}")
    index = funding.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise DataError("funding: the index must be tz-aware UTC funding timestamps")
    if not index.is_monotonic_increasing or index.has_duplicates:
        bad = int(np.argmax(np.diff(index.asi8) <= 0)) + 1 if len(index) > 1 else 0
        raise DataError(f"funding: timestamps must be strictly increasing; row {bad} "
                        f"({index[bad]}) is not after the one before")
    rates = funding["funding_rate"].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(rates)):
        bad = int(np.argmax(~np.isfinite(rates)))
        raise DataError(f"funding: row {bad} ({index[bad]}), column 'funding_rate': not a "
                        f"finite number ({rates[bad]!r})")
    return index.tz_convert("UTC").as_unit("ns").asi8, rates


def _mark_arrays(ohlcv: pd.DataFrame, mark: pd.DataFrame | None) -> tuple[np.ndarray, ...]:
    if mark is None:
        mark = ohlcv
    elif not isinstance(mark, pd.DataFrame) or not mark.index.equals(ohlcv.index):
        raise DataError("mark: expected mark-price candles on exactly the bars of the OHLCV "
                        "data (same timestamps)")
    out = []
    for column in ("open", "high", "low"):
        values = mark[column].to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values) & (values > 0)):
            bad = int(np.argmax(~(np.isfinite(values) & (values > 0))))
            raise DataError(f"mark: row {bad} ({mark.index[bad]}), column {column!r}: expected "
                            f"a finite price > 0, got {values[bad]!r}")
        out.append(np.ascontiguousarray(values))
    return tuple(out)


def perp_targets(kind: StrategyKind, ohlcv: pd.DataFrame, params_list: Sequence[Mapping],
                 funding: pd.DataFrame | None = None, timeframe: str | None = None
                 ) -> np.ndarray:
    """Targets of every combination, shape (bars, combos); funding reaches the kind as the
    column ``funding_rate`` (the rate known at each bar's close)."""
    data: Any = ohlcv
    if funding is not None:
        data = with_funding(ohlcv, *_funding_arrays(funding), timeframe)
    out = np.empty((len(ohlcv), len(params_list)))
    with indicator_cache():
        for j, p in enumerate(params_list):
            out[:, j] = kind.signals(data if funding is not None else as_bars(ohlcv), p)
    return out


def run_perp_backtest(
    kind: str | StrategyKind,
    ohlcv: pd.DataFrame,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    config: PerpConfig | Mapping[str, Any] | None = None,
    *, funding: pd.DataFrame | None = None, mark: pd.DataFrame | None = None,
) -> BacktestResult:
    """Backtest ``kind`` on a perp for one or many parameter combinations.

    Parameters
    ----------
    kind : registered kind name or a :class:`StrategyKind`; targets +1 long, -1 short, 0 flat.
    ohlcv : canonical OHLCV frame of the last price (orders fill at its opens).
    params : None (defaults), a dict, or a list of dicts (one kernel run each).
    config : :class:`PerpConfig` or a dict of its fields.
    funding : DataFrame indexed by UTC funding timestamps with column ``funding_rate``
        (fraction per interval, positive = longs pay); None = no funding.
    mark : mark-price candles on the same bars (liquidation and funding prices); None = the
        last price.

    Returns
    -------
    BacktestResult: equity, fills (``kind`` column: open/close/liquidation), trades (net pnl
    after fees and funding), metrics with :data:`PERP_METRIC_NAMES` added; ``extras`` holds
    ``targets``, ``funding`` (paid per bar, > 0 paid) and ``notional`` per bar.

    Examples
    --------
    >>> from quantlib.data import load
    >>> res = run_perp_backtest("ma_cross", load("sample:bars=300"), {"fast": 5, "slow": 20},
    ...                         PerpConfig(leverage=3))
    >>> res.equity.shape, "max_leverage" in res.metrics.columns
    ((300, 1), True)
    """
    kind = resolve_kind(kind)
    config = PerpConfig.coerce(config)
    params_list = validate_params_list(kind, params)
    validate_ohlcv(ohlcv)
    if len(ohlcv) < 2:
        raise DataError(f"ohlcv: a perp backtest needs at least 2 bars, got {len(ohlcv)}")
    timeframe = config.timeframe or ohlcv.attrs.get("timeframe") or _infer(ohlcv.index)
    fund_ns, rates = _funding_arrays(funding)
    target = perp_targets(kind, ohlcv, params_list, funding, timeframe)
    mark_open, mark_high, mark_low = _mark_arrays(ohlcv, mark)
    open_ = ohlcv["open"].to_numpy(np.float64)
    close = ohlcv["close"].to_numpy(np.float64)
    fund_bar = np.searchsorted(ohlcv.index.as_unit("ns").asi8, fund_ns, side="left")
    inside = fund_bar < len(ohlcv)
    fund_bar, rates = fund_bar[inside].astype(np.int64), rates[inside]
    runs = [knl.perp_backtest_nb(open_, close, mark_open, mark_high, mark_low,
                                 target_sides(target[:, j], config.direction), fund_bar, rates,
                                 config.row())
            for j in range(len(params_list))]
    return _collect(kind, ohlcv, params_list, config, target, runs, timeframe)


def target_sides(target: np.ndarray, direction: str) -> np.ndarray:
    """The side each target asks for under ``direction`` (-1, 0, +1; float64).

    Examples
    --------
    >>> target_sides(np.array([1.0, -0.5, 0.0]), "longonly").tolist()
    [1.0, 0.0, 0.0]
    """
    side = np.sign(target)
    if direction == "longonly":
        return np.maximum(side, 0.0)
    if direction == "shortonly":
        return np.minimum(side, 0.0)
    return side


def _infer(index: pd.DatetimeIndex) -> str | None:
    return infer_timeframe(index)


_FILL_KINDS = np.array(["open", "close", "liquidation"], dtype=object)
_ENDS = np.array(["open", "close", "liquidation"], dtype=object)


def _collect(kind: StrategyKind, ohlcv: pd.DataFrame, params_list: list[dict[str, Any]],
             config: PerpConfig, target: np.ndarray, runs: list, timeframe: str | None
             ) -> BacktestResult:
    index = ohlcv.index
    n_combo = len(params_list)
    columns = pd.RangeIndex(n_combo, name="combo")
    equity = pd.DataFrame(np.column_stack([r[0] for r in runs]), index=index, columns=columns)
    qty = np.column_stack([r[1] for r in runs])
    paid = np.column_stack([r[2] for r in runs])
    notional = np.column_stack([r[3] for r in runs])
    fills, trades = [], []
    for j, (_, _, _, _, fill, n_fill, trade, n_trade) in enumerate(runs):
        fill, trade = fill[:n_fill], trade[:n_trade]
        bar = fill[:, 0].astype(np.int64)
        fills.append(pd.DataFrame({
            "combo": j, "time": index[bar],
            # the side of the order: opening a long or closing a short buys
            "side": np.where((fill[:, 1] == knl.FILL_OPEN) == (fill[:, 2] > 0), 1, -1),
            "price": fill[:, 3], "size": np.abs(fill[:, 2]), "fee": fill[:, 4],
            "kind": _FILL_KINDS[fill[:, 1].astype(np.int64)], "pnl": fill[:, 5]}))
        exit_bar = trade[:, 1].astype(np.int64)
        trades.append(pd.DataFrame({
            "combo": j, "direction": np.sign(trade[:, 2]).astype(np.int64),
            "entry_time": index[trade[:, 0].astype(np.int64)],
            "exit_time": pd.DatetimeIndex([index[b] if b >= 0 else pd.NaT for b in exit_bar]),
            "size": np.abs(trade[:, 2]), "entry_price": trade[:, 3], "exit_price": trade[:, 4],
            "fees": trade[:, 5], "funding": trade[:, 6], "pnl": trade[:, 7],
            "end": _ENDS[trade[:, 8].astype(np.int64)],
            "closed": trade[:, 8] != knl.END_OPEN}))
    fills_df = pd.concat(fills, ignore_index=True)
    trades_df = pd.concat(trades, ignore_index=True)
    closed = [t.loc[t["closed"], "pnl"].to_numpy() for t in trades]
    metrics = compute_metrics_frame(
        equity, trade_pnl=closed, position=qty != 0,
        traded_value=np.array([(f["price"] * f["size"]).sum() for f in fills]),
        fees_paid=np.array([f["fee"].sum() for f in fills]),
        timeframe=timeframe, year_days=config.year_days, init_cash=config.init_cash,
        benchmark=ohlcv["close"].to_numpy(np.float64)[:, None])
    values = equity.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        leverage = np.where(values > 0, notional / values, np.nan)
    metrics["funding_paid"] = np.where(paid > 0, paid, 0.0).sum(axis=0)
    metrics["funding_received"] = np.where(paid < 0, -paid, 0.0).sum(axis=0)
    metrics["funding_net"] = paid.sum(axis=0)
    metrics["n_liquidations"] = [int((f["kind"] == "liquidation").sum()) for f in fills]
    metrics["max_leverage"] = np.nan_to_num(np.nanmax(np.where(np.isnan(leverage), -np.inf,
                                                               leverage), axis=0),
                                            neginf=0.0)
    return BacktestResult(
        equity=equity, fills=fills_df[[*FILL_COLUMNS, "kind", "pnl"]], trades=trades_df,
        metrics=metrics, params=list(params_list), kind=kind.name, config=config,  # type: ignore[arg-type]
        positions=pd.DataFrame(qty, index=index, columns=columns),
        extras={"targets": pd.DataFrame(target, index=index, columns=columns),
                "funding": pd.DataFrame(paid, index=index, columns=columns),
                "notional": pd.DataFrame(notional, index=index, columns=columns)})


__all__ = ["DIRECTIONS", "PERP_METRIC_NAMES", "PerpConfig", "perp_targets", "run_perp_backtest",
           "target_sides"]
