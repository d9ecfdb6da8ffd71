"""Informative inputs: other timeframes and other symbols, aligned to a kind's base bars.

The alignment rule (the one rule every engine, check and runner follows)
-------------------------------------------------------------------------
A signal at base bar ``t`` is decided at ``t``'s close, ``close_t = open_t + base_step``. An
informative bar ``j`` (open ``I_j``, length ``H``) closes at ``I_j + H``. At base bar ``t`` the
informative bar visible is the **latest one that has closed at or before** ``close_t``::

    visible(t) = max { j : I_j + H <= close_t }        (-1 when none has closed yet)

So the 4h bar 08:00-12:00 is visible from the 1h bar 11:00-12:00 on (its close, 12:00, is that
bar's close) and never earlier; at the 1h bars 08:00..10:00 the 4h bar 04:00-08:00 is the one
visible. A still-forming informative bar is never used: the informative bars handed to a signal
are cut to those closed by the last base close, so no row a signal can index was unknown at
the end of the data. The same bar seen at the same or a higher timeframe of another symbol
follows the same rule (at equal timeframes, bar ``t`` of the other symbol is visible at ``t``).

Missing bars are errors, never forward fills. Informative bars sit on the UTC epoch grid of their
timeframe (a 1d bar opens at 00:00 UTC; no daylight-saving shifts). Once a first informative bar
has closed, the bar visible at base bar ``t`` must be exactly the one that closed last on that
grid (open ``floor(close_t / H) * H - H``) and every bar of its declared history must be present;
otherwise :class:`~quantlib.errors.DataError` names the input, symbol, timeframe and the missing
bar's time. Bars resampled from the base data (:func:`aggregate`) exist only where every base bar
of their period is present, so a gap in the base data is a missing informative bar, not a
partial one.

Warm-up: an input needing ``history`` informative bars at each base bar makes a kind need
``(history + 1) * ratio - 2`` base bars before ``t`` (``ratio = H / base_step``): the visible bar
may have closed up to ``H - base_step`` before ``close_t`` and reaches ``history * H`` back.

Wrapping kinds (a trend filter around a regime filter, ...) declare their own inputs followed by
the wrapped kind's (:func:`nest`) and hand the aligned ones down (:func:`handed_down`): the
warm-up covers every input of every level, and data the caller passes at the top (another
market's bars) reaches the level that reads it. The live runner feeds inputs of other markets
from their own closed candles (:func:`foreign_symbols` names the markets it must carry).

This module imports numpy only: the trading process uses it as it is.

Examples
--------
>>> import numpy as np
>>> hour = 3_600 * 10**9
>>> base = np.arange(8) * hour                      # 1h bars 00:00 .. 07:00
>>> visible_index(base, hour, np.array([0, 4 * hour]), 4 * hour).tolist()
[-1, -1, -1, 0, 0, 0, 0, 1]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from quantlib.core.bars import COLUMNS, Bars, as_bars, cached
from quantlib.errors import DataError, ParameterError

NS = 1_000_000_000
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timeframe_ns(timeframe: str) -> int:
    """Length of a ``timeframe`` (``'5m'``, ``'4h'``, ``'1d'``) in nanoseconds.

    (numpy-free string parsing: :mod:`quantlib.data.timeframes` is the research twin and the
    tests check both agree.)
    """
    text = str(timeframe).strip()
    number, unit = text[:-1], text[-1:]
    if not number.isdigit() or unit not in _UNIT_SECONDS or int(number) == 0:
        raise ParameterError(f"timeframe {timeframe!r} is not understood; expected a number and "
                             "a unit s, m, h, d or w, e.g. '5m', '1h', '1d'")
    return int(number) * _UNIT_SECONDS[unit] * NS


def utc_label(time_ns: int) -> str:
    """``time_ns`` as ``'2024-01-01 08:00:00+00:00'`` (pandas' spelling) for messages."""
    return (_EPOCH + timedelta(microseconds=int(time_ns) // 1_000)).isoformat(sep=" ")


@dataclass(frozen=True)
class InformativeInput:
    """One informative input a kind declares.

    Parameters
    ----------
    name : key the signal function reads it by (``informative(bars, name)``).
    timeframe : its timeframe (``'4h'``); None = the base timeframe.
    symbol : its symbol (``'BTC/USDT'``); None = the base symbol.
    source : a data source string that loads it (research only); None = resample the base data
        (own symbol) or data the caller passes (``informative={name: frame}``).
    history : informative bars the signal reads at each base bar, the visible one included
        (part of the kind's warm-up).
    """

    name: str
    timeframe: str | None = None
    symbol: str | None = None
    source: str | None = None
    history: int = 1

    def describe(self, base: Bars) -> str:
        symbol = self.symbol or base.attrs.get("symbol") or "the base symbol"
        timeframe = self.timeframe or base.attrs.get("timeframe") or "the base timeframe"
        return f"informative input {self.name!r} ({symbol} {timeframe})"


InformativeFn = Callable[[Mapping[str, Any]], tuple[InformativeInput, ...]]


@dataclass(frozen=True)
class Informative:
    """An informative input aligned to base bars.

    Attributes
    ----------
    input : its declaration.
    bars : its closed bars at its own timeframe, cut at the last base close.
    index : int64 per base bar: the row of ``bars`` visible at that bar (-1: none closed yet).
    """

    input: InformativeInput
    bars: Bars
    index: np.ndarray

    def at_base(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one per informative bar, e.g. an indicator on ``bars``) at each base
        bar by the alignment rule; NaN where no informative bar has closed yet."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(self.bars),):
            raise ParameterError(f"{self.input.name!r}: expected one value per informative bar "
                                 f"({len(self.bars)}), got shape {values.shape}")
        out = np.full(len(self.index), np.nan)
        seen = self.index >= 0
        out[seen] = values[self.index[seen]]
        return out


def visible_index(base_time: np.ndarray, base_step: int, info_time: np.ndarray,
                  info_step: int) -> np.ndarray:
    """Row of the informative bar visible at each base bar (the module's rule); -1 if none.

    Parameters
    ----------
    base_time, info_time : int64 bar open times (ns, increasing).
    base_step, info_step : bar lengths (ns).
    """
    base_close = np.asarray(base_time, dtype=np.int64) + np.int64(base_step)
    info_close = np.asarray(info_time, dtype=np.int64) + np.int64(info_step)
    return np.searchsorted(info_close, base_close, side="right").astype(np.int64) - 1


def aggregate(bars: Bars, base_step: int, step: int) -> Bars:
    """Complete ``step`` bars of ``bars`` (UTC epoch grid): first open, max high, min low, last
    close, summed volume; a period missing any base bar (a gap, or the still-forming last
    period) yields no bar. Agrees with :func:`quantlib.data.resample` on complete periods."""
    if step % base_step:
        raise ParameterError(f"informative timeframe of {step // NS} s is not a multiple of the "
                             f"base timeframe ({base_step // NS} s)")
    time = _times(bars)
    if step == base_step:
        return bars
    bucket = time - time % step
    first = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]]) if len(time) else \
        np.zeros(0, dtype=np.int64)
    counts = np.diff(np.r_[first, len(time)])
    last = first + counts - 1
    # base bars are unique and on their grid, so a full count means no bar of the period is absent
    complete = counts == step // base_step
    columns = {"open": bars.open[first][complete], "close": bars.close[last][complete]}
    if len(first):  # reduceat over every period, complete or not, then keep the complete ones
        columns["high"] = np.maximum.reduceat(bars.high, first)[complete]
        columns["low"] = np.minimum.reduceat(bars.low, first)[complete]
        if bars.has("volume"):
            columns["volume"] = np.add.reduceat(bars.volume, first)[complete]
    else:
        columns.update({name: np.zeros(0) for name in ("high", "low", "volume")})
    columns = {name: np.ascontiguousarray(columns[name], dtype=np.float64)
               for name in COLUMNS if name in columns}
    attrs = dict(bars.attrs)
    attrs.pop("informative", None)
    return Bars(np.ascontiguousarray(bucket[first][complete]), columns, attrs)


