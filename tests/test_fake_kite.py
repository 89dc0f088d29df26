"""The fake Kite server, driven by Zerodha's official client (``kiteconnect``), unchanged."""

import hashlib
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from kiteconnect import KiteConnect, exceptions

from opchain.brokers.kite.fake import FakeKite
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST

from .servers import serve_in_thread

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=IST)


@pytest.fixture
def fake() -> FakeKite:
    return FakeKite(VirtualClock(NOW))


@pytest.fixture
def root(fake: FakeKite) -> Iterator[str]:
    with serve_in_thread(fake.app()) as url:
        yield url


def login(fake: FakeKite, root: str) -> KiteConnect:
    """The whole login flow: login page redirect, then generate_session with the checksum."""
    redirect = httpx.get(f"{root}/connect/login", params={"api_key": fake.api_key, "v": 3})
    assert redirect.status_code == 302
    location = urlsplit(redirect.headers["location"])
    assert location.geturl().startswith(fake.redirect_url)
    request_token = parse_qs(location.query)["request_token"][0]
    kite = KiteConnect(api_key=fake.api_key, root=root)
    session = kite.generate_session(request_token, api_secret=fake.api_secret)
    kite.set_access_token(session["access_token"])
    return kite


def test_official_client_logs_in_and_reads_the_profile(fake: FakeKite, root: str) -> None:
    kite = login(fake, root)
    assert kite.profile()["broker"] == "ZERODHA"
    session_call = next(r for r in fake.requests if r.path == "/session/token")
    assert session_call.status == 200


def test_a_request_token_works_once(fake: FakeKite, root: str) -> None:
    redirect = httpx.get(f"{root}/connect/login", params={"api_key": fake.api_key, "v": 3})
    token = parse_qs(urlsplit(redirect.headers["location"]).query)["request_token"][0]
    kite = KiteConnect(api_key=fake.api_key, root=root)
    kite.generate_session(token, api_secret=fake.api_secret)
    with pytest.raises(exceptions.TokenException, match="invalid or has expired"):
        kite.generate_session(token, api_secret=fake.api_secret)


def test_a_wrong_secret_fails_the_checksum(fake: FakeKite, root: str) -> None:
    redirect = httpx.get(f"{root}/connect/login", params={"api_key": fake.api_key, "v": 3})
    token = parse_qs(urlsplit(redirect.headers["location"]).query)["request_token"][0]
    kite = KiteConnect(api_key=fake.api_key, root=root)
    with pytest.raises(exceptions.TokenException, match="checksum"):
        kite.generate_session(token, api_secret="not the secret")
    checksum = hashlib.sha256(f"{fake.api_key}{token}{fake.api_secret}".encode()).hexdigest()
    ok = httpx.post(
        f"{root}/session/token",
        data={"api_key": fake.api_key, "request_token": token, "checksum": checksum},
        headers={"X-Kite-Version": "3"},
    )
    assert ok.json()["status"] == "success"


def test_instruments_of_nfo_and_bfo(fake: FakeKite, root: str) -> None:
    kite = login(fake, root)
    nfo, bfo = kite.instruments("NFO"), kite.instruments("BFO")
    assert {i["name"] for i in nfo} == {"NIFTY", "BANKNIFTY"}
    assert {i["name"] for i in bfo} == {"SENSEX"}
    assert {i["segment"] for i in bfo} == {"BFO-OPT", "BFO-FUT"}
    weekly = next(i for i in nfo if i["name"] == "NIFTY" and i["expiry"] == date(2026, 11, 23))
    assert isinstance(weekly["strike"], float) and weekly["lot_size"] > 0
    everything = kite.instruments()
    assert {i["segment"] for i in everything} >= {"INDICES", "NFO-OPT", "BFO-OPT"}


