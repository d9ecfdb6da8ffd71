"""State files: marked as quantlib's, foreign and damaged files refused with a message (never
written into, never a traceback), failed starts leave nothing behind; a fuzz test of random,
truncated and bit-flipped files."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from quantlib.cli import app
from quantlib.errors import LiveError, QuantlibError
from quantlib.live.brokers import PaperBroker
from quantlib.live.logs import JsonLogger
from quantlib.live.replay_feeds import ReplayFeed
from quantlib.live.runner import LiveRunner
from quantlib.live.state import APPLICATION_ID, StateStore
from quantlib.live.status_board import read_status
from quantlib.strategy.spec import save_spec
from tests.live.conftest import make_spec

SPEC = make_spec("ma_cross", {"fast": 3, "slow": 10})


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _run(spec_path, feed, state):
    return _cli("live", "run", "--strategy", spec_path, "--mode", "paper", "--feed", feed,
                "--state", state, "--kernels", "jit")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(state: Path) -> list[str]:
    return sorted(p.name for p in state.parent.iterdir() if p.name.startswith(state.name))


@pytest.fixture(scope="module")
def real_state(tmp_path_factory, replay_frame):
    """A state file written by a real paper run (300 bars, orders, fills)."""
    folder = tmp_path_factory.mktemp("real_state")
    store = StateStore(folder / "s.db")
    LiveRunner(SPEC, PaperBroker(store, SPEC), store, ReplayFeed(replay_frame),
               logger=JsonLogger(io.StringIO())).run()
    store._execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    store.close()
    return folder / "s.db"


def test_state_files_carry_quantlib_marks(tmp_path):
    StateStore(tmp_path / "s.db").close()
    con = sqlite3.connect(tmp_path / "s.db")
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("SELECT value FROM meta WHERE key='state_format'").fetchone() == ("1",)


def test_a_foreign_sqlite_database_is_refused_and_left_untouched(tmp_path, replay_file):
    foreign = tmp_path / "app.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE customers (name TEXT)")
    con.execute("INSERT INTO customers VALUES ('ada')")
    con.commit()
    con.close()
    before = _digest(foreign)
    spec_path = save_spec(SPEC, tmp_path / "spec.json")
    for out in (_run(spec_path, f"replay:{replay_file}", foreign),
                _cli("live", "status", "--state", foreign)):
        assert out.exit_code == 2, out.output
        assert f"state file {foreign} is not a quantlib state file" in out.output
        assert "Traceback" not in out.output
    assert _digest(foreign) == before
    assert _leftovers(foreign) == ["app.db"]  # no -wal, -shm or lock file either


def test_a_file_of_random_bytes_is_refused(tmp_path, replay_file):
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(4096))
    spec_path = save_spec(SPEC, tmp_path / "spec.json")
    out = _run(spec_path, f"replay:{replay_file}", junk)
    assert out.exit_code == 2 and "not an SQLite database" in out.output
    assert _leftovers(junk) == ["junk.db"]


def test_a_state_file_from_before_the_marks_is_adopted(tmp_path, replay_frame):
    """Files written by earlier versions hold exactly quantlib's tables: they keep working."""
    from quantlib.live.state import _SCHEMA

    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    con.executescript(_SCHEMA)
    con.execute("INSERT INTO meta VALUES ('last_bar', '123')")
    con.commit()
    con.close()
    store = StateStore(old)
    assert store.last_bar == 123
    store.close()
    assert sqlite3.connect(old).execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_a_newer_state_format_is_refused(tmp_path):
    path = tmp_path / "new.db"
    store = StateStore(path)
    with store.transaction():
        store.set_meta("state_format", 99)
    store.close()
    with pytest.raises(LiveError, match="state format '99' is newer"):
        StateStore(path)


def _corrupt_a_page(src: Path, dst: Path) -> None:
    data = bytearray(src.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    assert len(data) >= 4 * page
    data[page: 3 * page] = b"\xa5" * (2 * page)  # pages 2-3: table roots and b-tree pages
    dst.write_bytes(bytes(data))


def test_a_corrupted_page_is_a_clear_error_in_run_and_status(real_state, tmp_path,
                                                             replay_file):
    damaged = tmp_path / "damaged.db"
    _corrupt_a_page(real_state, damaged)
    spec_path = save_spec(SPEC, tmp_path / "spec.json")
    for out in (_cli("live", "status", "--state", damaged),
                _run(spec_path, f"replay:{replay_file}", damaged)):
        assert out.exit_code == 2, out.output
        assert f"state file {damaged}" in out.output and "damaged" in out.output
        assert "Traceback" not in out.output and isinstance(out.exception, SystemExit)


def test_failed_starts_leave_no_state_file(tmp_path, replay_frame):
    from quantlib.data import save_ohlcv

    five_min = replay_frame.iloc[:50].copy()
    five_min.index = five_min.index[0] + (five_min.index - five_min.index[0]) / 12
    replay = save_ohlcv(five_min, tmp_path / "btc_5m.csv")
    spec_path = save_spec(SPEC, tmp_path / "spec.json")
    state = tmp_path / "new.db"
    out = _run(spec_path, f"replay:{replay}", state)
    assert out.exit_code == 2
    assert _leftovers(state) == []
    # a feed that does not exist, and a kill switch left engaged: likewise nothing left
    assert _run(spec_path, f"replay:{tmp_path / 'absent.csv'}", state).exit_code == 2
    assert _leftovers(state) == []
    Path(str(state) + ".stop").write_text("stop requested\n")
    assert _run(spec_path, f"replay:{replay}", state).exit_code == 2
    assert _leftovers(state) == ["new.db.stop"]


def test_a_failed_restart_keeps_the_state_it_had(real_state, tmp_path, replay_file):
    copy = tmp_path / "s.db"
    copy.write_bytes(real_state.read_bytes())
    other = save_spec(make_spec("ma_cross", {"fast": 4, "slow": 10}), tmp_path / "spec.json")
    out = _run(other, f"replay:{replay_file}", copy)
    assert out.exit_code == 2 and "different spec" in out.output
    assert read_status(copy)["last_bar"] is not None


# -- fuzz --------------------------------------------------------------------------------------

def _outcome(path: Path) -> str:
    """Open, summarise and close a state file the way `live status` does: a clean result or
    a QuantlibError; anything else propagates and fails the test."""
    try:
        info = read_status(path)
    except QuantlibError as exc:
        assert str(exc)
        return "refused"
    assert isinstance(info, dict)
    return "read"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=8192))
def test_fuzz_random_bytes(tmp_path, data):
    path = tmp_path / "fuzz.db"
    path.write_bytes(data)
    _outcome(path)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 1.0), flips=st.lists(st.tuples(st.floats(0.0, 1.0),
                                                          st.integers(0, 7)), max_size=12))
def test_fuzz_truncated_and_bit_flipped_state_files(real_state, tmp_path, cut, flips):
    data = bytearray(real_state.read_bytes())
    data = data[: max(1, int(len(data) * cut))] if cut < 1.0 else data
    for where, bit in flips:
        data[min(int(where * len(data)), len(data) - 1)] ^= 1 << bit
    path = tmp_path / "fuzz.db"
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(bytes(data))
    _outcome(path)
