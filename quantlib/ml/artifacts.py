"""XGBoost model files on the research side: save a trained model as native JSON, load it back
as an ``xgboost.Booster``. Paths, hashes and the numba tree model the kind trades with are
:mod:`quantlib.core.model_files`.

Examples
--------
>>> import numpy as np, xgboost as xgb, tempfile, pathlib
>>> X = np.random.default_rng(0).normal(size=(50, 2)); y = (X[:, 0] > 0).astype(int)
>>> clf = xgb.XGBClassifier(n_estimators=3, n_jobs=1).fit(X, y)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.model.json"
>>> ref = save_model(clf, path)
>>> len(ref.sha256), load_booster(ref.path, ref.sha256).num_boosted_rounds()
(64, 3)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantlib.core.model_files import ModelRef, load_verified, sha256_file
from quantlib.errors import ParameterError, SpecError


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (the same hash strategy specs record for artifacts)."""
    return sha256_file(path)


def save_model(model: Any, path: str | Path) -> ModelRef:
    """Save an XGBoost model (``XGBClassifier`` or ``Booster``) as native JSON.

    Parameters
    ----------
    model : fitted :class:`~quantlib.ml.model.XGBSignalClassifier`, ``xgboost.XGBClassifier``
        or ``xgboost.Booster``.
    path : target file; must end in ``.json`` (XGBoost picks the format from the suffix).
    """
    import xgboost as xgb

    path = Path(path)
    if path.suffix != ".json":
        raise ParameterError(f"model file {path}: must end in '.json' (XGBoost native JSON)")
    if isinstance(model, xgb.XGBModel):
        booster = model.get_booster()
        # With early stopping, XGBoost keeps every tree but predicts with the best iteration's;
        # the saved file must hold exactly the trees the user evaluated.
        try:
            booster = booster[: int(model.best_iteration) + 1]
        except AttributeError:  # trained without early stopping: every tree counts
            pass
    else:  # XGBSignalClassifier keeps its best-iteration booster in booster_
        booster = getattr(model, "booster_", model)
    if not isinstance(booster, xgb.Booster):
        raise ParameterError(f"save_model: expected an XGBoost model or Booster, got "
                             f"{type(model).__name__}")
    path.parent.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(path))
    return ModelRef(path=str(path), sha256=file_sha256(path))


def load_booster(path: str | Path, sha256: str, base_dir: str | Path | None = None) -> Any:
    """Load a native-JSON XGBoost model as an ``xgboost.Booster`` after checking its SHA-256.

    Raises
    ------
    SpecError
        The file is missing, unreadable, or its SHA-256 differs from ``sha256``.
    """
    def load(resolved: Path) -> Any:
        import xgboost as xgb

        booster = xgb.Booster()
        try:
            booster.load_model(str(resolved))
        except xgb.core.XGBoostError as exc:
            raise SpecError(f"model file {resolved}: not a valid XGBoost JSON model ({exc})"
                            ) from None
        booster.set_param({"nthread": 1})  # one row per bar: threads cost more than they save
        return booster

    return load_verified(path, sha256, base_dir, "booster", load)


__all__ = ["file_sha256", "load_booster", "save_model"]
