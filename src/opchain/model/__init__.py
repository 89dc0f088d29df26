"""The data that flows through the pipeline: instruments, quotes, legs, snapshots, split rows.

Plain frozen dataclasses with no behaviour beyond small derived properties; every stage
speaks in these types. Prices are floats in rupees, sizes are ints, datetimes are aware.
"""

from opchain.model.chain import ChainSlice, Leg, Side, Snapshot, SplitRow
from opchain.model.instrument import Instrument
from opchain.model.quote import DepthLevel, Quote

__all__ = [
    "ChainSlice",
    "DepthLevel",
    "Instrument",
    "Leg",
    "Quote",
    "Side",
    "Snapshot",
    "SplitRow",
]
