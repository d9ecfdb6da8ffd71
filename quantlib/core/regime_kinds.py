"""Regime-aware strategy kinds: trade a wrapped kind only in chosen regimes.

``regime_filter`` wraps any ``signals``-engine kind: target_t = inner_target_t * ok_t, where ok_t
says the regimes in ``allowed_regimes`` have filtered probability >= ``min_proba`` at bar t's
close. ``regime_grid`` wraps the ``grid`` kind and passes ``ok`` (shifted one bar: the grid needs
it before the bar opens) as the grid's ``active`` mask.

Parameters are plain JSON numbers and lists (the fitted model's parameters, see
:func:`regime_filter_params`), so both kinds work from JSON specs. The regime signal has finite
memory: features use a ``vol_window`` window and the HMM forward filter runs over the last
``filter_window`` bars from the stationary distribution, so the value at bar t depends only on
the last ``warmup + 1`` bars, as the live runner requires.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from quantlib.core.bars import Bars
from quantlib.core.grid_kind import inventory_share, wrapped_active
from quantlib.core.informative import handed_down
from quantlib.core.regime_features import (
    FEATURES,
    digitize_states,
    feature_warmup,
    regime_feature_array,
)
from quantlib.core.regime_filtering import filter_gaussian
from quantlib.core.registry import Param, StrategyKind, get_kind, register
from quantlib.errors import ParameterError

_REGIME_PARAMS = (
    Param("model", str, "hmm", choices=("hmm", "chain"),
          doc="'hmm': Gaussian forward filter (GaussianHMMRegime/MarkovSwitchingRegime params); "
              "'chain': MarkovChainRegime bins"),
    Param("features", list, ["returns"], doc=f"feature names from {FEATURES}"),
    Param("vol_window", int, 24, low=2, high=5000, doc="bars of the trailing volatility feature"),
    Param("transmat", list, [[0.98, 0.02], [0.04, 0.96]], doc="K x K transition matrix (hmm)"),
    Param("means", list, [[0.0], [0.0]], doc="K x d emission means (hmm)"),
    Param("covars", list, [[[2.5e-5]], [[2.25e-4]]], doc="K x d x d emission covariances (hmm)"),
    Param("edges", list, [], doc="per-feature interior bin edges (chain)"),
    Param("n_bins", int, 3, low=2, high=50, doc="bins per feature (chain)"),
    Param("allowed_regimes", list, [0], doc="regimes in which the wrapped kind may trade"),
    Param("min_proba", float, 0.5, low=0.0, high=1.0,
          doc="trade when P(allowed regimes) >= this (hmm)"),
    Param("filter_window", int, 100, low=1, high=10000,
          doc="bars the forward filter runs over (finite memory)"),
)


def _n_regimes(p: Mapping[str, Any]) -> int:
    if p["model"] == "chain":
        return int(p["n_bins"]) ** len(p["features"])
    return len(p["transmat"])


def _check_regime_params(p: Mapping[str, Any]) -> str | None:
    # Runs inside StrategyKind.validate: return a message, never raise.
    feats = p["features"]
    if not feats or any(f not in FEATURES for f in feats):
        return f"'features' must be a non-empty list of names from {FEATURES}, got {feats!r}"
    try:
        if p["model"] == "hmm":
            P = np.asarray(p["transmat"], dtype=float)
            k, d = P.shape[0], len(feats)
            if P.shape != (k, k) or np.any(P < 0) or not np.allclose(P.sum(axis=1), 1.0):
                return "'transmat' must be a square list of rows of probabilities summing to 1"
            if np.asarray(p["means"], float).shape != (k, d):
                return f"'means' must have shape ({k}, {d}) (regimes x features)"
            covars = np.asarray(p["covars"], float)
            if covars.shape != (k, d, d) or np.any(np.linalg.eigvalsh(covars) <= 0):
                return f"'covars' must be {k} positive-definite {d} x {d} matrices"
        else:
            edges = [np.asarray(e, dtype=float) for e in p["edges"]]
            if len(edges) != len(feats) or any(
                    e.shape != (p["n_bins"] - 1,) or np.any(np.diff(e) <= 0) for e in edges):
                return (f"'edges' must hold {len(feats)} increasing list(s) of "
                        f"{p['n_bins'] - 1} bin edge(s) (one per feature)")
    except (TypeError, ValueError):
        return "regime model parameters must be numbers and nested lists of numbers"
    allowed = p["allowed_regimes"]
    k = _n_regimes(p)
    if not allowed or any(isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < k
                          for a in allowed):
        return f"'allowed_regimes' must list regime numbers in [0, {k - 1}], got {allowed!r}"
    return None


def regime_ok(bars: Bars, params: Mapping[str, Any]) -> np.ndarray:
    """Bool per bar: the allowed regimes hold at bar t's close (False during the warm-up).

    ``bars``: :class:`~quantlib.core.bars.Bars` or an OHLCV frame."""
    feats = list(params["features"])
    X = regime_feature_array(bars, feats, params["vol_window"])
    start = feature_warmup(feats, params["vol_window"])
    ok = np.zeros(len(bars), dtype=bool)
    if len(bars) <= start:
        return ok
    valid = X[start:]
    allowed = np.asarray(params["allowed_regimes"], dtype=np.int64)
    if params["model"] == "chain":
        edges = [np.asarray(e, dtype=float) for e in params["edges"]]
        ok[start:] = np.isin(digitize_states(valid, edges, params["n_bins"]), allowed)
        return ok
    window = int(params["filter_window"])
    proba, _ = filter_gaussian(valid, params["transmat"], params["means"], params["covars"],
                               window=window)
    ok[start:] = proba[:, allowed].sum(axis=1) >= params["min_proba"]
    # Until a full filter window exists, the value would depend on how much history is loaded.
    ok[:start + window - 1] = False
    return ok


def _regime_warmup(p: Mapping[str, Any]) -> int:
    extra = 0 if p["model"] == "chain" else int(p["filter_window"]) - 1
    return feature_warmup(list(p["features"]), p["vol_window"]) + extra


def _inner(p: Mapping[str, Any], engine: str) -> tuple[StrategyKind, dict[str, Any]]:
    inner = get_kind(p["inner_kind"])
    if inner.engine != engine:
        raise ParameterError(f"parameter 'inner_kind': {inner.name!r} uses the {inner.engine!r} "
                             f"engine; this wrapper needs a {engine!r} kind"
                             + (" (use 'regime_grid' for grid)" if inner.engine == "grid" else ""))
    return inner, inner.validate(p["inner_params"])


def _inner_ok(engine: str):
    def check(p: Mapping[str, Any]) -> str | None:
        try:
            _inner(p, engine)
        except ParameterError as exc:
            return f"inner strategy: {exc}"
        return None
    return check


def _filter_inputs(p: Mapping[str, Any]) -> tuple:
    # the wrapped kind's informative inputs (a 4h trend, another market): declared here, the
    # warm-up covers them and the caller's data reaches the wrapped kind
    inner, inner_params = _inner(p, "signals")
    return inner.informative_inputs(inner_params)


def _filter_signal(bars: Bars, params: Mapping[str, Any]) -> np.ndarray:
    inner, inner_params = _inner(params, "signals")
    given = handed_down(bars, {i.name: i.name for i in _filter_inputs(params)})
    return inner.signals(bars, inner_params, informative=given) * regime_ok(bars, params)


def _filter_warmup(p: Mapping[str, Any]) -> int:
    inner, inner_params = _inner(p, "signals")
    return max(inner.warmup(inner_params), _regime_warmup(p))


def grid_active(data: Any, params: Mapping[str, Any]) -> np.ndarray:
    """The grid's ``active`` mask: ``regime_ok`` shifted one bar (known before bar t opens)."""
    return wrapped_active(get_kind("regime_grid"), data, params)


