"""Fixtures for the live runner tests: small replay data and spec builders."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from quantlib.data import save_ohlcv, synthetic_ohlcv
from quantlib.live.brokers import PaperBroker
from quantlib.live.logs import JsonLogger
from quantlib.live.replay_feeds import ReplayFeed
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from quantlib.strategy.spec import StrategySpec


def make_spec(kind: str, params: dict | None = None, **overrides) -> StrategySpec:
    fields = dict(name=f"t_{kind}", kind=kind, params=params or {}, symbols=["BTC/USD"],
                  timeframe="1h", execution={"fees": 0.001, "slippage_bps": 5.0})
    fields.update(overrides)
    return StrategySpec(**fields)


def paper_replay(spec: StrategySpec, store: StateStore, bars: pd.DataFrame | str | Path):
    """``spec`` run on the paper broker over ``bars`` (a frame or a CSV file) into ``store``,
    its log lines kept off the test output; the run's summary."""
    return LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(bars),
                      logger=JsonLogger(io.StringIO())).run()


@pytest.fixture(scope="session")
def replay_frame():
    return synthetic_ohlcv(n_bars=300, seed=3).ohlcv


@pytest.fixture(scope="session")
def replay_file(tmp_path_factory, replay_frame):
    path = tmp_path_factory.mktemp("replay") / "btc_1h.csv"
    save_ohlcv(replay_frame, path)
    return path
