"""optuna studies over a kind's search space: TPE, random, CMA-ES and NSGA-II (multi-objective).

Each trial backtests one parameter set with :func:`quantlib.backtest.run_backtest`, or with the
fused kernel (:mod:`quantlib.optimize.fused`) for built-in signal kinds whose configuration and
objectives it supports; objectives are columns of the shared metrics. The trial stores its return moments (Sharpe, skew, kurtosis,
CSCV block sums) as user attributes, so DSR and PBO can be computed from the storage alone, no
matter how many processes or machines ran the trials. Storage is any SQLAlchemy URL: several
workers (``quantlib optimize --workers N``, or the same command on other machines) share one
study through it.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import socket
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import optuna
import pandas as pd

from quantlib.backtest.metrics import BENCHMARK_METRIC_NAMES
from quantlib.core.registry import get_kind
from quantlib.errors import ParameterError
from quantlib.optimize.fused import fused_unsupported
from quantlib.optimize.space import SearchSpace
from quantlib.optimize.stats import OverfittingReport, ReturnMoments, overfitting_report
from quantlib.optimize.storage import default_storage, load_study, make_storage, storage_label
from quantlib.optimize.study_batch import BATCH_SIZE, optimize_batched
from quantlib.optimize.study_checks import (
    SAMPLERS,
    bar_count,
    check_splits,
    check_study_options,
    claim_or_check,
    experiment_identity,
)
from quantlib.optimize.sweep import MINIMIZE_METRICS, evaluate_chunk

# Samplers that take optuna's constraints_func; the others get a penalised objective.
_CONSTRAINT_SAMPLERS = ("tpe", "nsga2")
PENALTY = 1e6
_HAS_SET_CONSTRAINT = hasattr(optuna.trial.Trial, "set_constraint")
PRUNE_FRACTIONS = (0.25, 0.5)  # prefixes of the data reported as intermediate values


def make_sampler(name: str, seed: int | None, n_objectives: int, constrained: bool):
    """optuna sampler by name (``tpe``, ``random``, ``cmaes``, ``nsga2``), seeded."""
    # optuna >= 5 reads constraints recorded with Trial.set_constraint; older versions need the
    # (since deprecated) constraints_func.
    cons = (_constraints_func if constrained and name in _CONSTRAINT_SAMPLERS
            and not _HAS_SET_CONSTRAINT else None)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constraints_func=cons,
                                          multivariate=n_objectives == 1)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        if n_objectives > 1:
            raise ParameterError("sampler 'cmaes' is single-objective; use 'nsga2' for several "
                                 "objectives")
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=cons,
                                             population_size=20)
    raise ParameterError(f"sampler: expected one of {list(SAMPLERS)}, got {name!r}")


def _constraints_func(trial: optuna.trial.FrozenTrial) -> Sequence[float]:
    return trial.user_attrs.get("constraints", [1.0])


def direction_of(objective: str) -> str:
    return "minimize" if objective in MINIMIZE_METRICS else "maximize"


def _objective_value(metrics: pd.Series, objective: str) -> float:
    value = float(metrics[objective])
    return abs(value) if objective == "max_drawdown" else value



def _leading_share(data: Any, frac: float, minimum: int) -> Any:
    """The first ``frac`` of the bars (at least ``minimum``) of a frame or of every frame of a
    ``{symbol: frame}`` portfolio: what a pruned trial is judged on first."""
    if isinstance(data, Mapping):
        return {symbol: _leading_share(frame, frac, minimum) for symbol, frame in data.items()}
    return data.iloc[: max(int(len(data) * frac), minimum)]

@dataclass
class Objective:
    """The picklable optuna objective: backtest one parameter set, score it, check constraints."""

    kind: str
    data: pd.DataFrame
    space: SearchSpace
    objectives: tuple[str, ...] = ("sharpe",)
    min_trades: int | None = None
    max_drawdown: float | None = None
    config: Any = None
    n_splits: int = 16
    penalize: bool = False
    prune: bool = False
    informative: Mapping[str, Any] | None = None  # other symbols' frames (run_backtest's)
    _checked: bool = field(default=False, init=False, repr=False)

    def _violation(self, metrics: pd.Series) -> list[float]:
        # optuna convention: each value <= 0 means satisfied.
        out = []
        if self.min_trades is not None:
            trades = float(metrics.get("n_trades", np.nan))
            out.append(self.min_trades - trades if math.isfinite(trades) else float(self.min_trades))
        if self.max_drawdown is not None:
            mdd = abs(float(metrics.get("max_drawdown", np.nan)))
            out.append(mdd - self.max_drawdown if math.isfinite(mdd) else 1.0)
        return out

    def _fused(self) -> bool:
        """Trials of built-in signal kinds run the fused kernel (quantlib.optimize.fused)
        unless the configuration or an objective needs run_backtest."""
        kind = get_kind(self.kind)
        if self.informative:
            return False
        return all(fused_unsupported(kind, self.data, self.config, o, benchmark_ok=True) is None
                   for o in self.objectives)

    def _benchmark(self) -> bool:
        """An objective is benchmark-relative: the fused rows must carry those metrics."""
        return any(o in BENCHMARK_METRIC_NAMES for o in self.objectives)

    def trial_params(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's parameter set (suggested by the sampler), recorded on the trial; raises
        ``TrialPruned`` when the kind's constraints reject it."""
        params = self.space.suggest(trial)
        if params is None:  # the kind's constraints (e.g. fast < slow) reject this point
            trial.set_user_attr("invalid", True)
            raise optuna.TrialPruned("parameters violate the kind's constraints")
        trial.set_user_attr("params", params)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        return params

    def evaluate(self, params: list[dict[str, Any]]) -> tuple[pd.DataFrame, ReturnMoments]:
        """Metrics and return moments of parameter sets, in one call (fused when it can)."""
        out = evaluate_chunk(self.kind, self.data, params, self.config, self.n_splits,
                             self._fused(), self._checked, self.informative,
                             benchmark=self._benchmark())
        self._checked = True  # the data passed validation once in this process
        return out

    def __call__(self, trial: optuna.Trial):
        params = self.trial_params(trial)
        if self.prune:
            for step, frac in enumerate(PRUNE_FRACTIONS):
                prefix = _leading_share(self.data, frac, 4 * self.n_splits)
                metrics, _ = evaluate_chunk(self.kind, prefix, [params], self.config, 2,
                                            self._fused(), informative=self.informative,
                                            benchmark=self._benchmark())
                value = _objective_value(metrics.iloc[0], self.objectives[0])
                if math.isfinite(value):
                    trial.report(value, step)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after {frac:.0%} of the data")
        metrics, moments = self.evaluate([params])
        return self.record(trial, metrics.iloc[0], moments, 0)

    def record(self, trial: optuna.Trial, row: pd.Series, moments: ReturnMoments,
               j: int) -> float | tuple[float, ...]:
        """Store a trial's metrics, return moments (column ``j`` of ``moments``) and
        constraints on it; return its objective value(s), penalised when infeasible."""
        trial.set_user_attr("metrics", {k: _plain(v) for k, v in row.items()})
        trial.set_user_attr("moments", {
            "n_obs": int(moments.n_obs[j]), "sharpe": float(moments.sharpe[j]),
            "skew": float(moments.skew[j]), "kurtosis": float(moments.kurtosis[j]),
            "block_n": moments.block_n.tolist(), "block_sum": moments.block_sum[:, j].tolist(),
            "block_sumsq": moments.block_sumsq[:, j].tolist()})
        violation = self._violation(row)
        values = [_objective_value(row, o) for o in self.objectives]
        if any(not math.isfinite(v) for v in values):
            violation = [max(v, 0.0) for v in violation] + [1.0]
        trial.set_user_attr("constraints", violation)
        if _HAS_SET_CONSTRAINT and not self.penalize:
            for i, v in enumerate(violation):
                trial.set_constraint(str(i), v)
        trial.set_user_attr("feasible", all(v <= 0 for v in violation))
        if self.penalize or any(not math.isfinite(v) for v in values):
            excess = sum(max(v, 0.0) for v in violation)
            if excess > 0:
                values = [(-PENALTY if direction_of(o) == "maximize" else PENALTY) * (1 + excess)
                          for o in self.objectives]
        return values[0] if len(values) == 1 else tuple(values)


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else (1e308 if value > 0 else -1e308)
    return value


