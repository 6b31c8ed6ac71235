"""What readers did with an issue's links: unsubscribes and dropped topics, counted per issue.

The unsubscribe and preference links of every digest carry its month (`tokens.CAMPAIGN`); the
web pages behind them call `record` after the subscriber service made the change, and the
issue report counts the rows (`store.reports`). A row names the campaign, what happened and
when: never the reader.

Sources counted: the one-click link (`/u/…`), the preference center opened from a digest
(unsubscribe, "stop this topic", and topics unticked when the form is saved), and unsubscribe
by mail (the List-Unsubscribe `mailto:`): its token's campaign, else `last_sent_campaign`,
the most recent issue the reader was sent within `WINDOW_DAYS`. An admin's unsubscribe (the
CLI, the admin pages) counts for no issue: it is in the audit log.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.store.models import RESPONSE_KINDS
from newsletter.store.models import SENT
from newsletter.store.models import Campaign
from newsletter.store.models import Delivery
from newsletter.store.models import IssueResponse
from newsletter.store.models import utcnow

UNSUBSCRIBED = "unsubscribe"
DROPPED_TOPIC = "drop-topic"
WINDOW_DAYS = 30  # the issue report's window (`store.reports.WINDOW_DAYS`)


def record(session: Session, month: str, kind: str, topic: str = "") -> bool:
    """Count one response for `month`'s issue (the caller commits); False when the month was
    never sent (nothing is recorded)."""
    if kind not in RESPONSE_KINDS:
        raise ValueError(f"unknown response {kind!r}; known: {', '.join(RESPONSE_KINDS)}")
    if not month:
        return False
    campaign_id = session.scalar(select(Campaign.id).where(Campaign.month == month))
    if campaign_id is None:
        return False
    session.add(IssueResponse(campaign_id=campaign_id, kind=kind, topic=topic[:120]))
    return True


def last_sent_campaign(
    session: Session,
    subscriber_id: int,
    now: dt.datetime | None = None,
    window_days: int = WINDOW_DAYS,
) -> str:
    """The month (or quarter) of the most recent issue the ledger says was sent to the
    subscriber within `window_days` before `now`; "" when there is none. What an unsubscribe
    by mail without a campaign in its token is counted for."""
    now = now or utcnow()
    since = now - dt.timedelta(days=window_days)
    month = session.scalar(
        select(Campaign.month)
        .join(Delivery, Delivery.campaign_id == Campaign.id)
        .where(
            Delivery.subscriber_id == subscriber_id,
            Delivery.status == SENT,
            Delivery.sent_at.is_not(None),
            Delivery.sent_at >= since,
            Delivery.sent_at <= now,
        )
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(1)
    )
    return str(month) if month else ""
