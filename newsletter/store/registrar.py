"""The subscriber service, part two: signed links → subscribers, and the subscribe and confirm
workflows (the registrar, as Mailman 3 calls it).

`newsletter.store.subscribers` holds the records and the rules for changing them; this module
holds the requests that arrive from outside — a token in a link or an envelope address, a
subscribe form filled in by anyone, a confirmation link coming back. The web app, the CLI and
the inbound-mail scans call these functions and hold no rules of their own.

Like the rest of the store, functions take a `Session` and never commit.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from newsletter.errors import LinkProblem
from newsletter.errors import TokenError
from newsletter.errors import TokenExpired
from newsletter.store.models import Subscriber
from newsletter.tokens import ADDRESS_HASH_LENGTH
from newsletter.tokens import Signer
from newsletter.tokens import address_hash

MAX_TOKEN_LENGTH = 400
# Subscriber ids fit a 32-bit integer column: a larger (signed, so ours) id names nobody.
_MAX_ID = 2**31 - 1

# --- signed links and envelope addresses → subscribers -----------------------------------


def subscriber_by_reference(
    session: Session, subscriber_id: int, digest: str, *, hash_length: int = ADDRESS_HASH_LENGTH
) -> Subscriber:
    """The subscriber a verified token names by id and short address hash.

    `LinkProblem` "test" for id 0 (test messages), "gone" when there is no such subscriber or
    their address has changed since the token was made (so a recycled id names nobody).
    `hash_length` is the length of the hash in this kind of token (VERP tokens are shorter).
    """
    if subscriber_id == 0:
        raise LinkProblem(
            "test", "This link comes from a test message, so there is nothing to change."
        )
    subscriber = session.get(Subscriber, subscriber_id) if 0 < subscriber_id <= _MAX_ID else None
    if subscriber is None or address_hash(subscriber.email, hash_length) != digest:
        raise LinkProblem(
            "gone", "This link no longer matches a subscription (the address may have changed)."
        )
    return subscriber


def subscriber_for_token(session: Session, signer: Signer, purpose: str, token: str) -> Subscriber:
    """The subscriber a signed token for `purpose` names, checked against their current address.

    `LinkProblem` with `kind` "invalid" (cut, altered, made for another purpose), "expired"
    (an old confirmation link), "test" or "gone" (see `subscriber_by_reference`); its message
    can be shown to the person.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise LinkProblem("invalid", "This link is not valid (it may have been cut or altered).")
    try:
        subscriber_id, digest = signer.read(purpose, token)
    except TokenError as error:
        kind = "expired" if isinstance(error, TokenExpired) else "invalid"
        raise LinkProblem(kind, str(error).capitalize() + ".") from None
    return subscriber_by_reference(session, subscriber_id, digest)
