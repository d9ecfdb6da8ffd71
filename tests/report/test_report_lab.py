"""JupyterLab serves the `quantlib` kernel: start a real server on loopback, ask its REST API."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def _server_info(runtime_dir: Path, proc: subprocess.Popen, deadline: float) -> dict:
    # Port 0 lets the server pick a free port; it publishes the real one in its runtime file.
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited early:\n{proc.stdout.read()}")
        for path in runtime_dir.glob("jpserver-*.json"):
            try:
                return json.loads(path.read_text())
            except json.JSONDecodeError:  # being written
                pass
        time.sleep(0.2)
    raise AssertionError("jupyter lab did not start within the deadline")


def _get(url: str, token: str | None = None, method: str = "GET"):
    request = urllib.request.Request(url, method=method)
    if token:
        request.add_header("Authorization", f"token {token}")
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.status, response.read()


def test_lab_lists_quantlib_kernel_over_rest(quantlib_kernel, tmp_path):
    token = secrets.token_hex(16)
    runtime = tmp_path / "runtime"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.port=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={tmp_path}", "--ServerApp.open_browser=False",
           "--LabServerApp.extension_manager=readonly"]
    if os.geteuid() == 0:  # containers and CI often run as root
        cmd.append("--allow-root")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        info = _server_info(runtime, proc, time.monotonic() + 90)
        assert info["hostname"] in ("127.0.0.1", "localhost") or info["url"].startswith(
            "http://127.0.0.1")
        base = f"http://127.0.0.1:{info['port']}{info['base_url']}"
        # the token is enforced: no token, no kernel specs
        try:
            _get(base + "api/kernelspecs")
            raise AssertionError("kernelspecs served without a token")
        except urllib.error.HTTPError as exc:
            assert exc.code == 403
        status, body = _get(base + "api/kernelspecs", token)
        specs = json.loads(body)
        assert status == 200 and "quantlib" in specs["kernelspecs"]
        spec = specs["kernelspecs"]["quantlib"]["spec"]
        assert spec["display_name"] == "quantlib" and spec["language"] == "python"
        status, body = _get(base + "lab", token)
        assert status == 200 and b"JupyterLab" in body
        status, _ = _get(base + "api/shutdown", token, method="POST")
        assert status in (200, 204)
        proc.wait(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
