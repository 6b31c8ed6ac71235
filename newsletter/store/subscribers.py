"""The subscriber service: subscribers, lists, topic preferences, status, suppression.

This is the one subscriber API: the CLI, the web app and the sender all call it, and all the
subscriber SQL lives here. Every rule about a subscriber's record lives behind it: this module
holds the records and what an admin does to them (add, status, lists, topics, name,
unsubscribe, suppression, forget); `newsletter.store.registrar` the requests that come from the
person (subscribe, confirm, a fresh link, come back, preferences, drop a topic) and the signed
links that name them; `newsletter.store.import_export` CSV in and out.

Functions take a `Session` and never commit: the caller owns the transaction
(`newsletter.store.engine.transaction`). They flush where a caller needs ids or where a
constraint should fail early.

Addresses are validated and normalized with `email_validator`; uniqueness is on the lowercased
normalized address (`Subscriber.email_key`). Topics are stored as taxonomy slugs, and "all
topics" is a flag (`all_topics`), so subscribers who chose everything also get topics added to
the taxonomy later; the topics such a subscriber stopped are rows of their own
(`ExcludedTopic`): "every topic except these", later topics included.
"""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import SubscriberConflict
from newsletter.errors import SubscriberError
from newsletter.store.addresses import email_hash as email_hash
from newsletter.store.addresses import hash_key as hash_key
from newsletter.store.addresses import lookup_key as _key
from newsletter.store.addresses import normalize_email as normalize_email
from newsletter.store.models import ACTIVE
from newsletter.store.models import BOUNCED
from newsletter.store.models import COMPLAINED
from newsletter.store.models import PENDING
from newsletter.store.models import SUBSCRIBED
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import MailingList
from newsletter.store.models import Subscriber
from newsletter.store.models import Subscription
from newsletter.store.models import utcnow
from newsletter.store.selection import SORTS as SORTS
from newsletter.store.selection import check_status as _check_status
from newsletter.store.selection import count_matching as count_matching
from newsletter.store.selection import query_subscribers as query_subscribers
from newsletter.store.selection import subscriber_filter as subscriber_filter
from newsletter.store.suppression import IN_CHUNK as IN_CHUNK
from newsletter.store.suppression import is_suppressed as is_suppressed
from newsletter.store.suppression import lift_suppression as lift_suppression
from newsletter.store.suppression import suppress as suppress
from newsletter.store.suppression import suppressed_hashes as suppressed_hashes
from newsletter.store.suppression import suppression_reason as suppression_reason
from newsletter.store.topics import ALL_TOPICS as ALL_TOPICS
from newsletter.store.topics import apply_topics as apply_topics
from newsletter.store.topics import parse_topics as parse_topics
from newsletter.store.topics import set_topics as set_topics
from newsletter.store.topics import topic_rows

if TYPE_CHECKING:
    from newsletter.store.reader_view import ReaderView

# Statuses an import may not move an existing subscriber out of: only the person can re-subscribe.
FINAL_STATUSES = frozenset({UNSUBSCRIBED, BOUNCED, COMPLAINED})
MAX_NAME_LENGTH = 200
# Unicode categories refused in names: controls (CR, LF, tab, NUL…), line and paragraph
# separators, and format characters such as bidi overrides that disguise what a name says.
_FORBIDDEN_IN_NAMES = frozenset({"Cc", "Zl", "Zp", "Cf"})
# What an admin may add someone as: consent already given, or awaiting confirmation.
NEW_STATUSES = (ACTIVE, PENDING)


# --- lists and topics --------------------------------------------------------------------


def ensure_lists(session: Session, settings: Settings) -> dict[str, MailingList]:
    """Create or update the configured lists (the default list always exists); by slug."""
    specs = settings.list_specs()
    existing = {
        row.slug: row
        for row in session.scalars(
            select(MailingList).where(MailingList.slug.in_([s.slug for s in specs]))
        )
    }
    lists: dict[str, MailingList] = {}
    for spec in specs:
        row = existing.get(spec.slug)
        if row is None:
            row = MailingList(
                slug=spec.slug, name=spec.name, public=spec.public, description=spec.description
            )
            session.add(row)
        else:
            if row.name != spec.name:
                row.name = spec.name
            if row.description != spec.description:
                row.description = spec.description
            if row.public != spec.public:
                row.public = spec.public
        lists[spec.slug] = row
    session.flush()
    return lists


