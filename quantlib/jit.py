"""Numba kernels: compiled just in time for research, ahead of time for the trading process.

Kernel modules decorate with :func:`njit` from here instead of ``numba.njit``; a kernel the
live runner calls also declares its signature for the ahead-of-time (AOT) build::

    @njit(cache=True, aot="f8[:](f8[:], i8)")
    def rolling_mean_nb(x, window): ...

- **JIT mode** (every process unless it asks otherwise): ``njit`` *is* ``numba.njit``; the
  ``aot`` signature is only recorded in :data:`EXPORTS`.
- **AOT mode** (:func:`use_aot`, which ``quantlib live run`` calls before it imports any kernel):
  numba is never imported. Each kernel name is bound to the function of the same name in an
  extension module that ``numba.pycc`` compiled from these very sources (same compiler, the
  kernels' own flags: bit-identical results, checked kernel by kernel in ``tests/test_jit.py``
  and end to end by the parity tests of the real ``quantlib live run`` process). A kernel without
  an ``aot`` signature becomes a stub that raises :class:`~quantlib.errors.KernelError`.

Why: importing numba maps LLVM (~100 MB) and its first call initialises the JIT (~50 MB more);
the trading process needs a dozen small kernels and should stay small.

The extension is built once per set of kernel sources and library versions (see
:func:`kernel_key`) into :func:`cache_dir`, by ``python -m quantlib.jit build`` in a child
process (or ``quantlib live build-kernels``); it needs a C compiler and setuptools.

AOT entry points do not check argument types (an int64 array given for float64 would be read as
garbage), so every bound kernel checks the dtype, dimensions and (for ``[::1]``) contiguity of
its array arguments and raises :class:`~quantlib.errors.KernelError` on a mismatch.

Examples
--------
>>> parse_signature("f8[:](f8[:], i8)")
(('f8', 1, 'A'), ('i8', 0, 'A'))
>>> mangle("quantlib.core.indicators_nb", "rolling_mean_nb")
'core_indicators_nb__rolling_mean_nb'
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import inspect
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantlib.errors import KernelError

# Every module holding kernels, in import order. The AOT build imports these to collect the
# exports; the architecture test checks that no other module decorates with this njit.
KERNEL_MODULES = (
    "quantlib.core.indicators_nb",
    "quantlib.core.grid_nb",
    "quantlib.backtest.trades_nb",
    "quantlib.backtest.metrics_nb",
    "quantlib.backtest.orders_nb",
    "quantlib.backtest.sweep_rows_nb",
    "quantlib.backtest.sweep_fill_nb",
    "quantlib.backtest.sweep_nb",
    "quantlib.backtest.sweep_portfolio_nb",
    "quantlib.core.regime_filter_nb",
    "quantlib.core.ml_features_nb",
    "quantlib.core.trees_nb",
    "quantlib.core.order_rule_nb",
    "quantlib.live.brokers.perp_rule_nb",
    "quantlib.backtest.perp_nb",
)

_PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Export:
    """One kernel of the AOT build: where it lives and its declared signature."""

    module: str
    name: str
    signature: str
    dispatcher: Any  # the numba dispatcher (JIT mode only)

    @property
    def symbol(self) -> str:
        return mangle(self.module, self.name)


EXPORTS: dict[str, Export] = {}
_MODE = "jit"
_EXTENSION: Any = None


def mode() -> str:
    """``"jit"`` or ``"aot"``: how kernels imported from now on are bound."""
    return _MODE


def mangle(module: str, name: str) -> str:
    """The extension's name for kernel ``name`` of ``module`` (unique across modules)."""
    return module.removeprefix("quantlib.").replace(".", "_") + "__" + name


# -- the decorator --------------------------------------------------------------------------
def njit(*args: Any, aot: str | None = None, **options: Any) -> Any:
    """``numba.njit`` in JIT mode; the ahead-of-time compiled kernel in AOT mode.

    Use as ``@njit``, ``@njit(cache=True)`` or ``@njit(cache=True, aot="f8[:](f8[:], i8)")``
    (``aot``: the numba signature of the one specialisation the live runner calls).
    """
    if len(args) == 1 and callable(args[0]) and not options and aot is None:
        return _decorate(args[0], None, {})
    if args:
        raise TypeError("quantlib.jit.njit takes keyword options only (signatures go in aot=)")
    return lambda fn: _decorate(fn, aot, options)


