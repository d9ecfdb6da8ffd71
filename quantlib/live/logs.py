"""Structured JSON logs for the live runner, with secrets redacted at the source.

Every record is one JSON object per line (``ts``, ``level``, ``event`` and fields). Any string
equal to, or containing, a registered secret is replaced by ``***`` before it is written, so an
API key can never reach a log file even if an exception message carried it.

Examples
--------
>>> import io
>>> buf = io.StringIO()
>>> log = JsonLogger(buf, secrets=["s3cr3t"])
>>> log.info("order", detail="key=s3cr3t")
>>> "s3cr3t" in buf.getvalue(), '"event": "order"' in buf.getvalue()
(False, True)
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import IO, Any

_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember ``value`` so :func:`redact` removes it from every later output."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: Any) -> Any:
    """``text`` with every registered secret replaced by ``***`` (non-strings pass through)."""
    if isinstance(text, str):
        for secret in _SECRETS:
            if secret in text:
                text = text.replace(secret, "***")
        return text
    if isinstance(text, dict):
        return {k: redact(v) for k, v in text.items()}
    if isinstance(text, list | tuple):
        return [redact(v) for v in text]
    return text


class JsonLogger:
    """Minimal structured logger: ``log.info(event, **fields)`` writes one JSON line."""

    def __init__(self, stream: IO[str] | None = None, secrets: Iterable[str] = ()):
        self.stream = stream if stream is not None else sys.stderr
        for secret in secrets:
            register_secret(secret)
        # Watchers (notifications, /metrics: quantlib.live.watch) see every record, redacted;
        # a sink only enqueues, so it never slows the trading thread.
        self.sinks: list[Callable[[dict[str, Any]], None]] = []

    def _write(self, level: str, event: str, fields: dict[str, Any]) -> None:
        record = {"ts": round(time.time(), 3), "level": level, "event": event}
        record.update({k: redact(v if isinstance(v, str | int | float | bool | None | list | dict)
                                 else str(v)) for k, v in fields.items()})
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()
        self._dispatch(record)

    def _dispatch(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink(record)

    def observe(self, event: str, **fields: Any) -> None:
        """Hand ``event`` to the sinks only (per-bar observations: too frequent for the file;
        free when nobody watches)."""
        if self.sinks:
            self._dispatch({"ts": time.time(), "level": "info", "event": event, **fields})

    def info(self, event: str, **fields: Any) -> None:
        self._write("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._write("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._write("error", event, fields)


__all__ = ["JsonLogger", "redact", "register_secret"]
