"""quantlib.regime."""
