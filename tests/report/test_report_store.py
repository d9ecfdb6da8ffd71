"""Run directories on disk: pruning by age/count, locks, atomic index rebuilds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from quantlib.errors import ReportError
from quantlib.report.cli import report_app
from quantlib.report.index import update_index
from quantlib.report.store import (
    RUN_LOCK,
    file_lock,
    list_runs,
    new_run_id,
    prune_runs,
    write_manifest,
)


def _fake_run(out, run_id, days_ago, status="ok", entry_status="ok"):
    started = datetime.now(UTC) - timedelta(days=days_ago)
    run_dir = out / run_id
    run_dir.mkdir(parents=True)
    write_manifest(run_dir, {
        "run_id": run_id, "started_at": started.isoformat(), "status": status,
        "git_commit": "abc", "entries": [{"notebook": "nb", "param_set": run_id, "parameters": {},
                                          "source": "sample", "status": entry_status}],
    })
    return run_dir


@pytest.fixture
def four_runs(tmp_path):
    for run_id, days in (("r10", 10), ("r5", 5), ("r1", 1), ("r0", 0)):
        _fake_run(tmp_path, run_id, days)
    return tmp_path


def test_list_runs_newest_first_and_ids_sortable(four_runs):
    assert [d.name for d, _ in list_runs(four_runs)] == ["r0", "r1", "r5", "r10"]
    early = new_run_id(datetime(2024, 1, 1, tzinfo=UTC))
    late = new_run_id(datetime(2024, 1, 2, tzinfo=UTC))
    assert early.startswith("20240101T000000Z-") and early < late


def test_prune_by_count(four_runs):
    assert prune_runs(four_runs, keep=2) == ["r5", "r10"]
    assert [d.name for d, _ in list_runs(four_runs)] == ["r0", "r1"]
    assert not any(p.name.startswith(".trash") for p in four_runs.iterdir())


def test_prune_by_age_and_dry_run(four_runs):
    assert prune_runs(four_runs, older_than_days=3, dry_run=True) == ["r5", "r10"]
    assert len(list_runs(four_runs)) == 4
    assert prune_runs(four_runs, older_than_days=3) == ["r5", "r10"]
    assert [d.name for d, _ in list_runs(four_runs)] == ["r0", "r1"]


def test_prune_never_deletes_a_run_in_progress(four_runs):
    with file_lock(four_runs / "r10" / RUN_LOCK):
        assert prune_runs(four_runs, keep=0) == ["r0", "r1", "r5"]
    assert [d.name for d, _ in list_runs(four_runs)] == ["r10"]


def test_prune_needs_a_criterion(tmp_path):
    with pytest.raises(ReportError, match="--keep N and/or --older-than"):
        prune_runs(tmp_path)
    with pytest.raises(ReportError, match="--keep must be >= 0, got -1"):
        prune_runs(tmp_path, keep=-1)


def test_prune_cli_rebuilds_index(four_runs):
    update_index(four_runs)
    result = CliRunner().invoke(report_app, ["prune", "--out", str(four_runs), "--keep", "1"])
    assert result.exit_code == 0, result.output
    assert "deleted 3 run(s)" in result.output
    index = (four_runs / "index.html").read_text()
    assert "r0" in index and ">r1<" not in index and "r10" not in index


def test_index_marks_abandoned_runs_interrupted(tmp_path):
    _fake_run(tmp_path, "dead", 0, status="running", entry_status="running")
    live = _fake_run(tmp_path, "live", 0, status="running", entry_status="running")
    with file_lock(live / RUN_LOCK):
        index = update_index(tmp_path).read_text()
    assert index.count("INTERRUPTED") == 1 and index.count("RUNNING") == 1


def test_concurrent_index_updates_always_leave_a_complete_page(four_runs):
    errors = []

    def rebuild():
        try:
            for _ in range(10):
                update_index(four_runs)
                page = (four_runs / "index.html").read_text()
                assert page.endswith("</html>") and page.count("<tr class=") == 4
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=rebuild) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not [p for p in four_runs.iterdir() if p.name.endswith(".tmp")]


def test_root_cli_exposes_report_commands():
    from quantlib.cli import app

    result = CliRunner().invoke(app, ["report", "--help"])
    assert result.exit_code == 0, result.output
    for word in ("--fast", "--data", "--only", "--config", "--out", "prune", "index"):
        assert word in result.output
