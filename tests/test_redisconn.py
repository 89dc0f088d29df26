"""Reaching Redis as the settings say: OP's host and port, a password, TLS with a CA of one's
own, against a real redis-server (TLS and AUTH on)."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.exceptions

from opchain.bus.publish import Publisher
from opchain.redisconn import NotConfigured, connect, connect_sync, url
from opchain.settings import Settings

from .servers_health import _until_line, free_port

PASSWORD = "s3cret"


def test_the_url_comes_from_opchain_or_op_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPCHAIN_REDIS_URL", "REDIS_URL", "REDIS_HOST", "REDIS_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NotConfigured, match="no Redis configured"):
        url(Settings())
    monkeypatch.setenv("REDIS_HOST", "cache.internal")
    monkeypatch.setenv("REDIS_PORT", "6380")
    assert url(Settings()) == "redis://cache.internal:6380/0"
    monkeypatch.setenv("REDIS_URL", "rediss://bus.internal:6390/2")
    assert url(Settings()) == "rediss://bus.internal:6390/2"


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """redis-server speaking only TLS, with a password; its URL and the CA to trust."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)  # fmt: skip
    port = free_port()
    command = ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
               "--tls-cert-file", str(cert), "--tls-key-file", str(key),
               "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
               "--requirepass", PASSWORD, "--save", "", "--appendonly", "no",
               "--dir", str(folder)]  # fmt: skip
    with _until_line(command, "Ready to accept connections", "stdout"):
        yield f"rediss://127.0.0.1:{port}/0", cert


def test_tls_and_a_password_reach_the_bus(tls_redis: tuple[str, Path], tmp_path: Path) -> None:
    address, ca = tls_redis
    settings = Settings(redis_url=address, redis_password=PASSWORD, redis_tls_ca=ca)

    async def scenario() -> None:
        publisher = Publisher(lambda: connect(settings), tmp_path / "spool")
        await publisher.publish("opchain:cycles:NIFTY", "1-1", {"kind": b"cycle"})
        await publisher.close(5.0)
        assert publisher.published == 1 and publisher.spooled == 0

    asyncio.run(scenario())
    client = connect_sync(settings)
    assert client.xrange("opchain:cycles:NIFTY") == [(b"1-1", {b"kind": b"cycle"})]
    client.close()


def test_a_wrong_password_or_an_untrusted_server_is_a_clear_error(
    tls_redis: tuple[str, Path],
) -> None:
    address, ca = tls_redis
    wrong = connect_sync(Settings(redis_url=address, redis_password="nope", redis_tls_ca=ca))
    with pytest.raises(redis.exceptions.AuthenticationError):
        wrong.ping()
    wrong.close()
    untrusted = connect_sync(Settings(redis_url=address, redis_password=PASSWORD))
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        untrusted.ping()
    untrusted.close()


@pytest.mark.e2e
@pytest.mark.parametrize("role", ["worker", "collect", "serve"])
def test_each_role_refused_by_redis_says_so_in_one_line(
    tls_redis: tuple[str, Path], tmp_path: Path, role: str
) -> None:
    address, ca = tls_redis
    env = {**os.environ, "OPCHAIN_REDIS_PASSWORD": "nope", "OPCHAIN_REDIS_TLS_CA": str(ca)}
    command = [sys.executable, "-m", "opchain", role, "-d", str(tmp_path), "--bus", address]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 2
    said = (done.stdout + done.stderr).strip().splitlines()
    assert len(said) == 1 and "refused the credentials" in said[0], said