def _decorate(fn: Callable, aot: str | None, options: dict[str, Any]) -> Any:
    if _MODE == "aot":
        return _bind_aot(fn, aot)
    import numba

    dispatcher = numba.njit(**options)(fn)
    if aot is not None:
        export = Export(fn.__module__, fn.__name__, aot, dispatcher)
        EXPORTS[export.symbol] = export
    return dispatcher


def __getattr__(name: str) -> Any:
    # ``from quantlib.jit import prange``: numba's in JIT mode, plain range in AOT mode (only
    # research kernels use it, and those are stubs there).
    if name == "prange":
        if _MODE == "aot":
            return range
        import numba

        return numba.prange
    raise AttributeError(f"module 'quantlib.jit' has no attribute {name!r}")


# -- signatures -----------------------------------------------------------------------------
_DTYPES = {"f8": "float64", "f4": "float32", "i8": "int64", "i4": "int32", "i1": "int8",
           "u1": "uint8", "b1": "bool"}


def parse_signature(signature: str) -> tuple[tuple[str, int, str], ...]:
    """Argument types of a numba signature string as ``(code, ndim, layout)`` each.

    ``layout`` is ``"C"`` for ``[::1]``-style arrays and ``"A"`` otherwise; ``ndim`` 0 means a
    scalar. Only the subset the kernels use is understood (``f8 f4 i8 i4 i1 u1 b1`` scalars and
    arrays); anything else raises KernelError.
    """
    text = signature.replace(" ", "")
    if not text.endswith(")"):
        raise KernelError(f"aot signature {signature!r}: expected 'RET(ARG, ...)'")
    depth, start = 0, None
    for i in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            start = i
            break
    if start is None:
        raise KernelError(f"aot signature {signature!r}: unbalanced parentheses")
    body = text[start + 1:-1]
    parts, depth, token = [], 0, ""
    for ch in body:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(token)
            token = ""
        else:
            token += ch
    if token:
        parts.append(token)
    return tuple(_parse_arg(p, signature) for p in parts)


def _parse_arg(token: str, signature: str) -> tuple[str, int, str]:
    code, _, dims = token.partition("[")
    if code not in _DTYPES:
        raise KernelError(f"aot signature {signature!r}: unknown type {token!r}; "
                          f"expected one of {sorted(_DTYPES)}")
    if not dims:
        return code, 0, "A"
    axes = dims.rstrip("]").split(",")
    if any(a not in (":", "::1") for a in axes):
        raise KernelError(f"aot signature {signature!r}: cannot read array type {token!r}")
    return code, len(axes), "C" if axes[-1] == "::1" else "A"


# -- AOT binding ----------------------------------------------------------------------------
def _bind_aot(fn: Callable, aot: str | None) -> Callable:
    symbol = mangle(fn.__module__, fn.__name__)
    if aot is None:
        return _stub(fn, symbol)
    compiled = getattr(_EXTENSION, symbol, None)
    if compiled is None:
        raise KernelError(f"ahead-of-time kernels {_EXTENSION.__file__} lack {symbol}; "
                          "rebuild them with `quantlib live build-kernels`")
    return _checked(fn, compiled, parse_signature(aot), symbol)


def _stub(fn: Callable, symbol: str) -> Callable:
    def stub(*args: Any, **kwargs: Any) -> Any:
        raise KernelError(f"kernel {fn.__module__}.{fn.__name__} is research-only (no aot= "
                          "signature), so the trading process, which runs ahead-of-time "
                          "compiled kernels, cannot call it")

    stub.__name__, stub.__doc__, stub.py_func = fn.__name__, fn.__doc__, fn
    return stub


