"""Notifications of a live run through apprise (Telegram, Discord, Slack, e-mail, JSON webhooks...).

Sending never blocks or breaks trading:

* :meth:`Notifier.send` only puts the message on a bounded queue (a full queue drops it and
  counts the drop); a background thread does the network work.
* The sender merges bursts: after a send it waits ``min_interval`` seconds and sends everything
  queued meanwhile as ONE message (a replay's hundred fills are one message, not a hundred;
  every message that is not a fill stays in full, fills beyond 20 are counted).
* Each message gets ``retries`` attempts; every apprise request carries connect/read timeouts,
  so a receiver that hangs only holds the sender thread, never the trading thread.
* A failing channel is logged once (``notify_failed``) until it works again (``notify_ok``).
* Every title and body passes :func:`quantlib.live.logs.redact` before it leaves the process.

apprise is imported when the first notifier is built (only runs with ``--notify`` pay for it).

Examples
--------
>>> sorted(parse_notify_on("halt,stale_feed"))
['halt', 'stale_feed']
>>> sorted(parse_notify_on("all")) == sorted(EVENTS)
True
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from quantlib.errors import LiveError
from quantlib.live.logs import JsonLogger, redact

#: Events a run can notify, with what each means.
EVENTS = {
    "start": "the runner started (or resumed)",
    "stop": "the runner stopped, and why",
    "fill": "an order filled",
    "halt": "a risk limit halted trading",
    "kill_switch": "the kill switch stopped the runner",
    "exchange_error": "the exchange kept failing after every retry",
    "stale_feed": "no new closed candle for 2 bar lengths",
    "stop_order": "a stop-loss / take-profit / trailing exit or a grid stop-out filled",
    "daily_summary": "once per UTC day: equity, pnl, trades, drawdown",
}
_TIMEOUTS = {"cto": "2", "rto": "3"}  # apprise's connect / read timeouts (s) for HTTP channels


def parse_notify_on(text: str | None) -> frozenset[str]:
    """The events named in ``--notify-on`` (comma separated; ``all`` or empty: every event)."""
    names = [n.strip() for n in (text or "all").split(",") if n.strip()]
    if not names or names == ["all"]:
        return frozenset(EVENTS)
    unknown = [n for n in names if n not in EVENTS]
    if unknown:
        raise LiveError(f"--notify-on: unknown event(s) {unknown}; expected a comma-separated "
                        f"list of {sorted(EVENTS)} or 'all'")
    return frozenset(names)


def with_timeouts(url: str) -> str:
    """``url`` with apprise's connect/read timeout arguments unless it sets its own."""
    given = {k for k, _ in parse_qsl(urlsplit(url).query)}
    extra = "&".join(f"{k}={v}" for k, v in _TIMEOUTS.items() if k not in given)
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + extra


@dataclass
class Message:
    event: str
    title: str
    body: str


