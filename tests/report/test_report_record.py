"""record_metrics / record_data payloads (their read-back from a kernel is in the pipeline tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlib.report.record import record_data, record_metrics


def test_metrics_payload_is_plain_json():
    payload = record_metrics({"sharpe": np.float64(1.5), "trades": np.int64(7),
                              "bad": float("nan"), "inf": np.inf, "tags": ("a", 1)})
    assert payload == {"sharpe": 1.5, "trades": 7, "bad": None, "inf": None, "tags": ["a", 1]}
    assert type(payload["trades"]) is int


def test_data_payload_has_provenance_and_span():
    index = pd.date_range("2024-03-01", periods=3, freq="h", tz="UTC", name="timestamp")
    df = pd.DataFrame({"close": [1.0, 2.0, 3.0]}, index=index)
    df.attrs.update(source="file", symbol="BTC/USD", timeframe="1h", extra=object())
    payload = record_data(df)
    assert payload == {"source": "file", "symbol": "BTC/USD", "timeframe": "1h",
                       "first_bar": "2024-03-01 00:00:00+00:00",
                       "last_bar": "2024-03-01 02:00:00+00:00", "n_bars": 3}
