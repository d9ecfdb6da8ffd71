"""Wait for started servers and child processes: until a condition holds or a deadline passes.

A test that starts a server (JupyterLab, a loopback exchange in a child process, a webhook
receiver, a metrics endpoint) or a child process must not assume the machine is fast: a runtime
file can exist before its server accepts connections, and a child may need seconds to import on a
loaded machine. So tests never sleep a fixed time; they poll a condition with short sleeps until it
holds or a generous deadline passes (a deadline costs nothing on a quiet machine), and a timeout
says what was awaited, what the last attempt saw, and the tail of the server's own output.

- :func:`wait_until` polls any predicate (a file exists, a heartbeat shows X, the state has N
  bars) and returns its first truthy value.
- :func:`wait_for_server` waits until ``host:port`` accepts TCP connections AND an HTTP GET of a
  health path answers as expected (a status, a set of statuses or a predicate); loopback only.
- :class:`OutputTail` drains a child's stdout/stderr pipe in a thread (so a chatty child never
  blocks on a full pipe) and keeps the last lines for failure messages.

A watched ``process`` (``subprocess.Popen``, ``multiprocessing.Process`` or a callable returning
an exit code or ``None``) that exits during the wait ends it at once with its exit code and
output, instead of waiting out the deadline.

Examples
--------
>>> proc = subprocess.Popen([...], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # doctest: +SKIP
>>> output = OutputTail(proc.stdout)                                                 # doctest: +SKIP
>>> info = wait_until(lambda: read_json(runtime_file), 90, describe="runtime file",  # doctest: +SKIP
...                   process=proc, output=output, ignore=(OSError, ValueError))
>>> wait_for_server(f"http://127.0.0.1:{info['port']}/api/status", expect=200,      # doctest: +SKIP
...                 process=proc, output=output)
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Container
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
Output = str | Path | Callable[[], str] | None
Expect = int | Container[int] | Callable[[int, bytes], bool]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
TAIL_LINES = 40
# Polls start fast (a quiet machine answers in milliseconds) and back off to a few per second.
_FIRST_SLEEP, _MAX_SLEEP = 0.005, 0.2


class WaitTimeout(AssertionError):
    """A condition did not hold before its deadline, or the process awaited exited first."""


class OutputTail:
    """Drain a text or bytes stream in a daemon thread, keeping its last ``lines`` lines.

    Call the instance for the captured tail (``output()`` -> str); pass it as ``output=`` to the
    waits. Draining also keeps a child from blocking once the pipe buffer (64 KiB) is full.

    Parameters
    ----------
    stream : a child's ``stdout`` or ``stderr`` (``subprocess.PIPE``).
    lines : how many of the last lines to keep.

    Examples
    --------
    >>> proc = subprocess.Popen(["echo", "hello"], stdout=subprocess.PIPE, text=True)
    >>> tail = OutputTail(proc.stdout)
    >>> _ = proc.wait(); tail.join(5)
    >>> tail()
    'hello'
    """

    def __init__(self, stream: IO[Any], lines: int = 200) -> None:
        self._lines: deque[str] = deque(maxlen=lines)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[Any]) -> None:
        try:
            for line in stream:
                text = line.decode(errors="replace") if isinstance(line, bytes) else line
                with self._lock:
                    self._lines.append(text.rstrip("\n"))
        except (OSError, ValueError):  # the test closed the pipe: nothing more to keep
            pass

    def join(self, timeout: float | None = None) -> None:
        """Wait until the stream is closed (the child exited) and fully read."""
        self._thread.join(timeout)

    def __call__(self) -> str:
        with self._lock:
            return "\n".join(self._lines)


@dataclass(frozen=True)
class Answer:
    """The health request's answer that ended :func:`wait_for_server`."""

    status: int
    body: bytes
    elapsed: float  # seconds from the start of the wait
    attempts: int


def wait_until(predicate: Callable[[], T], deadline: float = 60.0, *,
               describe: str | Callable[[], str] = "a condition", process: Any = None,
               output: Output = None, ignore: tuple[type[BaseException], ...] = (),
               max_interval: float = _MAX_SLEEP) -> T:
    """Poll ``predicate`` with short sleeps until it returns a truthy value; return that value.

    Parameters
    ----------
    predicate : ``() -> value``; the wait ends at the first truthy value.
    deadline : seconds allowed from now (generous: it costs nothing when the condition holds).
    describe : what is awaited, for the failure message (a callable is evaluated at failure
        time, e.g. to show the progress reached).
    process : optional child to watch (``Popen``, ``multiprocessing.Process``, or
        ``() -> exit code | None``); its exit ends the wait with :class:`WaitTimeout`.
    output : the child's output for the message: text, a log file path, or a callable such
        as :class:`OutputTail`.
    ignore : exception types from ``predicate`` that mean "not yet" (a file being written);
        the last one is shown if the deadline passes.
    max_interval : longest sleep between polls (they start at 5 ms and double up to this);
        small values let a test act within a few bars of a fast child's progress.

    Raises
    ------
    WaitTimeout
        At the deadline, or when ``process`` exits first; the message names the wait, the last
        attempt's result and the tail of ``output``.

    Examples
    --------
    >>> import itertools
    >>> counter = itertools.count()
    >>> wait_until(lambda: next(counter) >= 3 and "ready", 5, describe="the third poll")
    'ready'
    """
    start = time.monotonic()
    sleep, last = min(_FIRST_SLEEP, max_interval), "never evaluated"
    while True:
        try:
            value = predicate()
        except ignore as exc:
            value, last = None, f"{type(exc).__name__}: {exc}"
        else:
            if value:
                return value
            last = f"returned {value!r}"
        code = exit_code(process)
        elapsed = time.monotonic() - start
        if code is not None:
            if isinstance(output, OutputTail):
                output.join(5.0)  # the child's last words are still in the pipe
            raise WaitTimeout(_message(f"the process exited (code {code}) after {elapsed:.1f} s "
                                       f"while waiting for {_text(describe)}", last, output))
        if elapsed >= deadline:
            raise WaitTimeout(_message(f"timed out after {deadline:g} s waiting for "
                                       f"{_text(describe)}", last, output))
        time.sleep(min(sleep, max(deadline - elapsed, 0.0)))
        sleep = min(sleep * 2, max_interval)


