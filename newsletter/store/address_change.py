"""The subscriber service, part three: a reader changes their address.

The preference center asks for the new address; `request_address_change` says whether to
mail it a link (never to an address that belongs to someone else, and the page answers the
same either way, so it does not tell whose an address is). The link, signed for the old
address and carrying the new one, is mailed to the new address only; `change_address` applies
it when it comes back, so the change needs both the preferences link and the new mailbox.
Functions take a `Session` and never commit.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from newsletter.errors import LinkProblem
from newsletter.errors import SubscriberConflict
from newsletter.errors import TokenError
from newsletter.errors import TokenExpired
from newsletter.store.models import Subscriber
from newsletter.store.registrar import FORGOTTEN
from newsletter.store.registrar import MAX_TOKEN_LENGTH
from newsletter.store.registrar import subscriber_by_reference
from newsletter.store.subscribers import get_subscriber
from newsletter.store.subscribers import lift_suppression
from newsletter.store.subscribers import normalize_email
from newsletter.store.subscribers import suppression_reason
from newsletter.tokens import ADDRESS
from newsletter.tokens import Signer


def request_address_change(session: Session, subscriber: Subscriber, new_email: str) -> str | None:
    """The normalized new address to email a confirmation link to, or None to email nothing:
    the same address, or one that belongs to someone else (another record, or suppressed after
    a complaint or bounce). The caller answers the same either way, so the page does not tell
    whose an address is. `InvalidAddress` for an address that is not one."""
    address, key = normalize_email(new_email)
    if key == subscriber.email_key:
        return None
    if get_subscriber(session, key) is not None:
        return None
    if suppression_reason(session, key) not in (None, FORGOTTEN):
        return None
    return address


def change_address(session: Session, signer: Signer, token: str) -> Subscriber:
    """Use an address-change link (made for the old address, carrying the new one, mailed to
    the new one): the subscriber now has the new address. `LinkProblem` for a link that does
    not work; used links stop working (they name the old address). `SubscriberConflict` when
    the new address was taken meanwhile."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise LinkProblem("invalid", "This link is not valid (it may have been cut or altered).")
    try:
        subscriber_id, digest, extra = signer.read_with_extra(ADDRESS, token)
    except TokenError as error:
        kind = "expired" if isinstance(error, TokenExpired) else "invalid"
        raise LinkProblem(kind, str(error).capitalize() + ".") from None
    subscriber = subscriber_by_reference(session, subscriber_id, digest)
    new_email = (extra or {}).get("email")
    if not isinstance(new_email, str):
        raise LinkProblem("invalid", "This link is not valid.")
    address, key = normalize_email(new_email)
    if get_subscriber(session, key) is not None or suppression_reason(session, key) not in (
        None,
        FORGOTTEN,
    ):
        raise SubscriberConflict("this address cannot be used for this subscription")
    lift_suppression(session, key)  # a forgotten address whose owner now confirms it
    subscriber.email, subscriber.email_key = address, key
    session.flush()
    return subscriber


def new_address_in(signer: Signer, token: str) -> str | None:
    """The new address an address-change token carries (for its page), or None."""
    try:
        _, _, extra = signer.read_with_extra(ADDRESS, token)
    except TokenError:
        return None
    value = (extra or {}).get("email")
    return value if isinstance(value, str) else None
