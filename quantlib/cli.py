"""The ``quantlib`` command line: one typer app, one sub-command group per sub-package.

Each sub-package that offers commands has a ``cli.py`` with ``register(app)``; this module only
wires them together, so sub-packages stay independent of each other.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="quantlib",
    help="quantlib: crypto quant research workbench (data, backtests, optimization, live).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_COMMAND_MODULES = (
    "quantlib.data.cli",
    "quantlib.backtest.cli",
    "quantlib.optimize.cli",
    "quantlib.strategy.cli",
    "quantlib.live.cli",
    "quantlib.report.cli",
)

for _module_name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(_module_name)
    except ModuleNotFoundError as exc:
        if exc.name != _module_name:
            raise
        continue
    _module.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
