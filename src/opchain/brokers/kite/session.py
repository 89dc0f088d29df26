"""Kite's login: the login URL, the checksummed token exchange, the cached access token.

The flow (research/kite.md §2.2): the user opens ``/connect/login?api_key=K&v=3`` and logs in;
Kite redirects the browser to the app's registered URL with a one-shot ``request_token``; the
app posts it to ``/session/token`` with ``checksum = sha256(api_key + request_token +
api_secret)`` and gets the day's ``access_token``, which Kite kills at 06:00 IST the next
morning. The token is kept in a file only its owner can read (0600), written whole or not at
all, so every opchain command of the day can use it without another login.
"""

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from opchain.market.ist import IST, at

LOGIN = "https://kite.zerodha.com/connect/login"
TOKEN_EXPIRY = time(6, 0)  # access tokens die at 06:00 IST the next day (SEBI)


def login_url(api_key: str, login: str = LOGIN) -> str:
    return f"{login}?{urlencode({'api_key': api_key, 'v': 3})}"


def checksum(api_key: str, request_token: str, api_secret: str) -> str:
    return hashlib.sha256(f"{api_key}{request_token}{api_secret}".encode()).hexdigest()


def token_expiry(moment: datetime) -> datetime:
    """When a token issued at ``moment`` dies: the next 06:00 IST."""
    local = moment.astimezone(IST)
    today = at(local.date(), TOKEN_EXPIRY)
    return today if local < today else at(local.date() + timedelta(days=1), TOKEN_EXPIRY)


def request_token_from(text: str) -> str:
    """The request token in what the user pasted: the token itself or the whole redirect URL.

    Raises ValueError, saying why, for a redirect that reports a failed login or carries none.
    """
    text = text.strip()
    if "request_token=" not in text and "status=" not in text:
        if not text or not text.isalnum():
            raise ValueError(f"{text!r} is neither a request_token nor Kite's redirect URL")
        return text
    query = parse_qs(urlsplit(text).query if "?" in text else text)
    if query.get("status", ["success"])[0] != "success":
        raise ValueError(f"Kite reports the login as {query['status'][0]!r}")
    token = query.get("request_token", [""])[0]
    if not token:
        raise ValueError("the redirect URL carries no request_token")
    return token


@dataclass(frozen=True)
class StoredToken:
    api_key: str
    access_token: str
    user_id: str
    user_name: str
    login_time: datetime
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def save_token(path: Path, token: StoredToken) -> None:
    """Write the token file readable by its owner only (0600), whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(token).items()}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    tmp.chmod(0o600)  # O_CREAT's mode is masked by the umask; this is not
    tmp.replace(path)


def load_token(path: Path) -> StoredToken | None:
    """The stored token, or None if there is no file. Raises ValueError for a damaged one."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return StoredToken(
            api_key=str(body["api_key"]),
            access_token=str(body["access_token"]),
            user_id=str(body["user_id"]),
            user_name=str(body["user_name"]),
            login_time=datetime.fromisoformat(body["login_time"]),
            expires_at=datetime.fromisoformat(body["expires_at"]),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a token file opchain wrote ({err}); log in again") from err
