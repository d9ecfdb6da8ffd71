"""One study = one experiment: joining a study of another kind, data, space, objectives or
--splits is refused naming both sides; options are checked before any trial; storages that
cannot be opened are ParameterErrors naming the URL (never a SQLAlchemy traceback)."""

from __future__ import annotations

import socket
import time
import uuid

import optuna
import pytest
from typer.testing import CliRunner

from quantlib.data import load
from quantlib.errors import ParameterError
from quantlib.optimize.study import load_study_result, make_storage, run_study, run_worker
from quantlib.optimize.study_checks import STUDY_ATTR
from quantlib.strategy.spec import sha256_frame

SPACE = {"n_levels": (4, 12)}
KW = dict(space=SPACE, sampler="random", n_trials=2, n_splits=4, seed=0)


@pytest.fixture(scope="module")
def data():
    return load("sample:seed=4,bars=400")


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'studies.db'}"


def _trials(url: str, name: str) -> int:
    return len(optuna.load_study(study_name=name, storage=make_storage(url)).trials)


def test_study_records_what_it_searches(data, url):
    run_study("grid", data, storage=url, study_name="s", **KW)
    attrs = optuna.load_study(study_name="s", storage=make_storage(url)).user_attrs[STUDY_ATTR]
    assert attrs["kind"] == "grid" and attrs["data_sha256"] == sha256_frame(data)
    assert attrs["objectives"] == ["sharpe"] and attrs["n_splits"] == 4
    assert '"name": "n_levels"' in attrs["space"] and attrs["data_source"] == "sample:seed=4,bars=400"


def test_same_experiment_joins_and_adds_trials(data, url):
    run_study("grid", data, storage=url, study_name="s", **KW)
    again = run_study("grid", data, storage=url, study_name="s", **dict(KW, seed=1))
    assert len(again.study.trials) == 4 and again.ran_trials == [2, 3]


def test_other_kind_is_refused_naming_both_kinds(data, url):
    run_study("grid", data, storage=url, study_name="s", **KW)
    with pytest.raises(ParameterError) as info:
        run_study("ma_cross", data, storage=url, study_name="s",
                  **dict(KW, space={"fast": (5, 20), "slow": (30, 60)}))
    msg = str(info.value)
    assert "study 's' in storage sqlite:///" in msg
    assert "kind: the study has 'grid', this run has 'ma_cross'" in msg
    assert ("search space: the study has 'n_levels=4:12', this run has 'fast=5:20, slow=30:60'"
            in msg)
    assert _trials(url, "s") == 2  # nothing ran


def test_other_data_is_refused_naming_both_hashes(data, url):
    run_study("grid", data, storage=url, study_name="s", **KW)
    other = load("sample:seed=5,bars=400")
    with pytest.raises(ParameterError) as info:
        run_study("grid", other, storage=url, study_name="s", **KW)
    msg = str(info.value)
    assert (f"data (SHA-256): the study has {sha256_frame(data)[:12]}... (sample:seed=4,bars=400),"
            f" this run has {sha256_frame(other)[:12]}... (sample:seed=5,bars=400)") in msg
    assert "kind:" not in msg and _trials(url, "s") == 2


@pytest.mark.parametrize("change, line", [
    (dict(space={"n_levels": (4, 16)}), "search space: the study has 'n_levels=4:12', this run "
                                        "has 'n_levels=4:16'"),
    (dict(objectives="calmar"), "objectives: the study has ['sharpe'], this run has ['calmar']"),
    (dict(n_splits=8), "CSCV blocks (--splits): the study has 4, this run has 8"),
])
def test_other_space_objectives_or_splits_are_refused(data, url, change, line):
    run_study("grid", data, storage=url, study_name="s", **KW)
    with pytest.raises(ParameterError) as info:
        run_study("grid", data, storage=url, study_name="s", **dict(KW, **change))
    assert line in str(info.value)
    assert _trials(url, "s") == 2


def test_run_worker_from_another_machine_is_checked_too(data, url):
    run_study("grid", data, storage=url, study_name="s", **KW)
    assert len(run_worker("s", url, "grid", data, 1, space=SPACE, n_splits=4, seed=3)) == 1
    with pytest.raises(ParameterError, match="kind: the study has 'grid', this run has "
                                             "'ma_cross'"):
        run_worker("s", url, "ma_cross", data, 1, n_splits=4)
    assert _trials(url, "s") == 3


def test_study_with_trials_but_no_record_is_refused(data, url):
    # A study written by an older quantlib: its trials' experiment cannot be known.
    legacy = optuna.create_study(study_name="old", storage=make_storage(url))
    legacy.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(ParameterError, match=r"study 'old' in storage .* has 1 trial\(s\) but no "
                                             r"record of its kind, data and search space"):
        run_study("grid", data, storage=url, study_name="old", **KW)
    # An empty study without a record is simply claimed.
    optuna.create_study(study_name="empty", storage=make_storage(url))
    assert len(run_study("grid", data, storage=url, study_name="empty", **KW).study.trials) == 2


def test_cli_refuses_joining_another_kind(tmp_path, url):
    from quantlib.cli import app

    base = ["optimize", "--data", "sample:seed=4,bars=400", "--sampler", "random", "--trials",
            "2", "--splits", "4", "--storage", url, "--study", "cli"]
    ok = CliRunner().invoke(app, base + ["--kind", "grid", "--space", "n_levels=4:12"])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(app, base + ["--kind", "ma_cross"])
    assert bad.exit_code == 2
    assert "kind: the study has 'grid', this run has 'ma_cross'" in bad.output
    assert "Traceback" not in bad.output and _trials(url, "cli") == 2


