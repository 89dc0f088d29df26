"""The ticker against the fake Kite server's WebSocket: Kite's handshake, messages and packets."""

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from websockets.asyncio.client import connect

from opchain.brokers.kite import wire
from opchain.brokers.kite.client import TokenExpired
from opchain.brokers.kite.fake import FakeKite
from opchain.brokers.kite.ticker import Ticker
from opchain.market import calendar
from opchain.market.clock import VirtualClock

from .servers import serve_in_thread
from .sessions import DAY

SESSION = calendar.session("NSE", DAY)
assert SESSION is not None


@pytest.fixture
def fake() -> FakeKite:
    fake = FakeKite(VirtualClock(SESSION.open + timedelta(minutes=5)))
    fake.ticker.heartbeat = 0.05
    return fake


@pytest.fixture
def url(fake: FakeKite) -> Iterator[str]:
    with serve_in_thread(fake.app()) as root:
        yield root.replace("http", "ws")


def tokens(fake: FakeKite, segment: str) -> list[int]:
    return [i.instrument_token for i in fake.market().instruments if i.segment == segment]


async def first_ticks(url: str, api_key: str, token: str, subscribe: dict[str, list[int]]) -> (
    list[wire.Tick]
):  # fmt: skip
    """Subscribe in each mode and return the first frame's ticks that covers them all."""
    arrived: asyncio.Queue[list[wire.Tick]] = asyncio.Queue()
    ticker = Ticker(api_key, lambda: token, arrived.put_nowait, url)
    wanted = {t for group in subscribe.values() for t in group}
    try:
        for mode, group in subscribe.items():
            await ticker.subscribe(group, mode)
        while True:
            ticks = await asyncio.wait_for(arrived.get(), 10)
            if wanted <= {t.quote.instrument_token for t in ticks}:
                return ticks
    finally:
        await ticker.close()


def test_each_mode_streams_its_packets(fake: FakeKite, url: str) -> None:
    options, indices = tokens(fake, "NFO-OPT")[:3], tokens(fake, "INDICES")[:2]
    token = fake.issue_access_token()
    modes = {"ltp": options[:1], "quote": options[1:2], "full": [options[2], *indices]}
    ticks = asyncio.run(first_ticks(url, fake.api_key, token, modes))
    got = {t.quote.instrument_token: t for t in ticks}
    assert got[options[0]].mode == "ltp" and got[options[1]].mode == "quote"
    assert got[options[2]].mode == "full" and got[options[2]].quote.bids
    assert all(got[i].mode == "full" and not got[i].tradable for i in indices)
    # Every packet says what /quote would say at that second, as far as its mode carries.
    market = fake.market()
    keys = fake.keys_by_token(market)
    expected = market.quotes([keys[t] for t in got], fake.clock.now())
    for token_, tick in got.items():
        quote = expected[keys[token_]]
        assert tick.quote.last_price == quote.last_price
        if tick.mode == "full":
            assert tick.quote == quote


def test_a_bad_token_is_refused_at_the_upgrade(fake: FakeKite, url: str) -> None:
    async def main() -> Ticker:
        stopped = asyncio.Event()
        ticker = Ticker(fake.api_key, lambda: "wrong", _ignore, url, on_failure=stopped.set)
        await ticker.subscribe([256265])
        await asyncio.wait_for(stopped.wait(), 10)
        await ticker.close()
        return ticker

    ticker = asyncio.run(main())
    assert isinstance(ticker.failure, TokenExpired) and "TokenException" in str(ticker.failure)
    assert [r.status for r in fake.requests if r.method == "WS"] == [403]


def test_a_new_login_token_is_read_on_reconnect(fake: FakeKite, url: str) -> None:
    """The token is read afresh on each connect: after a forced drop the new one is used."""
    first, second = fake.issue_access_token(), fake.issue_access_token()
    current = [first]

    async def main() -> None:
        arrived: asyncio.Queue[list[wire.Tick]] = asyncio.Queue()
        ticker = Ticker(fake.api_key, lambda: current[0], arrived.put_nowait, url, backoff=0.01)
        await ticker.subscribe([256265])
        await asyncio.wait_for(arrived.get(), 10)
        current[0] = second
        ticker.reconnect()
        await asyncio.wait_for(arrived.get(), 10)  # the clock stands still: the next frame
        assert ticker.reconnects == 1  # is the snapshot after the reconnect
        await ticker.close()

    asyncio.run(main())
    used = [dict(r.query)["access_token"] for r in fake.requests if r.method == "WS"]
    assert used == [first, second]


