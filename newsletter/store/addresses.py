"""Addresses: validated and normalized with `email_validator`, their lookup key (the lowercased
normalized address) and the hash the suppression list keeps (pure)."""

from __future__ import annotations

import functools
import hashlib

from email_validator import EmailNotValidError
from email_validator import validate_email

from newsletter.errors import InvalidAddress


def normalize_email(text: str) -> tuple[str, str]:
    """(normalized address, lowercase key) for `text`; `InvalidAddress` saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidAddress("the email address is empty")
    return _normalized(text.strip())


# One subscribe request validates its address five times on its way through the subscriber
# service (~0.1 ms each): the answers are pure, so the recent ones are kept.
@functools.lru_cache(maxsize=4096)
def _normalized(candidate: str) -> tuple[str, str]:
    try:
        # No SMTPUTF8 local parts: few servers accept them, and every header and envelope
        # stays ASCII. Internationalized domains are kept in their ASCII (IDNA) form.
        valid = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise InvalidAddress(f"invalid email address {candidate!r}: {error}") from None
    address = valid.ascii_email or valid.normalized
    return address, address.lower()


def lookup_key(email: str) -> str:
    """The lookup key of an address; falls back to plain lowercasing for invalid input."""
    try:
        return normalize_email(email)[1]
    except InvalidAddress:
        return email.strip().lower()


def email_hash(email: str) -> str:
    """sha256 hex of the lowercased address: how the suppression list stores it."""
    return hash_key(lookup_key(email))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
