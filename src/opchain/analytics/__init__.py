"""opchain's analytics as a library: Black-76 and Black-Scholes prices, implied vols and Greeks,
the parity forward, and the chain analytics (PCR, max pain, OI walls and change, GEX, smile,
term structure, wings, expected move, IV rank and percentile, jump flags).

``from opchain.analytics import implied_vol, black76_price, greeks`` gives the public names;
docs/analytics.md lists each with its units, and a test keeps that table and ``__all__`` equal.

Each name is imported from its module on first use (PEP 562), so ``import opchain.analytics``
costs nothing and a name that needs only numpy does not load scipy. Two modules share the name
of their main function (``greeks``, ``smile``): the package's attribute is the function, as it
would be had ``__init__`` imported it, even after something imports the module itself.
"""

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opchain.analytics.black76 import black76_price, implied_vol, implied_vol_reasons
    from opchain.analytics.bs import (
        NSE_RATE,
        bs_implied_vol,
        bs_implied_vol_reasons,
        bs_price,
        nse_implied_vol,
        nse_implied_vol_reasons,
    )
    from opchain.analytics.expiry_time import years_to_expiry
    from opchain.analytics.forward import otm_implied_vol, parity_forward
    from opchain.analytics.gex import GammaExposure, gamma_exposure, gamma_profile, zero_gamma
    from opchain.analytics.greeks import Greeks, bs_greeks, gamma, greeks
    from opchain.analytics.history import Anomalies, anomalies, iv_percentile, iv_rank
    from opchain.analytics.oi import (
        PutCallRatios,
        Walls,
        max_pain,
        oi_change,
        oi_walls,
        payout,
        put_call_ratio,
        put_call_ratios,
    )
    from opchain.analytics.smile import (
        ExpectedMove,
        Smile,
        Wings,
        atm_iv,
        atm_term_structure,
        expected_move,
        iv_at_maturity,
        smile,
        wings,
    )

# Each public name and the module (under opchain.analytics) that defines it.
_HOMES = {
    "black76_price": "black76",
    "implied_vol": "black76",
    "implied_vol_reasons": "black76",
    "NSE_RATE": "bs",
    "bs_price": "bs",
    "bs_implied_vol": "bs",
    "bs_implied_vol_reasons": "bs",
    "nse_implied_vol": "bs",
    "nse_implied_vol_reasons": "bs",
    "Greeks": "greeks",
    "greeks": "greeks",
    "bs_greeks": "greeks",
    "gamma": "greeks",
    "years_to_expiry": "expiry_time",
    "parity_forward": "forward",
    "otm_implied_vol": "forward",
    "PutCallRatios": "oi",
    "Walls": "oi",
    "put_call_ratio": "oi",
    "put_call_ratios": "oi",
    "payout": "oi",
    "max_pain": "oi",
    "oi_walls": "oi",
    "oi_change": "oi",
    "GammaExposure": "gex",
    "gamma_exposure": "gex",
    "gamma_profile": "gex",
    "zero_gamma": "gex",
    "Smile": "smile",
    "Wings": "smile",
    "ExpectedMove": "smile",
    "smile": "smile",
    "atm_iv": "smile",
    "atm_term_structure": "smile",
    "iv_at_maturity": "smile",
    "wings": "smile",
    "expected_move": "smile",
    "Anomalies": "history",
    "iv_rank": "history",
    "iv_percentile": "history",
    "anomalies": "history",
}

__all__ = [
    "NSE_RATE",
    "Anomalies",
    "ExpectedMove",
    "GammaExposure",
    "Greeks",
    "PutCallRatios",
    "Smile",
    "Walls",
    "Wings",
    "anomalies",
    "atm_iv",
    "atm_term_structure",
    "black76_price",
    "bs_greeks",
    "bs_implied_vol",
    "bs_implied_vol_reasons",
    "bs_price",
    "expected_move",
    "gamma",
    "gamma_exposure",
    "gamma_profile",
    "greeks",
    "implied_vol",
    "implied_vol_reasons",
    "iv_at_maturity",
    "iv_percentile",
    "iv_rank",
    "max_pain",
    "nse_implied_vol",
    "nse_implied_vol_reasons",
    "oi_change",
    "oi_walls",
    "otm_implied_vol",
    "parity_forward",
    "payout",
    "put_call_ratio",
    "put_call_ratios",
    "smile",
    "wings",
    "years_to_expiry",
    "zero_gamma",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(ModuleType):
    def __setattr__(self, name: str, value: object) -> None:
        # Importing a submodule sets the package's attribute of its name to it; where a public
        # function has that name (greeks, smile), the function stays.
        if isinstance(value, ModuleType) and name in _HOMES and _HOMES[name] == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