class Notifier:
    """Queue + background sender over apprise URLs.

    Parameters
    ----------
    urls : apprise URLs (``tgram://TOKEN/CHAT``, ``json://host:port/path``, ...).
    events : the events to send (:func:`parse_notify_on`); others are ignored.
    logger : where send failures are said (once per failure streak).
    min_interval : seconds between two sends; what arrives meanwhile is merged.
    retries : attempts per (merged) message.
    max_queue : messages held at most; more are dropped and counted in ``dropped``.
    """

    def __init__(self, urls: list[str], events: frozenset[str] = frozenset(EVENTS), *,
                 logger: JsonLogger | None = None, min_interval: float = 1.0, retries: int = 3,
                 max_queue: int = 1000):
        self.urls, self.events, self.log = list(urls), events, logger
        self.min_interval, self.retries = min_interval, retries
        self.queue: queue.Queue[Message | None] = queue.Queue(max_queue)
        self.dropped = 0
        self.sent = 0
        self._failing = False
        self._apprise = None
        self._thread: threading.Thread | None = None

    def start(self) -> Notifier:
        """Build the apprise object (refusing URLs it cannot parse) and start the sender."""
        import apprise

        # notify_failed says a failing channel once; apprise's warning per attempt would
        # flood the run's stderr
        logging.getLogger("apprise").setLevel(logging.CRITICAL)
        self._apprise = apprise.Apprise()
        for i, url in enumerate(self.urls):
            if not self._apprise.add(with_timeouts(url)):
                # never echo the URL: it usually carries a token
                raise LiveError(f"--notify URL #{i + 1} ({urlsplit(url).scheme}://...): apprise "
                                "does not understand it; see apprise's URL list")
        self._thread = threading.Thread(target=self._run, name="quantlib-notify", daemon=True)
        self._thread.start()
        return self

    def send(self, event: str, title: str, body: str) -> None:
        """Queue a message (never blocks; dropped when the queue is full or the event is off)."""
        if event not in self.events:
            return
        try:
            # apprise refuses an empty body
            self.queue.put_nowait(Message(event, redact(title), redact(body or title)))
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (waiting at most ``timeout`` s), then stop the sender."""
        if self._thread is None:
            return
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    # -- sender thread ------------------------------------------------------------------------
    def _run(self) -> None:
        last_send = 0.0
        while True:
            first = self.queue.get()
            if first is None:
                return
            wait = last_send + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # collect the burst
            batch, done = _drain([first], self.queue)
            self._deliver(_merge(batch))
            last_send = time.monotonic()
            if done:
                return

    def _deliver(self, message: Message) -> None:
        error = "apprise reported a failure"
        for attempt in range(self.retries):
            try:
                if self._apprise.notify(title=message.title, body=message.body):
                    self.sent += 1
                    if self._failing and self.log is not None:
                        self.log.info("notify_ok", about=message.event)
                    self._failing = False
                    return
            except Exception as exc:  # noqa: BLE001 - a channel must never kill the sender
                error = type(exc).__name__
            time.sleep(min(0.2 * 2 ** attempt, 2.0))
        if not self._failing and self.log is not None:
            self.log.warning("notify_failed", about=message.event, attempts=self.retries,
                             error=error, note="said once until a send succeeds again")
        self._failing = True


def _drain(batch: list[Message], source: queue.Queue) -> tuple[list[Message], bool]:
    """``batch`` plus everything queued now; True when the close marker was among it."""
    while True:
        try:
            item = source.get_nowait()
        except queue.Empty:
            return batch, False
        if item is None:
            return batch, True
        batch.append(item)


def _merge(batch: list[Message], max_lines: int = 20) -> Message:
    """One message for a burst. Every message that is not a fill is shown (a stop or a halt is
    never hidden behind fills), then fills up to ``max_lines`` sections, then their count.
    The title is the first non-fill message's (with the burst's size and events)."""
    if len(batch) == 1:
        return batch[0]
    important = [m for m in batch if m.event != "fill"]
    fills = [m for m in batch if m.event == "fill"]
    shown_fills = fills[:max(0, max_lines - len(important))]
    head = important[0] if important else batch[0]
    kinds = sorted({m.event for m in batch})
    title = f"{head.title} (+{len(batch) - 1} more: {', '.join(kinds)})"
    body = "\n\n".join(f"{m.title}\n{m.body}" for m in [*important, *shown_fills])
    if len(fills) > len(shown_fills):
        body += f"\n\n... and {len(fills) - len(shown_fills)} more fills"
    return Message(head.event, title, body)


def describe(fields: dict[str, Any], skip: tuple[str, ...] = ("ts", "level", "event")) -> str:
    """``key: value`` lines of a log record (the body of most notifications)."""
    return "\n".join(f"{k}: {v}" for k, v in fields.items() if k not in skip)


__all__ = ["EVENTS", "Notifier", "describe", "parse_notify_on", "with_timeouts"]
