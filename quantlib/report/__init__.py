"""quantlib.report."""
