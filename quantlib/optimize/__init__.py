"""quantlib.optimize."""