def test_quote_ltp_and_ohlc_for_options_and_indices(fake: FakeKite, root: str) -> None:
    kite = login(fake, root)
    nfo = kite.instruments("NFO")
    bfo = kite.instruments("BFO")
    options = [
        next(
            f"{i['exchange']}:{i['tradingsymbol']}"
            for i in dump
            if i["name"] == name and i["instrument_type"] == "CE"
        )
        for dump, name in ((nfo, "NIFTY"), (nfo, "BANKNIFTY"), (bfo, "SENSEX"))
    ]
    indices = ["NSE:NIFTY 50", "NSE:NIFTY BANK", "BSE:SENSEX", "NSE:INDIA VIX"]
    quotes = kite.quote([*options, *indices, "NFO:NO_SUCH_OPTION"])
    assert set(quotes) == {*options, *indices}  # unknown instruments are left out, as on Kite
    for key in options:
        q = quotes[key]
        assert q["timestamp"] == NOW.replace(tzinfo=None)  # the client parses Kite's time text
        assert len(q["depth"]["buy"]) == len(q["depth"]["sell"]) == 5
        assert q["ohlc"]["close"] > 0 and q["oi"] > 0
    nifty = quotes["NSE:NIFTY 50"]
    assert nifty["depth"] == {"buy": None, "sell": None} and nifty["last_trade_time"] == ""
    fake.clock = VirtualClock(NOW + timedelta(seconds=1))
    ltp = kite.ltp(options + indices)
    assert set(ltp) == {*options, *indices}
    assert set(ltp[options[0]]) == {"instrument_token", "last_price"}
    fake.clock = VirtualClock(NOW + timedelta(seconds=2))
    ohlc = kite.ohlc(indices)
    assert set(ohlc["BSE:SENSEX"]["ohlc"]) == {"open", "high", "low", "close"}


def test_the_monthly_only_indices_when_asked_for() -> None:
    fake = FakeKite(VirtualClock(NOW), indices=("FINNIFTY", "MIDCPNIFTY", "BANKEX"))
    with serve_in_thread(fake.app()) as root:
        kite = login(fake, root)
        nfo, bfo, everything = kite.instruments("NFO"), kite.instruments("BFO"), kite.instruments()
        assert {i["name"] for i in nfo} == {"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY"}
        assert {i["name"] for i in bfo} == {"SENSEX", "BANKEX"}
        listed = {
            (i["exchange"], i["tradingsymbol"]) for i in everything if i["segment"] == "INDICES"
        }
        assert listed >= {
            ("NSE", "NIFTY FIN SERVICE"),
            ("NSE", "NIFTY MID SELECT"),
            ("BSE", "BANKEX"),
        }
        months = {
            name: sorted(
                {i["expiry"] for i in dump if i["name"] == name and i["segment"].endswith("-OPT")}
            )
            for dump, name in ((nfo, "FINNIFTY"), (nfo, "MIDCPNIFTY"), (bfo, "BANKEX"))
        }
        assert (
            months["FINNIFTY"]
            == months["MIDCPNIFTY"]
            == [date(2026, 11, 23), date(2026, 12, 29), date(2027, 1, 26)]
        )
        assert months["BANKEX"] == [date(2026, 11, 26), date(2026, 12, 31), date(2027, 1, 28)]
        options = [
            next(
                f"{i['exchange']}:{i['tradingsymbol']}"
                for i in dump
                if i["name"] == name and i["instrument_type"] == "PE"
            )
            for dump, name in ((nfo, "FINNIFTY"), (nfo, "MIDCPNIFTY"), (bfo, "BANKEX"))
        ]
        indices = ["NSE:NIFTY FIN SERVICE", "NSE:NIFTY MID SELECT", "BSE:BANKEX"]
        quotes = kite.quote([*options, *indices])
    assert set(quotes) == {*options, *indices}
    assert all(quotes[k]["last_price"] > 1_000 for k in indices)
    assert all(quotes[k]["oi"] > 0 and quotes[k]["depth"]["buy"] for k in options)


def test_quote_limits_and_rate(fake: FakeKite, root: str) -> None:
    kite = login(fake, root)
    with pytest.raises(exceptions.InputException, match="Max permitted is 500"):
        kite.quote([f"NFO:X{n}" for n in range(501)])
    kite.quote(["NSE:NIFTY 50"])
    with pytest.raises(exceptions.NetworkException, match="Too many requests") as err:
        kite.quote(["NSE:NIFTY 50"])  # the same second on the server's clock
    assert err.value.code == 429


def test_tokens_die_at_six_the_next_morning(fake: FakeKite, root: str) -> None:
    kite = login(fake, root)
    fake.clock = VirtualClock(datetime(2026, 11, 21, 5, 59, tzinfo=IST))
    assert kite.profile()["user_shortname"] == "fake"
    fake.clock = VirtualClock(datetime(2026, 11, 21, 6, 0, tzinfo=IST))
    with pytest.raises(exceptions.TokenException, match="access_token"):
        kite.profile()


