"""Files a spec references by path and SHA-256: model files (XGBoost's native JSON). No pickle.

A strategy spec never carries code or binary blobs: the ``xgb_classifier`` kind's params hold the
model file's path (relative paths resolve against the spec's directory, or the working
directory) and its SHA-256. :func:`load_tree_model` (and :func:`quantlib.core.model_files.
load_booster`) refuse a file whose hash differs, so a spec approved with one model can never
silently trade another.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantlib.core.trees import TreeEnsemble
from quantlib.errors import SpecError


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (what specs record for their artifacts)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelRef:
    """Where a saved model lives and the SHA-256 of its bytes."""

    path: str
    sha256: str


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


def load_verified(path: str | Path, sha256: str, base_dir: str | Path | None, what: str,
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
    actual = sha256_file(resolved)
    if actual != sha256:
        raise SpecError(
            f"model file {resolved}: SHA-256 is {actual} but params.model_sha256 expects "
            f"{sha256}; the file changed since the spec was written (refusing to load it)")
    loaded = loader(resolved)
    _CACHE[key] = (stamp, loaded)
    return loaded


def load_tree_model(path: str | Path, sha256: str, base_dir: str | Path | None = None) -> Any:
    """Load a native-JSON XGBoost model as a :class:`~quantlib.core.trees.TreeEnsemble` (the
    numba evaluator the ``xgb_classifier`` kind trades with) after checking its SHA-256.

    Raises
    ------
    SpecError
        The file is missing, unreadable, not a binary-logistic tree model, or its SHA-256 differs
        from ``sha256``.
    """
    return load_verified(path, sha256, base_dir, "trees", TreeEnsemble.from_file)


__all__ = ["ModelRef", "load_tree_model", "load_verified", "resolve_model_path", "sha256_file"]
