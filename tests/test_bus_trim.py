"""Trimming a stream to what its consumer groups still need, against a real redis-server."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio

from opchain.bus.trim import trim_acknowledged

from .servers_health import redis_server

S = "op:cycles:NIFTY"


def with_redis(
    tmp_path: Path,
    scenario: Callable[["redis.asyncio.Redis"], Awaitable[None]],
    decode: bool = True,
) -> None:
    async def run(url: str) -> None:
        client = redis.asyncio.Redis.from_url(url, decode_responses=decode)
        try:
            await scenario(client)
        finally:
            await client.aclose()

    with redis_server(tmp_path) as (url, _):
        asyncio.run(run(url))


async def fill(client: "redis.asyncio.Redis", count: int) -> None:
    for k in range(1, count + 1):
        await client.xadd(S, {"k": k}, id=f"{k}-1")


async def read(client: "redis.asyncio.Redis", group: str, count: int) -> list[str]:
    found = await client.xreadgroup(group, "w1", {S: ">"}, count=count)
    return [entry_id for entry_id, _ in found[0][1]] if found else []


async def ids(client: "redis.asyncio.Redis") -> list[str]:
    return [entry_id for entry_id, _ in await client.xrange(S)]


def test_no_group_no_stream_trim_nothing(tmp_path: Path) -> None:
    async def scenario(client: "redis.asyncio.Redis") -> None:
        assert await trim_acknowledged(client, S) == 0  # no stream at all
        await fill(client, 3)
        assert await trim_acknowledged(client, S) == 0
        assert await ids(client) == ["1-1", "2-1", "3-1"]

    with_redis(tmp_path, scenario)


def test_acknowledged_go_pending_and_undelivered_stay(tmp_path: Path) -> None:
    async def scenario(client: "redis.asyncio.Redis") -> None:
        await fill(client, 10)
        await client.xgroup_create(S, "workers", id="0")
        assert await trim_acknowledged(client, S) == 0  # nothing delivered yet
        delivered = await read(client, "workers", 6)  # 1..6 handed out
        await client.xack(S, "workers", *delivered[:2], delivered[3])  # 1, 2 and 4 done
        assert await trim_acknowledged(client, S) == 2  # 3 is pending: 3.. stay
        assert await ids(client) == [f"{k}-1" for k in range(3, 11)]
        await client.xack(S, "workers", *delivered[2:])  # 3..6 done, 7..10 never delivered
        assert await trim_acknowledged(client, S) == 4
        assert await ids(client) == [f"{k}-1" for k in range(7, 11)]
        assert await trim_acknowledged(client, S) == 0

    with_redis(tmp_path, scenario)


def test_the_slower_group_decides(tmp_path: Path) -> None:
    async def scenario(client: "redis.asyncio.Redis") -> None:
        await fill(client, 10)
        for group in ("workers", "audit"):
            await client.xgroup_create(S, group, id="0")
        fast = await read(client, "workers", 10)
        await client.xack(S, "workers", *fast)  # all done
        slow = await read(client, "audit", 4)  # 1..4 delivered, acknowledged, 5.. not yet
        await client.xack(S, "audit", *slow)
        assert await trim_acknowledged(client, S) == 4
        assert await ids(client) == [f"{k}-1" for k in range(5, 11)]
        slow = await read(client, "audit", 3)  # 5..7 delivered, pending
        assert await trim_acknowledged(client, S) == 0
        await client.xack(S, "audit", slow[0])  # 5 done, 6 pending
        assert await trim_acknowledged(client, S) == 1
        assert await ids(client) == [f"{k}-1" for k in range(6, 11)]

    with_redis(tmp_path, scenario)


def test_without_decoded_responses(tmp_path: Path) -> None:
    async def scenario(client: "redis.asyncio.Redis") -> None:
        await fill(client, 3)
        await client.xgroup_create(S, "workers", id="0")
        await client.xack(S, "workers", *await read(client, "workers", 2))
        assert await trim_acknowledged(client, S) == 2
        assert await client.xlen(S) == 1

    with_redis(tmp_path, scenario, decode=False)
