"""``opchain login``: the redirect caught on a local port or a pasted token, the checksummed
exchange, a 0600 token file, and the login checked by ``opchain run`` before it collects."""

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from opchain.brokers.kite.client import KiteClient
from opchain.brokers.kite.fake import FakeKite
from opchain.brokers.kite.login import exchange
from opchain.brokers.kite.session import (
    StoredToken,
    checksum,
    load_token,
    request_token_from,
    save_token,
    token_expiry,
)
from opchain.cli import app
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.store.splits import read_split

from .servers import fake_kite_process, serve_in_thread

OPCHAIN = [sys.executable, "-m", "opchain"]
CAPTURES = Path(__file__).parent / "captures" / "kite"
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=IST)


def test_tokens_die_at_the_next_six_am_ist() -> None:
    assert token_expiry(NOON) == datetime(2026, 11, 21, 6, 0, tzinfo=IST)
    early = datetime(2026, 11, 20, 5, 59, tzinfo=IST)
    assert token_expiry(early) == datetime(2026, 11, 20, 6, 0, tzinfo=IST)
    assert token_expiry(datetime(2026, 11, 20, 6, 0, tzinfo=IST)).day == 21


@pytest.mark.parametrize(
    ("pasted", "token"),
    [
        ("  abc123XYZ \n", "abc123XYZ"),
        (
            "http://127.0.0.1:5000/kite/callback?action=login&status=success&request_token=t0k",
            "t0k",
        ),
        ("request_token=t0k&status=success", "t0k"),
    ],
)
def test_a_pasted_token_or_redirect_url_is_understood(pasted: str, token: str) -> None:
    assert request_token_from(pasted) == token


