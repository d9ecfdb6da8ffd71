"""quantlib.backtest."""
