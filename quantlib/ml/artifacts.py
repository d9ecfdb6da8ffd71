"""Model files: XGBoost's native JSON format, referenced by path and SHA-256. No pickle.

A strategy spec never carries code or binary blobs: the ``xgb_classifier`` kind's params hold the
model file's path (relative paths resolve against the spec's directory, or the working
directory) and its SHA-256. :func:`load_booster` refuses a file whose hash differs, so a spec
approved with one model can never silently trade another.

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

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantlib.errors import ParameterError, SpecError
from quantlib.strategy.spec import sha256_file


@dataclass(frozen=True)
class ModelRef:
    """Where a saved model lives and the SHA-256 of its bytes."""

    path: str
    sha256: str


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


def resolve_model_path(path: str | Path, base_dir: str | Path | None = None) -> Path:
    """Absolute path of a model file: relative paths resolve against ``base_dir`` (the spec's
    directory) when given, else the ``QUANTLIB_SPEC_DIR`` environment variable, else the cwd."""
    p = Path(path)
    if p.is_absolute():
        return p
    base = base_dir if base_dir is not None else os.environ.get("QUANTLIB_SPEC_DIR")
    return (Path(base) / p) if base else p.resolve()


_CACHE: dict[tuple[str, str, str], tuple[tuple[int, int], Any]] = {}
_RESOLVED: dict[tuple[str, ...], Path] = {}


def _load_verified(path: str | Path, sha256: str, base_dir: str | Path | None, what: str,
                   loader: Any) -> Any:
    # Loaded objects are cached per (path, hash, what) and the file's size/mtime, so the per-bar
    # live call does not re-read the file; a changed file is re-hashed (and refused if it no
    # longer matches).
    where = (str(path), str(base_dir), os.environ.get("QUANTLIB_SPEC_DIR"), os.getcwd())
    resolved = _RESOLVED.get(where)
    if resolved is None:
        resolved = _RESOLVED[where] = resolve_model_path(path, base_dir)
    try:
        stat = resolved.stat()
    except OSError:
        raise SpecError(f"model file {resolved} (params.model_path={str(path)!r}) does not exist"
                        ) from None
    key = (str(resolved), sha256, what)
    stamp = (stat.st_size, stat.st_mtime_ns)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    actual = file_sha256(resolved)
    if actual != sha256:
        raise SpecError(
            f"model file {resolved}: SHA-256 is {actual} but params.model_sha256 expects "
            f"{sha256}; the file changed since the spec was written (refusing to load it)")
    loaded = loader(resolved)
    _CACHE[key] = (stamp, loaded)
    return loaded


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

    return _load_verified(path, sha256, base_dir, "booster", load)


def load_tree_model(path: str | Path, sha256: str, base_dir: str | Path | None = None) -> Any:
    """Load a native-JSON XGBoost model as a :class:`~quantlib.ml.trees.TreeEnsemble` (the
    numba evaluator the ``xgb_classifier`` kind trades with) after checking its SHA-256.

    Raises
    ------
    SpecError
        The file is missing, unreadable, not a binary-logistic tree model, or its SHA-256 differs
        from ``sha256``.
    """
    from quantlib.ml.trees import TreeEnsemble

    return _load_verified(path, sha256, base_dir, "trees", TreeEnsemble.from_file)


__all__ = ["ModelRef", "save_model", "load_booster", "load_tree_model", "file_sha256",
           "resolve_model_path"]
