"""``--feed`` option -> the feed object (one place that knows every feed kind).

Its own module because the informative feeds build on the replay and exchange feeds: choosing
among all of them here keeps every import at the top of its file.
"""

from __future__ import annotations

from quantlib.errors import LiveError
from quantlib.live.exchange_feeds import ExchangeFeed, PortfolioExchangeFeed
from quantlib.live.informative_feeds import InformativeExchangeFeed, InformativeReplayFeed
from quantlib.live.replay_feeds import (
    PerpReplayFeed,
    PortfolioReplayFeed,
    ReplayFeed,
    parse_replay,
    parse_replay_perp,
)


def make_feed(spec_feed: str, *, exchange=None, symbol: str = "", timeframe: str = "1h",
              history: int = 100, inputs: list[str] | None = None, **kwargs
              ) -> ReplayFeed | PortfolioReplayFeed | ExchangeFeed | PortfolioExchangeFeed:
    """``"replay:FILE"`` -> :class:`ReplayFeed`; ``"replay:SYM=FILE,..."`` ->
    :class:`PortfolioReplayFeed`, or an ``InformativeReplayFeed`` when ``inputs`` (the other
    markets a one-symbol spec reads, :func:`~quantlib.live.informative_feeds.spec_input_symbols`)
    are given; ``"exchange"`` -> :class:`ExchangeFeed`, or an ``InformativeExchangeFeed`` of
    ``symbol`` and ``inputs`` (:mod:`quantlib.live.informative_feeds`)."""
    if spec_feed.startswith("replay-perp:"):
        files = parse_replay_perp(spec_feed)
        return PerpReplayFeed(files["candles"], files["mark"], files["funding"])
    if spec_feed.startswith("replay:"):
        files = parse_replay(spec_feed)
        if isinstance(files, dict):
            if inputs:
                return InformativeReplayFeed(files)
            return PortfolioReplayFeed(files)
        return ReplayFeed(files)
    if spec_feed == "exchange":
        if exchange is None:
            raise LiveError("feed 'exchange' needs an exchange connection")
        if inputs:
            return InformativeExchangeFeed(exchange, [symbol, *inputs], timeframe,
                                           history=history, **kwargs)
        return ExchangeFeed(exchange, symbol, timeframe, history=history, **kwargs)
    raise LiveError(f"--feed {spec_feed!r}: expected 'exchange' or 'replay:FILE'")


__all__ = ["make_feed"]
