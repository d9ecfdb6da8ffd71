"""Brokers: where order intents go. ``PaperBroker`` simulates, ``CcxtBroker`` trades (ccxt
itself is imported only when a ``CcxtBroker`` reaches an exchange)."""

from quantlib.live.brokers.base import Broker, client_order_id
from quantlib.live.brokers.ccxt_broker import CcxtBroker
from quantlib.live.brokers.paper import PaperBroker

__all__ = ["Broker", "PaperBroker", "CcxtBroker", "client_order_id"]
