"""tests/support/ready.py: waits end when the condition holds, and fail with the server's output.

The scenarios are driven by conditions, never by sleeps: the late server binds only after the
waiter has been refused twice (seen through a spy on its connection attempts).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support import ready
from tests.support.ready import OutputTail, WaitTimeout, wait_for_server, wait_until


def _refusing_socket() -> socket.socket:
    """A socket bound to a free loopback port but not listening: connections are refused, and
    no other process can take the port meanwhile."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


class _Health(BaseHTTPRequestHandler):
    statuses: list[int] = []  # answers in order; the last one repeats

    def do_GET(self) -> None:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        body = json.dumps({"path": self.path, "status": status}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _bound(statuses: list[int]) -> ThreadingHTTPServer:
    """A health server bound to a free port, refusing connections until ``_start``."""
    handler = type("Handler", (_Health,), {"statuses": list(statuses)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler, bind_and_activate=False)
    server.server_bind()
    return server


def _start(server: ThreadingHTTPServer) -> ThreadingHTTPServer:
    server.server_activate()  # listen(): from now on connections are accepted
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server


def _serve(statuses: list[int]) -> ThreadingHTTPServer:
    return _start(_bound(statuses))


def test_a_server_that_binds_late_is_awaited(monkeypatch):
    server = _bound([200])
    port = server.server_address[1]
    attempts: list[str] = []
    real_connect = socket.create_connection

    def spy(address, *args, **kwargs):
        try:
            conn = real_connect(address, *args, **kwargs)
        except OSError as exc:
            attempts.append(type(exc).__name__)
            raise
        attempts.append("connected")
        return conn

    monkeypatch.setattr(ready.socket, "create_connection", spy)
    result: dict = {}
    waiter = threading.Thread(target=lambda: result.update(
        answer=wait_for_server(f"http://127.0.0.1:{port}/health", 60)))
    waiter.start()
    # listen only once the waiter has been refused twice: it really polled a closed port
    started = False
    try:
        wait_until(lambda: attempts.count("ConnectionRefusedError") >= 2, 60,
                   describe="two refused connection attempts")
        started = bool(_start(server))
        waiter.join(60)
        answer = result["answer"]
        assert answer.status == 200
        assert json.loads(answer.body) == {"path": "/health", "status": 200}
        refused = attempts.index("connected")
        assert refused >= 2 and set(attempts[:refused]) == {"ConnectionRefusedError"}
        assert answer.attempts == refused + 1  # one health request, after the first connection
    finally:
        if started:  # stop the serving loop before closing its socket
            server.shutdown()
        server.server_close()


def test_unexpected_statuses_are_polled_until_the_expected_one():
    server = _serve([503, 503, 403])
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api"
        # a token check: the awaited answer is an error status
        answer = wait_for_server(url, 60, expect=403)
        assert (answer.status, answer.attempts) == (403, 3)
        calls = []
        answer = wait_for_server(url, 60, expect=lambda status, body: calls.append(status)
                                 or json.loads(body)["path"] == "/api")
        assert calls == [403] and answer.status == 403
        with pytest.raises(WaitTimeout, match=r"answered HTTP 403") as info:
            wait_for_server(url, 0.3, expect={200, 204})
        assert "HTTP [200, 204]" in str(info.value)
    finally:
        server.shutdown()
        server.server_close()


_SILENT_SERVER = textwrap.dedent("""
    import socket, sys, time
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # connections queue in the kernel, nothing ever answers them
    print("silent server booting, marker", sys.argv[1], flush=True)
    print("PORT", listener.getsockname()[1], flush=True)
    sys.stdin.read()  # until the test closes our stdin
""")


def test_a_server_that_never_answers_times_out_with_its_output():
    marker = "m-4711"
    proc = subprocess.Popen([sys.executable, "-c", _SILENT_SERVER, marker], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    output = OutputTail(proc.stdout)
    try:
        port_line = wait_until(lambda: next((line for line in output().splitlines()
                                             if line.startswith("PORT ")), None), 60,
                               describe="the PORT line", process=proc, output=output)
        url = f"http://127.0.0.1:{port_line.split()[1]}/health"
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as info:
            wait_for_server(url, 1.5, process=proc, output=output)
        waited = time.monotonic() - started
        message = str(info.value)
        assert message.startswith(f"timed out after 1.5 s waiting for {url} to answer HTTP 200")
        assert "timed out" in message.split("last attempt:")[1]  # connected, no HTTP answer
        assert f"silent server booting, marker {marker}" in message
        assert waited >= 1.5
        assert proc.poll() is None  # it was the deadline, not an exit, that ended the wait
    finally:
        proc.stdin.close()
        proc.wait(30)


def test_a_child_that_exits_ends_the_wait_at_once_with_its_output():
    proc = subprocess.Popen([sys.executable, "-c", "import sys; print('cannot bind: in use'); "
                             "sys.exit(3)"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = OutputTail(proc.stdout)  # a bytes pipe here
    refusing = _refusing_socket()
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as info, refusing:
        wait_for_server(f"http://127.0.0.1:{refusing.getsockname()[1]}/", 600, process=proc,
                        output=output)
    assert time.monotonic() - started < 300  # far from the 600 s deadline
    message = str(info.value)
    assert "the process exited (code 3)" in message and "ConnectionRefusedError" in message
    assert message.endswith("---\ncannot bind: in use")  # the exited child's last words


def test_a_predicate_that_becomes_true_returns_its_value(tmp_path):
    status = tmp_path / "status.json"
    polls = []

    def heartbeat():
        polls.append(1)
        if len(polls) == 3:  # the "server" writes its file while being polled
            status.write_text('{"bars": 7')  # half written: a JSONDecodeError, ignored
        if len(polls) == 5:
            status.write_text('{"bars": 7}')
        data = json.loads(status.read_text())
        return data if data["bars"] >= 7 else None

    assert wait_until(heartbeat, 60, describe="7 bars", ignore=(OSError, ValueError)) == {
        "bars": 7}
    assert len(polls) == 5


def test_a_predicate_that_stays_false_names_what_was_awaited(tmp_path):
    progress = [0]

    def more():
        progress[0] += 1
        return progress[0] > 10**9

    log = tmp_path / "runner.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    with pytest.raises(WaitTimeout) as info:
        wait_until(more, 0.2, describe=lambda: f"progress past 1e9 (at {progress[0]})",
                   output=log)
    message = str(info.value)
    head, tail = message.split("\n--- output (last 40 lines) ---\n")
    assert head == (f"timed out after 0.2 s waiting for progress past 1e9 (at {progress[0]}); "
                    "last attempt: returned False")
    assert tail.splitlines() == [f"line {i}" for i in range(60, 100)]
    # an exception that is not declared "not yet" is a bug in the test: it propagates at once
    with pytest.raises(KeyError):
        wait_until(lambda: {}["missing"], 60)


def test_only_loopback_urls_are_awaited():
    with pytest.raises(ValueError, match="not an http://LOOPBACK:PORT"):
        wait_for_server("http://example.com:80/", 1)
    with pytest.raises(ValueError, match="not an http://LOOPBACK:PORT"):
        wait_for_server("http://127.0.0.1/no-port", 1)
