"""``regime_filter_cross``: trade a kind on one symbol only while ANOTHER symbol's regime allows
(e.g. BTC's HMM regime gating an ETH strategy).

``target_t = inner_t * ok_t`` where ``ok_t`` is :func:`~quantlib.core.regime_kinds.regime_ok`
computed on the ``regime_symbol``'s own bars and aligned to the traded bars by the rule of
:mod:`quantlib.core.informative` (at the same timeframe: the other symbol's bar with the
same open time, visible at that bar's close; missing bars are errors). The regime parameters are
``regime_filter``'s. The other symbol's data is passed by the caller (``informative={"regime":
frame}`` to ``run_backtest``, ``signals`` and the bias checks) or loaded from ``regime_source``
(a data source string, research only); with ``regime_symbol`` equal to the traded symbol and no
data passed, it is ``regime_filter`` on the traded symbol itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from quantlib.core.bars import Bars
from quantlib.core.informative import InformativeInput, handed_down, informative, nest
from quantlib.core.regime_kinds import (
    _REGIME_PARAMS,
    _check_regime_params,
    _inner,
    _inner_ok,
    _regime_warmup,
    regime_ok,
)
from quantlib.core.registry import Param, StrategyKind, register

REGIME_INPUT = "regime"


def _nested(p: Mapping[str, Any]) -> tuple[tuple[InformativeInput, ...], dict[str, str]]:
    # the regime input, then the wrapped kind's own (a higher-timeframe trend...): declared
    # here, the warm-up covers them and the caller's data reaches the wrapped kind
    inner, inner_params = _inner(p, "signals")
    own = (InformativeInput(REGIME_INPUT, symbol=p["regime_symbol"],
                            source=p["regime_source"] or None, history=_regime_warmup(p) + 1),)
    return nest(own, inner.informative_inputs(inner_params))


def _inputs(p: Mapping[str, Any]) -> tuple[InformativeInput, ...]:
    return _nested(p)[0]


def _signal(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    inner, inner_params = _inner(p, "signals")
    other = informative(bars, REGIME_INPUT)
    ok = other.at_base(regime_ok(other.bars, p).astype(np.float64))
    target = inner.signals(bars, inner_params, validated=True,
                           informative=handed_down(bars, _nested(p)[1]))
    return target * np.nan_to_num(ok, nan=0.0)


REGIME_FILTER_CROSS = register(StrategyKind(
    "regime_filter_cross",
    params=(Param("inner_kind", str, "ma_cross", doc="wrapped signals kind"),
            Param("inner_params", dict, {}, doc="wrapped kind's parameters"),
            Param("regime_symbol", str, "BTC/USDT", doc="symbol whose regime gates the trades"),
            Param("regime_source", str, "", doc="data source string of that symbol ('' = data "
                                                "passed by the caller)"),
            *_REGIME_PARAMS),
    signal=_signal, warmup=lambda p: _inner(p, "signals")[0].warmup(_inner(p, "signals")[1]),
    constraints=(_check_regime_params, _inner_ok("signals")), engine="signals",
    doc="trade the wrapped kind only while another symbol's regime allows it",
    inputs="bars", informative=_inputs,
), replace=True)

__all__ = ["REGIME_FILTER_CROSS", "REGIME_INPUT"]
