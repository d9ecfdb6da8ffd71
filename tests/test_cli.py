"""The root command line (quantlib.cli): ``quantlib --help`` is fast by construction.

The console script answers ``quantlib`` / ``quantlib --help`` from a table of command names and
help lines instead of importing every command module (which loads pandas, vectorbt, papermill,
nbformat: seconds). These tests pin that structure, not a number of seconds: the real console
entry point, run in a fresh process, loads none of those packages, and its listing equals the
full app's, command by command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer.main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("vectorbt", "nbformat", "pandas", "numba", "papermill", "plotly", "ccxt", "scipy",
         "optuna", "quantlib.data", "quantlib.report", "quantlib.backtest")


def _run_main(argv: list[str], then: str = "") -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``quantlib.cli.main`` with ``argv`` in a fresh interpreter, then the code ``then``;
    (process, modules loaded by then)."""
    code = ("import json, sys\n"
            f"sys.argv = ['quantlib', *{argv!r}]\n"
            "from quantlib.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"{then}\n"
            "print('\\nMODULES ' + json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("MODULES ")
    return done, set(json.loads(line.removeprefix("MODULES ")))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def _listing(app: typer.Typer) -> list[tuple[str, bool, str]]:
    """(name, is a group, help) of every root command, in the order help lists them."""
    import click

    group = typer.main.get_command(app)
    return [(name, isinstance(cmd, click.Group), cmd.help)
            for name, cmd in group.commands.items()]


def test_root_help_imports_no_command_module():
    done, modules = _run_main(["--help"])
    assert "quantlib.cli" in modules
    assert _heavy(modules) == []
    for name in ("backtest", "optimize", "data", "strategy", "live", "report"):
        assert f"  {name}  " in done.stdout


def test_the_check_sees_a_command_module():
    # Control: naming a command imports its module, and the same check reports it.
    _, modules = _run_main(["data", "--help"])
    assert "quantlib.data.cli" in _heavy(modules)


def test_the_root_listing_equals_the_registered_commands():
    from quantlib.cli import build_app, index_app

    full = _listing(build_app())
    assert len(full) == 6
    assert _listing(index_app()) == full


def test_data_validate_runs_the_data_command_without_vectorbt(tmp_path):
    # The index app only lists commands: `quantlib data validate FILE` gets the real one, and
    # validating a file simulates nothing, so vectorbt and numba stay out.
    from quantlib.data import save_ohlcv, synthetic_ohlcv

    path = save_ohlcv(synthetic_ohlcv(n_bars=200, seed=0).ohlcv, tmp_path / "bars.csv")
    done, modules = _run_main(["data", "validate", str(path)])
    assert "quantlib.data.cli" in modules and "200" in done.stdout
    assert [m for m in ("vectorbt", "numba", "nbformat") if m in modules] == []


def test_console_processes_skip_the_iri_grammar_jsonschema_would_load():
    # vectorbt (optimize, report commands) pulls in jsonschema through plotly and nbformat,
    # whose optional rfc3987_syntax compiles a grammar for seconds; the console script keeps it
    # out and jsonschema still validates. (`backtest --strategy` no longer loads vectorbt:
    # tests/strategy/test_cli_rule_engine.py.)
    _, modules = _run_main(["--help"], then="import jsonschema\n"
                           "jsonschema.validate({'a': 1}, {'type': 'object'})")
    assert "jsonschema" in modules
    assert "rfc3987_syntax.syntax_helpers" not in modules