def _times(bars: Bars) -> np.ndarray:
    if bars.time is None:
        raise DataError("informative inputs need bar timestamps; the data has none")
    return bars.time


def _step_of(bars: Bars, what: str) -> int:
    """The bar length of ``bars``: its ``timeframe`` attr, else the smallest time step."""
    timeframe = bars.attrs.get("timeframe")
    if timeframe:
        return timeframe_ns(timeframe)
    time = _times(bars)
    if len(time) < 2:
        raise DataError(f"{what}: cannot tell the timeframe of {len(time)} bar(s) without a "
                        "'timeframe' attr")
    return int(np.min(np.diff(time)))


def align(base: Bars, spec: InformativeInput, raw: Bars | None) -> Informative:
    """Align one informative input to ``base`` (see the module doc for the rule).

    ``raw`` is the input's own data (any timeframe no coarser than the declared one; finer data
    is aggregated), or None to aggregate the base data itself.
    """
    what = spec.describe(base)
    base_step = _step_of(base, "base data")
    step = timeframe_ns(spec.timeframe) if spec.timeframe else base_step
    if step < base_step:
        raise ParameterError(f"{what}: timeframe is finer than the base timeframe; informative "
                             "inputs are at the base or a higher timeframe")
    source = base if raw is None else raw
    source_step = _step_of(source, what)
    info = source
    if source_step != step:
        info = aggregate(source, source_step, step)
        info.attrs["timeframe"] = spec.timeframe
    time = _times(info)
    if len(time) and (np.any(time % step) or np.any(np.diff(time) <= 0)):
        bad = int(np.flatnonzero((time % step != 0) | np.r_[False, np.diff(time) <= 0])[0])
        raise DataError(f"{what}: bar {utc_label(time[bad])} is not on the {step // NS} s UTC "
                        "grid or out of order")
    base_time = _times(base)
    last_close = base_time[-1] + base_step if len(base_time) else np.iinfo(np.int64).min
    n_closed = int(np.searchsorted(time + step, last_close, side="right"))
    info = _head(info, n_closed)  # the forming bar (and anything later) is never handed over
    index = visible_index(base_time, base_step, info.time, step)
    _check_latest(what, base, base_time + base_step, index, info.time, step)
    _check_history(what, index, info.time, step, spec.history)
    return Informative(spec, info, index)