def known_lists_message(slug: str, known: Iterable[str]) -> str:
    return f"unknown list {slug!r} (known lists: {', '.join(sorted(known))})"


def require_list(session: Session, settings: Settings, slug: str) -> str:
    """`slug` if it names a configured list or one in the database; else `SubscriberError`
    naming the known lists (a filter by a mistyped list would quietly match nobody)."""
    known = {spec.slug for spec in settings.list_specs()}
    known.update(session.scalars(select(MailingList.slug)))
    if slug not in known:
        raise SubscriberError(known_lists_message(slug, known))
    return slug


# --- one subscriber ----------------------------------------------------------------------


def add_subscriber(
    session: Session,
    settings: Settings,
    taxonomy: Taxonomy,
    email: str,
    *,
    name: str = "",
    topics: str | Iterable[str] | None = None,
    lists: Iterable[str] | None = None,
    status: str = ACTIVE,
    source: str = "cli",
    ip: str = "",
    suppressed_ok: bool = False,
) -> Subscriber:
    """Add one subscriber and flush (so `.id` is set).

    `topics` None means all topics; `lists` None means the default list. Active subscribers
    count as confirmed now; pending ones wait for `confirm`. Raises `InvalidAddress`,
    `TaxonomyError`, or `SubscriberError` for an unknown list or status, an address already
    subscribed, or a suppressed address (unless `suppressed_ok`: a pending request of a
    forgotten address, whose confirmation lifts the suppression).
    """
    address, key = normalize_email(email)
    _check_status(status)
    # A pending request that may be of a suppressed address needs no look-up (asked first).
    if not (suppressed_ok and status == PENDING) and is_suppressed(session, key):
        raise SubscriberConflict(f"{address} is on the suppression list and cannot be added")
    if session.scalar(select(Subscriber.id).where(Subscriber.email_key == key)) is not None:
        raise SubscriberConflict(f"{address} is already subscribed")
    name = clean_name(name)
    chosen = parse_topics(topics, taxonomy)
    known = ensure_lists(session, settings)
    slugs = [settings.delivery.default_list] if lists is None else list(dict.fromkeys(lists))
    for slug in slugs:
        if slug not in known:
            raise SubscriberError(known_lists_message(slug, known))
    now = utcnow()
    subscriber = Subscriber(
        email=address,
        email_key=key,
        name=name,
        status=status,
        all_topics=chosen is None,
        created_at=now,
        confirmed_at=now if status == ACTIVE else None,
        unsubscribed_at=now if status == UNSUBSCRIBED else None,
        consent_source=source[:50],
        consent_ip=ip[:64],
        topics=topic_rows(chosen),
        excluded_topics=[],  # new: none, and no query when the confirmation reads them
        subscriptions=[Subscription(mailing_list=known[slug]) for slug in slugs],
    )
    session.add(subscriber)
    try:
        session.flush()
    except IntegrityError:
        # Another process added the same address between our check and the insert.
        raise SubscriberConflict(f"{address} is already subscribed") from None
    return subscriber


def clean_name(name: str) -> str:
    """A name as stored: stripped; `SubscriberError` when longer than `MAX_NAME_LENGTH` or when
    it holds a control character or a line separator.

    A name ends up in the `To:` header of every message: a line break in it would let whoever
    typed it (a stranger, through the subscribe form) add headers or a body of their own.
    """
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise SubscriberError(f"the name is too long ({MAX_NAME_LENGTH} characters at most)")
    bad = next((c for c in name if unicodedata.category(c) in _FORBIDDEN_IN_NAMES), None)
    if bad is not None:
        raise SubscriberError(
            f"the name must not contain control characters or line breaks (found U+{ord(bad):04X})"
        )
    return name