def _checked(fn: Callable, compiled: Callable, arg_types: tuple, symbol: str) -> Callable:
    """A Python function with ``fn``'s parameters (names and defaults) that checks every
    argument against the declared type, then calls the compiled entry point."""
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != len(arg_types):
        raise KernelError(f"{fn.__module__}.{fn.__name__}: aot signature declares "
                          f"{len(arg_types)} argument(s), the function takes {len(params)}")
    env: dict[str, Any] = {
        "_compiled": compiled, "_ndarray": np.ndarray, "_bad": _bad_argument,
        "_kernel": f"{fn.__module__}.{fn.__name__}",
        # scalars the entry point would convert silently (3.7 -> 3 for an integer)
        "_scalar_i": (int, np.integer), "_scalar_f": (int, float, np.integer, np.floating),
        "_scalar_b": (bool, np.bool_, int, np.integer)}
    header, checks = [], []
    for i, (param, (code, ndim, layout)) in enumerate(zip(params, arg_types, strict=True)):
        name = param.name
        header.append(name if param.default is inspect.Parameter.empty else f"{name}=_d{i}")
        if param.default is not inspect.Parameter.empty:
            env[f"_d{i}"] = param.default
        env[f"_t{i}"] = np.dtype(_DTYPES[code])
        if ndim == 0:
            group = "b" if code == "b1" else "f" if code.startswith("f") else "i"
            bad = f"not isinstance({name}, _scalar_{group})"
        else:
            contiguous = f" or not {name}.flags.c_contiguous" if layout == "C" else ""
            bad = (f"not isinstance({name}, _ndarray) or {name}.dtype != _t{i} or "
                   f"{name}.ndim != {ndim}{contiguous}")
        checks.append(f"    if {bad}:\n        _bad(_kernel, {i}, {name!r}, {name}, _t{i}, "
                      f"{ndim}, {layout!r})\n")
    names = ", ".join(p.name for p in params)
    source = (f"def {fn.__name__}({', '.join(header)}):\n" + "".join(checks)
              + f"    return _compiled({names})\n")
    exec(compile(source, f"<aot {symbol}>", "exec"), env)  # noqa: S102 - generated from a signature
    bound = env[fn.__name__]
    bound.__doc__, bound.py_func, bound.__wrapped__ = fn.__doc__, fn, fn
    return bound


def _bad_argument(kernel: str, index: int, name: str, value: Any, dtype: Any, ndim: int,
                  layout: str) -> None:
    if ndim == 0:
        raise KernelError(f"kernel {kernel}, argument {index} ({name!r}): expected a scalar "
                          f"of type {dtype}, got {type(value).__name__} {value!r}")
    got = (f"{type(value).__name__} of dtype {value.dtype} with {value.ndim} dimension(s)"
           + ("" if value.flags.c_contiguous else ", not contiguous")
           if hasattr(value, "dtype") and hasattr(value, "flags") else type(value).__name__)
    want = f"a {'contiguous ' if layout == 'C' else ''}{dtype} array with {ndim} dimension(s)"
    raise KernelError(f"kernel {kernel}, argument {index} ({name!r}): expected {want}, got {got}")


