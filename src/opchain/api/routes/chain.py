"""``/option-chain`` and ``/analytics``: views of the newest snapshot of an index.

Each answer is cut from the index's ``Live`` message and encoded once per snapshot (the Hub's
cache), so serving it again costs a dictionary lookup. The PCR series comes from the day's
analytics files, read incrementally as they grow.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response

from opchain.api.deps import ERRORS, BucketQuery, Index, guard, hub_of, settings_of
from opchain.api.live import Hub, Message
from opchain.api.models import (
    Chain,
    GexView,
    GreeksView,
    MaxPainView,
    PcrView,
    SmileView,
    TermView,
)
from opchain.api.series import pcr_series
from opchain.settings import Settings
from opchain.store import layout
from opchain.store.live import encode

router = APIRouter(dependencies=[Depends(guard)], responses=ERRORS)
HubDep = Annotated[Hub, Depends(hub_of)]
View = Callable[[Message, dict[str, Any]], dict[str, Any]]


def _message(hub: Hub, index: str) -> Message:
    message = hub.message(index)
    if message is None:
        raise HTTPException(404, f"there is no snapshot of {index} yet")
    return message


def _chain(message: Message, bucket: str | None) -> dict[str, Any]:
    """The chain of ``bucket``, or the nearest expiry's."""
    chains: list[dict[str, Any]] = message["chains"]
    if bucket is None:
        if not chains:
            raise HTTPException(404, f"{message['index']} has no expiry bucket")
        return min(chains, key=lambda c: str(c["expiry"]))
    for chain in chains:
        if chain["bucket"] == bucket:
            return chain
    raise HTTPException(404, f"{message['index']} has no {bucket} bucket")


def _answer(hub: Hub, index: str, bucket: str | None, name: str, view: View) -> Response:
    """``view`` of the bucket's chain, encoded once per snapshot."""
    message = _message(hub, index)
    chain = _chain(message, bucket)
    data = hub.cached(index, f"{name}:{chain['bucket']}", lambda m: encode(view(m, chain)))
    return Response(data, media_type="application/json")


def _head(chain: dict[str, Any]) -> dict[str, Any]:
    return {k: chain[k] for k in ("index", "bucket", "expiry", "ts")}


def _column(chain: dict[str, Any], side: str, name: str) -> list[Any]:
    return [(row[side] or {}).get(name) for row in chain["rows"]]


@router.get("/option-chain/{index}", response_model=Chain, tags=["chain"])
async def option_chain(index: Index, hub: HubDep, bucket: BucketQuery = None) -> Response:
    """The bucket's chain: per strike the call and put with IV and Black-76 Greeks."""
    return _answer(hub, index, bucket, "chain", lambda m, c: c)


def _greeks(message: Message, chain: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {"strike": row["strike"], "side": side, **{k: leg[k] for k in _GREEKS}}
        for row in chain["rows"]
        for side, leg in (("CE", row["call"]), ("PE", row["put"]))
        if leg is not None
    ]
    return {**_head(chain), "forward": chain["forward"], "rows": rows}


_GREEKS = ("iv", "delta", "gamma", "theta", "vega")


@router.get("/analytics/{index}/greeks", response_model=GreeksView, tags=["analytics"])
async def greeks(index: Index, hub: HubDep, bucket: BucketQuery = None) -> Response:
    """IV and Greeks of every leg (Black-76 on the slice's forward)."""
    return _answer(hub, index, bucket, "greeks", _greeks)


def _max_pain(message: Message, chain: dict[str, Any]) -> dict[str, Any]:
    stats = chain["stats"]
    return {
        **_head(chain),
        "spot": chain["spot"],
        "max_pain": stats.get("max_pain"),
        "call_wall": stats.get("call_wall"),
        "put_wall": stats.get("put_wall"),
        "strikes": [row["strike"] for row in chain["rows"]],
        "call_oi": _column(chain, "call", "oi"),
        "put_oi": _column(chain, "put", "oi"),
        "call_oi_change": _column(chain, "call", "oi_change"),
        "put_oi_change": _column(chain, "put", "oi_change"),
        "payout": [row["payout"] for row in chain["rows"]],
    }