def test_connections_carry_at_most_3000_instruments() -> None:
    async def main() -> Ticker:
        ticker = Ticker("k", lambda: "t", _ignore, "ws://127.0.0.1:9", backoff=60)
        await ticker.subscribe(range(1, 7001))
        await ticker.subscribe(range(1, 11), "ltp")  # a mode change stays on its connection
        sizes = [len(c.modes) for c in ticker.connections]
        with pytest.raises(ValueError, match="at most 9000 instruments"):
            await ticker.subscribe(range(7001, 9002))
        await ticker.close()
        assert sizes == [3000, 3000, 1000]
        return ticker

    ticker = asyncio.run(main())
    assert [ticker.connections[0].modes[t] for t in (1, 10, 11)] == ["ltp", "ltp", "full"]


async def _messages(url: str, fake: FakeKite, *sent: object, texts: int = 1) -> list[object]:
    """Connect raw, send ``sent``, and collect messages until ``texts`` text ones arrived."""
    token = fake.issue_access_token()
    got: list[object] = []
    async with connect(f"{url}/?api_key={fake.api_key}&access_token={token}", proxy=None) as ws:
        for message in sent:
            await ws.send(json.dumps(message))
        while sum(isinstance(m, str) for m in got) < texts:
            got.append(await asyncio.wait_for(ws.recv(), 10))
    return got


def test_heartbeats_flow_without_subscriptions(fake: FakeKite, url: str) -> None:
    async def main() -> bytes | str:
        token = fake.issue_access_token()
        query = f"api_key={fake.api_key}&access_token={token}"
        async with connect(f"{url}/?{query}", proxy=None) as ws:
            return await asyncio.wait_for(ws.recv(), 10)

    assert asyncio.run(main()) == b"\x00"


def test_the_server_takes_3000_instruments_a_connection(fake: FakeKite, url: str) -> None:
    too_many = {"a": "subscribe", "v": list(range(1, 3002))}
    got = asyncio.run(_messages(url, fake, too_many))
    error = json.loads(next(m for m in got if isinstance(m, str)))
    assert error == {
        "type": "error",
        "data": "Maximum 3000 instruments per connection; 1 not subscribed.",
    }


def test_the_server_takes_three_connections_a_key(fake: FakeKite, url: str) -> None:
    async def four() -> str:
        token = fake.issue_access_token()
        query = f"api_key={fake.api_key}&access_token={token}"
        sockets = [connect(f"{url}/?{query}", proxy=None) for _ in range(4)]
        opened = [await s for s in sockets[:3]]
        try:
            async with sockets[3] as fourth:

                async def first_text() -> str:
                    while isinstance(message := await fourth.recv(), bytes):
                        pass  # heartbeats
                    return message

                return await asyncio.wait_for(first_text(), 10)
        finally:
            for ws in opened:
                await ws.close()

    assert "Maximum 3 connections" in json.loads(asyncio.run(four()))["data"]


def test_string_tokens_are_ignored_as_kite_does(fake: FakeKite, url: str) -> None:
    option = tokens(fake, "NFO-OPT")[0]

    async def main() -> list[wire.Tick]:
        token = fake.issue_access_token()
        query = f"api_key={fake.api_key}&access_token={token}"
        async with connect(f"{url}/?{query}", proxy=None) as ws:
            await ws.send(json.dumps({"a": "subscribe", "v": [str(option), 256265]}))
            while not (ticks := wire.decode_frame(await asyncio.wait_for(ws.recv(), 10))):
                pass
            return ticks

    ticks = asyncio.run(main())
    assert [t.quote.instrument_token for t in ticks] == [256265]
    assert ticks[0].mode == "quote"  # the default mode


def _ignore(ticks: list[wire.Tick]) -> None:
    pass
