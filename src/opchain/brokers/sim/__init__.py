"""The simulated market: a deterministic broker for offline development, demos and tests."""

from .broker import SimBroker
from .market import SimMarket

__all__ = ["SimBroker", "SimMarket"]
