"""Reading the signed links in emails: token → subscriber, or a `LinkProblem` to show the user."""

from __future__ import annotations

from sqlalchemy.orm import Session

from newsletter.errors import LinkProblem
from newsletter.errors import TokenError
from newsletter.errors import TokenExpired
from newsletter.store.models import Subscriber
from newsletter.tokens import Signer
from newsletter.tokens import address_hash

MAX_TOKEN_LENGTH = 400


def read_link(session: Session, signer: Signer, purpose: str, token: str) -> Subscriber:
    """The subscriber a token names, checking that it still matches their current address."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise LinkProblem("invalid", "This link is not valid (it may have been cut or altered).")
    try:
        subscriber_id, digest = signer.read(purpose, token)
    except TokenError as error:
        kind = "expired" if isinstance(error, TokenExpired) else "invalid"
        raise LinkProblem(kind, str(error).capitalize() + ".") from None
    if subscriber_id == 0:
        raise LinkProblem(
            "test", "This link comes from a test message, so there is nothing to change."
        )
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or address_hash(subscriber.email) != digest:
        raise LinkProblem(
            "gone", "This link no longer matches a subscription (the address may have changed)."
        )
    return subscriber
