"""Package attributes imported on first use (PEP 562).

A package whose public names include slow imports (papermill, statsmodels, ...) that some of
its callers never need maps each such name to the submodule defining it and takes its
``__getattr__`` and ``__dir__`` from :func:`lazy_exports`; nothing is imported until a name is
first read. Each package using it says in its docstring what the laziness saves and for whom;
packages without such a measured reason import their names eagerly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, importing each name of ``where`` on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``; it must be importing (its module is in ``sys.modules``).
    where : Mapping[str, str]
        Public name -> the submodule of ``package`` that defines it, e.g. ``{"load": "sources"}``.

    Returns
    -------
    tuple
        A module ``__getattr__`` (a name once read is kept in the package, so it is looked up
        only once) and a ``__dir__`` listing the package's names and the lazy ones.

    Examples
    --------
    >>> __getattr__, __dir__ = lazy_exports(__name__, {"load": "sources"})  # doctest: +SKIP
    """
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{where[name]}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__