@functools.cache
def name_pattern() -> str:
    """A regular expression for the characters `clean_name` accepts: a class of everything but
    `_FORBIDDEN_IN_NAMES`, written with the characters themselves so that Python's `re`, Rust's
    `regex` (pydantic) and JSON Schema validators read it alike. For the API's schema.
    """
    # Regular expressions name no Unicode category the same way in every engine, so list the
    # code points (Python's Unicode data). Planes 4-13 are unassigned and 15-16 private use.
    planes = (range(0x40000), range(0xE0000, 0xE1000))
    bad = [
        cp
        for plane in planes
        for cp in plane
        if unicodedata.category(chr(cp)) in _FORBIDDEN_IN_NAMES
    ]
    ranges: list[list[int]] = []
    for cp in bad:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    parts = "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)
    return f"^[^{parts}]*$"


def set_name(session: Session, subscriber: Subscriber, name: str) -> Subscriber:
    """Change the name (stripped; see `clean_name`)."""
    subscriber.name = clean_name(name)
    session.flush()
    return subscriber


def get_subscriber(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address (any case), or None."""
    return session.scalar(select(Subscriber).where(Subscriber.email_key == _key(email)))


def require_subscriber(session: Session, email: str) -> Subscriber:
    """The subscriber with this address; `SubscriberError` if there is none."""
    subscriber = get_subscriber(session, email)
    if subscriber is None:
        raise SubscriberError(f"no subscriber {email.strip()}")
    return subscriber


def remove_subscriber(session: Session, email: str) -> None:
    """Delete a subscriber with their topics and subscriptions (ledger rows keep the address)."""
    session.delete(require_subscriber(session, email))
    session.flush()


def apply_status(subscriber: Subscriber, status: str) -> None:
    _check_status(status)
    if status == subscriber.status:
        return
    now = utcnow()
    if status == UNSUBSCRIBED:
        subscriber.unsubscribed_at = now
    elif status in (ACTIVE, PENDING):
        subscriber.unsubscribed_at = None
        subscriber.unsubscribe_reason_given_at = None  # a later unsubscribe gets its "why"
    if status == ACTIVE and (subscriber.status == PENDING or subscriber.confirmed_at is None):
        subscriber.confirmed_at = now
    subscriber.status = status


def is_active(subscriber: Subscriber | ReaderView) -> bool:
    """Whether they receive the digest (confirmed and still subscribed)."""
    return subscriber.status == ACTIVE


def is_subscribed(subscriber: Subscriber) -> bool:
    """Whether they are still subscribed: active, or pending their confirmation (not
    unsubscribed, bounced or complained)."""
    return subscriber.status in (ACTIVE, PENDING)


def set_status(session: Session, subscriber: Subscriber, status: str) -> Subscriber:
    """Change the status, stamping `unsubscribed_at` or `confirmed_at` as it changes."""
    apply_status(subscriber, status)
    session.flush()
    return subscriber


def confirm(session: Session, subscriber: Subscriber, ip: str = "") -> Subscriber:
    """Double opt-in: a pending subscriber becomes active. Confirming twice is harmless.

    An unsubscribed, bounced or complained address cannot be revived by an old link: it must
    subscribe again.
    """
    if subscriber.status == ACTIVE:
        return subscriber
    if subscriber.status != PENDING:
        raise SubscriberError(
            f"{subscriber.email} is {subscriber.status}; subscribe again to receive the digest"
        )
    if ip:
        subscriber.consent_ip = ip[:64]
    return set_status(session, subscriber, ACTIVE)


def unsubscribe(session: Session, subscriber: Subscriber, list_slug: str | None = None) -> bool:
    """Unsubscribe from one list, or (no list) from everything: status `unsubscribed`.

    Whether anything changed (unsubscribing twice is harmless). `SubscriberError` when they
    were never on `list_slug`.
    """
    if list_slug is not None:
        for subscription in subscriber.subscriptions:
            if subscription.mailing_list.slug == list_slug:
                changed = subscription.status != UNSUBSCRIBED
                subscription.status = UNSUBSCRIBED
                session.flush()
                return changed
        raise SubscriberError(f"{subscriber.email} is not on the list {list_slug!r}")
    changed = subscriber.status != UNSUBSCRIBED or bool(subscribed_lists(subscriber))
    for subscription in subscriber.subscriptions:
        subscription.status = UNSUBSCRIBED
    set_status(session, subscriber, UNSUBSCRIBED)
    session.flush()
    return changed


def change_status(session: Session, subscriber: Subscriber, status: str) -> Subscriber:
    """Set any status, as an admin does: `unsubscribed` also leaves every list (`unsubscribe`);
    the others go through `set_status`. `SubscriberError` for an unknown status."""
    _check_status(status)
    if status == UNSUBSCRIBED:
        unsubscribe(session, subscriber)
    else:
        set_status(session, subscriber, status)
    return subscriber


def apply_lists(
    known: dict[str, MailingList], subscriber: Subscriber, slugs: Iterable[str]
) -> None:
    wanted = list(dict.fromkeys(slugs))
    for slug in wanted:
        if slug not in known:
            raise SubscriberError(known_lists_message(slug, known))
    have = {s.mailing_list.slug: s for s in subscriber.subscriptions}
    for slug, subscription in have.items():
        status = SUBSCRIBED if slug in wanted else UNSUBSCRIBED
        if subscription.status != status:
            subscription.status = status
    for slug in wanted:
        if slug not in have:
            subscriber.subscriptions.append(Subscription(mailing_list=known[slug]))


def set_lists(
    session: Session, settings: Settings, subscriber: Subscriber, slugs: Iterable[str]
) -> None:
    """Subscribe to exactly these lists; others stay as `unsubscribed` rows (a consent record)."""
    apply_lists(ensure_lists(session, settings), subscriber, slugs)
    session.flush()


def subscribed_lists(subscriber: Subscriber) -> list[str]:
    """Slugs of the lists the subscriber is currently subscribed to, sorted."""
    return sorted(s.mailing_list.slug for s in subscriber.subscriptions if s.status == SUBSCRIBED)


def count_subscribers(session: Session, status: str | None = None) -> int:
    """How many subscribers there are (with this status)."""
    query = select(func.count()).select_from(Subscriber)
    if status is not None:
        query = query.where(Subscriber.status == _check_status(status))
    return session.scalar(query) or 0


def count_not_from(session: Session, source: str) -> int:
    """How many subscribers came from anywhere but `source` (their recorded consent source)."""
    query = select(func.count()).select_from(Subscriber)
    return session.scalar(query.where(Subscriber.consent_source != source)) or 0


# --- the person's own data (web preference center, admin) ----------------------------------


def subscriber_deliveries(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    """The ledger rows of one subscriber, newest month first, as JSON-ready records."""
    from newsletter.store.models import Campaign
    from newsletter.store.models import Delivery

    query = (
        select(
            Campaign.month,
            Delivery.status,
            Delivery.attempts,
            Delivery.sent_at,
            Delivery.last_error,
        )
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Campaign.month.desc())
    )
    return [
        {
            "month": row.month,
            "status": row.status,
            "attempts": row.attempts,
            "sent_at": _iso(row.sent_at),
            "error": row.last_error,
        }
        for row in session.execute(query)
    ]


def forget_subscriber(session: Session, subscriber: Subscriber, reason: str = "forgotten") -> None:
    """Forget me: delete the subscriber and the address from their ledger rows and bounce
    records, keeping only a suppression hash so the address is never mailed again by accident."""
    from sqlalchemy import delete
    from sqlalchemy import update

    from newsletter.store import outbox
    from newsletter.store.models import Bounce
    from newsletter.store.models import Delivery

    suppress(session, subscriber.email, reason)
    outbox.forget(session, subscriber.email, subscriber.id)  # emails not sent yet, or failed
    session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber.id)
        .values(email="(forgotten)", last_error="", smtp_reply="")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Bounce)
        .where(or_(Bounce.subscriber_id == subscriber.id, Bounce.email == subscriber.email))
        .execution_options(synchronize_session=False)
    )
    session.delete(subscriber)
    session.flush()


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
