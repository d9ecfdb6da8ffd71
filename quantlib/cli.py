"""The ``quantlib`` command line: one typer app, one sub-command group per sub-package.

Each sub-package that offers commands has a ``cli.py`` with ``register(app)``; this module only
wires them together, so sub-packages stay independent of each other. The console script
(:func:`main`) imports only the sub-package the command line names: ``quantlib live run`` must
not load optimizers, plotting or the report pipeline (hundreds of MB and seconds of imports in
a process that trades). ``quantlib.cli.app`` (tests, ``--help``) holds every command.
"""

from __future__ import annotations

import importlib
import sys

import typer

# command name -> the modules that register it (in registration order)
_COMMANDS: dict[str, tuple[str, ...]] = {
    "data": ("quantlib.data.cli",),
    "backtest": ("quantlib.backtest.cli", "quantlib.strategy.cli"),
    "optimize": ("quantlib.optimize.cli",),
    "strategy": ("quantlib.strategy.cli",),
    "live": ("quantlib.live.cli",),
    "report": ("quantlib.report.cli",),
}
_ALL_MODULES = tuple(dict.fromkeys(m for modules in _COMMANDS.values() for m in modules))


def build_app(command: str | None = None) -> typer.Typer:
    """The root app with every command, or only with ``command``'s modules when it is a known
    command name.

    Examples
    --------
    >>> [g.name for g in build_app("live").registered_groups]
    ['live']
    >>> sorted(g.name for g in build_app().registered_groups)
    ['data', 'live', 'report', 'strategy']
    """
    root = typer.Typer(
        name="quantlib",
        help="quantlib: crypto quant research workbench (data, backtests, optimization, live).",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )

    @root.callback()
    def _root() -> None:
        # A group callback keeps `quantlib optimize ...` a sub-command even when it is the only
        # command registered (typer otherwise runs a lone command as the root command).
        pass

    for module_name in _COMMANDS.get(command or "", _ALL_MODULES):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(root)
    return root


_FULL_APP: typer.Typer | None = None


def __getattr__(name: str) -> typer.Typer:
    # `app` is built on first access, so that importing this module for `main` stays light.
    global _FULL_APP
    if name == "app":
        if _FULL_APP is None:
            _FULL_APP = build_app()
        return _FULL_APP
    raise AttributeError(f"module 'quantlib.cli' has no attribute {name!r}")


def _command_name(argv: list[str]) -> str | None:
    """The first word of the command line that is not an option."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main() -> None:  # pragma: no cover - console entry point
    build_app(_command_name(sys.argv[1:]))()


if __name__ == "__main__":  # pragma: no cover
    main()
