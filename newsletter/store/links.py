"""Signed links and envelope addresses → subscribers: the checks every page behind a link
and every inbound-mail scan makes before it acts on a record (part of the subscriber service,
re-exported by `store.registrar`).

A token is read (`read_link`: signed, for its purpose, not too long or expired), then the record
it names is found and checked against the address hash it carries (`check_found`), so a link
never acts on another person: not after an address change, not after the record was deleted.
Functions take a `Session` and never commit.
"""

from __future__ import annotations

from sqlalchemy.orm import Session
from sqlalchemy.orm import joinedload
from sqlalchemy.orm import lazyload

from newsletter.errors import LinkProblem
from newsletter.errors import TokenError
from newsletter.errors import TokenExpired
from newsletter.store.models import Subscriber
from newsletter.tokens import ADDRESS_HASH_LENGTH
from newsletter.tokens import CONFIRM
from newsletter.tokens import Signer
from newsletter.tokens import address_hash

MAX_TOKEN_LENGTH = 400
DELETED = (
    "The subscription this link belonged to has been deleted, with everything we held about "
    "it (for example after a request to forget it). To receive the digest again, subscribe anew."
)
# A confirmation token may carry the choices of the request (compressed JSON): ~720
# characters with every default topic and a 200-character name.
MAX_CONFIRM_TOKEN_LENGTH = 4000
# Subscriber ids fit a 32-bit integer column: a larger (signed, so ours) id names nobody.
_MAX_ID = 2**31 - 1


# Every page behind a link shows or changes the reader's topics and lists: one query with
# their few rows joined costs half of the four that the relationships' own `selectin` loading
# makes (the preference page's largest cost; bench/web_load.py).
_WHOLE_SUBSCRIBER = (
    joinedload(Subscriber.topics),
    joinedload(Subscriber.excluded_topics),
    joinedload(Subscriber.subscriptions),
)
# A page that changes only the status (the one-click unsubscribe) needs the lists: the topics
# are left to load if ever read.
_WITH_LISTS = (
    lazyload(Subscriber.topics),
    lazyload(Subscriber.excluded_topics),
    joinedload(Subscriber.subscriptions),
)


def known_id(subscriber_id: int) -> bool:
    """Whether a verified token's id can name a subscriber of ours; `LinkProblem` "test" for
    id 0 (test messages)."""
    if subscriber_id == 0:
        raise LinkProblem(
            "test", "This link comes from a test message, so there is nothing to change."
        )
    return 0 < subscriber_id <= _MAX_ID


def check_found(
    email: str | None, subscriber_id: int, digest: str, hash_length: int = ADDRESS_HASH_LENGTH
) -> None:
    """`LinkProblem` unless the record a verified token names was found (`email`, None when
    not) with the address hash the token carries."""
    # Ids are never handed out twice (SQLite AUTOINCREMENT since migration 0011, PostgreSQL's
    # sequence), so a deleted record's id stays free for good and its links keep saying so.
    # Chosen over a tombstone of forgotten ids checked against each token's issue time: that
    # needs a time in every token (VERP addresses carry none) and guesses within a second.
    if email is None and 0 < subscriber_id <= _MAX_ID:
        # The token is ours (signed), so the record it named existed and was deleted: say so.
        raise LinkProblem("deleted", DELETED)
    if email is None or address_hash(email, hash_length) != digest:
        raise LinkProblem(
            "gone", "This link no longer matches a subscription (the address may have changed)."
        )


def subscriber_by_reference(
    session: Session,
    subscriber_id: int,
    digest: str,
    *,
    hash_length: int = ADDRESS_HASH_LENGTH,
    topics: bool = True,
) -> Subscriber:
    """The subscriber a verified token names by id and short address hash.

    `LinkProblem` "test" for id 0 (test messages), "deleted" when the subscriber it names was
    deleted (forget me, or an admin removed them), "gone" when the id cannot be ours or the
    address has changed since the token was made (so a recycled id names nobody).
    `hash_length` is the length of the hash in this kind of token (VERP tokens are shorter);
    `topics` False loads the topics only when read (a page that changes the status alone).
    """
    subscriber = (
        session.get(Subscriber, subscriber_id, options=_WHOLE_SUBSCRIBER if topics else _WITH_LISTS)
        if known_id(subscriber_id)
        else None
    )
    check_found(
        None if subscriber is None else subscriber.email, subscriber_id, digest, hash_length
    )
    assert subscriber is not None
    return subscriber


def read_link(
    signer: Signer, purpose: str, token: str, max_age: int | None = None
) -> tuple[int, str]:
    """(subscriber id, address hash) of a signed token for `purpose`; `LinkProblem` "invalid"
    (cut, altered, made for another purpose) or "expired" (`max_age` in seconds overrides the
    default)."""
    limit = MAX_CONFIRM_TOKEN_LENGTH if purpose == CONFIRM else MAX_TOKEN_LENGTH
    if not token or len(token) > limit:
        raise LinkProblem("invalid", "This link is not valid (it may have been cut or altered).")
    try:
        return signer.read(purpose, token, max_age)
    except TokenError as error:
        kind = "expired" if isinstance(error, TokenExpired) else "invalid"
        raise LinkProblem(kind, str(error).capitalize() + ".") from None


def subscriber_for_token(
    session: Session,
    signer: Signer,
    purpose: str,
    token: str,
    *,
    max_age: int | None = None,
    topics: bool = True,
) -> Subscriber:
    """The subscriber a signed token for `purpose` names, checked against their current address.

    `LinkProblem` with `kind` "invalid" (cut, altered, made for another purpose), "expired"
    (an old confirmation or privacy link; `max_age` in seconds overrides the default), "test"
    or "gone" (see `subscriber_by_reference`, and for `topics`); its message can be shown to
    the person.
    """
    subscriber_id, digest = read_link(signer, purpose, token, max_age)
    return subscriber_by_reference(session, subscriber_id, digest, topics=topics)
