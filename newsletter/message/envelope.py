"""The envelope sender: `[delivery] envelope_from`, else the From address; with `[bounces] verp`,
one per message (`<local>+<token>@<domain>`), the token naming the subscriber so that a bounce
identifies them even when the report does not.
"""

from __future__ import annotations

import email
import email.message
import email.utils
import functools

from itsdangerous import BadSignature
from itsdangerous import Signer as ItsSigner

from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.tokens import address_hash

VERP_HASH_LENGTH = 6  # hex digits of the address hash in a VERP token
VERP_SALT = "newsletter.bounce"  # its own salt: a VERP token is never valid as a link token


# Headers of a bounce that may hold the VERP address it was delivered to.
VERP_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "X-Envelope-To", "To")


@functools.lru_cache(maxsize=4)
def _verp_signer(secret_key: str) -> ItsSigner:
    # Built once per key: the sender calls envelope_sender for every message.
    return ItsSigner(secret_key, salt=VERP_SALT)


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def verp_domain(settings: Settings) -> str:
    """The VERP domain: `[bounces] verp_domain`, else that of the envelope or From address."""
    return (
        settings.bounces.verp_domain.strip()
        or _domain_of(settings.delivery.envelope_from)
        or settings.sender_domain()
    )


def verp_token(settings: Settings, subscriber_id: int, email_address: str) -> str:
    """`<id>.<address hash>.<signature>`: short enough for a 64-character local part."""
    payload = f"{subscriber_id}.{address_hash(email_address, VERP_HASH_LENGTH)}"
    return _verp_signer(settings.secret_key()).sign(payload).decode("ascii")


def envelope_sender(settings: Settings, subscriber_id: int, email_address: str) -> str:
    """The envelope sender (Return-Path) for one message: where its bounces go.

    `[delivery] envelope_from`, else `[newsletter] from_email`; with `[bounces] verp = true`,
    `<verp_local>+<token>@<verp_domain>` naming this subscriber. Pure and fast (~10 µs).
    """
    if not settings.bounces.verp:
        return settings.delivery.envelope_from or settings.newsletter.from_email
    local = settings.bounces.verp_local.strip()
    if not local or any(c in local for c in '+@ \t"<>'):
        raise ConfigError(f"bounces.verp_local {local!r}: use a plain local part like 'bounces'")
    return f"{local}+{verp_token(settings, subscriber_id, email_address)}@{verp_domain(settings)}"


def read_verp(address: str, settings: Settings) -> tuple[int, str] | None:
    """(subscriber id, short address hash) from a VERP address, or None.

    Any domain is accepted (the report reached our mailbox, and the token is signed), so
    bounces of mail sent before `verp_domain` changed still count.
    """
    _, bare = email.utils.parseaddr(address)
    local, at, _ = bare.rpartition("@")
    prefix, plus, token = local.partition("+")
    if not at or not plus or prefix.lower() != settings.bounces.verp_local.strip().lower():
        return None
    try:
        payload = _verp_signer(settings.secret_key()).unsign(token).decode("ascii")
    except (BadSignature, UnicodeDecodeError):
        return None
    text_id, _, digest = payload.partition(".")
    if not text_id.isdigit() or len(digest) != VERP_HASH_LENGTH:
        return None
    return int(text_id), digest
