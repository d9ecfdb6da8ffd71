"""What the model learnt: gain importance, permutation importance on test folds, calibration.

All three take a :class:`~quantlib.ml.evaluate.WalkForwardResult`, so importance is measured on
the *test* folds (out of sample), never on training rows. Plots live in
:mod:`quantlib.plotting.ml`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance as sk_permutation_importance

from quantlib.errors import ParameterError
from quantlib.ml.evaluate import WalkForwardResult


def gain_importance(result: WalkForwardResult) -> pd.DataFrame:
    """Total split gain per feature for each fold model (rows = features, columns = folds),
    normalised to sum to 1 per fold, sorted by the mean.

    Examples
    --------
    >>> # gain_importance(walk_forward_evaluate(df)).head()
    """
    cols = {f"fold{i}": m.gain_importance() for i, m in enumerate(result.models)}
    table = pd.DataFrame(cols).fillna(0.0)
    table = table / table.sum(axis=0).replace(0.0, 1.0)
    return table.loc[table.mean(axis=1).sort_values(ascending=False).index]


def permutation_importance(result: WalkForwardResult, n_repeats: int = 5, seed: int = 0
                           ) -> pd.DataFrame:
    """Mean increase in test log-loss when one feature is shuffled, per fold (scikit-learn's
    :func:`sklearn.inspection.permutation_importance` on each fold's test set).

    Returns a frame with rows = features, columns ``fold{i}`` plus ``mean`` and ``std``
    (across folds), sorted by ``mean``.
    """
    if int(n_repeats) < 1:
        raise ParameterError(f"permutation_importance: n_repeats must be >= 1, got {n_repeats!r}")
    cols = {}
    for i, (model, (X_te, y_te)) in enumerate(zip(result.models, result.test_sets, strict=True)):
        if y_te.nunique() < 2:
            continue
        imp = sk_permutation_importance(model, X_te, y_te, scoring="neg_log_loss",
                                        n_repeats=int(n_repeats), random_state=seed)
        cols[f"fold{i}"] = pd.Series(imp.importances_mean, index=X_te.columns)
    table = pd.DataFrame(cols)
    table["mean"] = table.mean(axis=1)
    table["std"] = table[list(cols)].std(axis=1, ddof=0)
    return table.sort_values("mean", ascending=False)


def calibration_table(result: WalkForwardResult, model: str = "xgb", n_bins: int = 10
                      ) -> pd.DataFrame:
    """Predicted up-probability vs what happened, on all test predictions.

    Test samples are cut into ``n_bins`` quantile bins of predicted probability; per bin:
    ``n``, ``mean_proba``, ``hit_rate`` (share of up labels) and ``mean_return`` (mean realized
    label-window return).
    """
    col = f"proba_{model}"
    pred = result.predictions
    if col not in pred.columns:
        raise ParameterError(f"calibration_table: unknown model {model!r}; expected one of "
                             f"{[c[6:] for c in pred.columns if c.startswith('proba_')]}")
    proba = pred[col].to_numpy()
    if np.unique(proba).size < 2:
        bins = np.zeros(len(proba), dtype=int)
    else:
        bins = pd.qcut(proba, q=int(n_bins), labels=False, duplicates="drop")
    frame = pd.DataFrame({"bin": bins, "proba": proba, "y": pred["y"].to_numpy(),
                          "ret": pred["fwd_return"].to_numpy()})
    out = frame.groupby("bin").agg(n=("y", "size"), mean_proba=("proba", "mean"),
                                   hit_rate=("y", "mean"), mean_return=("ret", "mean"))
    return out


__all__ = ["gain_importance", "permutation_importance", "calibration_table"]
