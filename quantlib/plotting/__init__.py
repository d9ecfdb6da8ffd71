"""quantlib.plotting."""