def _head(bars: Bars, n: int) -> Bars:
    if n == len(bars):
        return bars
    columns = {name: bars.column(name)[:n] for name in COLUMNS if bars.has(name)}
    return Bars(bars.time[:n], columns, bars.attrs)


def _check_latest(what: str, base: Bars, base_close: np.ndarray, index: np.ndarray,
                  info_time: np.ndarray, step: int) -> None:
    """DataError when, after the first informative bar closed, the bar visible at a base bar
    is not the one that closed last."""
    seen = np.flatnonzero(index >= 0)
    if not len(seen):
        return
    expected = base_close[seen] - base_close[seen] % step - step
    wrong = np.flatnonzero(info_time[index[seen]] != expected)
    if len(wrong):
        t = int(seen[wrong[0]])
        raise DataError(f"{what}: bar {utc_label(expected[wrong[0]])} is missing (needed at base "
                        f"bar {t}, {base.label(t)}); informative bars are never forward-filled "
                        "across a gap")


def _check_history(what: str, index: np.ndarray, info_time: np.ndarray, step: int,
                   history: int) -> None:
    """DataError when a bar of the declared history before the first visible bar is missing."""
    seen = np.flatnonzero(index >= 0)
    if not len(seen):
        return
    first = max(int(index[seen[0]]) - max(int(history), 1) + 1, 0)
    gaps = np.flatnonzero(np.diff(info_time[first:]) != step)
    if len(gaps):
        missing = int(info_time[first + gaps[0]]) + step
        raise DataError(f"{what}: bar {utc_label(missing)} is missing from its history; "
                        "informative bars are never forward-filled across a gap")


def attach(base: Any, inputs: tuple[InformativeInput, ...],
           supplied: Mapping[str, Any] | None = None) -> Bars:
    """``base`` as Bars carrying every declared input aligned (``attrs['informative']``).

    Inside :func:`~quantlib.core.bars.indicator_cache` each input is aligned once per base
    data object, so a sweep computes informative indicators once.
    """
    bars = as_bars(base)
    supplied = dict(supplied or {})
    unknown = sorted(set(supplied) - {spec.name for spec in inputs})
    if unknown:
        raise ParameterError(f"informative data for {unknown}: the kind declares no such input; "
                             f"declared: {sorted(spec.name for spec in inputs)}")
    aligned = {}
    for spec in inputs:
        raw = _raw_input(bars, spec, supplied.get(spec.name))
        # the alignment does not depend on the history asked for: parameters that change only
        # the history (a trend window) share it, and only the history check is repeated
        key = (spec.name, spec.timeframe, spec.symbol, spec.source)
        shared = cached("informative", _aligner(bars, spec, raw), bars.close, key,
                        None if raw is None else id(raw.close))
        if shared.input != spec:
            _check_history(spec.describe(bars), shared.index, shared.bars.time,
                           _step_of(shared.bars, spec.describe(bars)), spec.history)
            shared = replace(shared, input=spec)
        aligned[spec.name] = shared
    columns = {name: bars.column(name) for name in COLUMNS if bars.has(name)}
    return Bars(bars.time, columns, {**bars.attrs, "informative": aligned})


def _aligner(bars: Bars, spec: InformativeInput, raw: Bars | None) -> Callable[..., Any]:
    # cached() calls fn(x, *key): the key parts are for the cache, the work is align()
    def run(*_key: Any) -> Informative:
        return align(bars, spec, raw)
    return run


_SOURCES_KEY = np.zeros(0)  # a long-lived object for cached() to key loaded sources on


def _loader(source: str) -> Callable[..., Any]:
    def run(*_key: Any) -> Bars:
        from quantlib.data import load  # research path only: the trader passes its own bars

        return as_bars(load(source))
    return run