def wait_for_server(url: str, deadline: float = 60.0, *, expect: Expect = 200,
                    headers: dict[str, str] | None = None, process: Any = None,
                    output: Output = None, describe: str | None = None) -> Answer:
    """Wait until the loopback server at ``url`` accepts TCP connections and answers a GET of
    ``url`` as ``expect`` says.

    Parameters
    ----------
    url : ``http://127.0.0.1:PORT/health/path`` (loopback hosts only: tests never leave the
        machine).
    deadline : seconds allowed from now.
    expect : the expected HTTP status, a container of statuses, or ``(status, body) -> bool``.
        Error statuses count as answers (``expect=403`` checks that a token is enforced).
    headers : extra request headers (e.g. ``Authorization``).
    process, output, describe : as for :func:`wait_until`.

    Returns
    -------
    Answer
        The status and body of the answer that ended the wait.

    Raises
    ------
    WaitTimeout
        At the deadline or when ``process`` exits, with the last attempt (connection refused,
        status 503 ...) and the server's output in the message.
    ValueError
        If ``url`` is not a loopback http URL.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or parts.port is None:
        raise ValueError(f"wait_for_server: {url!r} is not an http://LOOPBACK:PORT/... URL "
                         f"(hosts {', '.join(LOOPBACK_HOSTS)})")
    start = time.monotonic()
    attempts = 0

    def answered() -> Answer | None:
        nonlocal attempts
        attempts += 1
        left = max(deadline - (time.monotonic() - start), 0.05)
        # a fresh connection per poll: the port may not be listening yet
        with socket.create_connection((parts.hostname, parts.port), timeout=min(left, 5.0)):
            pass
        status, body = _get(url, headers or {}, timeout=min(left, 10.0))
        if _matches(expect, status, body):
            return Answer(status, body, time.monotonic() - start, attempts)
        raise _Unexpected(f"answered HTTP {status}: {body[:200]!r}")

    return wait_until(answered, deadline, process=process, output=output,
                      describe=describe or f"{url} to answer {_expect_text(expect)}",
                      ignore=(OSError, _Unexpected))


def exit_code(process: Any) -> int | None:
    """Exit code of a finished ``process`` (``Popen``, ``multiprocessing.Process`` or callable),
    ``None`` while it runs or when no process is watched."""
    if process is None:
        return None
    if isinstance(process, subprocess.Popen):
        return process.poll()
    if hasattr(process, "is_alive"):  # multiprocessing.Process
        return None if process.is_alive() else process.exitcode
    return process()


class _Unexpected(Exception):
    """The server answered, but not as expected (yet)."""


def _get(url: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:  # an error status is still an answer
        return exc.code, exc.read()


def _matches(expect: Expect, status: int, body: bytes) -> bool:
    if isinstance(expect, int):
        return status == expect
    if callable(expect):
        return bool(expect(status, body))
    return status in expect


def _expect_text(expect: Expect) -> str:
    if isinstance(expect, int):
        return f"HTTP {expect}"
    if callable(expect):
        return f"as {getattr(expect, '__name__', 'the predicate')} accepts"
    return f"HTTP {sorted(expect)}"


def _text(describe: str | Callable[[], str]) -> str:
    return describe() if callable(describe) else describe


def _tail(output: Output, lines: int = TAIL_LINES) -> str:
    if output is None:
        return ""
    if callable(output):
        text = output()
    elif isinstance(output, Path):
        text = output.read_text(errors="replace") if output.exists() else f"({output} missing)"
    else:
        text = output
    return "\n".join(text.splitlines()[-lines:])


def _message(what: str, last: str, output: Output) -> str:
    message = f"{what}; last attempt: {last}"
    tail = _tail(output)
    if output is not None:
        message += f"\n--- output (last {TAIL_LINES} lines) ---\n{tail or '(empty)'}"
    return message


__all__ = ["Answer", "OutputTail", "WaitTimeout", "exit_code", "wait_for_server", "wait_until"]
