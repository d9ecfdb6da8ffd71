"""Numba kernel evaluating a boosted tree ensemble (numpy/numba only; see ``trees.py``).

Mirrors XGBoost's CPU predictor for numerical splits: features are rounded to float32, a row goes
left when ``x < threshold`` (NaN follows the node's default direction), and the margin starts at
the base margin and adds each tree's leaf value in float32, tree by tree.
"""

from __future__ import annotations

import numpy as np

from quantlib.jit import njit


@njit(cache=True,
      aot="f4[:](f8[:, :], i8[:], f4[:], i8[:], i8[:], b1[:], f4[:], i8[:], f4)")
def predict_margin_nb(X, feature, threshold, left, right, default_left, value, roots,
                      base_margin):
    """Float32 margin per row of ``X`` (rows x features, float64).

    Node arrays are the trees' nodes laid end to end; ``left``/``right`` hold global node indices
    (-1 on leaves), ``roots`` the index of each tree's root.
    """
    n = X.shape[0]
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        acc = np.float32(base_margin)
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                x = X[i, feature[node]]
                if np.isnan(x):
                    node = left[node] if default_left[node] else right[node]
                elif np.float32(x) < threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            acc += value[node]
        out[i] = acc
    return out


@njit(cache=True, aot="f4[:](f4[:])")
def sigmoid_f32_nb(margin):
    """Logistic function in float32, as XGBoost's ``binary:logistic`` output."""
    out = np.empty(margin.shape[0], dtype=np.float32)
    one = np.float32(1.0)
    for i in range(margin.shape[0]):
        out[i] = one / (one + np.exp(-margin[i]))
    return out
