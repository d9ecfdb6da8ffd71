"""The final model: experiment setup, training, hold-out backtest and spec export.

:func:`setup_experiment` splits a frame into a training part and a final hold-out;
:func:`fit_strategy` trains on the training part and writes the model file (put it beside the
spec); :func:`holdout_evaluate` backtests the ``xgb_classifier`` kind on the hold-out through the
same engine, with the warm-up bars that precede it; :func:`export_holdout_spec` writes the draft
spec that references the model file by path and SHA-256.

Examples
--------
>>> import tempfile, pathlib
>>> from quantlib.data import load
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> fitted = fit_strategy(load("sample:seed=1,bars=1500"), out / "demo.model.json",
...                       horizon=6, model_params={"n_estimators": 20})
>>> fitted.params["model_path"].endswith("demo.model.json")
True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantlib.backtest import run_backtest
from quantlib.core.config import BacktestConfig
from quantlib.core.ml_features import FeatureConfig
from quantlib.core.xgb_kind import KIND_NAME, XGB_CLASSIFIER, make_params
from quantlib.errors import ParameterError
from quantlib.ml.model import XGBSignalClassifier, build_dataset
from quantlib.ml.regime_features import fit_regime_params
from quantlib.strategy.spec import export

if TYPE_CHECKING:
    from quantlib.backtest.result import BacktestResult
    from quantlib.strategy.spec import StrategySpec


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def holdout_start(df: pd.DataFrame, holdout: float = 0.25) -> int:
    """Position of the first hold-out bar when the last ``holdout`` share of ``df`` is kept out.

    Parameters
    ----------
    df : the whole frame.
    holdout : share of bars kept out, strictly between 0 and 1.

    Returns
    -------
    int
        ``int(len(df) * (1 - holdout))``: bars ``[0, start)`` train, ``[start, len(df))`` are
        the hold-out.

    Examples
    --------
    >>> from quantlib.data import load
    >>> holdout_start(load("sample:bars=1000"), 0.25)
    750
    """
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 < holdout < 1:
        raise ParameterError(f"holdout: expected a share strictly between 0 and 1, got {holdout!r}")
    start = int(len(df) * (1 - holdout))
    if start < 1 or start >= len(df):
        raise ParameterError(f"holdout: {holdout!r} of {len(df)} bars leaves an empty training "
                             "part or hold-out; use more data or another share")
    return start


@dataclass(frozen=True)
class ExperimentSetup:
    """What :func:`setup_experiment` builds: configs and the training/hold-out split.

    Attributes
    ----------
    data : the whole frame.
    features : feature config (without regime parameters: those are fitted on training bars).
    regime : ``{"n_states": K, "window": W}`` for regime-probability features, or None.
    backtest : costs and sizing of every backtest.
    split : position of the first hold-out bar (see :func:`holdout_start`).
    """

    data: pd.DataFrame
    features: FeatureConfig
    regime: dict[str, int] | None
    backtest: BacktestConfig
    split: int

    @property
    def train(self) -> pd.DataFrame:
        """The bars before the hold-out (walk-forward evaluation and the final fit use these)."""
        return self.data.iloc[: self.split]

    @property
    def feature_names(self) -> list[str]:
        """Model inputs: the configured features plus ``regime_p{k}`` when regime is set."""
        n_states = self.regime["n_states"] if self.regime else 0
        return self.features.names + [f"regime_p{k}" for k in range(n_states)]

    def describe(self) -> str:
        """One line: bar counts of the split and the feature names."""
        n = len(self.data)
        return (f"{n} bars; walk-forward on the first {self.split}, hold-out {n - self.split}; "
                f"features: {self.feature_names}")


def setup_experiment(df: pd.DataFrame, *, holdout: float = 0.25,
                     features: FeatureConfig | Mapping[str, Any] | None = None,
                     regime_states: int = 0, regime_window: int = 96,
                     backtest: BacktestConfig | Mapping[str, Any] | None = None
                     ) -> ExperimentSetup:
    """Feature config, regime settings, backtest config and training/hold-out split of ``df``.

    Parameters
    ----------
    df : OHLCV frame.
    holdout : share of bars kept out for the final model's backtest.
    features : :class:`FeatureConfig` or a dict of its overrides.
    regime_states : states of the regime-probability features' HMM; 0 for no regime features.
    regime_window : bars of the finite-memory regime filter.
    backtest : :class:`BacktestConfig` or a dict of its fields (e.g. ``{"fees": 0.001}``).

    Examples
    --------
    >>> from quantlib.data import load
    >>> setup = setup_experiment(load("sample:bars=1000"), holdout=0.2, regime_states=2)
    >>> len(setup.train), setup.regime, setup.feature_names[-1]
    (800, {'n_states': 2, 'window': 96}, 'regime_p1')
    """
    cfg = FeatureConfig.from_dict(features)
    if cfg.regime is not None:
        raise ParameterError("features: pass regime settings via regime_states/regime_window, "
                             "not fitted parameters (they are fitted on training bars only)")
    if not _is_int(regime_states) or regime_states < 0 or regime_states == 1:
        raise ParameterError(f"regime_states: expected 0 (no regime features) or a number of "
                             f"states >= 2, got {regime_states!r}")
    if not _is_int(regime_window) or regime_window < 2:
        raise ParameterError(f"regime_window: expected an integer >= 2, got {regime_window!r}")
    regime = ({"n_states": int(regime_states), "window": int(regime_window)} if regime_states
              else None)
    config = BacktestConfig.coerce(dict(backtest) if isinstance(backtest, Mapping) else backtest)
    return ExperimentSetup(df, cfg, regime, config, holdout_start(df, holdout))


@dataclass
class FittedStrategy:
    """The trained classifier and the ``xgb_classifier`` params that reference its file."""

    model: XGBSignalClassifier
    params: dict[str, Any]


def fit_strategy(df: pd.DataFrame, model_path: str | Path,
                 features: FeatureConfig | Mapping[str, Any] | None = None, *,
                 label: str = "forward", horizon: int = 12, dead_zone: float = 0.0,
                 tp: float = 0.02, sl: float = 0.02, regime: Mapping[str, Any] | None = None,
                 entry: float = 0.55, exit: float = 0.5, allow_short: bool = False,
                 memory: int = 24, model_params: Mapping[str, Any] | None = None,
                 seed: int = 0) -> FittedStrategy:
    """Fit regime model (optional), features, labels and XGBoost on ``df``; save the model.

    ``df`` is the whole training period (e.g. everything before a final hold-out). The model
    is saved as native JSON at ``model_path`` (put it beside the spec file) and the returned
    params reference it by path and SHA-256.
    """
    cfg = FeatureConfig.from_dict(features)
    if regime is not None:
        reg = dict(regime)
        cfg = replace(cfg, regime=fit_regime_params(df, n_states=int(reg.get("n_states", 2)),
                                                    window=int(reg.get("window", 96)), seed=seed))
    ds = build_dataset(df, cfg, label=label, horizon=horizon, dead_zone=dead_zone, tp=tp, sl=sl)
    model = XGBSignalClassifier(**{"validation_gap": horizon, "random_state": seed,
                                   **dict(model_params or {})}).fit(ds.X, ds.y)
    ref = model.save(str(model_path))
    params = make_params(ref, cfg, entry=entry, exit=exit, allow_short=allow_short, memory=memory)
    return FittedStrategy(model=model, params=params)


@dataclass
class HoldoutResult:
    """Outcome of :func:`holdout_evaluate`.

    Attributes
    ----------
    backtest : the ``xgb_classifier`` backtest over ``data``.
    data : the hold-out bars preceded by the strategy's warm-up bars.
    warmup : number of warm-up bars at the start of ``data`` (the signal is 0 there).
    split : position in the whole frame of the first hold-out bar (``data.iloc[warmup]``).
    buy_hold_return : close of the last bar over the open of the bar after the first hold-out
        bar, minus 1 (where a next-open fill of the first hold-out signal lands); NaN when the
        hold-out has fewer than 2 bars.
    """

    backtest: BacktestResult
    data: pd.DataFrame
    warmup: int
    split: int
    buy_hold_return: float

    @property
    def metrics(self) -> pd.Series:
        """The backtest's metrics (total_return, sharpe, ...) as one Series."""
        return self.backtest.metrics.iloc[0]

    def summary(self) -> pd.DataFrame:
        """The backtest's headline table."""
        return self.backtest.summary()