@router.get("/analytics/{index}/max-pain", response_model=MaxPainView, tags=["analytics"])
async def max_pain(index: Index, hub: HubDep, bucket: BucketQuery = None) -> Response:
    """OI and OI change by strike, what settling at each strike would pay, max pain, walls."""
    return _answer(hub, index, bucket, "max-pain", _max_pain)


def _gex(message: Message, chain: dict[str, Any]) -> dict[str, Any]:
    stats = chain["stats"]
    return {
        **_head(chain),
        "spot": chain["spot"],
        "total": stats.get("gex"),
        "zero_gamma": stats.get("zero_gamma"),
        "strikes": [row["strike"] for row in chain["rows"]],
        "call": [row["gex_call"] for row in chain["rows"]],
        "put": [row["gex_put"] for row in chain["rows"]],
        "net": [row["gex_net"] for row in chain["rows"]],
    }


@router.get("/analytics/{index}/gex", response_model=GexView, tags=["analytics"])
async def gex(index: Index, hub: HubDep, bucket: BucketQuery = None) -> Response:
    """Dealer gamma exposure per strike, rupees per 1 % move (calls +, puts −)."""
    return _answer(hub, index, bucket, "gex", _gex)


def _smile(message: Message, chain: dict[str, Any]) -> dict[str, Any]:
    return {
        **_head(chain),
        "forward": chain["forward"],
        "atm_iv": chain["stats"].get("atm_iv"),
        "strikes": [row["strike"] for row in chain["rows"]],
        "call_iv": _column(chain, "call", "iv"),
        "put_iv": _column(chain, "put", "iv"),
        "otm_iv": [row["otm_iv"] for row in chain["rows"]],
    }


@router.get("/analytics/{index}/iv-smile", response_model=SmileView, tags=["analytics"])
async def iv_smile(index: Index, hub: HubDep, bucket: BucketQuery = None) -> Response:
    """The smile: call and put IV per strike, and the out-of-the-money one."""
    return _answer(hub, index, bucket, "iv-smile", _smile)


def _term(message: Message) -> dict[str, Any]:
    chains = sorted(message["chains"], key=lambda c: (str(c["expiry"]), str(c["bucket"])))
    first = chains[0]["stats"] if chains else {}
    return {
        "index": message["index"],
        "ts": message["ts"],
        "iv30": first.get("iv30"),
        "iv_rank": first.get("iv_rank"),
        "iv_percentile": first.get("iv_percentile"),
        "points": [
            {
                "bucket": c["bucket"],
                "expiry": c["expiry"],
                "years": c["years"],
                "atm_iv": c["stats"].get("atm_iv"),
                "forward": c["forward"],
                "straddle": c["stats"].get("straddle"),
                "expected_move_pct": c["stats"].get("expected_move_pct"),
            }
            for c in chains
        ],
    }


@router.get("/analytics/{index}/term-structure", response_model=TermView, tags=["analytics"])
async def term_structure(index: Index, hub: HubDep) -> Response:
    """ATM IV by expiry, the 30-day IV with its rank and percentile."""
    _message(hub, index)
    data = hub.cached(index, "term-structure", lambda m: encode(_term(m)))
    return Response(data, media_type="application/json")


@router.get("/analytics/{index}/pcr", response_model=PcrView, tags=["analytics"])
async def pcr(
    index: Index, hub: HubDep, settings: Annotated[Settings, Depends(settings_of)]
) -> Response:
    """Put-call ratios by OI and by volume per bucket now, and their series today."""
    message = _message(hub, index)
    chains = message["chains"]
    buckets = [
        {
            "bucket": c["bucket"],
            "expiry": c["expiry"],
            "pcr_oi": c["stats"].get("pcr_oi"),
            "pcr_volume": c["stats"].get("pcr_volume"),
        }
        for c in chains
    ]
    series = pcr_series(
        layout.analytics_root(settings.data_dir),
        index,
        [c["bucket"] for c in chains],
        message["ts"],
    )
    body = {"index": index, "ts": message["ts"], "buckets": buckets, "series": series}
    return Response(encode(body), media_type="application/json")
