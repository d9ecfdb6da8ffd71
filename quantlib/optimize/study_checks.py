"""Checks that keep an optuna study honest: options first, then one study = one experiment.

Options are checked before any data is loaded or any trial runs, so a bad ``--splits`` costs
nothing and leaves nothing behind in the storage. A study records what it searches (strategy
kind, SHA-256 of the data, search space, objectives, CSCV blocks) in its user attributes when it
is created; joining it with anything else is refused, because its trials would be pooled into one
DSR/PBO and one "best" parameter set across different experiments.

Examples
--------
>>> check_study_options(sampler="tpe", n_trials=10, n_workers=1, n_splits=3)
Traceback (most recent call last):
...
quantlib.errors.ParameterError: n_splits (--splits): expected an even number >= 2 of CSCV blocks, got 3
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from quantlib.backtest.metrics import METRIC_NAMES
from quantlib.errors import ParameterError
from quantlib.strategy.spec import sha256_frame

STUDY_ATTR = "quantlib_experiment"  # the user attribute holding the experiment's identity
SAMPLERS = ("tpe", "random", "cmaes", "nsga2")
PRUNERS = (None, "none", "median")
# What makes two runs the same experiment, with the words a message uses for each.
_IDENTITY = {"kind": "kind", "data_sha256": "data (SHA-256)", "space": "search space",
             "objectives": "objectives", "n_splits": "CSCV blocks (--splits)"}


def check_study_options(*, sampler: str, n_trials: Any, n_workers: Any, n_splits: Any,
                        objectives: Sequence[str] = ("sharpe",), pruner: str | None = None,
                        min_trades: Any = None, max_drawdown: Any = None,
                        storage: str | None = None) -> None:
    """Raise ParameterError for the first bad option, naming it; no data or storage needed."""
    if sampler not in SAMPLERS:
        raise ParameterError(f"sampler (--sampler): expected one of {list(SAMPLERS)} "
                             f"(or 'grid' for a full sweep), got {sampler!r}")
    _positive_int(n_trials, "n_trials (--trials)")
    _positive_int(n_workers, "n_workers (--workers)")
    check_splits(n_splits)
    if not objectives:
        raise ParameterError("objectives (--objective): expected at least one metric name")

    unknown = [o for o in objectives if o not in METRIC_NAMES]
    if unknown:
        raise ParameterError(f"objectives (--objective): unknown metric(s) {unknown}; expected "
                             f"some of {list(METRIC_NAMES)}")
    if pruner not in PRUNERS:
        raise ParameterError(f"pruner (--pruner): expected 'median' or 'none', got {pruner!r}")
    if len(objectives) > 1 and pruner not in (None, "none"):
        raise ParameterError("pruner (--pruner): optuna cannot prune multi-objective studies; "
                             "use 'none'")
    if sampler == "cmaes" and len(objectives) > 1:
        raise ParameterError("sampler 'cmaes' is single-objective; use 'nsga2' for several "
                             "objectives")
    if min_trades is not None:
        _positive_int(min_trades, "min_trades (--min-trades)", minimum=0)
    if max_drawdown is not None and not (isinstance(max_drawdown, numbers.Real)
                                         and math.isfinite(max_drawdown) and max_drawdown > 0):
        raise ParameterError(f"max_drawdown (--max-drawdown): expected a fraction > 0 such as "
                             f"0.25, got {max_drawdown!r}")
    if n_workers > 1 and storage == "memory":
        raise ParameterError("storage: several workers need a shared database URL, not 'memory'")


def check_splits(n_splits: Any, n_bars: int | None = None) -> None:
    """CSCV needs an even number of blocks >= 2, each at least two bars long."""
    if (isinstance(n_splits, bool) or not isinstance(n_splits, numbers.Integral) or n_splits < 2
            or n_splits % 2):
        raise ParameterError(f"n_splits (--splits): expected an even number >= 2 of CSCV blocks, "
                             f"got {n_splits!r}")
    if n_bars is not None and n_bars < 2 * n_splits:
        raise ParameterError(f"n_splits (--splits): {n_bars} bars are too few for {n_splits} "
                             f"CSCV blocks (need >= {2 * n_splits} bars)")


def _positive_int(value: Any, name: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(f"{name}: expected an integer >= {minimum}, got {value!r}")


def bar_count(data: Any) -> int:
    """Bars of a frame, or of a ``{symbol: frame}`` portfolio (its shortest frame), not symbols."""
    if isinstance(data, Mapping):
        return min((len(frame) for frame in data.values()), default=0)
    return len(data)


def _data_identity(data: Any) -> tuple[str, str]:
    """SHA-256 and source name of a frame, or of a portfolio's frames in their symbol order."""
    def source(frame: Any) -> str:
        return str(getattr(frame, "attrs", {}).get("source_string", ""))

    if not isinstance(data, Mapping):
        return sha256_frame(data), source(data)
    digest = hashlib.sha256()
    for symbol, frame in data.items():  # order matters: symbols settle in this order
        digest.update(f"{symbol}={sha256_frame(frame)};".encode())
    return digest.hexdigest(), ",".join(f"{symbol}={source(f)}" for symbol, f in data.items())