def _trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    # Read-only here: optuna's default deep copy of every trial (moments included) cost more
    # than the backtests of a batched study.
    return study.get_trials(deepcopy=False)


def _worker(job: dict) -> list[int]:
    """Run ``job['n_trials']`` trials of an existing study; returns the trial numbers it ran."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = load_study(job["study_name"], job["storage"],
                        sampler=make_sampler(job["sampler"], job["seed"],
                                             len(job["objective"].objectives), job["constrained"]),
                        pruner=_make_pruner(job["pruner"]))
    batch_size = job.get("batch_size", BATCH_SIZE)
    if job["pruner"] in (None, "none") and batch_size > 1:  # random / enqueued trials batched
        return optimize_batched(study, job["objective"], job["n_trials"], batch_size)
    numbers: list[int] = []
    study.optimize(job["objective"], n_trials=job["n_trials"],
                   callbacks=[lambda s, t: numbers.append(t.number)], catch=())
    return numbers


def _make_pruner(name: str | None):
    if name in (None, "none"):
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    raise ParameterError(f"pruner: expected 'median' or 'none', got {name!r}")


@dataclass
class StudyResult:
    """A finished (or loaded) study with its overfitting statistics."""

    study: optuna.Study
    objectives: tuple[str, ...]
    report: OverfittingReport | None
    ran_trials: list[int] = field(default_factory=list)  # trial numbers run by this call

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: number, state, values, params, feasibility."""
        rows = []
        for t in _trials(self.study):
            row = {"number": t.number, "state": t.state.name,
                   "feasible": t.user_attrs.get("feasible")}
            if t.values is not None:
                row.update(dict(zip(self.objectives, t.values, strict=False)))
            row.update(t.params)
            rows.append(row)
        return pd.DataFrame(rows).set_index("number")

    def feasible_trials(self) -> list[optuna.trial.FrozenTrial]:
        return [t for t in _trials(self.study) if t.state == optuna.trial.TrialState.COMPLETE
                and t.user_attrs.get("feasible", False)]

    @property
    def n_trials(self) -> int:
        """Every trial that evaluated a parameter set (complete or pruned): the DSR's N."""
        return sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
                   and not t.user_attrs.get("invalid") for t in _trials(self.study))

    @property
    def best_trials(self) -> list[optuna.trial.FrozenTrial]:
        """Best feasible trial (single objective) or the feasible Pareto front."""
        feasible = self.feasible_trials()
        if not feasible:
            return []
        signs = np.array([1.0 if d == optuna.study.StudyDirection.MAXIMIZE else -1.0
                          for d in self.study.directions])
        vals = np.array([t.values for t in feasible]) * signs
        if len(signs) == 1:
            return [feasible[int(np.argmax(vals[:, 0]))]]
        front = [i for i in range(len(vals)) if not np.any(
            np.all(vals >= vals[i], axis=1) & np.any(vals > vals[i], axis=1))]
        return [feasible[i] for i in front]

    @property
    def best_params(self) -> dict[str, Any]:
        best = self.best_trials
        if not best:
            raise ParameterError("study has no feasible completed trial; relax the constraints "
                                 "(min_trades / max_drawdown) or run more trials")
        return dict(best[0].user_attrs["params"])

    @property
    def dsr(self) -> float:
        return self.report.dsr if self.report else float("nan")

    @property
    def pbo(self) -> float:
        return self.report.pbo if self.report else float("nan")

    def summary(self) -> str:
        best = self.best_trials
        lines = [f"study {self.study.study_name!r}: {len(self.study.trials)} trials "
                 f"({len(self.feasible_trials())} feasible), objectives {list(self.objectives)}"]
        for t in best[:5]:
            lines.append(f"  trial {t.number}: {dict(zip(self.objectives, t.values, strict=False))}"
                         f" params {t.params}")
        if self.report:
            lines.append("  " + self.report.summary())
        return "\n".join(lines)


