"""One exception family for quantlib.

Every failure a user can cause raises a subclass of :class:`QuantlibError` whose message names
the file, row, field or parameter and says what was expected.
"""

from __future__ import annotations


class QuantlibError(Exception):
    """Base class of every error quantlib raises on purpose."""


class DataError(QuantlibError, ValueError):
    """Market data is malformed: a file, row (timestamp), column or source string is wrong."""


class ParameterError(QuantlibError, ValueError):
    """A strategy, model or function parameter is unknown, of the wrong type or out of range."""


class SpecError(QuantlibError, ValueError):
    """A strategy spec (JSON) is invalid; the message lists every problem with its JSON path."""


class ExchangeError(QuantlibError):
    """The exchange could not be reached or answered something unusable, after retries."""


class NotFittedError(QuantlibError, AttributeError):
    """A model was used before ``fit`` was called."""


class LiveError(QuantlibError):
    """The live runner refused to act (unapproved spec, risk halt, bad state file, ...)."""


class ReportError(QuantlibError):
    """The report pipeline failed (bad config, missing notebook, failing runs)."""


class KernelError(QuantlibError):
    """Compiled kernels cannot be built, loaded or called as asked (see :mod:`quantlib.jit`)."""


__all__ = [
    "QuantlibError",
    "DataError",
    "ParameterError",
    "SpecError",
    "ExchangeError",
    "NotFittedError",
    "LiveError",
    "ReportError",
    "KernelError",
]
