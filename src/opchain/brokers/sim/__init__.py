"""The simulated market: a deterministic broker for offline development, demos and tests."""

from .broker import SimBroker
from .market import Jump, SimMarket

__all__ = ["Jump", "SimBroker", "SimMarket"]