def _raw_input(base: Bars, spec: InformativeInput, given: Any) -> Bars | None:
    if isinstance(given, Informative):  # handed down by a wrapping kind: its closed bars
        return given.bars
    if given is not None:
        return as_bars(given)
    if spec.source is not None:
        # loaded once per indicator_cache (a sweep), so the alignment is shared as well
        return cached("informative-source", _loader(spec.source), _SOURCES_KEY, spec.source)
    own = base.attrs.get("symbol")
    if spec.symbol is not None and spec.symbol != own:
        raise ParameterError(f"{spec.describe(base)}: no data; pass informative="
                             f"{{{spec.name!r}: frame}} or declare a source string")
    return None


def informative(bars: Bars, name: str) -> Informative:
    """The aligned informative input ``name`` of the bars a signal function received."""
    aligned = bars.attrs.get("informative") or {}
    try:
        return aligned[name]
    except KeyError:
        raise ParameterError(f"no informative input {name!r} on these bars (declared: "
                             f"{sorted(aligned)}); declare it in the kind's `informative`"
                             ) from None


def nest(own: tuple[InformativeInput, ...], inner: tuple[InformativeInput, ...]
         ) -> tuple[tuple[InformativeInput, ...], dict[str, str]]:
    """The inputs of a kind wrapping another: its ``own`` followed by the wrapped kind's
    ``inner`` ones, and ``{inner name: name in the result}``.

    A wrapper declares both, so its warm-up covers the wrapped kind's inputs as well as its own
    (:func:`informative_warmup` takes the longest) and the caller passes data for every input
    at the top. An inner input reading the same data as one already declared (same timeframe,
    symbol and source) is merged into it with the longer history; one whose name is taken by
    other data is renamed ``'inner.NAME'``.

    Examples
    --------
    >>> own = (InformativeInput("trend", timeframe="4h", history=20),)
    >>> inner = (InformativeInput("regime", symbol="BTC/USDT", history=60),
    ...          InformativeInput("trend", timeframe="1d", history=5))
    >>> inputs, names = nest(own, inner)
    >>> [i.name for i in inputs], names
    (['trend', 'regime', 'inner.trend'], {'regime': 'regime', 'trend': 'inner.trend'})
    """
    out = {spec.name: spec for spec in own}
    names = {}
    for spec in inner:
        name = spec.name
        while name in out and _data_of(out[name]) != _data_of(spec):
            name = "inner." + name
        held = out.get(name)
        out[name] = replace(spec, name=name) if held is None else \
            replace(held, history=max(held.history, spec.history))
        names[spec.name] = name
    return tuple(out.values()), names


def _data_of(spec: InformativeInput) -> tuple:
    return spec.timeframe, spec.symbol, spec.source


def handed_down(bars: Bars, names: Mapping[str, str]) -> dict[str, Informative] | None:
    """The aligned inputs a wrapper passes to its wrapped kind (``signals(...,
    informative=...)``), by the wrapped kind's own names (``names`` from :func:`nest`)."""
    return {inner: informative(bars, outer) for inner, outer in names.items()} or None


def foreign_symbols(inputs: tuple[InformativeInput, ...], traded: list[str]) -> list[str]:
    """Symbols the inputs read that are not traded, in declaration order (the markets a runner
    must feed besides the traded ones)."""
    out: list[str] = []
    for spec in inputs:
        if spec.symbol is not None and spec.symbol not in traded and spec.symbol not in out:
            out.append(spec.symbol)
    return out


def informative_warmup(inputs: tuple[InformativeInput, ...], base_timeframe: str) -> int:
    """Base bars before ``t`` that the inputs need (see the module doc), 0 without inputs."""
    if not inputs:
        return 0
    base_step = timeframe_ns(base_timeframe)
    need = 0
    for spec in inputs:
        ratio = (timeframe_ns(spec.timeframe) if spec.timeframe else base_step) // base_step
        need = max(need, (max(int(spec.history), 1) + 1) * ratio - 2)
    return need


def truncate_supplied(supplied: Mapping[str, Any] | None, end_ns: int) -> dict[str, Any]:
    """Supplied informative data cut to bars opening before ``end_ns`` (for prefix checks:
    the base and informative data end at the same moment)."""
    out = {}
    for name, data in (supplied or {}).items():
        bars = as_bars(data)
        out[name] = _head(bars, int(np.searchsorted(_times(bars), end_ns, side="left")))
    return out


__all__ = ["Informative", "InformativeInput", "aggregate", "align", "attach", "foreign_symbols",
           "handed_down", "informative", "informative_warmup", "nest", "timeframe_ns",
           "truncate_supplied", "utc_label", "visible_index"]
