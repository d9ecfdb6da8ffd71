"""The live runner: trades approved JSON strategy specs once per closed candle.

Paper by default (:class:`~quantlib.live.brokers.PaperBroker`, fills like the backtest); a real
exchange through ccxt (:class:`~quantlib.live.brokers.ccxt_broker.CcxtBroker`) in live mode.
State lives in SQLite (:class:`~quantlib.live.state.StateStore`); see :mod:`quantlib.live.runner`
for the per-bar protocol that makes it crash-safe. This package builds on :mod:`quantlib.core`
(kinds, Bars, kernels) and the spec contract (:mod:`quantlib.strategy`), never on the research
layers (``tests/test_architecture.py``).
"""

# A line of the kill-switch file (written by `quantlib live stop --cancel-orders`, read by the
# runner) asking to pull resting orders as the run stops. Here so the stop command need not
# import the runner.
CANCEL_ORDERS = "cancel-orders"
