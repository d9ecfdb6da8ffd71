"""The real trading process, ``quantlib live run`` in a fresh interpreter: it trades at the
(loopback) exchange on ahead-of-time compiled kernels without loading pandas or numba, says which
kernels it runs, and falls back to numba's JIT, with a warning, only when asked to allow it."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from quantlib import jit
from quantlib.data import save_ohlcv
from quantlib.live.state import StateStore
from quantlib.strategy.spec import save_spec
from tests.live._approve import promoted
from tests.live._trader import heavy_modules, run_trader
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer


@pytest.fixture(scope="module", autouse=True)
def _kernels():
    jit.ensure_built()


def _events(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_live_mode_trades_at_the_exchange_without_pandas_or_numba(replay_frame, tmp_path):
    replay = save_ohlcv(replay_frame.iloc[:150], tmp_path / "bars.csv")
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    spec_path = promoted(spec, tmp_path)
    state, log = tmp_path / "live.db", tmp_path / "live.log"
    with KrakenServer(symbol="BTC/USD", balances={"USD": 10_000.0}) as server:
        server.set_price("BTC/USD", float(replay_frame["close"].iloc[149]))
        env = {"QUANTLIB_KRAKEN_API_KEY": server.api_key, "QUANTLIB_KRAKEN_SECRET": server.secret,
               "QUANTLIB_KRAKEN_API_URL": server.url}
        done, loaded = run_trader(["live", "run", "--strategy", str(spec_path), "--mode", "live",
                                   "--feed", f"replay:{replay}", "--state", str(state),
                                   "--log-file", str(log)], tmp_path, env)
        assert done.returncode == 0, done.stderr[-3000:]
        placed = server.requests_for("AddOrder")
        orders = list(server.orders.values())
        assert not server.errors
    assert heavy_modules(loaded) == []
    assert "ccxt" in {m.split(".")[0] for m in loaded}
    store = StateStore(state)
    sent = [o for o in store.orders() if o.exchange_id]
    assert len(orders) >= 2 and len(sent) == len(orders) == len(placed)  # one request per order
    assert sorted(o["cl_ord_id"] for o in orders) == sorted(o.client_id for o in sent)
    assert len({o.client_id for o in sent}) == len(sent)
    kernels = [e for e in _events(log) if e["event"] == "kernels"]
    assert [k["mode"] for k in kernels] == ["aot"]
    assert kernels[0]["extension"] == str(jit.extension_path())
    for blob in (done.stdout, done.stderr, log.read_text(), state.read_bytes().decode("latin-1")):
        assert server.secret not in blob and server.api_key not in blob


def test_kernels_aot_refuses_when_they_cannot_be_built_and_auto_falls_back(replay_file,
                                                                           tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the kernel cache folder should go")
    env = {"QUANTLIB_KERNEL_DIR": str(blocker / "kernels")}
    spec_path = save_spec(make_spec("ma_cross", {"fast": 3, "slow": 10}), tmp_path / "spec.json")
    args = ["live", "run", "--strategy", str(spec_path), "--mode", "paper",
            "--feed", f"replay:{replay_file}"]
    refused, _ = run_trader([*args, "--state", str(tmp_path / "a.db"), "--kernels", "aot"],
                            tmp_path, env)
    assert refused.returncode == 2
    assert f"cannot use the kernel cache {blocker / 'kernels'}" in refused.stderr
    assert not (tmp_path / "a.db").exists() or StateStore(tmp_path / "a.db").last_bar is None
    log = tmp_path / "auto.log"
    done, loaded = run_trader([*args, "--state", str(tmp_path / "b.db"), "--log-file", str(log)],
                              tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    warning = next(e for e in _events(log) if e["event"] == "kernels")
    assert (warning["level"], warning["mode"]) == ("warning", "jit")
    assert "cannot use the kernel cache" in warning["reason"]
    assert "numba" in {m.split(".")[0] for m in loaded}  # it really ran on the JIT
    assert json.loads(done.stdout.strip().splitlines()[-1])["bars_processed"] == 300


def test_jit_and_aot_processes_end_in_the_same_state(replay_file, tmp_path):
    spec_path = save_spec(make_spec("bollinger_reversion", {"window": 12, "k": 1.5}),
                          tmp_path / "spec.json")
    snapshots = {}
    for kernels in ("jit", "aot"):
        state = tmp_path / f"{kernels}.db"
        done, loaded = run_trader(["live", "run", "--strategy", str(spec_path), "--mode",
                                   "paper", "--feed", f"replay:{replay_file}", "--state",
                                   str(state), "--kernels", kernels], tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert ("numba" in {m.split(".")[0] for m in loaded}) == (kernels == "jit")
        store = StateStore(state)
        snapshots[kernels] = store.snapshot()
        store.close()
    assert Counter(o[5] for o in snapshots["aot"]["orders"])["filled"] >= 4
    assert snapshots["aot"] == snapshots["jit"]


def test_build_kernels_compiles_once_into_the_kernel_folder(tmp_path):
    # a fresh folder: the real build (numba.pycc, in a child process), then a cached answer
    import numpy as np

    from quantlib.core.indicators_nb import fir_rsi_nb

    env = {"QUANTLIB_KERNEL_DIR": str(tmp_path / "kernels")}
    done, loaded = run_trader(["live", "build-kernels"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    built = tmp_path / "kernels" / jit.extension_path().name
    assert done.stdout.strip() == str(built) and built.exists()
    assert "numba" not in {m.split(".")[0] for m in loaded}  # compiled by a child process
    x = np.cumsum(np.random.default_rng(0).normal(size=300)) + 100
    ext = jit.load_extension(built)
    np.testing.assert_array_equal(ext.core_indicators_nb__fir_rsi_nb(x, 1 / 14, 56, 0),
                                  fir_rsi_nb(x, 1 / 14, 56))
    stamp = built.stat().st_mtime_ns
    again, _ = run_trader(["live", "build-kernels"], tmp_path, env)
    assert again.stdout.strip() == str(built) and built.stat().st_mtime_ns == stamp


def test_old_builds_are_pruned(tmp_path):
    import os

    for age in range(8):
        path = tmp_path / f"_quantlib_kernels_{age:016x}.so"
        path.write_bytes(b"")
        os.utime(path, (1_000_000 - age, 1_000_000 - age))
    jit._prune(tmp_path, keep=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        [f"_quantlib_kernels_{age:016x}.so" for age in range(5)]


@pytest.mark.parametrize("spacing", ["arithmetic", "volatility"])
def test_a_grid_rests_the_same_orders_from_the_trading_process(spacing, tmp_path, monkeypatch):
    """A grid at the (loopback) exchange: the real process (AOT kernels, no pandas or numba)
    rests exactly the orders an in-process run (numba's JIT) rests on an identical exchange."""
    from typer.testing import CliRunner

    from quantlib.cli import app
    from quantlib.data import synthetic_ohlcv

    data = synthetic_ohlcv(n_bars=40, seed=2).ohlcv
    replay = save_ohlcv(data, tmp_path / "bars.csv")
    grid = {"spacing": spacing, "n_levels": 6, "order_value": 500.0, "lower_pct": 0.05,
            "upper_pct": 0.05, "atr_period": 10, "atr_k": 1.5}
    spec_path = promoted(make_spec("grid", grid, execution={"fees": 0.0}), tmp_path)
    books = {}
    for how in ("in-process", "trading-process"):
        with KrakenServer(symbol="BTC/USD", balances={"USD": 10_000.0}) as server:
            server.set_price("BTC/USD", float(data["close"].iloc[-1]))
            env = {"QUANTLIB_KRAKEN_API_KEY": server.api_key,
                   "QUANTLIB_KRAKEN_SECRET": server.secret, "QUANTLIB_KRAKEN_API_URL": server.url}
            args = ["live", "run", "--strategy", str(spec_path), "--mode", "live", "--feed",
                    f"replay:{replay}", "--state", str(tmp_path / f"{how}.db")]
            if how == "in-process":
                for key, value in env.items():
                    monkeypatch.setenv(key, value)
                out = CliRunner().invoke(app, args)
                assert out.exit_code == 0, out.output
            else:
                done, loaded = run_trader(args, tmp_path, env)
                assert done.returncode == 0, done.stderr[-3000:]
                assert heavy_modules(loaded) == []
            assert not server.errors
            books[how] = sorted((o["cl_ord_id"], o["descr"]["type"], o["descr"]["price"],
                                 o["vol"], o["status"]) for o in server.orders.values())
    assert len(books["in-process"]) >= 3
    assert books["trading-process"] == books["in-process"]


def test_a_bad_replay_file_is_named_with_its_row_and_column(replay_frame, tmp_path):
    # the file is parsed by the loader in a child process; its message must reach the user
    bad = replay_frame.iloc[:30].copy()
    bad.iloc[12, bad.columns.get_loc("high")] = bad["low"].iloc[12] * 0.5
    replay = tmp_path / "bad.csv"
    out = bad.copy()
    out.index = out.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(replay, index_label="timestamp")
    spec_path = save_spec(make_spec("ma_cross", {"fast": 3, "slow": 10}), tmp_path / "spec.json")
    done, loaded = run_trader(["live", "run", "--strategy", str(spec_path), "--mode", "paper",
                               "--feed", f"replay:{replay}", "--state", str(tmp_path / "s.db")],
                              tmp_path)
    assert done.returncode == 2
    assert f"{replay}: row 12" in done.stderr and "column 'high'" in done.stderr
    assert "Traceback" not in done.stderr
    assert "pandas" not in {m.split(".")[0] for m in loaded}  # parsed in the child