# -- the extension: where, which, build, load -------------------------------------------------
def cache_dir() -> Path:
    """Where built kernels live: ``$QUANTLIB_KERNEL_DIR``, else ``$XDG_CACHE_HOME/quantlib/
    kernels`` (``~/.cache/quantlib/kernels``)."""
    explicit = os.environ.get("QUANTLIB_KERNEL_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "quantlib" / "kernels"


def _module_path(module: str) -> Path:
    return _PACKAGE_DIR.joinpath(*module.split(".")[1:]).with_suffix(".py")


def kernel_key() -> str:
    """Hash of everything the compiled kernels depend on: their sources, this module, the
    numba/llvmlite/numpy versions, the Python build and the machine architecture."""
    digest = hashlib.sha256()
    for module in KERNEL_MODULES:
        digest.update(module.encode() + b"\0" + _module_path(module).read_bytes())
    digest.update(Path(__file__).read_bytes())
    for dist in ("numba", "llvmlite", "numpy"):
        try:
            digest.update(f"{dist}={importlib.metadata.version(dist)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{dist}=missing".encode())
    digest.update(f"{sys.version}|{platform.machine()}|{sysconfig.get_config_var('EXT_SUFFIX')}"
                  .encode())
    return digest.hexdigest()[:16]


def extension_name(key: str | None = None) -> str:
    return f"_quantlib_kernels_{key or kernel_key()}"


def extension_path(directory: Path | None = None, key: str | None = None) -> Path:
    """The file the current sources' extension is (or would be) built into."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return (directory or cache_dir()) / (extension_name(key) + suffix)


def build(directory: Path | None = None) -> Path:
    """Compile every exported kernel into one extension module (runs numba.pycc; JIT mode)."""
    if _MODE != "jit":
        raise KernelError("kernels can only be built in a JIT-mode process")
    warnings.filterwarnings("ignore", message=".*pycc.*")
    from numba.pycc import CC

    for module in KERNEL_MODULES:
        importlib.import_module(module)
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    key = kernel_key()
    target = extension_path(directory, key)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".build-") as tmp:
        cc = CC(extension_name(key))
        cc.output_dir = tmp
        cc.verbose = False
        for export in EXPORTS.values():
            cc.export(export.symbol, export.signature)(_forwarder(export))
        cc.compile()
        built = Path(tmp) / target.name
        os.replace(built, target)  # atomic: a concurrent loader never sees half a file
    _prune(directory, keep=KEEP_BUILDS)
    return target


KEEP_BUILDS = 5  # builds of other source versions kept in the cache (a checkout per branch...)


def _prune(directory: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest kernel builds (each source edit makes a new one)."""
    builds = sorted(directory.glob("_quantlib_kernels_*"), key=lambda p: p.stat().st_mtime,
                    reverse=True)
    for old in builds[keep:]:
        old.unlink(missing_ok=True)


def _forwarder(export: Export) -> Callable:
    # pycc compiles this thin caller with its own flags; the kernel it calls keeps its
    # decorator's options (fastmath, inline, error model), exactly as under the JIT.
    n_args = len(inspect.signature(export.dispatcher.py_func).parameters)
    names = ", ".join(f"a{i}" for i in range(n_args))
    env = {"kernel": export.dispatcher}
    exec(f"def forward({names}):\n    return kernel({names})\n", env)  # noqa: S102
    return env["forward"]


def ensure_built(directory: Path | None = None, timeout: float = 1800.0) -> Path:
    """The extension for the current sources, built (once, in a child process) if missing."""
    directory = directory or cache_dir()
    target = extension_path(directory)
    if target.exists():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / ".build.lock", "a")  # noqa: SIM115 - released below
    except OSError as exc:
        raise KernelError(f"cannot use the kernel cache {directory}: {exc}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same kernels
        if target.exists():
            return target
        cmd = [sys.executable, "-m", "quantlib.jit", "build", "--dir", str(directory)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise KernelError(f"building ahead-of-time kernels took over {timeout:.0f} s") from None
        if done.returncode or not target.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-12:]
            raise KernelError("building ahead-of-time kernels failed (a C compiler and "
                              "setuptools are needed):\n  " + "\n  ".join(tail))
    return target


def load_extension(path: Path) -> Any:
    """Import a built kernel extension from ``path`` (its module name is in the file name)."""
    name = path.name.split(".")[0]
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def use_aot(*, build_missing: bool = True) -> Path:
    """Switch this process to ahead-of-time compiled kernels (built first if missing).

    Must run before any kernel module is imported; raises KernelError when that is too late,
    when the build fails or when the extension cannot be loaded. Returns the extension's path.
    """
    global _MODE, _EXTENSION
    if _MODE == "aot":
        return Path(_EXTENSION.__file__)
    loaded = [m for m in KERNEL_MODULES if m in sys.modules]
    if loaded or "numba" in sys.modules:
        raise KernelError("ahead-of-time kernels must be chosen before any kernel is imported "
                          f"(already loaded: {loaded or ['numba']})")
    path = ensure_built() if build_missing else extension_path()
    if not path.exists():
        raise KernelError(f"no ahead-of-time kernels at {path}; run `quantlib live "
                          "build-kernels`")
    try:
        _EXTENSION = load_extension(path)
    except ImportError as exc:
        raise KernelError(f"cannot load ahead-of-time kernels {path}: {exc}") from None
    _MODE = "aot"
    return path


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m quantlib.jit",
                                     description="Build or locate the ahead-of-time kernels.")
    parser.add_argument("command", choices=("build", "path"))
    parser.add_argument("--dir", type=Path, default=None, help="output folder (default: cache)")
    args = parser.parse_args(argv)
    if args.command == "path":
        print(extension_path(args.dir))
        return 0
    print(build(args.dir))
    return 0


if __name__ == "__main__":
    # Run through the importable module: kernel modules register their exports there, not in
    # this ``__main__`` copy.
    from quantlib.jit import _main as main

    sys.exit(main(sys.argv[1:]))