def experiment_identity(kind: str, data: Any, space: Any, objectives: Sequence[str],
                        n_splits: int) -> dict[str, Any]:
    """What a study searches, as JSON-ready values: compared when a study is joined."""
    data_sha256, data_source = _data_identity(data)
    return {"kind": kind, "data_sha256": data_sha256, "space": describe_space(space),
            "objectives": list(objectives), "n_splits": int(n_splits),
            # shown in messages, not compared: the same bars may be named two ways
            "data_source": data_source}


def describe_space(space: Any) -> str:
    """Canonical text of a :class:`~quantlib.optimize.space.SearchSpace` (dimensions and fixed
    values), stable across processes and machines."""
    dims = [{"name": d.name, "type": d.type.__name__, "low": d.low, "high": d.high,
             "step": d.step, "log": d.log,
             "values": list(d.values) if d.values is not None else None}
            for d in space.dimensions]
    return json.dumps({"dimensions": dims, "fixed": space.fixed}, sort_keys=True, default=repr)


def claim_or_check(study: Any, identity: dict[str, Any], storage_label: str) -> None:
    """Record ``identity`` on a new study, or refuse a study recorded with another one.

    Two workers starting together may both find the study unclaimed: each writes its identity
    and reads back what the storage kept, so the one whose write lost is refused too.
    """
    recorded = study.user_attrs.get(STUDY_ATTR)
    if recorded is None:
        if study.trials:
            raise ParameterError(
                f"study {study.study_name!r} in {storage_label} has {len(study.trials)} trial(s) "
                "but no record of its kind, data and search space (made by an older quantlib); "
                "use a new --study name")
        study.set_user_attr(STUDY_ATTR, identity)
        recorded = study.user_attrs.get(STUDY_ATTR)
    differences = [key for key in _IDENTITY if recorded.get(key) != identity[key]]
    if differences:
        raise ParameterError(_mismatch_message(study.study_name, storage_label, recorded,
                                               identity, differences))


def _mismatch_message(name: str, storage_label: str, recorded: dict, identity: dict,
                      differences: list[str]) -> str:
    lines = [f"study {name!r} in {storage_label} belongs to another experiment; its trials "
             "would be pooled with this run's (one DSR/PBO, one best) so it is not joined:"]
    for key in differences:
        theirs, ours = _shown(key, recorded), _shown(key, identity)
        lines.append(f"  {_IDENTITY[key]}: the study has {theirs}, this run has {ours}")
    lines.append("use a new --study name, or the study's own kind, data, space, objectives "
                 "and --splits")
    return "\n".join(lines)


def _shown(key: str, identity: dict) -> str:
    value = identity.get(key)
    if key == "data_sha256":
        source = identity.get("data_source")
        return f"{str(value)[:12]}..." + (f" ({source})" if source else "")
    if key == "space":
        return _compact_space(value)
    return repr(value)


def _compact_space(text: Any) -> str:
    """``n_levels=4:10, lower_pct=0.05:0.3, mode=a|b, fixed fee=1``: the --space spelling."""
    try:
        space = json.loads(text)
        parts = []
        for dim in space["dimensions"]:
            if dim["values"] is not None:
                parts.append(f"{dim['name']}=" + "|".join(str(v) for v in dim["values"]))
            else:
                step = f":{dim['step']:g}" if dim["step"] is not None else ""
                log = " (log)" if dim["log"] else ""
                parts.append(f"{dim['name']}={dim['low']:g}:{dim['high']:g}{step}{log}")
        parts += [f"fixed {name}={value!r}" for name, value in sorted(space["fixed"].items())]
    except (TypeError, ValueError, KeyError):
        return repr(text)
    return "'" + (", ".join(parts) or "(nothing searched)") + "'"


__all__ = ["check_study_options", "check_splits", "experiment_identity", "describe_space",
           "claim_or_check", "STUDY_ATTR", "SAMPLERS"]
