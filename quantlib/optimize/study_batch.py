"""Batched optuna trials: ask several trials, backtest them in one call, tell the results.

A sampler whose next point does not depend on the results still pending can hand out a batch:
the random sampler (its draws come from its own generator in suggestion order, so asking and
suggesting trial by trial replays exactly the points a sequential study draws), and trials
enqueued with fixed parameters (``study.enqueue_trial``), whatever the sampler. Their parameter
sets are then evaluated together (the fused kernel's ``prange`` over combinations, see
:mod:`quantlib.optimize.fused`) and each trial is told its value, recorded exactly as a
sequential trial records it (:meth:`quantlib.optimize.study.Objective.record`). TPE, CMA-ES and
NSGA-II draw from the results so far: their trials stay sequential (each still on the fused
single-combination path).
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

# Trials per batch (a fused call's work; one kernel call per batch).
BATCH_SIZE = 256


def can_batch(sampler: optuna.samplers.BaseSampler) -> bool:
    """Whether ``sampler`` draws points independently of pending results (random sampler)."""
    return isinstance(sampler, optuna.samplers.RandomSampler)


def _waiting(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def optimize_batched(study: optuna.Study, objective: Any, n_trials: int,
                     batch_size: int = BATCH_SIZE) -> list[int]:
    """Run ``n_trials`` trials of ``objective`` (a :class:`~quantlib.optimize.study.Objective`)
    on ``study``, batching every stretch of trials the sampler allows (see the module
    docstring) and running the others one by one; returns the trial numbers in order.

    Examples
    --------
    >>> import optuna
    >>> from quantlib.data import load
    >>> from quantlib.optimize.space import SearchSpace
    >>> from quantlib.optimize.study import Objective
    >>> from quantlib.core import get_kind
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> space = SearchSpace.from_kind(get_kind("ma_cross"), {"fast": (2, 8), "slow": (20, 40)})
    >>> study = optuna.create_study(direction="maximize",
    ...                             sampler=optuna.samplers.RandomSampler(seed=0))
    >>> numbers = optimize_batched(study, Objective("ma_cross", load("sample:bars=400"), space,
    ...                                             n_splits=4), 6)
    >>> numbers
    [0, 1, 2, 3, 4, 5]
    """
    ran: list[int] = []
    batchable = can_batch(study.sampler)
    while len(ran) < n_trials:
        left = n_trials - len(ran)
        size = min(batch_size, left) if batchable else min(_waiting(study), left)
        if size <= 1:
            study.optimize(objective, n_trials=1, catch=(),
                           callbacks=[lambda s, t: ran.append(t.number)])
            continue
        ran.extend(_run_batch(study, objective, size))
    return ran


def _run_batch(study: optuna.Study, objective: Any, size: int) -> list[int]:
    """Ask ``size`` trials (suggesting each right after asking it, the sampler's own order),
    evaluate the valid ones in one call, tell every trial in the order asked."""
    asked: list[tuple[optuna.Trial, dict[str, Any] | None]] = []
    for _ in range(size):
        trial = study.ask()
        try:
            asked.append((trial, objective.trial_params(trial)))
        except optuna.TrialPruned:
            asked.append((trial, None))
    valid = [params for _, params in asked if params is not None]
    try:
        metrics, moments = objective.evaluate(valid) if valid else (None, None)
    except BaseException:
        for trial, _ in asked:
            study.tell(trial, state=TrialState.FAIL)
        raise
    j = 0
    for trial, params in asked:
        if params is None:
            study.tell(trial, state=TrialState.PRUNED)
            continue
        study.tell(trial, objective.record(trial, metrics.iloc[j], moments, j))
        j += 1
    return [trial.number for trial, _ in asked]


__all__ = ["BATCH_SIZE", "can_batch", "optimize_batched"]