def test_missing_version_header_and_bad_credentials(fake: FakeKite, root: str) -> None:
    token = fake.issue_access_token()
    auth = {"Authorization": f"token {fake.api_key}:{token}"}
    assert httpx.get(f"{root}/user/profile", headers=auth).status_code == 400
    bad = httpx.get(
        f"{root}/user/profile",
        headers={"X-Kite-Version": "3", "Authorization": f"token {fake.api_key}:nope"},
    )
    assert bad.status_code == 403 and bad.json()["error_type"] == "TokenException"


@pytest.mark.e2e
def test_the_fake_kite_command_serves_the_official_client() -> None:
    command = [
        sys.executable, "-m", "opchain", "fake-kite", "--port", "0", "--api-key", "k1",
        "--api-secret", "s1", "--start", "2026-11-20T10:00:00", "--seed", "3",
    ]  # fmt: skip
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            root = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            assert root, line
            redirect = httpx.get(f"{root[1]}/connect/login", params={"api_key": "k1", "v": 3})
            token = parse_qs(urlsplit(redirect.headers["location"]).query)["request_token"][0]
            kite = KiteConnect(api_key="k1", root=root[1])
            kite.set_access_token(kite.generate_session(token, api_secret="s1")["access_token"])
            quotes = kite.quote(["NSE:NIFTY 50", "NSE:NIFTY BANK", "BSE:SENSEX"])
            assert all(q["last_price"] > 0 for q in quotes.values()) and len(quotes) == 3
            process.send_signal(signal.SIGINT)  # Ctrl-C: a clean shutdown, no traceback
            process.wait(timeout=30)
            assert "Traceback" not in process.stderr.read()
        finally:
            if process.poll() is None:  # a failed check must not leave the server running
                process.kill()


# --- every day, and only Kite's envelope (issue 13, case 9) ----------------------------------


@pytest.mark.parametrize(
    ("closed", "last"),
    [
        (datetime(2026, 11, 21, 10, 0, tzinfo=IST), date(2026, 11, 20)),  # a Saturday
        (datetime(2026, 11, 24, 10, 0, tzinfo=IST), date(2026, 11, 23)),  # a Tuesday holiday
    ],
)
def test_a_closed_day_serves_the_last_trading_day_as_it_closed(
    closed: datetime, last: date
) -> None:
    fake = FakeKite(VirtualClock(closed))
    with serve_in_thread(fake.app()) as root:
        kite = login(fake, root)
        nfo = kite.instruments("NFO")
        everything = kite.instruments()
        quotes = kite.quote(["NSE:NIFTY 50", "BSE:SENSEX"])
    listed = FakeKite(VirtualClock(datetime.combine(last, NOW.timetz()))).market().instruments
    assert {i["tradingsymbol"] for i in nfo} == {
        i.tradingsymbol for i in listed if i.exchange == "NFO"
    }
    assert len(everything) == len(listed)
    close = datetime.combine(last, datetime.min.time()).replace(hour=15, minute=30)
    assert {q["timestamp"] for q in quotes.values()} == {close}  # the exchange's own stamp
    assert {r.status for r in fake.requests} == {302, 200}  # the login's redirect, then OKs


def test_an_unexpected_error_is_a_general_exception_in_kites_envelope() -> None:
    # No holiday table for 2027: the simulator has no market to show (the exchange would).
    fake = FakeKite(VirtualClock(datetime(2027, 1, 4, 10, 0, tzinfo=IST)))
    with serve_in_thread(fake.app()) as root:
        kite = login(fake, root)
        with pytest.raises(exceptions.GeneralException, match="no NSE trading calendar for 2027"):
            kite.instruments("NFO")
        with pytest.raises(exceptions.GeneralException, match="no NSE trading calendar") as err:
            kite.quote(["NSE:NIFTY 50"])
        assert err.value.code == 500
        auth = {"X-Kite-Version": "3", "Authorization": f"token {fake.api_key}:x"}
        for method, path in (("GET", "/no/such/route"), ("DELETE", "/user/profile")):
            answer = httpx.request(method, f"{root}{path}", headers=auth)
            assert answer.headers["content-type"] == "application/json"
            body = answer.json()
            assert body["status"] == "error" and body["error_type"] == "GeneralException"
            assert answer.status_code in (404, 405) and body["message"]
    assert {r.status for r in fake.requests if r.path in ("/instruments/NFO", "/quote")} == {500}
