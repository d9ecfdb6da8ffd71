"""quantlib.plotting: plotly figures, one module per area, and the :func:`tearsheet`.

``from quantlib.plotting import tearsheet`` is the function (imported here eagerly, so the name
on the package is always the function, never its module).
"""

from quantlib.plotting.tearsheet import Tearsheet, tearsheet

__all__ = ["tearsheet", "Tearsheet"]
