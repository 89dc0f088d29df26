"""What to watch: for each index and expiry bucket, the listed contracts by strike and side."""

from dataclasses import dataclass
from datetime import date, datetime

from opchain.market.expiry import check_expiries, expiry_buckets, index_options, strike_grid
from opchain.market.indices import INDICES
from opchain.model import Instrument


@dataclass(frozen=True, slots=True, eq=False)  # identity: one watch per index and bucket
class Watch:
    index: str
    bucket: str
    expiry: date
    strikes: tuple[float, ...]  # the listed strike grid of this expiry, ascending
    contracts: dict[tuple[float, str], Instrument]  # (strike, "CE"|"PE") -> contract


def plan_watches(
    dump: list[Instrument], indices: tuple[str, ...], now: datetime
) -> tuple[list[Watch], list[str]]:
    """Watches for the buckets each index has at ``now``, and rule-check warnings."""
    watches, warnings = [], []
    for key in indices:
        spec = INDICES[key]
        assert spec.options_segment is not None
        options = index_options(dump, key, spec.options_segment)
        buckets = expiry_buckets(options, now)
        listed = set(buckets.values())
        checked = check_expiries(spec.exchange, listed, rule=spec.expiry_rule)
        warnings += [f"{key} {w}" for w in checked]
        for bucket, expiry in buckets.items():
            of_expiry = [o for o in options if o.expiry == expiry]
            watches.append(
                Watch(
                    index=key,
                    bucket=bucket,
                    expiry=expiry,
                    strikes=tuple(strike_grid(of_expiry, expiry)),
                    contracts={(o.strike, o.instrument_type): o for o in of_expiry},
                )
            )
    return watches, warnings
