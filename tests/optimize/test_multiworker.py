"""Several worker processes on one optuna study through PostgreSQL and SQLite storage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import optuna
import pytest

from quantlib.optimize.study import load_study_result, make_storage, run_study

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI", "").lower() == "true"
DATA = "sample:seed=3,bars=1200"
SPACE = "n_levels=4:24,lower_pct=0.05:0.3,upper_pct=0.05:0.3"
ROOT = Path(__file__).resolve().parents[2]


def _postgres_or_skip() -> None:
    try:
        import psycopg2

        psycopg2.connect(PG_URL, connect_timeout=3).close()
    except Exception as exc:  # any connection failure means: no server here
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable under CI=true: {exc}")
        pytest.skip(f"PostgreSQL at {PG_URL} is unreachable ({exc}); CI runs this server")


def _check_study(url: str, name: str, total: int, per_worker: list[list[int]]) -> None:
    study = optuna.load_study(study_name=name, storage=make_storage(url))
    trials = study.trials
    assert len(trials) == total
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    numbers = sorted(t.number for t in trials)
    assert numbers == list(range(total))                 # nothing lost
    ran = [n for worker in per_worker for n in worker]
    assert sorted(ran) == numbers                          # each trial run by exactly one worker
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2                               # two processes did the work
    assert not any(w.endswith(f":{os.getpid()}") for w in workers)
    # Best trial: independent argmax over the stored values.
    result = load_study_result(name, url)
    best = max(trials, key=lambda t: t.value)
    assert result.best_params == best.user_attrs["params"]
    assert result.report.n_trials == total and 0.0 <= result.pbo <= 1.0
    assert np.isfinite(result.dsr)


def test_two_cli_workers_share_a_postgres_study():
    _postgres_or_skip()
    name = f"quantlib-test-{uuid.uuid4().hex}"
    cmd = [sys.executable, "-m", "quantlib.optimize.cli", "--kind", "grid", "--data", DATA,
           "--sampler", "random", "--trials", "5", "--storage", PG_URL, "--study", name,
           "--space", SPACE, "--splits", "4", "--json"]
    procs = [subprocess.Popen(cmd + ["--seed", str(i)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        outs = [p.communicate(timeout=400) for p in procs]
        for p, (_out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err[-2000:]
        payloads = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
        _check_study(PG_URL, name, 10, [p["ran_trials"] for p in payloads])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        try:
            optuna.delete_study(study_name=name, storage=make_storage(PG_URL))
        except KeyError:
            pass


def test_two_pool_workers_share_a_sqlite_study(tmp_path):
    from quantlib.data import load
    from quantlib.optimize.space import parse_ranges

    url = f"sqlite:///{tmp_path / 'study.db'}"
    name = f"quantlib-test-{uuid.uuid4().hex}"
    res = run_study("grid", load(DATA), space=parse_ranges(SPACE), sampler="tpe",
                    n_trials=9, storage=url, study_name=name, n_workers=2, seed=1, n_splits=4)
    assert len(res.ran_trials) == 9
    # The pool does not tell which worker ran which trial; uniqueness of the union suffices.
    _check_study(url, name, 9, [res.ran_trials])
    assert res.best_params == load_study_result(name, url).best_params
