"""Specs record informative inputs: source and SHA-256 of every input's data; backtest --strategy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import run_backtest
from quantlib.data import load
from quantlib.errors import SpecError
from quantlib.strategy.cli import backtest_spec
from quantlib.strategy.spec import export, load_spec, save_spec, sha256_frame

TREND = {"inner_kind": "ma_cross", "inner_params": {"fast": 5, "slow": 20},
         "trend_timeframe": "4h", "trend_kind": "ma", "trend_window": 8}
CROSS = {"inner_kind": "ma_cross", "inner_params": {"fast": 5, "slow": 30}, "vol_window": 12,
         "filter_window": 30, "regime_symbol": "BTC/USDT"}


def test_resampled_input_is_hashed_as_the_closed_4h_bars(tmp_path):
    data = load("sample:bars=500,timeframe=1h,seed=4")
    spec = export("mtf", kind="htf_trend", params=TREND, data=data)
    entry = spec.provenance.informative["trend"]
    assert entry.timeframe == "4h"
    assert entry.data_source == f"{data.attrs['source_string']}@4h"
    # independent: pandas 4h bars of whole periods that closed by the last 1h close
    four = data.resample("4h", origin="epoch").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    counts = data["close"].resample("4h", origin="epoch").count()
    four = four[(counts == 4).to_numpy()]
    four = four[four.index + pd.Timedelta("4h") <= data.index[-1] + pd.Timedelta("1h")]
    four.index = four.index.as_unit("ns")
    four.index.name = "timestamp"
    assert entry.data_sha256 == sha256_frame(four)
    path = save_spec(spec, tmp_path / "mtf.json")
    assert load_spec(path).provenance.informative["trend"] == entry


def test_cross_symbol_spec_records_and_backtests_its_other_symbol(tmp_path):
    eth = load("sample:bars=600,timeframe=1h,seed=1")
    eth.attrs["symbol"] = "ETH/USDT"
    btc = load("sample:bars=600,timeframe=1h,seed=2")
    btc.attrs["symbol"] = "BTC/USDT"
    result = run_backtest("regime_filter_cross", eth, CROSS, informative={"regime": btc})
    spec = export("eth_on_btc", result=result, kind="regime_filter_cross", params=CROSS,
                  data=eth, symbols=["ETH/USDT"], informative={"regime": btc})
    entry = spec.provenance.informative["regime"]
    assert entry.symbol == "BTC/USDT" and entry.data_sha256 == sha256_frame(btc)
    assert entry.data_source == btc.attrs["source_string"]
    path = save_spec(spec, tmp_path / "eth_on_btc.json")
    again = backtest_spec(path)
    np.testing.assert_allclose(again.equity.to_numpy(), result.equity.to_numpy(), rtol=1e-12)
    # without the recorded source the spec cannot be rebuilt: said, with the JSON path
    raw = json.loads(path.read_text())
    raw["provenance"]["informative"] = {}
    path.write_text(json.dumps(raw))
    with pytest.raises(SpecError, match=r"provenance\.informative\.regime\.data_source"):
        backtest_spec(path)
