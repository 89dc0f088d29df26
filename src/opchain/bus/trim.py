"""Trimming a stream to what its consumer groups still need: entries every group has been
handed and acknowledged go; an entry some group holds pending, or has not been handed yet,
stays. (A worker taking over a dead one's partition claims its pending entries, so those must
stay until acknowledged.) A stream with no group is left alone: nobody has read it yet.
"""

from typing import Any

import redis.asyncio
import redis.exceptions

_LAST = (1 << 64) - 1  # the largest sequence number of a stream ID


def parse_id(text: str | bytes) -> tuple[int, int]:
    raw = text.decode() if isinstance(text, bytes) else text
    ms, _, seq = raw.partition("-")
    return int(ms), int(seq or 0)


def _after(entry: tuple[int, int]) -> tuple[int, int]:
    ms, seq = entry
    return (ms + 1, 0) if seq == _LAST else (ms, seq + 1)


def _field(info: dict[Any, Any], name: str) -> Any:
    """A field of a reply, whether the client decodes responses or not."""
    return info[name] if name in info else info[name.encode()]


async def needed_from(client: "redis.asyncio.Redis", stream: str) -> tuple[int, int] | None:
    """The oldest entry ID some group of ``stream`` still needs; None when it has no group."""
    oldest: tuple[int, int] | None = None
    try:
        groups = await client.xinfo_groups(stream)
    except redis.exceptions.ResponseError as err:
        if "no such key" in str(err):
            return None
        raise
    for group in groups:
        name = _field(group, "name")
        if int(_field(group, "pending")) > 0:
            summary = await client.xpending(stream, name)
            needed = parse_id(summary["min"])
        else:
            needed = _after(parse_id(_field(group, "last-delivered-id")))
        oldest = needed if oldest is None else min(oldest, needed)
    return oldest


async def trim_acknowledged(client: "redis.asyncio.Redis", stream: str) -> int:
    """XTRIM MINID the entries of ``stream`` no group needs any more; how many went."""
    needed = await needed_from(client, stream)
    if needed is None:
        return 0
    removed: int = await client.xtrim(stream, minid=f"{needed[0]}-{needed[1]}", approximate=False)
    return removed
