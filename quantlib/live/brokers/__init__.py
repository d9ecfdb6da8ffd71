"""Brokers: where order intents go. ``PaperBroker`` simulates, ``CcxtBroker`` trades."""

from quantlib.live.brokers.base import Broker, client_order_id
from quantlib.live.brokers.paper import PaperBroker

__all__ = ["Broker", "PaperBroker", "CcxtBroker", "client_order_id"]


def __getattr__(name: str):
    # ccxt is heavy to import; only live trading needs it.
    if name == "CcxtBroker":
        from quantlib.live.brokers.ccxt_broker import CcxtBroker

        return CcxtBroker
    raise AttributeError(name)
