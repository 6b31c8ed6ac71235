"""Why readers unsubscribe: the optional one-question "why" after unsubscribing.

An answer is stored as the reason, the month of the latest campaign and the date, and nothing
else: no subscriber id, no address, so the counts the editor sees cannot be traced to anyone
(and forgetting a subscriber has nothing here to delete). Skipping the question stores nothing.
Functions take a `Session` and never commit.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.errors import SubscriberError
from newsletter.store.models import NOT_RELEVANT
from newsletter.store.models import OTHER
from newsletter.store.models import TOO_FREQUENT
from newsletter.store.models import TOO_LONG
from newsletter.store.models import UNSUBSCRIBE_REASONS
from newsletter.store.models import Campaign
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
