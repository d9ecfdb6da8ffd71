"""Walk-forward evaluation of the XGBoost signal against baselines on the same purged folds.

Per fold: (optionally) fit the regime model on the training bars only, fit
:class:`~quantlib.ml.model.XGBSignalClassifier` (early stopping on an inner validation split),
a scikit-learn logistic regression and a buy-and-hold "model" (constant up-probability = the
training base rate), then report accuracy, log-loss and AUC on the test samples and the trading
metrics of each over the test window, beside buy-and-hold of the traded symbol over the same
test bars (``benchmark_return``, ``excess_return``, alpha, beta...: the shared benchmark metrics
of :mod:`quantlib.backtest.metrics`, held from the first test bar's close). The XGBoost fold model is saved as native JSON and
backtested as the registered ``xgb_classifier`` kind through :func:`quantlib.backtest.run_backtest`;
the baselines go through the same engine as ad-hoc kinds. Trading metrics cover the test window
only (the warm-up bars that precede it are cut before :func:`compute_metrics_frame`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from quantlib.backtest import BacktestConfig, run_backtest
from quantlib.backtest.metrics import compute_metrics_frame
from quantlib.core.ml_features import FeatureConfig
from quantlib.core.ml_features_nb import hysteresis_window_nb
from quantlib.core.registry import Param, StrategyKind
from quantlib.core.xgb_kind import XGB_CLASSIFIER, make_params
from quantlib.errors import ParameterError
from quantlib.ml.cv import PurgedWalkForwardCV
from quantlib.ml.features import compute_features
from quantlib.ml.model import Dataset, XGBSignalClassifier, build_dataset
from quantlib.ml.regime_features import fit_regime_params

MODELS = ("xgb", "logreg", "buy_hold")
# Shown by WalkForwardResult.fold_table: fold identity and sizes, then the (rounded) metrics.
FOLD_TABLE_COLUMNS = ("fold", "model", "test_start", "test_end", "n_train", "n_test", "accuracy",
                      "log_loss", "auc", "total_return", "sharpe", "max_drawdown", "n_trades",
                      "exposure", "benchmark_return", "excess_return", "excess_sharpe", "beta")


@dataclass
class WalkForwardResult:
    """Outcome of :func:`walk_forward_evaluate`.

    Attributes
    ----------
    folds : one row per (fold, model): fold span, sizes, ``accuracy``, ``log_loss``, ``auc`` and
        the trading metrics of :data:`quantlib.backtest.METRIC_NAMES` over the test window.
    predictions : one row per test sample: ``fold``, ``y``, ``fwd_return``, ``proba_xgb``,
        ``proba_logreg``, ``proba_buy_hold``.
    models : the fitted XGBoost model of each fold.
    fold_params : ``xgb_classifier`` params of each fold (saved model path + SHA-256 + features).
    test_sets : ``(X_test, y_test)`` of each fold (for permutation importance).
    """

    folds: pd.DataFrame
    predictions: pd.DataFrame
    models: list[XGBSignalClassifier]
    fold_params: list[dict[str, Any]]
    test_sets: list[tuple[pd.DataFrame, pd.Series]]
    settings: dict[str, Any] = field(default_factory=dict)

    def fold_table(self, decimals: int | None = 4) -> pd.DataFrame:
        """Per fold and model: span, sizes, classification and trading metrics (rounded).

        Examples
        --------
        >>> # walk_forward_evaluate(df).fold_table()  # one row per (fold, model)
        """
        table = self.folds[list(FOLD_TABLE_COLUMNS)]
        if decimals is None:
            return table
        return table.round({c: decimals for c in FOLD_TABLE_COLUMNS[6:]})

    def summary(self) -> pd.DataFrame:
        """Mean over folds of every numeric column, one row per model."""
        cols = ["accuracy", "log_loss", "auc", "total_return", "sharpe", "max_drawdown",
                "n_trades", "exposure", "benchmark_return", "excess_return", "excess_sharpe",
                "beta"]
        return self.folds.groupby("model", sort=False)[cols].mean()


def _classification(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    clipped = np.clip(proba, 1e-6, 1 - 1e-6)
    auc = float(roc_auc_score(y, proba)) if len(np.unique(y)) == 2 else float("nan")
    return {"accuracy": float(accuracy_score(y, proba >= 0.5)),
            "log_loss": float(log_loss(y, clipped, labels=[0, 1])), "auc": auc}


def _window_metrics(res: Any, start_row: int, close: pd.Series) -> pd.DataFrame:
    """Metrics of every combination of ``res`` over bars ``start_row..`` (the test window),
    against buy-and-hold of ``close`` over the same bars."""
    equity = res.equity.iloc[start_row:]
    closed = res.trades[res.trades["closed"]]
    pnl = [closed.loc[closed["combo"] == c, "pnl"].to_numpy() for c in range(equity.shape[1])]
    fills = res.fills
    traded = np.bincount(fills["combo"], weights=fills["price"] * fills["size"],
                         minlength=equity.shape[1])
    fees = np.bincount(fills["combo"], weights=fills["fee"], minlength=equity.shape[1])
    position = (res.positions.iloc[start_row:].to_numpy() != 0)
    return compute_metrics_frame(equity, trade_pnl=pnl, position=position, traded_value=traded,
                                 fees_paid=fees, timeframe=res.config.timeframe,
                                 year_days=res.config.year_days, init_cash=res.config.init_cash,
                                 benchmark=close.iloc[start_row:])


def _positions_kind(name: str, targets: dict[str, np.ndarray]):
    # A throwaway, unregistered kind so baselines run through the very same engine.
    return StrategyKind(name=name, params=(Param("model", str, MODELS[1], choices=tuple(targets)),),
                        signal=lambda df, p: targets[p["model"]])


def walk_forward_evaluate(
    df: pd.DataFrame, features: FeatureConfig | Mapping[str, Any] | None = None, *,
    label: str = "forward", horizon: int = 12, dead_zone: float = 0.0, tp: float = 0.02,
    sl: float = 0.02, n_splits: int = 4, test_size: int | None = None, gap: int = 0,
    regime: Mapping[str, Any] | None = None, entry: float = 0.55, exit: float = 0.5,
    allow_short: bool = False, memory: int = 24, model_params: Mapping[str, Any] | None = None,
    backtest: Any = None, seed: int = 0, artifact_dir: str | Path | None = None,
) -> WalkForwardResult:
    """Purged walk-forward evaluation of XGBoost vs logistic regression vs buy-and-hold.

    Parameters
    ----------
    df : OHLCV frame.
    features : feature config (without regime parameters; see ``regime``).
    label, horizon, dead_zone, tp, sl : labelling (see :func:`quantlib.ml.model.build_dataset`).
    n_splits, test_size, gap : :class:`PurgedWalkForwardCV` settings. Training samples whose
        labels overlap a test window are always purged; ``gap`` also drops the ``gap`` samples
        right before each test window. (An embargo would act after a test window, where walk-forward
        never trains.)
    regime : ``{"n_states": 2, "window": 96}`` adds filtered regime-probability features from a
        model fitted on each fold's training bars only; None for none.
    entry, exit, allow_short, memory : ``xgb_classifier`` trading rule (also applied to the
        logistic regression's probabilities).
    model_params : overrides of :class:`XGBSignalClassifier` parameters.
    backtest : :class:`quantlib.backtest.BacktestConfig` or dict (costs of the trading metrics).
    seed : random seed (XGBoost, regime EM).
    artifact_dir : where fold models are saved (a temporary directory by default).

    Examples
    --------
    >>> from quantlib.data import load
    >>> res = walk_forward_evaluate(load("sample:seed=1,bars=2000"), n_splits=2, horizon=6,
    ...                             model_params={"n_estimators": 40})
    >>> sorted(res.folds["model"].unique())
    ['buy_hold', 'logreg', 'xgb']
    """

    base_cfg = FeatureConfig.from_dict(features)
    if base_cfg.regime is not None:
        raise ParameterError("walk_forward_evaluate: pass regime settings via regime=..., not "
                             "fitted parameters in features (they must be fitted per fold)")
    reg_settings = dict(regime or {})
    unknown = sorted(set(reg_settings) - {"n_states", "window"})
    if unknown:
        raise ParameterError(f"walk_forward_evaluate: unknown regime setting(s) {unknown}; "
                             "expected n_states, window")
    ds = build_dataset(df, base_cfg, label=label, horizon=horizon, dead_zone=dead_zone, tp=tp, sl=sl)
    if regime is not None:
        # Regime features need a longer warm-up: drop rows the regime window does not cover.
        reg_window = int(reg_settings.get("window", 96))
        keep = ds.positions >= max(base_cfg.window, reg_window + 1) - 1
        ds = Dataset(ds.X[keep], ds.y[keep], ds.labels[keep], ds.positions[keep], base_cfg)
    config = BacktestConfig.coerce(dict(backtest) if isinstance(backtest, Mapping) else backtest)
    cv = PurgedWalkForwardCV(n_splits=n_splits, test_size=test_size, gap=gap,
                             min_train_size=100)
    out_dir = Path(artifact_dir or tempfile.mkdtemp(prefix="quantlib_ml_"))
    rows, preds, models, fold_params, test_sets = [], [], [], [], []
    for fold, (train, test) in enumerate(cv.split(ds.X, label_end=ds.labels["t_end"])):
        cfg = base_cfg
        X_all = ds.X
        if regime is not None:
            last_train_bar = int(ds.positions[train[-1]])
            reg = fit_regime_params(df.iloc[: last_train_bar + 1],
                                    n_states=int(reg_settings.get("n_states", 2)),
                                    window=int(reg_settings.get("window", 96)), seed=seed)
            cfg = replace(base_cfg, regime=reg)
            X_all = compute_features(df, cfg).iloc[ds.positions]
        X_tr, y_tr = X_all.iloc[train], ds.y.iloc[train].to_numpy()
        X_te, y_te = X_all.iloc[test], ds.y.iloc[test].to_numpy()
        xgb_model = XGBSignalClassifier(**{"validation_gap": horizon, "random_state": seed,
                                           **dict(model_params or {})}).fit(X_tr, y_tr)
        logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        logreg.fit(X_tr.to_numpy(), y_tr)
        base_rate = float(y_tr.mean())
        proba = {"xgb": xgb_model.predict_proba(X_te)[:, 1],
                 "logreg": logreg.predict_proba(X_te.to_numpy())[:, 1],
                 "buy_hold": np.full(len(test), base_rate)}
        # --- trading over the test window, through the backtest engine -------------------------
        params = make_params(xgb_model.save(str(out_dir / f"fold{fold}.model.json")), cfg,
                             entry=entry, exit=exit, allow_short=allow_short, memory=memory)
        warm = XGB_CLASSIFIER.warmup(params)
        s, e = int(ds.positions[test[0]]), int(ds.positions[test[-1]])
        if s - warm < 0:
            raise ParameterError(f"walk_forward_evaluate: fold {fold} starts at bar {s}, before "
                                 f"the strategy warm-up of {warm} bars; use fewer/smaller folds")
        window = df.iloc[s - warm: e + 1]
        res_xgb = run_backtest(XGB_CLASSIFIER, window, params, config)
        bars_X = compute_features(window, cfg).to_numpy()
        finite = np.isfinite(bars_X).all(axis=1)
        lr_bar = np.full(len(window), np.nan)
        lr_bar[finite] = logreg.predict_proba(bars_X[finite])[:, 1]
        targets = {"logreg": hysteresis_window_nb(lr_bar, entry, exit, allow_short, memory),
                   "buy_hold": np.r_[np.zeros(warm), np.ones(len(window) - warm)]}
        targets["logreg"][:warm] = 0.0
        res_base = run_backtest(_positions_kind("ml_baseline", targets), window,
                                [{"model": "logreg"}, {"model": "buy_hold"}], config)
        trading = pd.concat([_window_metrics(res_xgb, warm, window["close"]),
                             _window_metrics(res_base, warm, window["close"])])
        trading.index = list(MODELS)
        for name in MODELS:
            rows.append({"fold": fold, "model": name, "train_start": ds.X.index[train[0]],
                         "train_end": ds.X.index[train[-1]], "test_start": ds.X.index[test[0]],
                         "test_end": ds.X.index[test[-1]], "n_train": len(train),
                         "n_test": len(test), **_classification(y_te, proba[name]),
                         **trading.loc[name].to_dict()})
        preds.append(pd.DataFrame({"fold": fold, "y": y_te,
                                   "fwd_return": ds.labels["fwd_return"].iloc[test].to_numpy(),
                                   **{f"proba_{m}": p for m, p in proba.items()}},
                                  index=X_te.index))
        models.append(xgb_model)
        fold_params.append(params)
        test_sets.append((X_te, pd.Series(y_te, index=X_te.index, name="y")))
    settings = {"label": label, "horizon": horizon, "dead_zone": dead_zone, "tp": tp, "sl": sl,
                "n_splits": n_splits, "gap": gap, "regime": reg_settings or None,
                "entry": entry, "exit": exit, "allow_short": allow_short, "memory": memory,
                "seed": seed, "artifact_dir": str(out_dir)}
    return WalkForwardResult(pd.DataFrame(rows), pd.concat(preds), models, fold_params,
                             test_sets, settings)


__all__ = ["FOLD_TABLE_COLUMNS", "MODELS", "WalkForwardResult", "walk_forward_evaluate"]
