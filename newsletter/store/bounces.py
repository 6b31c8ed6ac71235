"""Bounce records and the bounce policy: what turns an address `bounced` (a subscriber rule, so it
lives with the store).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import distinct
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.store import ledger
from newsletter.store.models import ACTIVE
from newsletter.store.models import BOUNCED
from newsletter.store.models import PENDING
from newsletter.store.models import Bounce
from newsletter.store.models import Subscriber
from newsletter.store.models import utcnow
from newsletter.store.subscribers import get_subscriber
from newsletter.store.subscribers import set_status

HARD = "hard"


SOFT = "soft"


def record_bounce(
    session: Session,
    *,
    email_address: str,
    kind: str,
    message_id: str,
    subscriber_id: int | None = None,
    status_code: str = "",
    diagnostic: str = "",
    received_at: dt.datetime | None = None,
    original_message_id: str = "",
    source: str = "smtp",
) -> Bounce | None:
    """Add one bounce and flush; None if (message_id, address) is already recorded.

    For a 5xx reply at send time, pass the outgoing Message-ID and `source="smtp"`, then call
    `apply_policy`.
    """
    if kind not in (HARD, SOFT):
        raise ValueError(f"bounce kind must be {HARD!r} or {SOFT!r}, not {kind!r}")
    exists = session.scalar(
        select(Bounce.id).where(Bounce.message_id == message_id, Bounce.email == email_address)
    )
    if exists is not None:
        return None
    row = Bounce(
        subscriber_id=subscriber_id,
        email=email_address[:320],
        kind=kind,
        status_code=status_code[:16],
        diagnostic=diagnostic,
        received_at=received_at or utcnow(),
        original_message_id=original_message_id[:500],
        message_id=message_id[:500],
        source=source[:50],
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class BounceCounts:
    """A subscriber's bounces as the policy counts them."""

    hard: int
    soft: int  # within the window, one per original message


def bounce_counts(
    session: Session, settings: Settings, subscriber_id: int, now: dt.datetime | None = None
) -> BounceCounts:
    """Hard bounces, and soft bounces within `soft_window_days` of `now`, leaving out those
    that already made the subscriber `bounced` once (so a re-activated address starts anew)."""
    since = (now or utcnow()) - dt.timedelta(days=settings.bounces.soft_window_days)
    hard = session.scalar(
        select(func.count(Bounce.id)).where(
            Bounce.subscriber_id == subscriber_id,
            Bounce.kind == HARD,
            Bounce.applied_at.is_(None),
        )
    )
    # Reports about the same original message count once; without one, each report counts.
    message = func.coalesce(func.nullif(Bounce.original_message_id, ""), Bounce.message_id)
    soft = session.scalar(
        select(func.count(distinct(message))).where(
            Bounce.subscriber_id == subscriber_id,
            Bounce.kind == SOFT,
            Bounce.received_at >= since,
            Bounce.applied_at.is_(None),
        )
    )
    return BounceCounts(hard or 0, soft or 0)


def apply_policy(
    session: Session, settings: Settings, subscriber: Subscriber, now: dt.datetime | None = None
) -> bool:
    """Mark an active or pending subscriber `bounced` when a threshold is reached; whether
    their status changed. The bounces counted are then set aside (`applied_at`), as are late
    reports for someone already bounced: if the address is made active again, it starts anew.
    """
    if subscriber.status == BOUNCED:
        _set_aside(session, subscriber.id, now)
        return False
    if subscriber.status not in (ACTIVE, PENDING):
        return False
    counts = bounce_counts(session, settings, subscriber.id, now)
    policy = settings.bounces
    if counts.hard >= policy.hard_threshold or counts.soft >= policy.soft_threshold:
        set_status(session, subscriber, BOUNCED)
        _set_aside(session, subscriber.id, now)
        return True
    return False


def _set_aside(session: Session, subscriber_id: int, now: dt.datetime | None) -> None:
    session.execute(
        update(Bounce)
        .where(Bounce.subscriber_id == subscriber_id, Bounce.applied_at.is_(None))
        .values(applied_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


def list_bounces(
    session: Session, email_address: str | None = None, limit: int = 50
) -> list[Bounce]:
    """Recorded bounces, newest first; with `email_address`, those of that address or of the
    subscriber who has it."""
    query = select(Bounce).order_by(Bounce.received_at.desc(), Bounce.id.desc()).limit(limit)
    if email_address:
        key = email_address.strip().lower()
        subscriber = get_subscriber(session, email_address)
        conditions = [func.lower(Bounce.email) == key]
        if subscriber is not None:
            conditions.append(Bounce.subscriber_id == subscriber.id)
        query = query.where(or_(*conditions))
    return list(session.scalars(query))


def record_send_bounce(session, settings: Settings, bounce: ledger.Bounce) -> None:
    """A hard bounce at send time counts like a DSN: record it and apply the bounce policy."""
    recorded = record_bounce(
        session,
        email_address=bounce.email,
        kind=HARD,
        message_id=bounce.message_id,
        subscriber_id=bounce.subscriber_id,
        status_code=enhanced_status(bounce.reply),
        diagnostic=bounce.reply,
        source="smtp",
    )
    subscriber = session.get(Subscriber, bounce.subscriber_id)
    if recorded is not None and subscriber is not None:
        apply_policy(session, settings, subscriber)


_ENHANCED_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def enhanced_status(reply: str) -> str:
    """The RFC 3463 status in an SMTP reply ('550 5.1.1 no such user' -> '5.1.1'); for a bare
    5xx reply, its class ('5.0.0'), so that every recorded hard bounce has a status."""
    found = _ENHANCED_STATUS.search(reply)
    if found:
        return found.group(1)
    code = reply.strip()[:3]
    return f"{code[0]}.0.0" if code.isdigit() and code[0] in "45" else ""
