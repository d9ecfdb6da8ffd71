"""quantlib.live."""
