"""What readers did with an issue's links: unsubscribes and dropped topics, counted per issue.

The unsubscribe and preference links of every digest carry its month (`tokens.CAMPAIGN`); the
web pages behind them call `record` after the subscriber service made the change, and the
issue report counts the rows (`store.reports`). A row names the campaign, what happened and
when: never the reader.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.store.models import RESPONSE_KINDS
from newsletter.store.models import Campaign
from newsletter.store.models import IssueResponse

UNSUBSCRIBED = "unsubscribe"
DROPPED_TOPIC = "drop-topic"


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
