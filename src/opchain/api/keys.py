"""API keys, kept only as SHA-256 digests and compared in constant time.

``OPCHAIN_API_KEYS`` holds keys themselves or their digests as ``sha256:<hex>`` (so a
deployment need not store the keys in plain text at all). Either way only the digest stays in
memory; a presented key is hashed and compared with every known digest by
``hmac.compare_digest``, without stopping at the first match, so the time taken says nothing
about which key, or how much of one, was right.
"""

import hashlib
import hmac
from collections.abc import Iterable

from pydantic import SecretStr

_PREFIX = "sha256:"


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def digests(keys: Iterable[SecretStr]) -> tuple[bytes, ...]:
    """Each configured key's digest; a ``sha256:<hex>`` entry is taken as a digest already."""
    out = []
    for secret in keys:
        value = secret.get_secret_value().strip()
        if value.lower().startswith(_PREFIX):
            try:
                raw = bytes.fromhex(value[len(_PREFIX) :])
            except ValueError:
                raise ValueError("an API key given as sha256:<hex> is not hexadecimal") from None
            if len(raw) != hashlib.sha256().digest_size:
                raise ValueError("an API key given as sha256:<hex> is not 64 hex digits")
            out.append(raw)
        elif value:
            out.append(digest(value))
    return tuple(out)


def identify(presented: str | None, known: tuple[bytes, ...]) -> bytes | None:
    """The digest of ``presented`` if it is one of the known keys, else None."""
    if presented is None:
        return None
    given = digest(presented)
    found = False
    for candidate in known:
        found |= hmac.compare_digest(given, candidate)
    return given if found else None
