"""Shared test fixtures: real market data from ../shared/data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The test process computes with numba's JIT, whatever runs first: importing a kernel here makes
# an in-process `quantlib live run` (typer's CliRunner) keep the JIT instead of switching this
# whole process to ahead-of-time kernels, where research-only kernels are stubs. Tests of the
# AOT trading process start real processes (tests/live/_trader.py).
import quantlib.core.indicators_nb  # noqa: E402,F401  isort: skip

SHARED_DATA = Path(os.environ.get("QUANTLIB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() == "true"


def shared_data_path(name: str) -> Path:
    """Path of a real data file in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real market data {path} is absent (a user's clone has no ../shared/data)")
    return path


@pytest.fixture
def shared_data():
    """``shared_data("btc_usdt_1h_2022_2023.csv")`` -> canonical frame loaded by quantlib."""
    from quantlib.data import load_ohlcv

    def _load(name: str):
        return load_ohlcv(shared_data_path(name))

    return _load
