"""Admin passwords: salted scrypt hashes (stdlib hashlib), checked in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt parameters: ~16 MiB and ~50 ms per check on a small server.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """'scrypt$N$r$p$salt$hash' for `password`: what NEWSLETTER_ADMIN_PASSWORD_HASH holds."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    encode = base64.urlsafe_b64encode
    return "$".join(
        [
            "scrypt",
            str(_SCRYPT_N),
            str(_SCRYPT_R),
            str(_SCRYPT_P),
            encode(salt).decode().rstrip("="),
            encode(digest).decode().rstrip("="),
        ]
    )


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches a `hash_password` string; False for malformed hashes."""
    try:
        scheme, n, r, p, salt, digest = stored.strip().split("$")
        if scheme != "scrypt":
            return False
        n_, r_, p_ = int(n), int(r), int(p)
        if n_ > 2**20 or r_ > 32 or p_ > 16:
            return False
        expected = _b64(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_b64(salt),
            n=n_,
            r=r_,
            p=p_,
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
