"""Causal, finite-memory features for machine-learning signals.

The feature at bar ``t`` depends only on bars ``t - window + 1 .. t`` (``window`` =
:attr:`FeatureConfig.window`), computed by explicit finite-window kernels
(:mod:`quantlib.core.ml_features_nb`). So the matrix is identical when rows after ``t`` are dropped
*and* when only the last ``window`` bars are given, which is what the live runner does. Rows
before the window is full are NaN (warm-up); nothing else is ever NaN.

Feature names (stable; ``{h}``, ``{w}`` are the configured integers):

=====================  ==================================================================
``ret_{h}``            log return over ``h`` bars, ``log(close_t / close_{t-h})``
``vol_{w}``            std (ddof=0) of 1-bar log returns over the last ``w`` bars
``rsi_{w}``            RSI, Wilder smoothing ``alpha=1/w`` truncated to ``memory_factor*w`` bars
``macd``               (EMA_fast - EMA_slow) / close, EMAs truncated to ``memory_factor*span``
``macd_signal``        truncated EMA (``macd_signal`` span) of ``macd``
``macd_hist``          ``macd - macd_signal``
``bb_pctb_{w}``        Bollinger %b: ``(close - (ma - 2 sd)) / (4 sd)``; 0.5 when ``sd == 0``
``atr_{w}``            mean true range over ``w`` bars / close
``volume_z_{w}``       ``(volume - mean) / std`` over the last ``w`` volumes; 0 when ``std == 0``
``hour_sin/hour_cos``  time of day (UTC) on the unit circle
``dow_sin/dow_cos``    day of week on the unit circle
``regime_p{k}``        filtered probability of regime ``k`` (0 = calmest) from a Gaussian HMM
                       on 1-bar log returns, forward filter over the last ``regime.window`` bars
=====================  ==================================================================

Examples
--------
>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2024-01-01", periods=300, freq="1h", tz="UTC", name="timestamp")
>>> close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 300)))
>>> df = pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99,
...                    "close": close, "volume": 1.0 + np.arange(300) % 7}, index=idx)
>>> from quantlib.ml.features import compute_features
>>> cfg = FeatureConfig()
>>> X = compute_features(df, cfg)
>>> list(X.columns[:3]), X.iloc[cfg.window - 1:].isna().any().any()
(['ret_1', 'ret_4', 'ret_12'], np.False_)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from quantlib.core import ml_features_nb as nb
from quantlib.core.bars import Bars, as_bars
from quantlib.core.regime_filtering import filter_gaussian
from quantlib.errors import DataError, ParameterError

REQUIRED_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class RegimeFeatureParams:
    """A fitted Gaussian HMM on 1-bar log returns, as plain JSON-able numbers.

    States are ordered by variance ascending (0 = calmest), as in :mod:`quantlib.data`; the
    window filter starts each pass from the stationary law of ``transmat``.
    """

    window: int
    transmat: tuple[tuple[float, ...], ...]
    means: tuple[float, ...]
    variances: tuple[float, ...]

    @property
    def n_states(self) -> int:
        return len(self.means)


@dataclass(frozen=True)
class FeatureConfig:
    """Which features to compute and their windows (JSON-serialisable via :meth:`to_dict`).

    Parameters
    ----------
    return_horizons : horizons of the ``ret_{h}`` features.
    vol_window, rsi_window, bb_window, atr_window, volume_window : windows in bars.
    macd : (fast, slow, signal) spans.
    time_features : add hour/day-of-week sine/cosine features.
    memory_factor : truncated EMAs keep ``memory_factor * span`` bars (weights beyond are tiny).
    regime : fitted regime parameters (see :func:`quantlib.ml.regime_features.fit_regime_params`)
        or None for no regime features.
    """

    return_horizons: tuple[int, ...] = (1, 4, 12, 24)
    vol_window: int = 24
    rsi_window: int = 14
    macd: tuple[int, int, int] = (12, 26, 9)
    bb_window: int = 20
    atr_window: int = 14
    volume_window: int = 24
    time_features: bool = True
    memory_factor: int = 4
    regime: RegimeFeatureParams | None = field(default=None)

    # -- sizes -------------------------------------------------------------------------------
    @property
    def window(self) -> int:
        """Bars the feature row at ``t`` depends on (``t - window + 1 .. t``)."""
        m = self.memory_factor
        fast, slow, signal = self.macd
        needs = [max(self.return_horizons) + 1, self.vol_window + 1, m * self.rsi_window + 1,
                 m * slow + m * signal - 1, self.bb_window, self.atr_window + 1,
                 self.volume_window, 1]
        if self.regime is not None:
            needs.append(self.regime.window + 1)
        return int(max(needs))

    @property
    def names(self) -> list[str]:
        """Column names of :func:`compute_features`, in order."""
        names = [f"ret_{h}" for h in self.return_horizons]
        names += [f"vol_{self.vol_window}", f"rsi_{self.rsi_window}", "macd", "macd_signal",
                  "macd_hist", f"bb_pctb_{self.bb_window}", f"atr_{self.atr_window}",
                  f"volume_z_{self.volume_window}"]
        if self.time_features:
            names += ["hour_sin", "hour_cos", "dow_sin", "dow_cos"]
        if self.regime is not None:
            names += [f"regime_p{k}" for k in range(self.regime.n_states)]
        return names

    # -- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (lists, numbers, bools, None)."""
        out = asdict(self)
        out["return_horizons"] = list(self.return_horizons)
        out["macd"] = list(self.macd)
        if self.regime is not None:
            reg = asdict(self.regime)
            reg["transmat"] = [list(r) for r in self.regime.transmat]
            reg["means"] = list(self.regime.means)
            reg["variances"] = list(self.regime.variances)
            out["regime"] = reg
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | FeatureConfig | None) -> FeatureConfig:
        """Build and validate a config; raise ParameterError naming the bad field."""
        if data is None:
            return cls()
        if isinstance(data, FeatureConfig):
            data.validate()
            return data
        if not isinstance(data, Mapping):
            raise ParameterError(f"feature config: expected a mapping, got {type(data).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"feature config: unknown field(s) {unknown}; known: {sorted(known)}")
        kw = dict(data)
        try:
            if "return_horizons" in kw:
                kw["return_horizons"] = tuple(int(h) for h in kw["return_horizons"])
            if "macd" in kw:
                kw["macd"] = tuple(int(s) for s in kw["macd"])
            reg = kw.get("regime")
            if reg is not None and not isinstance(reg, RegimeFeatureParams):
                kw["regime"] = RegimeFeatureParams(
                    window=int(reg["window"]),
                    transmat=tuple(tuple(float(v) for v in row) for row in reg["transmat"]),
                    means=tuple(float(v) for v in reg["means"]),
                    variances=tuple(float(v) for v in reg["variances"]),
                )
        except (TypeError, ValueError, KeyError) as exc:
            raise ParameterError(f"feature config: malformed field ({exc!r})") from None
        cfg = cls(**kw)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ParameterError naming the first bad field."""
        ints = {"vol_window": self.vol_window, "rsi_window": self.rsi_window,
                "bb_window": self.bb_window, "atr_window": self.atr_window,
                "volume_window": self.volume_window, "memory_factor": self.memory_factor}
        for name, value in ints.items():
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ParameterError(f"feature config: {name} must be an integer >= 1, got {value!r}")
        for name in ("vol_window", "bb_window", "volume_window"):
            if getattr(self, name) < 2:
                raise ParameterError(f"feature config: {name} must be >= 2, got {getattr(self, name)}")
        if not self.return_horizons or any(h < 1 for h in self.return_horizons):
            raise ParameterError(
                f"feature config: return_horizons must be non-empty integers >= 1, got "
                f"{list(self.return_horizons)}")
        if len(set(self.return_horizons)) != len(self.return_horizons):
            raise ParameterError(f"feature config: return_horizons has duplicates {list(self.return_horizons)}")
        if len(self.macd) != 3 or not (1 <= self.macd[0] < self.macd[1]) or self.macd[2] < 1:
            raise ParameterError(
                f"feature config: macd must be (fast, slow, signal) with 1 <= fast < slow and "
                f"signal >= 1, got {list(self.macd)}")
        reg = self.regime
        if reg is not None:
            k = reg.n_states
            ok = (k >= 2 and reg.window >= 2 and len(reg.variances) == k and len(reg.transmat) == k
                  and all(len(r) == k for r in reg.transmat) and min(reg.variances) > 0)
            if not ok:
                raise ParameterError(
                    "feature config: regime must hold window >= 2 and consistent K-state "
                    f"transmat (K x K)/means/variances (> 0), got {reg}")


def _feature_inputs(data: Any) -> Bars:
    """Check OHLCV data (Bars or a frame) at the door: every column, timestamps, close > 0."""
    try:
        bars = as_bars(data)
    except DataError as exc:
        raise DataError(f"features: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if not bars.has(c)]
    if missing:
        raise DataError(f"features: OHLCV data lacks column(s) {missing}; expected "
                        f"{list(REQUIRED_COLUMNS)}")
    if bars.time is None:
        raise DataError("features: OHLCV data needs timestamps (a frame: a DatetimeIndex named "
                        "'timestamp')")
    close = bars.close
    if len(close) and not (np.all(np.isfinite(close)) and close.min() > 0):
        bad = int(np.argmax(~(np.isfinite(close) & (close > 0))))
        raise DataError(f"features: column 'close' must be finite and > 0; row {bad} "
                        f"({bars.label(bad)}) holds {close[bad]!r}")
    return bars


def regime_filtered_proba(log_ret: np.ndarray, params: RegimeFeatureParams) -> np.ndarray:
    """Finite-window filtered regime probabilities (n, K) of 1-bar log returns.

    Uses quantlib.regime's Gaussian emission and windowed forward filter (one implementation
    of the filter for the regime kinds, the live runner and these features).
    """
    k = params.n_states
    means = np.asarray(params.means, dtype=np.float64).reshape(k, 1)
    covars = np.asarray(params.variances, dtype=np.float64).reshape(k, 1, 1)
    # Bar 0 has no return; those rows are warm-up (NaN) anyway, 0 keeps the kernel finite.
    x = np.where(np.isnan(log_ret), 0.0, log_ret).reshape(-1, 1)
    proba, _ = filter_gaussian(x, np.asarray(params.transmat, dtype=np.float64), means, covars,
                               window=params.window)
    return proba


def feature_array(data: Any, config: FeatureConfig) -> np.ndarray:
    """The feature matrix as a float64 array (rows = bars, columns = ``config.names``) of
    ``data`` (:class:`~quantlib.core.bars.Bars` or an OHLCV frame).

    This is the hot path of live evaluation; :func:`quantlib.ml.features.compute_features`
    wraps it in a frame.
    """
    bars = _feature_inputs(data)
    n = len(bars)
    high, low, close, volume = bars.high, bars.low, bars.close, bars.volume
    fast, slow, signal = config.macd
    cols: list[np.ndarray] = [nb.technical_features_nb(
        high, low, close, volume, np.asarray(config.return_horizons, dtype=np.int64),
        config.vol_window, config.rsi_window, config.memory_factor * config.rsi_window,
        fast, slow, signal, config.memory_factor, config.bb_window, config.atr_window,
        config.volume_window, min(config.window - 1, n))]
    if config.time_features:
        # From epoch seconds (UTC): cheaper than DatetimeIndex.hour/.dayofweek on a live window.
        secs = bars.epoch_seconds()
        hour = (secs % 86400) / 3600.0 * (2.0 * np.pi / 24.0)
        dow = ((secs // 86400 + 3) % 7) * (2.0 * np.pi / 7.0)  # 1970-01-01 was a Thursday (3)
        cols.append(np.column_stack([np.sin(hour), np.cos(hour), np.sin(dow), np.cos(dow)]))
    if config.regime is not None:
        cols.append(regime_filtered_proba(nb.log_return_nb(close, 1), config.regime))
    out = np.hstack(cols)
    # Warm-up rows are NaN by contract, even for features with a shorter memory.
    out[: min(config.window - 1, n)] = np.nan
    return out


__all__ = ["FeatureConfig", "RegimeFeatureParams", "feature_array", "regime_filtered_proba",
           "REQUIRED_COLUMNS"]
