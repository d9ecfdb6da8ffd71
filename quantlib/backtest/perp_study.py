"""Perp research helpers: where the pnl came from, and liquidation risk against leverage.

Definitions
    For each combination, with ``E_0`` the starting cash and ``E_T`` the final equity:
    ``total_pnl = E_T - E_0``; ``fees`` = all fees paid (trading and liquidation);
    ``funding_net`` = funding paid minus funding received; ``price_pnl = total_pnl + fees +
    funding_net`` (what price moves alone earned, liquidations included at their price).
    ``funding_share`` is funding's share of the gross contributions,
    ``-funding_net / (|price_pnl| + fees + |funding_net|)``: +0.3 means 30 % of everything that
    moved the account was funding received, -0.3 that 30 % was funding paid.
    A long liquidation distance is ``1 - liq / entry`` at entry with no fee or funding yet:
    ``1 - (1 - 1 / L) / (1 - mmr)``; a short's is ``(1 + 1 / L) / (1 + mmr) - 1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from quantlib.backtest.perp import PerpConfig, run_perp_backtest
from quantlib.backtest.result import BacktestResult
from quantlib.errors import ParameterError


def funding_breakdown(result: BacktestResult) -> pd.DataFrame:
    """Per combination: total, price, fee and funding pnl and funding's share (module doc).

    Examples
    --------
    >>> from quantlib.data import load_perp
    >>> perp = load_perp("sample:bars=500")
    >>> res = run_perp_backtest("ma_cross", perp.ohlcv, {"fast": 5, "slow": 20},
    ...                         funding=perp.funding, mark=perp.mark)
    >>> t = funding_breakdown(res)
    >>> bool(np.isclose(t["price_pnl"] - t["fees"] - t["funding_net"], t["total_pnl"]).all())
    True
    """
    init_cash = float(result.config.init_cash)
    total = result.equity.iloc[-1].to_numpy() - init_cash
    fees = result.metrics["fees_paid"].to_numpy()
    funding_net = result.metrics["funding_net"].to_numpy()
    price = total + fees + funding_net
    gross = np.abs(price) + fees + np.abs(funding_net)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(gross > 0, -funding_net / gross, np.nan)
    return pd.DataFrame({"total_pnl": total, "price_pnl": price, "fees": fees,
                         "funding_net": funding_net, "funding_share": share},
                        index=result.metrics.index)


def liquidation_distance(leverage: float, maint_margin_rate: float) -> tuple[float, float]:
    """Fractional adverse move from entry to liquidation: ``(long, short)`` (module doc).

    Examples
    --------
    >>> [round(x, 4) for x in liquidation_distance(10, 0.005)]
    [0.0955, 0.0945]
    """
    long = 1.0 - (1.0 - 1.0 / leverage) / (1.0 - maint_margin_rate)
    short = (1.0 + 1.0 / leverage) / (1.0 + maint_margin_rate) - 1.0
    return long, short


def leverage_sweep(kind: str, ohlcv: pd.DataFrame, params: Mapping[str, Any],
                   leverages: Sequence[float], config: PerpConfig | None = None, *,
                   funding: pd.DataFrame | None = None, mark: pd.DataFrame | None = None
                   ) -> pd.DataFrame:
    """The same combination at each leverage: returns, drawdown and liquidations.

    Returns
    -------
    DataFrame indexed by leverage with ``total_return, sharpe, max_drawdown, n_liquidations,
    max_leverage, funding_net, liq_distance_long, liq_distance_short``.
    """
    if not leverages:
        raise ParameterError("leverages: expected at least one leverage")
    config = config or PerpConfig()
    rows = {}
    for leverage in leverages:
        res = run_perp_backtest(kind, ohlcv, params, config.__class__(
            **{**config.to_dict(), "leverage": leverage}), funding=funding, mark=mark)
        m = res.metrics.iloc[0]
        long, short = liquidation_distance(leverage, config.maint_margin_rate)
        rows[leverage] = {"total_return": m["total_return"], "sharpe": m["sharpe"],
                          "max_drawdown": m["max_drawdown"],
                          "n_liquidations": int(m["n_liquidations"]),
                          "max_leverage": m["max_leverage"], "funding_net": m["funding_net"],
                          "liq_distance_long": long, "liq_distance_short": short}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "leverage"
    return out


def perp_returns(result: BacktestResult) -> pd.DataFrame:
    """Bar returns of every combination for DSR/PBO: a wiped-out account (equity 0) earns 0
    from then on instead of an undefined 0/0."""
    equity = result.equity
    previous = equity.shift(1)
    returns = (equity / previous - 1.0).where(previous > 0, 0.0)
    return returns.fillna(0.0)


__all__ = ["funding_breakdown", "leverage_sweep", "liquidation_distance", "perp_returns"]