def _grid_signal(bars: Bars, params: Mapping[str, Any]) -> np.ndarray:
    # the grid kind's own signal, with the regime's active mask
    grid = get_kind("grid")
    return inventory_share(bars, grid.validate(params["inner_params"]), grid_active(bars, params))


def _grid_warmup(p: Mapping[str, Any]) -> int:
    inner, inner_params = _inner(p, "grid")
    return max(inner.warmup(inner_params), _regime_warmup(p) + 1)


def regime_filter_params(model: Any, inner_kind: str, inner_params: Mapping[str, Any] | None = None,
                         allowed_regimes: Sequence[int] = (0,), features: Sequence[str] = ("returns",),
                         vol_window: int = 24, filter_window: int = 100,
                         min_proba: float = 0.5) -> dict[str, Any]:
    """JSON-ready parameters of ``regime_filter``/``regime_grid`` from a fitted regime model.

    ``features`` and ``vol_window`` must be those the model was fitted on.

    Examples
    --------
    >>> from quantlib.data import synthetic_ohlcv
    >>> from quantlib.regime import GaussianHMMRegime, regime_features
    >>> X = regime_features(synthetic_ohlcv(800).ohlcv, ["returns"])
    >>> hmm = GaussianHMMRegime(2, n_restarts=1, random_state=0).fit(X)
    >>> p = regime_filter_params(hmm, "ma_cross", {"fast": 5, "slow": 20})
    >>> get_kind("regime_filter").validate(p)["allowed_regimes"]
    [0]
    """
    fitted = model.to_params()
    out: dict[str, Any] = {"inner_kind": inner_kind, "inner_params": dict(inner_params or {}),
                           "features": list(features), "vol_window": int(vol_window),
                           "allowed_regimes": [int(a) for a in allowed_regimes],
                           "filter_window": int(filter_window), "min_proba": float(min_proba)}
    if "edges" in fitted:
        out.update(model="chain", edges=fitted["edges"], n_bins=int(model.n_bins))
    else:
        out.update(model="hmm", transmat=fitted["transmat"], means=fitted["means"],
                   covars=fitted["covars"])
    json.dumps(out)  # fail here, not in a spec writer, if anything is not plain JSON
    return out


REGIME_FILTER_KIND = register(StrategyKind(
    "regime_filter",
    params=(Param("inner_kind", str, "ma_cross", doc="wrapped signals kind"),
            Param("inner_params", dict, {}, doc="wrapped kind's parameters"),
            *_REGIME_PARAMS),
    signal=_filter_signal, warmup=_filter_warmup,
    constraints=(_check_regime_params, _inner_ok("signals")), engine="signals",
    doc="trade the wrapped kind only while the allowed regimes hold (causal regime filter)",
    inputs="bars", informative=_filter_inputs,
), replace=True)

REGIME_GRID_KIND = register(StrategyKind(
    "regime_grid",
    params=(Param("inner_kind", str, "grid", choices=("grid",), doc="wrapped grid kind"),
            Param("inner_params", dict, {}, doc="grid parameters"),
            *_REGIME_PARAMS),
    signal=_grid_signal, warmup=_grid_warmup,
    constraints=(_check_regime_params, _inner_ok("grid")), engine="grid",
    # regime_ok looked up when called, as everywhere in this module (one function to patch)
    grid_params=lambda p: dict(p["inner_params"]), grid_allowed=lambda bars, p: regime_ok(bars, p),
    doc="grid that places buys only while the allowed regimes hold (active mask)",
    inputs="bars",
), replace=True)

__all__ = ["REGIME_FILTER_KIND", "REGIME_GRID_KIND", "grid_active", "regime_filter_params",
           "regime_ok"]
