"""The report config (``notebooks/reports.yaml``): which notebooks to run with which parameters.

Format::

    defaults:              # optional
      source: sample       # data source string, passed as the notebooks' `source` parameter
      hide_code: true      # hide code cells in the HTML (error cells always show their code)
      timeout: 900         # seconds per cell
    notebooks:
      - name: 02_backtest          # unique; also the report file stem
        path: 02_backtest.ipynb    # optional, relative to the config file (default <name>.ipynb)
        source: sample:bars=8760   # optional, overrides defaults.source
        params:                    # optional named parameter sets (default: {default: {}})
          default: {fast: 10, slow: 50}
          slow_ma: {fast: 20, slow: 100}

Parameter names are checked against the notebook's ``parameters`` cell, so a typo fails at load
time with the file, notebook and parameter named, not deep inside a papermill run.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from quantlib.errors import DataError, ReportError

DEFAULT_CONFIG = Path("notebooks/reports.yaml")
DEFAULT_SOURCE = "sample"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_DEFAULT_KEYS = {"source", "hide_code", "timeout"}
_NOTEBOOK_KEYS = {"name", "path", "source", "params"}


@dataclass(frozen=True)
class NotebookJob:
    """One notebook of the config with its named parameter sets."""

    name: str
    path: Path
    source: str
    param_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    parameters: tuple[str, ...] = ()  # names declared in the notebook's parameters cell


@dataclass(frozen=True)
class ReportConfig:
    """A loaded, validated report config."""

    path: Path
    notebooks: tuple[NotebookJob, ...]
    hide_code: bool = False
    timeout: int = 900
    missing: tuple[str, ...] = ()

    def select(self, only: list[str] | None, *, skip_missing: bool = False) -> tuple[NotebookJob, ...]:
        """The jobs named in ``only`` (all when None).

        Unknown names raise ReportError, and so do selected notebooks whose file is missing
        unless ``skip_missing``.
        """
        wanted_missing = [name for name in self.missing if not only or name in only]
        if wanted_missing and not skip_missing:
            raise ReportError(
                f"{self.path}: {', '.join(wanted_missing)}: notebook file(s) do not exist in "
                f"{self.path.parent} (add them, fix `path:`, or run with --skip-missing)"
            )
        if not only:
            return self.notebooks
        known = {job.name: job for job in self.notebooks}
        unknown = [name for name in only if name not in known and name not in self.missing]
        if unknown:
            raise ReportError(
                f"{self.path}: --only {', '.join(unknown)}: no such notebook in the config "
                f"(known: {', '.join(known)})"
            )
        return tuple(known[name] for name in only if name in known)


def _fail(path: Path, where: str, message: str) -> ReportError:
    return ReportError(f"{path}: {where}: {message}")


def notebook_parameters(nb_path: Path) -> list[str]:
    """Names assigned in the notebook's first code cell tagged ``parameters``.

    Parsed with :mod:`ast` (papermill's own line parser skips lines whose trailing comment it
    cannot read).

    Examples
    --------
    >>> notebook_parameters(Path("notebooks/01_data.ipynb"))[:1]  # doctest: +SKIP
    ['source']
    """
    import nbformat

    nb = nbformat.read(str(nb_path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            try:
                tree = ast.parse(cell.source)
            except SyntaxError as exc:
                raise ReportError(f"{nb_path}: parameters cell is not valid Python: {exc}") from None
            names = []
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else (
                    [node.target] if isinstance(node, ast.AnnAssign) else [])
                names += [t.id for t in targets if isinstance(t, ast.Name)]
            return names
    return []


def _check_params(
    path: Path, where: str, nb_path: Path, params: Any, declared: list[str]
) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise _fail(path, where, f"expected a mapping of parameter names to values, got {params!r}")
    for key in params:
        if key not in declared:
            raise _fail(
                path,
                f"{where}.{key}",
                f"not a parameter of {nb_path.name} (its parameters cell declares: "
                f"{', '.join(declared) or 'nothing'})",
            )
    return dict(params)


def _check_source(path: Path, where: str, source: str) -> None:
    # A malformed source string is a config error, found before any notebook runs.
    from quantlib.data import parse_source

    try:
        parse_source(source)
    except DataError as exc:
        raise _fail(path, where, str(exc)) from None


def _parse_notebook(path: Path, index: int, entry: Any, default_source: str) -> NotebookJob | None:
    where = f"notebooks[{index}]"
    if not isinstance(entry, dict):
        raise _fail(path, where, f"expected a mapping with at least 'name', got {entry!r}")
    extra = set(entry) - _NOTEBOOK_KEYS
    if extra:
        raise _fail(path, where, f"unknown key(s) {sorted(extra)}; allowed: {sorted(_NOTEBOOK_KEYS)}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _fail(path, f"{where}.name", f"expected a file-name-safe string, got {name!r}")
    nb_path = (path.parent / str(entry.get("path", f"{name}.ipynb"))).resolve()
    if not nb_path.is_file():
        return None
    source = entry.get("source", default_source)
    if not isinstance(source, str) or not source:
        raise _fail(path, f"{where}.source", f"expected a data source string, got {source!r}")
    _check_source(path, f"{where}.source" if "source" in entry else "defaults.source", source)
    raw_sets = entry.get("params", {"default": {}})
    if not isinstance(raw_sets, dict) or not raw_sets:
        raise _fail(path, f"{where}.params", f"expected named parameter sets, got {raw_sets!r}")
    declared = notebook_parameters(nb_path)
    param_sets = {}
    for set_name, params in raw_sets.items():
        if not isinstance(set_name, str) or not _NAME_RE.match(set_name):
            raise _fail(path, f"{where}.params", f"parameter set name {set_name!r} is not file-name-safe")
        param_sets[set_name] = _check_params(
            path, f"{where}.params.{set_name}", nb_path, params or {}, declared
        )
    return NotebookJob(name=name, path=nb_path, source=source, param_sets=param_sets,
                       parameters=tuple(declared))


def load_config(path: str | Path = DEFAULT_CONFIG, *, require_notebooks: bool = True) -> ReportConfig:
    """Load and validate a report config.

    Parameters
    ----------
    path : str or Path
        The YAML file (default ``notebooks/reports.yaml``).
    require_notebooks : bool
        When True (default) a listed notebook that does not exist raises ReportError; when
        False it is left out of ``notebooks`` and named in ``missing``.

    Examples
    --------
    >>> load_config("missing.yaml")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    quantlib.errors.ReportError: missing.yaml: report config file does not exist
    """
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: report config file does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ReportError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(raw, dict) or "notebooks" not in raw:
        raise ReportError(f"{path}: expected a mapping with a 'notebooks' list")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict) or set(defaults) - _DEFAULT_KEYS:
        raise _fail(path, "defaults", f"expected a mapping with keys among {sorted(_DEFAULT_KEYS)}")
    timeout = defaults.get("timeout", 900)
    if not isinstance(timeout, int) or timeout <= 0:
        raise _fail(path, "defaults.timeout", f"expected a positive integer of seconds, got {timeout!r}")
    entries = raw["notebooks"]
    if not isinstance(entries, list):
        raise _fail(path, "notebooks", f"expected a list, got {type(entries).__name__}")
    default_source = str(defaults.get("source", DEFAULT_SOURCE))
    jobs, missing = [], []
    for index, entry in enumerate(entries):
        job = _parse_notebook(path, index, entry, default_source)
        if job is None:
            missing.append(entry["name"])
            continue
        if any(job.name == other.name for other in jobs):
            raise _fail(path, f"notebooks[{index}].name", f"duplicate notebook name {job.name!r}")
        jobs.append(job)
    config = ReportConfig(
        path=path.resolve(),
        notebooks=tuple(jobs),
        hide_code=bool(defaults.get("hide_code", False)),
        timeout=timeout,
        missing=tuple(missing),
    )
    if require_notebooks:
        config.select(None)  # raises ReportError naming every missing notebook
    return config


def missing_notebooks(path: str | Path) -> list[str]:
    """Names of notebooks listed in the config whose file does not exist."""
    return list(load_config(path, require_notebooks=False).missing)


__all__ = ["NotebookJob", "ReportConfig", "load_config", "missing_notebooks", "DEFAULT_CONFIG"]
