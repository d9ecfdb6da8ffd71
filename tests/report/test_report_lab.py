"""JupyterLab serves the `quantlib` kernel: start a real server on loopback, ask its REST API."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.ready import OutputTail, wait_for_server, wait_until


def _server_info(runtime_dir: Path) -> dict | None:
    # Port 0 lets the server pick a free port; it publishes the real one in its runtime file
    # (written before the server accepts connections: readiness is awaited separately).
    for path in runtime_dir.glob("jpserver-*.json"):
        return json.loads(path.read_text())  # half written: JSONDecodeError, polled again
    return None


def _get(url: str, token: str | None = None, method: str = "GET"):
    request = urllib.request.Request(url, method=method)
    if token:
        request.add_header("Authorization", f"token {token}")
    with urllib.request.urlopen(request, timeout=60) as response:
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
    output = OutputTail(proc.stdout)
    try:
        info = wait_until(lambda: _server_info(runtime), 180, describe="jupyter lab's runtime file",
                          process=proc, output=output, ignore=(OSError, ValueError))
        assert info["hostname"] in ("127.0.0.1", "localhost") or info["url"].startswith(
            "http://127.0.0.1")
        base = f"http://127.0.0.1:{info['port']}{info['base_url']}"
        # the runtime file comes before the server accepts connections (the flake of issue 23)
        wait_for_server(base + "api/status", 180, expect=200,
                        headers={"Authorization": f"token {token}"}, process=proc, output=output)
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
        proc.wait(timeout=120)
        assert proc.returncode == 0, output()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