def study_report(study: optuna.Study, objectives: Sequence[str]) -> StudyResult:
    """Build a :class:`StudyResult` (DSR/PBO from the trials' stored moments)."""
    res = StudyResult(study, tuple(objectives), None)
    done = [t for t in _trials(study) if t.state == optuna.trial.TrialState.COMPLETE
            and "moments" in t.user_attrs]
    if done:
        mo = [t.user_attrs["moments"] for t in done]
        moments = ReturnMoments(
            n_obs=np.array([m["n_obs"] for m in mo]), sharpe=np.array([m["sharpe"] for m in mo]),
            skew=np.array([m["skew"] for m in mo]), kurtosis=np.array([m["kurtosis"] for m in mo]),
            block_n=np.array(mo[0]["block_n"]),
            block_sum=np.array([m["block_sum"] for m in mo]).T,
            block_sumsq=np.array([m["block_sumsq"] for m in mo]).T)
        best = res.best_trials
        idx = done.index(best[0]) if best and best[0] in done else None
        res.report = overfitting_report(moments, best_index=idx,
                                        n_trials=max(res.n_trials, len(done)))
    return res


def run_study(kind: str, data: pd.DataFrame, *, space: Any = None, sampler: str = "tpe",
              n_trials: int = 50, objectives: Sequence[str] | str = ("sharpe",),
              min_trades: int | None = None, max_drawdown: float | None = None,
              storage: str | None = None, study_name: str | None = None, seed: int | None = 0,
              pruner: str | None = None, config: Any = None, n_workers: int = 1,
              n_splits: int = 16, enqueue: Sequence[dict[str, Any]] = (),
              batch_size: int = BATCH_SIZE,
              informative: Mapping[str, Any] | None = None) -> StudyResult:
    """Create (or resume) an optuna study and run ``n_trials`` trials over ``n_workers`` processes.

    Parameters
    ----------
    kind, data : strategy kind name and canonical OHLCV frame.
    space : dict of ranges / :class:`SearchSpace` / None (the kind's declared space).
    sampler : ``"tpe"``, ``"random"``, ``"cmaes"`` or ``"nsga2"`` (multi-objective, genetic).
    objectives : metric name(s); drawdown, volatility... are minimised (|max_drawdown|).
    min_trades, max_drawdown : constraints (optuna constraints_func for TPE/NSGA-II, a penalty
        for random/CMA-ES).
    storage : SQLAlchemy URL (default ``sqlite:///reports/optuna.db``); ``"memory"`` for RAM.
    seed : sampler seed; worker ``i`` uses ``seed + i`` (one worker is fully deterministic).
    pruner : ``"median"`` reports the objective on 25 % and 50 % prefixes of the data and stops
        bad trials early (single objective only); None = no pruning.
    n_workers : processes sharing the study through ``storage`` (needs a database URL).
    enqueue : parameter sets to try first (``study.enqueue_trial``), e.g. a previous best.
    batch_size : trials evaluated in one backtest call where the sampler allows it (the random
        sampler, enqueued trials; :mod:`quantlib.optimize.study_batch`) in each worker of a
        study without pruning; 1 = every trial on its own. The values are the same either way.

    Examples
    --------
    >>> from quantlib.data import load
    >>> res = run_study("ma_cross", load("sample:bars=600"), n_trials=4, storage="memory",
    ...                 n_splits=4)  # doctest: +SKIP
    """
    objectives = (objectives,) if isinstance(objectives, str) else tuple(objectives)
    # Everything is checked before the study is created or joined: a bad option must neither
    # cost a trial nor leave a failed one in a shared storage.
    check_study_options(sampler=sampler, n_trials=n_trials, n_workers=n_workers,
                        n_splits=n_splits, objectives=objectives, pruner=pruner,
                        min_trades=min_trades, max_drawdown=max_drawdown, storage=storage)
    check_splits(n_splits, bar_count(data))
    kind_obj = get_kind(kind)
    if not isinstance(space, SearchSpace):
        space = SearchSpace.from_kind(kind_obj, space)
    identity = experiment_identity(kind_obj.name, data, space, objectives, n_splits)
    constrained = min_trades is not None or max_drawdown is not None
    objective = Objective(kind_obj.name, data, space, objectives, min_trades, max_drawdown,
                          config, n_splits, penalize=constrained and sampler not in
                          _CONSTRAINT_SAMPLERS, prune=pruner not in (None, "none"),
                          informative=informative)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage_obj = make_storage(storage)
    study_name = study_name or f"{kind_obj.name}-{sampler}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    study = optuna.create_study(study_name=study_name, storage=storage_obj,
                                directions=[direction_of(o) for o in objectives],
                                sampler=make_sampler(sampler, seed, len(objectives), constrained),
                                pruner=_make_pruner(pruner), load_if_exists=True)
    claim_or_check(study, identity, storage_label(storage))
    with warnings.catch_warnings():  # set_metric_names is flagged experimental by optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(objectives))
    if batch_size < 1:
        raise ParameterError(f"batch_size: expected >= 1, got {batch_size}")
    for params in enqueue:
        study.enqueue_trial(dict(params), skip_if_exists=True)
    ran: list[int] = []
    if n_workers == 1 and not objective.prune and batch_size > 1:
        ran = optimize_batched(study, objective, n_trials, batch_size)
    elif n_workers == 1:
        study.optimize(objective, n_trials=n_trials, catch=(),
                       callbacks=[lambda s, t: ran.append(t.number)])
    else:
        share = [n_trials // n_workers + (i < n_trials % n_workers) for i in range(n_workers)]
        jobs = [dict(study_name=study_name, storage=storage or default_storage(),
                     sampler=sampler, seed=None if seed is None else seed + i,
                     constrained=constrained, pruner=pruner, objective=objective, n_trials=k,
                     batch_size=batch_size)
                for i, k in enumerate(share) if k > 0]
        with mp.get_context("spawn").Pool(len(jobs)) as pool:
            ran = [n for numbers in pool.map(_worker, jobs) for n in numbers]
        study = load_study(study_name, storage)
    result = study_report(study, objectives)
    result.ran_trials = ran
    return result


def load_study_result(study_name: str, storage: str,
                      objectives: Sequence[str] | None = None) -> StudyResult:
    """Reload a study (e.g. one run by several machines) with its DSR/PBO."""
    study = load_study(study_name, storage)
    names = objectives or study.metric_names or ["objective"]
    return study_report(study, names)


def run_worker(study_name: str, storage: str, kind: str, data: pd.DataFrame, n_trials: int, *,
               space: Any = None, sampler: str = "tpe", seed: int | None = None,
               min_trades: int | None = None, max_drawdown: float | None = None,
               config: Any = None, n_splits: int = 16,
               informative: Mapping[str, Any] | None = None) -> list[int]:
    """Join an existing study from this process (another machine): run ``n_trials`` trials.

    Refused (ParameterError) when the study was made for another kind, data, space or
    ``n_splits``.
    """
    study = load_study(study_name, storage)
    objectives = tuple(study.metric_names or ("sharpe",))
    check_study_options(sampler=sampler, n_trials=n_trials, n_workers=1, n_splits=n_splits,
                        objectives=objectives, min_trades=min_trades, max_drawdown=max_drawdown)
    check_splits(n_splits, bar_count(data))
    space = space if isinstance(space, SearchSpace) else SearchSpace.from_kind(kind, space)
    claim_or_check(study, experiment_identity(get_kind(kind).name, data, space, objectives,
                                              n_splits), storage_label(storage))
    constrained = min_trades is not None or max_drawdown is not None
    objective = Objective(kind, data, space, objectives, min_trades, max_drawdown, config,
                          n_splits, penalize=constrained and sampler not in _CONSTRAINT_SAMPLERS,
                          informative=informative)
    return _worker(dict(study_name=study_name, storage=storage, sampler=sampler, seed=seed,
                        constrained=constrained, pruner=None, objective=objective,
                        n_trials=n_trials))


def params_frame(result: StudyResult) -> pd.DataFrame:
    """Validated params of every completed trial (rows) with the objective values."""
    rows = [{**t.user_attrs["params"], **dict(zip(result.objectives, t.values, strict=False))}
            for t in _trials(result.study) if t.state == optuna.trial.TrialState.COMPLETE]
    return pd.DataFrame(rows)


__all__ = ["run_study", "StudyResult", "study_report", "load_study_result", "run_worker",
           "make_storage", "make_sampler", "default_storage", "Objective", "SAMPLERS",
           "params_frame", "storage_label"]
