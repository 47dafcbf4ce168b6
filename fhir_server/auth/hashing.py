"""Password and client-secret hashing with scrypt (a memory-hard KDF), compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P, _LEN = 2**14, 8, 1, 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str | None) -> bool:
    """Constant-time check; a missing or malformed hash still costs one derivation."""
    try:
        kind, n, r, p, salt, digest = (stored or "").split("$")
        if kind != "scrypt":
            raise ValueError(kind)
        params = (int(n), int(r), int(p))
        expected = _unb64(digest)
        salt_bytes = _unb64(salt)
    except ValueError:
        params, expected, salt_bytes = (_N, _R, _P), b"\0" * _LEN, b"\0" * 16
        stored = None
    actual = hashlib.scrypt(
        secret.encode(), salt=salt_bytes, n=params[0], r=params[1], p=params[2], dklen=len(expected)
    )
    return hmac.compare_digest(actual, expected) and stored is not None


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """A one-way name for a bearer value stored by the server (authorization codes)."""
    return hashlib.sha256(value.encode()).hexdigest()
