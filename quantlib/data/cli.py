"""``quantlib data ...``: fetch exchange data into the cache, validate and inspect OHLCV files,
funding files and perpetual-swap sources (candles, mark and funding together).

Every quantlib error becomes one ``error: ...`` line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from quantlib.core.endpoints import point_at_loopback
from quantlib.data.cache import cache_path, stored_metadata
from quantlib.data.fetch import _resolve_exchange, _to_ms, fetch_ohlcv
from quantlib.data.io import load_ohlcv
from quantlib.data.ohlcv import validate_ohlcv
from quantlib.data.perp import load_perp, validate_funding
from quantlib.data.perp_fetch import fetch_perp, funding_cache_path, mark_cache_path
from quantlib.data.sources import parse_source
from quantlib.data.trades import covered_ohlcv, download_trades, trades_dir
from quantlib.errors import QuantlibError

data_app = typer.Typer(
    name="data",
    help="Market data: fetch exchange OHLCV into the cache, validate and inspect files.",
    no_args_is_help=True,
)


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=1)


def _build_exchange(exchange_id: str, base_url: str | None):
    exchange = _resolve_exchange(exchange_id)
    if base_url:  # tests point ccxt at a loopback server (any other host is refused)
        point_at_loopback(exchange, base_url, "--base-url")
    return exchange


def _print_summary(summary, *, max_gaps: int = 10) -> None:
    _print_fields(summary, width=18)
    _print_gaps(summary.gaps, "gaps", "bars", max_gaps)


def _print_fields(summary, width: int) -> None:
    for key, value in summary.to_dict().items():
        typer.echo(f"{key:>{width}}: {value}")


def _print_gaps(gaps, title: str, unit: str, max_gaps: int) -> None:
    """The first ``max_gaps`` rows of a gaps table, whose column ``missing_<unit>`` counts."""
    if len(gaps):
        typer.echo(f"{title} (first {min(len(gaps), max_gaps)} of {len(gaps)}):")
        for row in gaps.head(max_gaps).itertuples(index=False):
            missing = getattr(row, f"missing_{unit}")
            typer.echo(f"  {row.start} .. {row.end}  ({missing} missing {unit})")


@data_app.command("fetch")
def fetch_command(
    symbol: Annotated[str, typer.Option(help="Unified ccxt symbol, e.g. BTC/USD.")],
    since: Annotated[str, typer.Option(help="First bar, e.g. 2024-01-01 (UTC).")],
    exchange: Annotated[str, typer.Option(help="ccxt exchange id.")] = "kraken",
    timeframe: Annotated[str, typer.Option(help="Bar length, e.g. 1h.")] = "1h",
    until: Annotated[str | None, typer.Option(help="End (exclusive); default now.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(
        help="Cache root; default $QUANTLIB_DATA_DIR or ./data.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    max_retries: Annotated[int, typer.Option(help="Retries of a failing request.")] = 5,
    allow_partial: Annotated[bool, typer.Option(
        "--allow-partial", help="Accept history starting later than --since (flagged in the "
        "data's attrs); refused by default.")] = False,
    from_trades: Annotated[bool, typer.Option(
        "--from-trades", help="Build the candles from the exchange's public trades (full "
        "history where OHLC is short, e.g. Kraken); slow: paced by the rate limit, resumable.")
    ] = False,
    perp: Annotated[bool, typer.Option(
        "--perp", help="A perpetual swap (--symbol BASE/QUOTE:SETTLE, e.g. --exchange "
        "binanceusdm --symbol BTC/USDT:USDT): also its mark-price candles and funding history, "
        "each in its own cache.")] = False,
    base_url: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """Download closed candles into the incremental cache (only missing bars are requested)."""
    try:
        instance = _build_exchange(exchange, base_url)
        if perp:
            if from_trades:
                raise QuantlibError("--perp and --from-trades do not combine: a swap's mark and "
                                    "funding series are not built from trades")
            _fetch_perp(instance, symbol, timeframe, since, until, cache_dir, allow_partial)
            return
        if from_trades:
            df, where = _fetch_from_trades(instance, symbol, timeframe, since, until, cache_dir,
                                           progress, max_retries)
        else:
            df = fetch_ohlcv(instance, symbol, timeframe, since, until, cache_dir=cache_dir,
                             progress=progress, max_retries=max_retries,
                             allow_partial=allow_partial)
            where = cache_path(cache_dir, exchange, symbol, timeframe)
        summary = validate_ohlcv(df, timeframe)
    except QuantlibError as exc:
        _fail(exc)
    typer.echo(f"{df.attrs['source_string']}: {len(df)} bars")
    if "partial_history" in df.attrs:
        typer.echo(f"PARTIAL HISTORY (accepted with --allow-partial): {df.attrs['partial_history']}")
    typer.echo(f"cache: {where}")
    _print_summary(summary)


def _fetch_perp(instance, symbol: str, timeframe: str, since: str, until: str | None,
               cache_dir: Path | None, allow_partial: bool) -> None:
    data = fetch_perp(instance, symbol, timeframe, since, until, cache_dir=cache_dir,
                      allow_partial=allow_partial)
    summaries = data.validate()
    typer.echo(f"{data.source}: {len(data.ohlcv)} bars, {len(data.mark)} mark bars, "
               f"{len(data.funding)} funding payments")
    for what, path in (("cache", cache_path(cache_dir, instance.id, symbol, timeframe)),
                       ("mark cache", mark_cache_path(cache_dir, instance.id, symbol, timeframe)),
                       ("funding cache", funding_cache_path(cache_dir, instance.id, symbol))):
        typer.echo(f"{what}: {path}")
    _print_perp(data.source, summaries)


def _fetch_from_trades(instance, symbol: str, timeframe: str, since: str, until: str | None,
                       cache_dir: Path | None, progress: bool, max_retries: int):
    """Download the trades (resumable) and build the candles; ``(frame, trade-cache folder)``."""
    state = download_trades(instance, symbol, since, until, cache_dir=cache_dir,
                            progress=progress, max_retries=max_retries,
                            echo=lambda text: typer.echo(text, err=True))
    since_ms, until_ms = _to_ms(since, "since"), _to_ms(until, "until")
    df = covered_ohlcv(instance.id, symbol, timeframe, since_ms,
                       until_ms if until_ms is not None else state.covered_to_ms, cache_dir)
    folder = trades_dir(cache_dir, instance.id, symbol)
    if df is None:  # the exchange's clock ends before `until`: build what exists
        df = covered_ohlcv(instance.id, symbol, timeframe, since_ms, state.covered_to_ms,
                           cache_dir)
    return df, folder


def _perp_source(target: str, perp: bool) -> str | None:
    """``target`` when it names perpetual-swap data (not an existing file), else None."""
    looks_like_source = ":" in target or (perp and target.startswith("sample"))
    if Path(target).exists() or not looks_like_source:
        return None  # a file (or a missing one: the file loader says so)

    parsed = parse_source(target)
    if parsed.kind == "exchange" and ":" in (parsed.symbol or ""):
        return target
    if parsed.kind == "sample" and perp:
        return target
    raise QuantlibError(f"{target}: no such file, and not a perpetual-swap source (e.g. "
                        "binanceusdm:BTC/USDT:USDT:1h:2024-01-01, or sample with --perp)")


def _funding_file(path: Path):
    """The funding frame of a Parquet file holding only ``funding_rate`` (a funding cache),
    else None (the file is then read as OHLCV)."""
    if path.suffix.lower() not in (".parquet", ".pq"):
        return None

    try:
        frame = pd.read_parquet(path)
    except Exception:  # damaged: load_ohlcv says what is wrong with it
        return None
    return frame if list(frame.columns) == ["funding_rate"] else None


def _print_funding(summary, *, max_gaps: int = 10) -> None:
    _print_fields(summary, width=20)
    for when, old, new in summary.interval_changes[:max_gaps]:
        typer.echo(f"  funding interval {old} -> {new} from {when}")
    _print_gaps(summary.gaps, "funding gaps", "payments", max_gaps)


def _print_perp(source: str, summaries: dict) -> None:
    typer.echo(f"source: {source}")
    for part in ("ohlcv", "mark"):
        typer.echo(f"[{part}]")
        _print_summary(summaries[part])
    missing = summaries["mark_missing"]
    typer.echo(f"mark bars missing where candles exist: {len(missing)}"
               + (f" (first {missing[0]})" if len(missing) else ""))
    typer.echo("[funding]")
    _print_funding(summaries["funding"])


def _perp_report(source: str) -> None:
    perp = load_perp(source)
    summaries = perp.validate()
    _print_perp(source, summaries)
    for part, frame in (("ohlcv", perp.ohlcv), ("funding", perp.funding)):
        if "partial_history" in frame.attrs:
            typer.echo(f"PARTIAL HISTORY ({part}): {frame.attrs['partial_history']}")


_TARGET_HELP = ("CSV or Parquet OHLCV file, a funding cache file, or a perpetual-swap source "
                "(binanceusdm:BTC/USDT:USDT:1h:2024-01-01) whose candles, mark and funding are "
                "loaded (fetched when not cached).")
_PERP_HELP = "Treat a sample source as a perpetual swap (synthetic mark and funding)."


@data_app.command("validate")
def validate_command(
    file: Annotated[str, typer.Argument(help=_TARGET_HELP)],
    timeframe: Annotated[str | None, typer.Option(help="Bar length; default inferred.")] = None,
    perp: Annotated[bool, typer.Option("--perp", help=_PERP_HELP)] = False,
) -> None:
    """Check a file (or perp source) against the canonical rules; print the summary and gaps.

    Exit code 1 with the problem (row, column) when the data is invalid.
    """
    try:
        source = _perp_source(file, perp)
        if source is not None:
            _perp_report(source)
            typer.echo(f"{source}: valid perpetual-swap data")
            return
        funding = _funding_file(Path(file))
        if funding is not None:
            summary = validate_funding(funding, name=file)
            typer.echo(f"{file}: valid funding")
            _print_funding(summary)
            return
        df = load_ohlcv(file, timeframe=timeframe)
        summary = validate_ohlcv(df, timeframe, name=str(file))
    except QuantlibError as exc:
        _fail(exc)
    typer.echo(f"{file}: valid OHLCV")
    _print_summary(summary)


def _info_funding(file: Path, funding) -> None:
    summary = validate_funding(funding, name=str(file))
    typer.echo(f"file: {file} ({file.stat().st_size:,} bytes)")
    rates = funding["funding_rate"]
    if len(rates):
        typer.echo(f"funding_rate: mean {rates.mean():.6g}  min {rates.min():.6g}  "
                   f"max {rates.max():.6g}  (fraction per interval)")
    _print_funding(summary)
    meta = {**funding.attrs, **stored_metadata(file)}
    for key in ("source", "exchange", "symbol"):
        if key in meta:
            typer.echo(f"{key}: {meta[key]}")
    if "partial_history" in meta:
        typer.echo(f"PARTIAL HISTORY (accepted with --allow-partial): {meta['partial_history']}")


@data_app.command("info")
def info_command(
    file: Annotated[str, typer.Argument(help=_TARGET_HELP)],
    perp: Annotated[bool, typer.Option("--perp", help=_PERP_HELP)] = False,
) -> None:
    """Describe an OHLCV file (span, timeframe, prices, volume, gaps, metadata), a funding file,
    or a perpetual swap's three series (funding interval and gaps included)."""
    try:
        source = _perp_source(file, perp)
        if source is not None:
            _perp_report(source)
            return
        path = Path(file)
        funding = _funding_file(path)
        if funding is not None:
            _info_funding(path, funding)
            return
        df = load_ohlcv(path)
        summary = validate_ohlcv(df, name=str(path))
    except QuantlibError as exc:
        _fail(exc)
    file = path
    typer.echo(f"file: {file} ({file.stat().st_size:,} bytes)")
    typer.echo(f"bars: {len(df)}  timeframe: {summary.timeframe}")
    typer.echo(f"span: {summary.first_bar} .. {summary.last_bar}")
    typer.echo(f"close: first {df['close'].iloc[0]:.6g}  last {df['close'].iloc[-1]:.6g}  "
               f"min {df['low'].min():.6g}  max {df['high'].max():.6g}")
    typer.echo(f"volume: total {df['volume'].sum():.6g}")
    typer.echo(f"gaps: {len(summary.gaps)} ({summary.n_missing} missing bars)")

    # load_ohlcv sees a plain file; what the cache stored with it (or its path) says more.
    meta = {**df.attrs, **stored_metadata(file)}
    for key in ("source", "exchange", "symbol", "timeframe"):
        if key in meta:
            typer.echo(f"{key}: {meta[key]}")
    if "partial_history" in meta:
        typer.echo(f"PARTIAL HISTORY (accepted with --allow-partial): {meta['partial_history']}")


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to the root ``quantlib`` app."""
    app.add_typer(data_app, name="data")


__all__ = ["data_app", "register"]
