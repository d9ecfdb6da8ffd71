"""quantlib.ml."""
