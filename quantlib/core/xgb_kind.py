"""The ``xgb_classifier`` strategy kind: XGBoost up-probability -> target position.

Params (all JSON): ``model_path`` and ``model_sha256`` (a native-JSON XGBoost model, see
:mod:`quantlib.core.model_files`), ``features`` (a :class:`~quantlib.core.ml_features.FeatureConfig` as a
dict, including fitted regime parameters if any), ``entry``/``exit`` thresholds, ``allow_short``
and ``memory``.

Rule: go long when ``p >= entry``; leave when ``p < exit``; with ``allow_short`` the mirror image
on ``1 - p``. The state machine restarts flat ``memory`` bars back, so the position at bar ``t``
depends on the last ``warmup + 1 = window + memory - 1`` bars only (finite memory, as the
registry contract requires): the backtest and a live runner holding that many bars agree exactly.

Examples
--------
>>> from quantlib.core.registry import get_kind
>>> kind = get_kind("xgb_classifier")
>>> kind.warmup({"features": {}, "memory": 24})
161
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from quantlib.core.bars import Bars
from quantlib.core.ml_features import FeatureConfig, feature_array
from quantlib.core.ml_features_nb import hysteresis_window_nb
from quantlib.core.model_files import ModelRef, load_tree_model
from quantlib.core.registry import Param, StrategyKind, register
from quantlib.errors import ParameterError

KIND_NAME = "xgb_classifier"

_CONFIG_CACHE: list[tuple[dict[str, Any], FeatureConfig]] = []
# (model, config) pairs whose feature names match, keyed by identity for speed. The values keep
# both objects alive: an id is unique only while its object lives, and a freed model's id could
# otherwise be reused by a different model that was never checked.
_CHECKED: dict[tuple[int, int], tuple[Any, FeatureConfig]] = {}


def _feature_config(features: Mapping[str, Any]) -> FeatureConfig:
    # Parsing and validating the config would cost a good share of a live bar's budget; dict
    # equality against the few configs seen so far is exact and takes microseconds.
    for seen, cfg in _CONFIG_CACHE:
        if seen == features:
            return cfg
    cfg = FeatureConfig.from_dict(features)
    if len(_CONFIG_CACHE) >= 64:
        _CONFIG_CACHE.pop(0)
    _CONFIG_CACHE.append((copy.deepcopy(dict(features)), cfg))
    return cfg


def _warmup(params: Mapping[str, Any]) -> int:
    cfg = _feature_config(params.get("features") or {})
    return cfg.window + int(params.get("memory", 24)) - 2


def predict_proba_bars(data: Any, params: Mapping[str, Any]) -> np.ndarray:
    """Up-probability per bar of ``data`` (Bars or an OHLCV frame) from the model in ``params``
    (NaN during feature warm-up).

    Examples
    --------
    >>> # proba = predict_proba_bars(df, params)  # params as made by make_params
    """
    cfg = _feature_config(params.get("features") or {})
    model = load_tree_model(params["model_path"], params["model_sha256"])
    if (id(model), id(cfg)) not in _CHECKED:
        names = model.feature_names
        if model.num_features != len(cfg.names) or (names is not None and names != cfg.names):
            raise ParameterError(
                f"strategy kind {KIND_NAME!r}: model {params['model_path']} expects "
                f"{model.num_features} features {names} but params.features yields "
                f"{len(cfg.names)} {cfg.names}")
        if len(_CHECKED) >= 64:
            _CHECKED.pop(next(iter(_CHECKED)))
        _CHECKED[(id(model), id(cfg))] = (model, cfg)
    proba = np.full(len(data), np.nan)
    start = cfg.window - 1
    if len(data) > start:
        proba[start:] = model.predict_proba(feature_array(data, cfg)[start:])
    return proba


def _signal(bars: Bars, params: Mapping[str, Any]) -> np.ndarray:
    memory = int(params["memory"])
    warm = _feature_config(params["features"]).window + memory - 2
    out = np.zeros(len(bars))
    if len(bars) <= warm:
        return out
    proba = predict_proba_bars(bars, params)
    out[:] = hysteresis_window_nb(proba, float(params["entry"]), float(params["exit"]),
                                  bool(params["allow_short"]), memory)
    out[:warm] = 0.0
    return out


def _check_thresholds(params: Mapping[str, Any]) -> str | None:
    if params["exit"] > params["entry"]:
        return f"exit ({params['exit']}) must be <= entry ({params['entry']})"
    if not re.fullmatch(r"[0-9a-f]{64}", params["model_sha256"] or ""):
        return "model_sha256 must be 64 lowercase hex characters (see quantlib.ml.save_model)"
    if not params["model_path"]:
        return "model_path is empty; save a model with quantlib.ml.artifacts.save_model"
    try:
        _feature_config(params["features"])
    except ParameterError as exc:
        return f"features: {exc}"
    return None


XGB_CLASSIFIER = register(StrategyKind(
    name=KIND_NAME,
    params=(
        Param("model_path", str, "", doc="native-JSON XGBoost model file"),
        Param("model_sha256", str, "", doc="SHA-256 of the model file"),
        Param("features", dict, {}, doc="FeatureConfig.to_dict() the model was trained on"),
        Param("entry", float, 0.55, low=0.5, high=1.0, step=0.01,
              doc="enter long at p >= entry (short at p <= 1 - entry)"),
        Param("exit", float, 0.5, low=0.0, high=1.0, step=0.01,
              doc="leave long at p < exit (short at p > 1 - exit)"),
        Param("allow_short", bool, False, doc="take short positions"),
        Param("memory", int, 24, low=1, high=2000, doc="bars the entry/exit state remembers"),
    ),
    signal=_signal,
    warmup=_warmup,
    constraints=(_check_thresholds,),
    engine="signals",
    doc="XGBoost up-probability over causal features with entry/exit thresholds",
    inputs="bars",
), replace=True)


def make_params(model: ModelRef, features: FeatureConfig | Mapping[str, Any], entry: float = 0.55,
                exit: float = 0.5, allow_short: bool = False, memory: int = 24) -> dict[str, Any]:
    """Validated, JSON-serialisable ``xgb_classifier`` params for a saved model.

    Examples
    --------
    >>> # params = make_params(save_model(clf, "spec_dir/m.model.json"), FeatureConfig())
    """
    cfg = FeatureConfig.from_dict(features)
    params = {"model_path": model.path, "model_sha256": model.sha256, "features": cfg.to_dict(),
              "entry": float(entry), "exit": float(exit), "allow_short": bool(allow_short),
              "memory": int(memory)}
    return XGB_CLASSIFIER.validate(params)


__all__ = ["KIND_NAME", "XGB_CLASSIFIER", "make_params", "predict_proba_bars"]
