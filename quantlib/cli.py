"""The ``quantlib`` command line: one typer app, one sub-command group per sub-package.

Each sub-package that offers commands has a ``cli.py`` with ``register(app)``; this module only
wires them together, so sub-packages stay independent of each other. The console script
(:func:`main`) imports only the sub-package the command line names: ``quantlib live run`` must
not load optimizers, plotting or the report pipeline (hundreds of MB and seconds of imports in
a process that trades). ``quantlib`` / ``quantlib --help`` imports none of them: the root help
comes from a table of command names and their one-line help (:func:`index_app`).
``quantlib.cli.app`` (tests) holds every command.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

# command name -> the modules that register it (in registration order)
_COMMANDS: dict[str, tuple[str, ...]] = {
    "data": ("quantlib.data.cli",),
    "backtest": ("quantlib.strategy.cli",),
    "optimize": ("quantlib.optimize.cli",),
    "strategy": ("quantlib.strategy.cli",),
    "live": ("quantlib.live.cli",),
    "report": ("quantlib.report.cli",),
}
_ALL_MODULES = tuple(dict.fromkeys(m for modules in _COMMANDS.values() for m in modules))

# What `quantlib --help` lists, in the full app's order: (name, is a group, one-line help).
# The command modules import pandas, vectorbt, papermill... (seconds), so the root help is
# built from this table; tests/test_cli.py checks it against the registered commands.
_INDEX: tuple[tuple[str, bool, str], ...] = (
    ("backtest", False, "Backtest a strategy spec and print its metrics."),
    ("optimize", False, "Search a kind's parameters (optuna study or grid sweep) and report "
                        "DSR / PBO."),
    ("data", True, "Market data: fetch exchange OHLCV into the cache, validate and inspect "
                   "files."),
    ("strategy", True, "Validate and promote JSON strategy specs."),
    ("live", True, "Run strategy specs on paper or live (ccxt), crash-safe."),
    ("report", True, "Run the report notebooks through papermill into offline HTML reports."),
)


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
    root = _root_app()
    for module_name in _COMMANDS.get(command or "", _ALL_MODULES):
        importlib.import_module(module_name).register(root)
    return root


def _root_app(**options: Any) -> typer.Typer:
    root = typer.Typer(
        name="quantlib",
        help="quantlib: crypto quant research workbench (data, backtests, optimization, live).",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        **options,
    )

    @root.callback()
    def _root() -> None:
        # A group callback keeps `quantlib optimize ...` a sub-command even when it is the only
        # command registered (typer otherwise runs a lone command as the root command).
        pass

    return root


def index_app() -> typer.Typer:
    """The root app for ``quantlib`` / ``quantlib --help``: every command listed with its help
    from :data:`_INDEX`, none of their modules imported (each entry is an empty placeholder).

    Examples
    --------
    >>> [c.name for c in index_app().registered_commands]
    ['backtest', 'optimize']
    """
    # click's plain help formatter: typer's rich one imports ~1 s of rich and markdown modules
    root = _root_app(rich_markup_mode=None)
    for name, is_group, text in _INDEX:
        # short_help too: click would cut the help at the first ~45 characters
        if is_group:
            root.add_typer(typer.Typer(help=text, short_help=text), name=name)
        else:
            root.command(name, help=text, short_help=text)(_placeholder)
    return root


def _placeholder() -> None:  # pragma: no cover - only listed, never run (main routes by name)
    raise typer.Exit(2)


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


# Optional imports that cost seconds and that no command uses. rfc3987_syntax compiles an IRI
# grammar when jsonschema loads (~1.6 s; vectorbt loads jsonschema through plotly and nbformat)
# only to offer jsonschema's "iri" format check; a None entry in sys.modules makes jsonschema
# skip that check. Console processes only: notebooks' kernels import as usual.
_SKIPPED_IMPORTS = ("rfc3987_syntax",)


def main() -> None:  # pragma: no cover - console entry point
    for name in _SKIPPED_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    command = _command_name(sys.argv[1:])
    # No command word: only the root help can be asked for (or shell completion set-up).
    (build_app(command) if command else index_app())()


if __name__ == "__main__":  # pragma: no cover
    main()