@pytest.mark.parametrize(
    ("pasted", "reason"),
    [
        ("http://x/cb?status=cancelled&request_token=t", "login as 'cancelled'"),
        ("http://x/cb?status=success", "carries no request_token"),
        ("not a token!", "neither a request_token"),
        ("", "neither a request_token"),
    ],
)
def test_a_bad_paste_says_why(pasted: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        request_token_from(pasted)


def test_the_token_file_is_private_and_round_trips(tmp_path: Path) -> None:
    stored = StoredToken("k", "secret-token", "OP0001", "me", NOON, token_expiry(NOON))
    path = tmp_path / "conf" / "kite_token.json"
    os.umask(0o022)
    save_token(path, stored)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_token(path) == stored
    assert load_token(tmp_path / "absent.json") is None
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a token file opchain wrote"):
        load_token(path)


def test_the_session_exchange_reads_kites_own_answer() -> None:
    """Against the official generate_session and profile payloads, byte for byte."""
    seen: list[httpx.Request] = []

    def kite(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        name = {"/session/token": "generate_session.json", "/user/profile": "profile.json"}
        body = (CAPTURES / name[request.url.path]).read_bytes()
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    async def main() -> StoredToken:
        client = KiteClient("k", "", transport=httpx.MockTransport(kite))
        try:
            return await exchange(client, "req", "s")
        finally:
            await client.close()

    stored = asyncio.run(main())
    assert stored.access_token == "XXXXXX" and stored.user_id == "XX0000"
    assert stored.login_time == datetime(2021, 1, 1, 16, 15, 14, tzinfo=IST)
    assert stored.expires_at == datetime(2021, 1, 2, 6, 0, tzinfo=IST)
    form = parse_qs(seen[0].content.decode())
    assert form == {
        "api_key": ["k"],
        "request_token": ["req"],
        "checksum": [checksum("k", "req", "s")],
    }
    assert seen[1].headers["authorization"] == "token k:XXXXXX"


@pytest.fixture
def fake_root() -> Iterator[tuple[FakeKite, str]]:
    fake = FakeKite(VirtualClock(NOON), api_key="k", api_secret="s")
    with serve_in_thread(fake.app()) as root:
        yield fake, root


def _env(monkeypatch: pytest.MonkeyPatch, root: str, token_file: Path, secret: str = "s") -> None:
    for name in [n for n in os.environ if "KITE" in n]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KITE_API_KEY", "k")
    monkeypatch.setenv("KITE_API_SECRET", secret)
    monkeypatch.setenv("OPCHAIN_KITE_ROOT", root)
    monkeypatch.setenv("OPCHAIN_KITE_TOKEN_FILE", str(token_file))


def _request_token(root: str) -> str:
    redirect = httpx.get(f"{root}/connect/login", params={"api_key": "k", "v": 3})
    return parse_qs(urlsplit(redirect.headers["location"]).query)["request_token"][0]


def test_login_with_a_pasted_redirect_url(
    fake_root: tuple[FakeKite, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, root = fake_root
    _env(monkeypatch, root, tmp_path / "token.json")
    landed = httpx.get(f"{root}/connect/login", params={"api_key": "k", "v": 3})
    done = CliRunner().invoke(app, ["login", "--paste"], input=landed.headers["location"] + "\n")
    assert done.exit_code == 0, done.output
    assert f"{root}/connect/login?api_key=k&v=3" in done.output
    stored = load_token(tmp_path / "token.json")
    assert stored is not None and stored.user_id == "OP0001"
    assert stored.expires_at == datetime(2026, 11, 21, 6, 0, tzinfo=IST)
    assert "expires at 06:00 IST on Sat 21 Nov 2026" in done.output
    # The token works, and the run's check says until when.
    assert [r.status for r in fake.requests if r.path == "/user/profile"] == [200]


def test_a_wrong_secret_is_refused_clearly(
    fake_root: tuple[FakeKite, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, root = fake_root
    _env(monkeypatch, root, tmp_path / "token.json", secret="not the secret")
    token = _request_token(root)
    done = CliRunner().invoke(app, ["login", "--request-token", token])
    assert done.exit_code == 2
    assert "Kite did not accept the login" in done.output and "Invalid `checksum`" in done.output
    assert not (tmp_path / "token.json").exists()


def test_run_refuses_a_missing_or_expired_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token.json"
    _env(monkeypatch, "http://127.0.0.1:9", token_file)
    command = ["run", "--broker", "kite", "--data-dir", str(tmp_path)]
    done = CliRunner().invoke(app, command)
    assert done.exit_code == 2 and "no Kite login in" in done.output
    yesterday = NOON - timedelta(days=1)
    save_token(
        token_file, StoredToken("k", "t", "OP0001", "me", yesterday, token_expiry(yesterday))
    )
    done = CliRunner().invoke(app, command)
    assert done.exit_code == 3
    assert "expired at 2026-11-20 06:00 IST" in done.output.replace("\n", " ")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.e2e
def test_login_then_run_in_tick_mode(tmp_path: Path) -> None:
    """The whole day of a user: start the (fake) Kite, log in through the browser redirect,
    then collect from the ticker with the stored token."""
    callback = f"http://127.0.0.1:{_free_port()}/kite/callback"
    start = ["--start", "2026-11-20T15:20:00", "--speed", "60"]  # 10 s of wall time
    env = {k: v for k, v in os.environ.items() if "KITE" not in k} | {
        "KITE_API_KEY": "k",
        "KITE_API_SECRET": "s",
        "OPCHAIN_KITE_REDIRECT_URL": callback,
        "OPCHAIN_KITE_TOKEN_FILE": str(tmp_path / "token.json"),
        "COLUMNS": "200",
    }
    with fake_kite_process("--redirect-url", callback, *start) as root:
        env["OPCHAIN_KITE_ROOT"] = root
        with subprocess.Popen(
            [*OPCHAIN, "login"], env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        ) as login:  # fmt: skip
            assert login.stderr is not None
            lines = [login.stderr.readline() for _ in range(3)]
            assert lines[1].strip() == f"{root}/connect/login?api_key=k&v=3"
            assert lines[2].startswith(f"Waiting for Kite's redirect to {callback}")
            # The browser: Kite's login page redirects to the callback, opchain answers.
            landed = httpx.get(lines[1].strip(), follow_redirects=True)
            assert (
                landed.status_code == 200
                and "Logged in to Kite. You can close this tab" in landed.text
            )
            output, _ = login.communicate(timeout=60)
        assert login.returncode == 0
        assert "Logged in to Kite as opchain fake (OP0001)" in output
        assert (tmp_path / "token.json").stat().st_mode & 0o777 == 0o600

        command = [*OPCHAIN, "run", "--broker", "kite", "--ticks", "--data-dir", str(tmp_path)]
        done = subprocess.run(
            [*command, "--cadence", "10", "--sessions", "1", *start],
            capture_output=True, text=True, check=False, env=env, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Kite: logged in as opchain fake (OP0001); the access token expires at 06:00 IST on" in (
        done.stderr
    )
    rows = list(read_split(tmp_path / "csv_data/NIFTY/this_week/atm/2026-11-20.csv"))
    assert rows and all(r.call_last_price for r in rows)
    health = json.loads((tmp_path / "health/broker.json").read_text())
    assert health["status"] == "ok"


@pytest.mark.e2e
def test_an_expiring_token_stops_the_run_with_a_health_state(tmp_path: Path) -> None:
    start = ["--start", "2026-11-20T15:28:00", "--speed", "30"]
    with fake_kite_process(*start, "--token-expires-at", "2026-11-20T15:28:40") as root:
        token = _request_token(root)
        with httpx.Client(base_url=root, headers={"X-Kite-Version": "3"}) as client:
            form = {
                "api_key": "k",
                "request_token": token,
                "checksum": checksum("k", token, "s"),
            }
            session = client.post("/session/token", data=form).json()["data"]
        env = {k: v for k, v in os.environ.items() if "KITE" not in k} | {
            "KITE_API_KEY": "k",
            "KITE_ACCESS_TOKEN": session["access_token"],
            "OPCHAIN_KITE_ROOT": root,
            "COLUMNS": "200",
        }
        command = [*OPCHAIN, "run", "--broker", "kite", "--data-dir", str(tmp_path)]
        done = subprocess.run(
            [*command, "--cadence", "10", "--sessions", "1", *start],
            capture_output=True, text=True, check=False, env=env, timeout=120,
        )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "Kite no longer accepts the access token" in done.stderr
    health = json.loads((tmp_path / "health/broker.json").read_text())
    assert health["status"] == "down" and "opchain login" in health["detail"]