def holdout_evaluate(df: pd.DataFrame, fitted: FittedStrategy | Mapping[str, Any], *,
                     holdout: float = 0.25,
                     config: BacktestConfig | Mapping[str, Any] | None = None) -> HoldoutResult:
    """Backtest the trained ``xgb_classifier`` on the last ``holdout`` share of ``df``.

    The backtest window starts ``warmup`` bars before the first hold-out bar so that bar has its
    features; the signal is 0 during those warm-up bars, so the first fill can only come at the
    open of the bar after the first hold-out bar.

    Parameters
    ----------
    df : the whole frame (the same one :func:`setup_experiment` split).
    fitted : :class:`FittedStrategy` from :func:`fit_strategy`, or its ``params``.
    holdout : share of bars kept out (see :func:`holdout_start`).
    config : :class:`BacktestConfig` or a dict of its fields.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from quantlib.data import load
    >>> df = load("sample:seed=1,bars=1500")
    >>> fitted = fit_strategy(df.iloc[:1200], pathlib.Path(tempfile.mkdtemp()) / "m.model.json",
    ...                       horizon=6, model_params={"n_estimators": 20})
    >>> res = holdout_evaluate(df, fitted, holdout=0.2)
    >>> res.data.index[res.warmup] == df.index[1200]
    True
    """
    params = XGB_CLASSIFIER.validate(fitted.params if isinstance(fitted, FittedStrategy) else fitted)
    split = holdout_start(df, holdout)
    warm = int(XGB_CLASSIFIER.warmup(params))
    if split < warm:
        raise ParameterError(f"holdout: the hold-out starts at bar {split}, before the strategy "
                             f"warm-up of {warm} bars; use a smaller holdout or more data")
    hold = df.iloc[split - warm:]
    config = BacktestConfig.coerce(dict(config) if isinstance(config, Mapping) else config)
    res = run_backtest(KIND_NAME, hold, params, config)
    entry_bar = warm + 1
    buy_hold = (float(hold["close"].iloc[-1] / hold["open"].iloc[entry_bar] - 1)
                if len(hold) > entry_bar else math.nan)
    return HoldoutResult(backtest=res, data=hold, warmup=warm, split=split,
                         buy_hold_return=buy_hold)


def export_holdout_spec(result: HoldoutResult, path: str | Path, *, name: str | None = None,
                        symbols: list[str] | None = None) -> StrategySpec:
    """Write the draft spec of a hold-out backtest, with the model file as its artifact.

    The hold-out metrics become the spec's out-of-sample evidence; the model file (path and
    SHA-256, already in the params) is also listed in ``artifacts``.

    Parameters
    ----------
    result : from :func:`holdout_evaluate`.
    path : spec JSON file to write (put it beside the model file).
    name : spec name; the file name without ``.json`` by default.
    symbols : traded symbols (default: the data's ``symbol`` attribute).

    Examples
    --------
    >>> # spec = export_holdout_spec(holdout_evaluate(df, fitted), "out/xgb_demo.json")
    """
    path = Path(path)
    res = result.backtest
    return export(name or path.stem, result=res, data=result.data, symbols=symbols,
                  oos_metrics=res.metrics, artifacts=[res.params[0]["model_path"]], path=path)


__all__ = ["ExperimentSetup", "FittedStrategy", "HoldoutResult", "export_holdout_spec",
           "fit_strategy", "holdout_evaluate", "holdout_start", "setup_experiment"]
