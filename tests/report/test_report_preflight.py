"""quantlib report checks its data sources before any kernel starts: an exchange that cannot be
reached fails the run once, fast, with the loader's message; a reachable one is loaded once and
handed to every notebook as a Parquet file of the run (no notebook touches the network)."""

from __future__ import annotations

import socket
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from quantlib.data import fetch, synthetic_ohlcv
from quantlib.errors import ReportError
from quantlib.report import load_config, run_report
from quantlib.report.cli import register
from tests.support.kraken_server import KrakenServer

LOADER_CELLS = [
    """
    from quantlib.data import load
    from quantlib.report.record import record_data, record_metrics
    df = load(source)
    record_data(df)
    record_metrics({'n_bars': len(df), 'close_sum': float(df['close'].sum()),
                    'symbol': df.attrs['symbol']})
    """,
]


def _project(root, notebook_factory, *, default_source="sample:bars=50", extra=""):
    for name in ("first", "second"):
        notebook_factory(root / f"{name}.ipynb", LOADER_CELLS, "source = 'sample:bars=20'")
    config = root / "reports.yaml"
    config.write_text(textwrap.dedent(f"""
        defaults: {{source: "{default_source}", timeout: 120}}
        notebooks:
          - name: first
          - name: second
        {extra}
    """))
    return config


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_kernels(monkeypatch):
    """Record every papermill call: the preflight must fail before the first one."""
    import papermill

    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: calls.append(a))
    return calls


def _cli(args):
    app = typer.Typer()
    app.command("version")(lambda: None)  # a second command keeps `report` a sub-command
    register(app)
    return CliRunner().invoke(app, ["report", *args])


@pytest.mark.timeout(120)
def test_unreachable_exchange_fails_fast_without_starting_a_kernel(
        quantlib_kernel, notebook_factory, tmp_path, monkeypatch, no_kernels):
    monkeypatch.setenv("QUANTLIB_DATA_DIR", str(tmp_path / "cache"))  # nothing cached
    monkeypatch.setenv("QUANTLIB_KRAKEN_API_URL", f"http://127.0.0.1:{_closed_port()}")
    config = _project(tmp_path / "nb", notebook_factory)
    out = tmp_path / "reports"
    started = time.perf_counter()
    result = _cli(["--config", str(config), "--out", str(out), "--data", "kraken:BTC/USD:1h",
                   "--jobs", "2"])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 2, result.output
    assert ("error: data source 'kraken:BTC/USD:1h' (for first/default, second/default) cannot "
            "be loaded, so no notebook was started: kraken BTC/USD 1h") in result.output
    assert "127.0.0.1" in result.output and "Traceback" not in result.output
    assert no_kernels == []
    assert not out.exists() or [p.name for p in out.iterdir()] == []  # no run directory left
    # One load with the loader's bounded retries, not one per notebook (each ~18 s here).
    assert elapsed < 60


@pytest.mark.timeout(120)
def test_unreachable_exchange_named_in_the_config_is_checked_too(
        quantlib_kernel, notebook_factory, tmp_path, monkeypatch, no_kernels):
    monkeypatch.setenv("QUANTLIB_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("QUANTLIB_KRAKEN_API_URL", f"http://127.0.0.1:{_closed_port()}")
    waits = []
    monkeypatch.setattr(fetch, "_sleep", waits.append)  # the loader's backoff, timed above
    config = _project(tmp_path / "nb", notebook_factory, default_source="kraken:ETH/USD:1h")
    with pytest.raises(ReportError, match=r"data source 'kraken:ETH/USD:1h' \(for first/default, "
                                          r"second/default\) cannot be loaded"):
        run_report(config, out=tmp_path / "reports")
    assert no_kernels == []
    # One load's backoff in all (growing waits); a second load would start over.
    assert waits and waits == sorted(waits)


def test_malformed_sources_fail_before_kernels(quantlib_kernel, notebook_factory, tmp_path,
                                               no_kernels):
    config = _project(tmp_path / "nb", notebook_factory, default_source="kraken:BTC:1h")
    with pytest.raises(ReportError, match=r"reports\.yaml: defaults\.source: data source "
                                          r"'kraken:BTC:1h'"):
        load_config(config)
    good = _project(tmp_path / "nb2", notebook_factory)
    with pytest.raises(ReportError, match=r"data source 'file:/no/such.csv' \(for first/default, "
                                          r"second/default\) cannot be loaded.*file not found"):
        run_report(good, out=tmp_path / "reports", data="file:/no/such.csv")
    assert no_kernels == []


@pytest.mark.timeout(600)
def test_reachable_exchange_is_loaded_once_and_handed_over_as_a_file(
        quantlib_kernel, notebook_factory, tmp_path, monkeypatch):
    market = synthetic_ohlcv(61, "1h", seed=8, start="2024-03-01").ohlcv  # 60 closed + 1 open
    now_ms = market.index[-1].value // 1_000_000 + 17 * 60_000
    monkeypatch.setattr(fetch, "_now_ms", lambda: now_ms)
    monkeypatch.setenv("QUANTLIB_DATA_DIR", str(tmp_path / "cache"))
    source = "kraken:BTC/USD:1h:2024-03-01"
    config = _project(tmp_path / "nb", notebook_factory)
    with KrakenServer(market, timeframe="1h") as server:
        monkeypatch.setenv("QUANTLIB_KRAKEN_API_URL", server.url)
        run = run_report(config, out=tmp_path / "reports", data=source, jobs=2)
        ohlc_requests = len(server.requests_for("OHLC"))
    assert [e["status"] for e in run.entries] == ["ok", "ok"], run.summary()
    # Both notebooks saw exactly the 60 closed bars the exchange served (independent sums).
    closed = market.iloc[:-1]
    for entry in run.entries:
        assert entry["metrics"]["n_bars"] == 60 and entry["metrics"]["symbol"] == "BTC/USD"
        assert entry["metrics"]["close_sum"] == pytest.approx(float(closed["close"].sum()),
                                                              rel=1e-12)
        assert entry["source"] == source  # what was asked for stays what the index shows
        handed = entry["parameters"]["source"]
        assert handed.startswith(f"file:{run.run_dir / 'data'}") and handed.endswith(".parquet")
        assert entry["data"]["source_string"] == handed
    # One load up front (one page), none from the notebooks' kernels.
    assert ohlc_requests == 1
    saved = pd.read_parquet(run.run_dir / "data" / "kraken_BTC_USD_1h_2024-03-01.parquet")
    np.testing.assert_array_equal(saved[["open", "high", "low", "close", "volume"]].to_numpy(),
                                  closed.to_numpy())