# ------------------------------------------------------------------ options before any trial
def test_cli_checks_splits_before_loading_data_or_touching_storage(tmp_path):
    from quantlib.cli import app

    db = tmp_path / "never.db"
    started = time.perf_counter()
    # The data file does not exist either: the --splits error must come first.
    result = CliRunner().invoke(app, ["optimize", "--kind", "grid", "--data", "file:/missing.csv",
                                      "--splits", "3", "--storage", f"sqlite:///{db}",
                                      "--study", "x"])
    assert result.exit_code == 2
    assert "n_splits (--splits): expected an even number >= 2 of CSCV blocks, got 3" in result.output
    assert not db.exists() and time.perf_counter() - started < 10


@pytest.mark.parametrize("args, expected", [
    (["--trials", "0"], "n_trials (--trials): expected an integer >= 1, got 0"),
    (["--workers", "0"], "n_workers (--workers): expected an integer >= 1, got 0"),
    (["--objective", "nope"], "objectives (--objective): unknown metric(s) ['nope']"),
    (["--pruner", "always"], "pruner (--pruner): expected 'median' or 'none', got 'always'"),
    (["--sampler", "anneal"], "sampler (--sampler): expected one of"),
    (["--min-trades", "-1"], "min_trades (--min-trades): expected an integer >= 0, got -1"),
    (["--max-drawdown", "0"], "max_drawdown (--max-drawdown): expected a fraction > 0"),
    (["--space", "nope=1:2"], "unknown parameter(s) ['nope']"),
    (["--sampler", "grid", "--splits", "5"], "n_splits (--splits): expected an even number"),
])
def test_cli_every_option_is_checked_before_data(tmp_path, args, expected):
    from quantlib.cli import app

    db = tmp_path / "never.db"
    result = CliRunner().invoke(app, ["optimize", "--kind", "grid", "--data", "file:/missing.csv",
                                      "--storage", f"sqlite:///{db}"] + args)
    assert result.exit_code == 2 and expected in result.output, result.output
    assert not db.exists()


def test_too_many_splits_for_the_data_fail_before_a_trial(url):
    short = load("sample:seed=1,bars=40")
    with pytest.raises(ParameterError, match=r"n_splits \(--splits\): 40 bars are too few for 32 "
                                             r"CSCV blocks \(need >= 64 bars\)"):
        run_study("grid", short, storage=url, study_name="short", **dict(KW, n_splits=32))
    assert optuna.get_all_study_summaries(make_storage(url)) == []


# ----------------------------------------------------------------------- unusable storages
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(60)
def test_unreachable_postgres_is_a_parameter_error_naming_the_url_without_password():
    url = f"postgresql://quant:s3cret@127.0.0.1:{_closed_port()}/studies"
    started = time.perf_counter()
    with pytest.raises(ParameterError) as info:
        make_storage(url)
    msg = str(info.value)
    assert msg.startswith("storage postgresql://quant:***@127.0.0.1:")
    assert "cannot open the optuna storage (OperationalError:" in msg and "refused" in msg
    assert "s3cret" not in msg and time.perf_counter() - started < 30


@pytest.mark.parametrize("url, expected", [
    ("nosuchdb://host/x", "cannot open the optuna storage (NoSuchModuleError"),
    ("sqlite:////no/such/folder/x.db", "storage sqlite:////no/such/folder/x.db: folder "
                                       "/no/such/folder does not exist"),
    ("reports/optuna.db", "storage: expected a SQLAlchemy URL"),
])
def test_unusable_storage_urls(url, expected):
    with pytest.raises(ParameterError) as info:
        make_storage(url)
    assert expected in str(info.value)


def test_cli_unreachable_storage_exits_2_without_traceback(tmp_path):
    from quantlib.cli import app

    result = CliRunner().invoke(app, ["optimize", "--kind", "grid", "--data", "sample:bars=200",
                                      "--splits", "4", "--trials", "1", "--storage",
                                      "nosuchdb://host/x"])
    assert result.exit_code == 2 and "error: storage nosuchdb://host/x: cannot open" in result.output
    assert "Traceback" not in result.output


def test_loading_a_missing_study_lists_what_the_storage_holds(data, url):
    run_study("grid", data, storage=url, study_name="there", **KW)
    with pytest.raises(ParameterError, match=r"has no study named 'gone'; it holds \['there'\]"):
        load_study_result("gone", url)


def test_postgres_study_guard_when_a_server_is_there(data):
    """The guard through PostgreSQL (CI runs a server; skipped here when none answers)."""
    from tests.optimize.test_multiworker import PG_URL, _postgres_or_skip

    _postgres_or_skip()
    name = f"quantlib-guard-{uuid.uuid4().hex}"
    try:
        run_study("grid", data, storage=PG_URL, study_name=name, **KW)
        with pytest.raises(ParameterError, match="kind: the study has 'grid', this run has "
                                                 "'ma_cross'"):
            run_study("ma_cross", data, storage=PG_URL, study_name=name, **dict(KW, space=None))
    finally:
        optuna.delete_study(study_name=name, storage=make_storage(PG_URL))
