"""docs/ARCHITECTURE.md "Tests": the rules about the test suite itself, checked on its sources.

- tests mirror the package: every sub-package of quantlib has its folder under tests/;
- loopback only: no server in tests/ or quantlib/ binds anything but a loopback address, and a
  test server binds port 0 (the system picks a free port, so parallel runs never collide);
- no fixed sleep stands in for a wait: a ``time.sleep`` in tests/ is a simulated delay or the
  poll interval of a loop with a deadline, each file that has one listed with its reason;
- ``make test-stress`` runs the suite beside busy loops.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
PACKAGE = ROOT / "quantlib"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Calls whose first argument is an address (host, port) a server listens on.
BINDING_CALLS = {"bind", "ThreadingHTTPServer", "HTTPServer", "TCPServer", "ThreadingTCPServer",
                 "create_server", "make_server"}
# Files of tests/ that call time.sleep, and why that sleep is not a wait for a condition.
SLEEPS = {
    "support/ready.py": "the poll interval of wait_until / wait_for_server, bounded by the deadline",
    "support/loopback_http.py": "a fault: the server answers nothing for the fault's delay",
    "support/kraken_server.py": "simulated exchange latency per endpoint",
    "live/test_crash_safety.py": "a kill point: a random fraction of one measured bar past progress",
    "live/test_notify.py": "a rate-limit interval passes, then the count is checked",
    "live/test_perp_live_cli.py": "poll interval of a loop with a deadline; a kill mid-bar",
}


def sources(top: Path) -> list[Path]:
    """The Python files under ``top``, this checker (whose controls hold bad examples) aside."""
    return sorted(p for p in top.rglob("*.py") if p != Path(__file__).resolve())


def test_every_sub_package_has_its_test_folder():
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    missing = [name for name in packages if not (TESTS / name).is_dir()]
    assert "core" in packages and missing == []


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def binding_problems(source: str | ast.Module, where: str, need_port_zero: bool) -> list[str]:
    """Literal addresses bound in ``source`` that are not loopback (or, in tests, not port 0),
    and every all-interfaces address written anywhere."""
    problems = []
    tree = ast.parse(source) if isinstance(source, str) else source
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value == "0.0.0.0":
            problems.append(f"{where}:{node.lineno}: all-interfaces address {node.value!r}")
        if not (isinstance(node, ast.Call) and _call_name(node) in BINDING_CALLS and node.args):
            continue
        address = node.args[0]
        if not (isinstance(address, ast.Tuple) and len(address.elts) == 2):
            continue
        host, port = address.elts
        if isinstance(host, ast.Constant) and host.value not in LOOPBACK:
            problems.append(f"{where}:{node.lineno}: binds {host.value!r}")
        if need_port_zero and not (isinstance(port, ast.Constant) and port.value == 0):
            problems.append(f"{where}:{node.lineno}: binds a fixed port, not 0")
    return sorted(problems)


@pytest.mark.parametrize("top", ["tests", "quantlib"])
def test_servers_bind_loopback_and_test_servers_port_zero(top):
    # only a file that names an address or a binding call can bind (parsing all is slow)
    words = ("0.0.0.0", *(f"{name}(" for name in BINDING_CALLS))
    candidates = [p for p in sources(ROOT / top) if any(w in p.read_text() for w in words)]
    found = [problem for path in candidates
             for problem in binding_problems(_tree(path), str(path.relative_to(ROOT)),
                                             need_port_zero=top == "tests")]
    assert found == []


@cache
def sleeping_files() -> frozenset[str]:
    found = set()
    for path in (p for p in sources(TESTS) if "sleep(" in p.read_text()):
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Call) and _call_name(node) == "sleep":
                found.add(str(path.relative_to(TESTS)))
    return frozenset(found)


def test_no_fixed_sleep_stands_in_for_a_wait():
    unlisted = sleeping_files() - set(SLEEPS)
    assert unlisted == set(), (f"{sorted(unlisted)} sleep: wait with tests/support/ready.py's "
                               "wait_until / wait_for_server, or list the file here with why")
    gone = set(SLEEPS) - sleeping_files()
    assert gone == set(), f"{sorted(gone)} no longer sleep: drop them from SLEEPS"


def test_the_checks_can_fail():
    bad = ("srv = ThreadingHTTPServer(('0.0.0.0', 8080), H)\n"
           "sock.bind(('192.168.1.2', 0))\nok = ThreadingHTTPServer(('127.0.0.1', 0), H)\n")
    assert binding_problems(bad, "x.py", need_port_zero=True) == [
        "x.py:1: all-interfaces address '0.0.0.0'", "x.py:1: binds '0.0.0.0'",
        "x.py:1: binds a fixed port, not 0", "x.py:2: binds '192.168.1.2'"]
    assert binding_problems(bad.splitlines()[2], "y.py", need_port_zero=True) == []


def test_make_test_stress_runs_the_suite_beside_busy_loops():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test-stress:.*\n\t(.*)", makefile, flags=re.M)
    assert recipe and "tools/stress.sh" in recipe.group(1) and "test" in recipe.group(1)
    stress = (ROOT / "tools" / "stress.sh").read_text()
    assert "while" in stress or "yes" in stress, "tools/stress.sh starts no busy loop"
