"""Why readers unsubscribe: the optional one-question "why" after unsubscribing.

An answer is stored as the reason, the month of the latest campaign and the date, and nothing
else: no subscriber id, no address, so the counts the editor sees cannot be traced to anyone
(and forgetting a subscriber has nothing here to delete). Skipping the question stores nothing.
One unsubscribe gets one answer: the subscriber's row notes that it was given (`answer_why`).
Functions take a `Session` and never commit.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from newsletter.errors import SubscriberError
from newsletter.store.engine import rows_affected
from newsletter.store.models import NOT_RELEVANT
from newsletter.store.models import OTHER
from newsletter.store.models import TOO_FREQUENT
from newsletter.store.models import TOO_LONG
from newsletter.store.models import UNSUBSCRIBE_REASONS
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import Campaign
from newsletter.store.models import Subscriber
from newsletter.store.models import UnsubscribeReason
from newsletter.store.models import utcnow

# What the page and the dashboard call each reason.
REASON_LABELS = {
    TOO_FREQUENT: "Too frequent",
    NOT_RELEVANT: "Not relevant to my work",
    TOO_LONG: "Too long",
    OTHER: "Another reason",
}


def latest_campaign_month(session: Session) -> str:
    """The month (YYYY-MM) of the newest campaign, or "" when nothing was ever sent."""
    return session.scalar(select(func.max(Campaign.month))) or ""


def record_unsubscribe_reason(
    session: Session, reason: str, *, on: dt.date | None = None
) -> UnsubscribeReason:
    """Store one answer (no one's id: see the module docstring); `SubscriberError` for a reason
    that is not one of `UNSUBSCRIBE_REASONS`."""
    if reason not in UNSUBSCRIBE_REASONS:
        raise SubscriberError(
            f"unknown reason {reason[:40]!r} (choose {', '.join(UNSUBSCRIBE_REASONS)})"
        )
    row = UnsubscribeReason(
        reason=reason,
        campaign_month=latest_campaign_month(session),
        on_date=on or utcnow().date(),
    )
    session.add(row)
    session.flush()
    return row


def answer_why(
    session: Session, subscriber: Subscriber, reason: str, *, now: dt.datetime | None = None
) -> bool:
    """The unsubscribed reader's answer to the "why": stored once per unsubscribe. False,
    storing nothing, when this unsubscribe was already explained (the same link posted again
    would inflate the counts); `SubscriberError` for an unknown reason or someone who is not
    unsubscribed. Subscribing again clears the mark (`subscribers.apply_status`).

    The mark is one conditional UPDATE, so two answers posted at once store one row. It is a
    time on the subscriber's row, which already holds when they unsubscribed: the answer
    rows stay without anyone's id.
    """
    if subscriber.status != UNSUBSCRIBED:
        raise SubscriberError(f"{subscriber.email} is {subscriber.status}: nothing to explain")
    if why_answered(subscriber):
        return False  # whatever this second answer says
    if reason not in UNSUBSCRIBE_REASONS:
        raise SubscriberError(
            f"unknown reason {reason[:40]!r} (choose {', '.join(UNSUBSCRIBE_REASONS)})"
        )
    now = now or utcnow()
    marked = session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber.id, Subscriber.unsubscribe_reason_given_at.is_(None))
        .values(unsubscribe_reason_given_at=now)
        .execution_options(synchronize_session=False)
    )
    if not rows_affected(marked):
        return False
    subscriber.unsubscribe_reason_given_at = now
    record_unsubscribe_reason(session, reason, on=now.date())
    return True


def why_answered(subscriber: Subscriber) -> bool:
    """Whether their latest unsubscribe was already explained (the page then says so)."""
    return subscriber.unsubscribe_reason_given_at is not None


def unsubscribe_reason_counts(session: Session, since: dt.date | None = None) -> dict[str, int]:
    """How many readers gave each reason (every reason present, 0 included), on or after
    `since` if given, in the order of `UNSUBSCRIBE_REASONS`."""
    query = select(UnsubscribeReason.reason, func.count()).group_by(UnsubscribeReason.reason)
    if since is not None:
        query = query.where(UnsubscribeReason.on_date >= since)
    counts = {reason: 0 for reason in UNSUBSCRIBE_REASONS}
    for reason, count in session.execute(query):
        counts[reason] = count
    return counts
