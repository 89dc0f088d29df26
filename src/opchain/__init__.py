"""opchain: an options-market data pipeline for Indian index options."""

__version__ = "0.1.0"
