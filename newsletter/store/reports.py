"""How each issue did, and how the list grows: the SQL behind the issue report and dashboard.

Everything is counted from what the store already keeps: the delivery ledger (sent, failed,
skipped and why), the bounces (attributed to an issue through the Message-ID they answer, which
names the month: `<YYYY-MM.id.hash@domain>`), the unsubscribes and dropped topics that came
through the issue's own links or by mail (their tokens carry its month; the sources are listed
in `store.responses`), and the
subscribers' own dates. A complaint has no link to come through: it is attributed to the last
issue the reader was sent before it, if that was at most `WINDOW_DAYS` earlier. Nothing here
stores anything about a reader.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Select
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased

from newsletter.store.models import ACTIVE
from newsletter.store.models import COMPLAINED
from newsletter.store.models import DELIVERY_STATUSES
from newsletter.store.models import DONE
from newsletter.store.models import FAILED
from newsletter.store.models import SENT
from newsletter.store.models import SKIPPED
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import Bounce
from newsletter.store.models import Campaign
from newsletter.store.models import Delivery
from newsletter.store.models import ExcludedTopic
from newsletter.store.models import IssueResponse
from newsletter.store.models import Subscriber
from newsletter.store.models import SubscriberTopic
from newsletter.store.models import utcnow
from newsletter.store.responses import DROPPED_TOPIC as DROP_TOPIC
from newsletter.store.responses import UNSUBSCRIBED as UNSUBSCRIBE
from newsletter.store.responses import WINDOW_DAYS as WINDOW_DAYS

MAX_PAGE = 500
# Gmail and Yahoo's bulk-sender rules: keep the spam-complaint rate under 0.3 % (they advise
# under 0.1 %); a bounce rate over 2 % is the usual sign of a list that needs cleaning.
SPAM_RATE_LIMIT = 0.003
SPAM_RATE_ADVISED = 0.001
BOUNCE_RATE_LIMIT = 0.02
# What the report's "unsubscribed" and "topics dropped" count, as the report says it.
COUNTED_SOURCES = (
    "Counted: the issue's one-click unsubscribe link; its preferences link (unsubscribe, "
    "\u201cstop this topic\u201d, and topics unticked when the form is saved); and "
    "unsubscribes by mail (List-Unsubscribe mailto: the issue named in its token, else the "
    "last issue the reader was sent in the previous 30 days). Not counted: unsubscribes by "
    "an admin (CLI or admin pages, in the audit log) and bounces."
)


@dataclasses.dataclass
class IssueReport:
    """One campaign's numbers. `audience` is its ledger rows (one per reader planned)."""

    month: str
    subject: str
    status: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    audience: int
    counts: dict[str, int]
    failed_reasons: list[tuple[str, int]]
    skipped_reasons: list[tuple[str, int]]
    bounced_hard: int
    bounced_soft: int
    unsubscribed: int
    complained: int
    topics_dropped: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    window_days: int = WINDOW_DAYS

    @property
    def sent(self) -> int:
        return self.counts.get(SENT, 0)

    @property
    def failed(self) -> int:
        return self.counts.get(FAILED, 0)

    @property
    def skipped(self) -> int:
        return self.counts.get(SKIPPED, 0)

    @property
    def bounce_rate(self) -> float:
        return rate(self.bounced_hard + self.bounced_soft, self.sent)

    @property
    def complaint_rate(self) -> float:
        return rate(self.complained, self.sent)

    @property
    def unsubscribe_rate(self) -> float:
        return rate(self.unsubscribed, self.sent)

    @property
    def counted_sources(self) -> str:
        """Which unsubscribes and dropped topics the report counts (said on the report)."""
        return COUNTED_SOURCES


@dataclasses.dataclass(frozen=True)
class Recipient:
    """One ledger row of a report's recipients list."""

    email: str
    status: str
    attempts: int
    sent_at: dt.datetime | None
    reason: str
    subscriber_status: str  # "" when the subscriber was deleted or forgotten


def rate(part: int, whole: int) -> float:
    """part / whole, 0 when nothing was sent."""
    return part / whole if whole else 0.0


def _message_of(month: str) -> ColumnElement[bool]:
    """Bounces that answer a message of `month` (its Message-ID starts `<YYYY-MM.`)."""
    answered = func.coalesce(func.nullif(Bounce.original_message_id, ""), Bounce.message_id)
    return answered.like(f"<{month}.%")


def _grouped_reasons(session: Session, campaign_id: int, status: str) -> list[tuple[str, int]]:
    reason = func.coalesce(func.nullif(Delivery.last_error, ""), literal("(no reason recorded)"))
    rows = session.execute(
        select(reason, func.count())
        .where(Delivery.campaign_id == campaign_id, Delivery.status == status)
        .group_by(reason)
        .order_by(func.count().desc(), reason)
    )
    return [(str(text), int(count)) for text, count in rows]


def _responses(
    session: Session, campaign: Campaign, window: dt.timedelta
) -> dict[tuple[str, str], int]:
    """(kind, topic) -> count of the responses through the issue's links within `window` of
    its start (the window is compared here: date arithmetic differs between databases)."""
    start = campaign.started_at or campaign.created_at
    counts: dict[tuple[str, str], int] = {}
    rows = session.execute(
        select(IssueResponse.kind, IssueResponse.topic, IssueResponse.at).where(
            IssueResponse.campaign_id == campaign.id
        )
    )
    for kind, topic, at in rows:
        if start is None or at - start <= window:
            counts[(kind, topic)] = counts.get((kind, topic), 0) + 1
    return counts


def _attributed_changes(
    session: Session, campaign_id: int, status: str, window: dt.timedelta
) -> int:
    """Readers sent this campaign, now `status` (unsubscribed/complained), whose change came
    within `window` after it and before any later issue reached them. A complaint has no date
    of its own: the subscriber's last change (`updated_at`, when the status was set) stands in."""
    later = aliased(Delivery)
    when = Subscriber.unsubscribed_at if status == UNSUBSCRIBED else Subscriber.updated_at
    rows = session.execute(
        select(Delivery.id, Delivery.sent_at, when)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(
            Delivery.campaign_id == campaign_id,
            Delivery.status == SENT,
            Subscriber.status == status,
            when.is_not(None),
            when >= Delivery.sent_at,
            ~select(later.id)
            .where(
                later.subscriber_id == Delivery.subscriber_id,
                later.status == SENT,
                later.sent_at > Delivery.sent_at,
                later.sent_at <= when,
            )
            .exists(),
        )
    ).all()
    # The window is compared here: date arithmetic differs between SQLite and PostgreSQL.
    return sum(1 for _id, sent_at, at in rows if sent_at and at and at - sent_at <= window)


def issue_report(
    session: Session, month: str, window_days: int = WINDOW_DAYS
) -> IssueReport | None:
    """The report of `month`'s campaign; None when it was never planned."""
    campaign = session.scalar(select(Campaign).where(Campaign.month == month))
    if campaign is None:
        return None
    counts = {status: 0 for status in DELIVERY_STATUSES}
    for status, count in session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign.id)
        .group_by(Delivery.status)
    ):
        counts[status] = int(count)
    kinds = dict(
        session.execute(
            select(Bounce.kind, func.count()).where(_message_of(month)).group_by(Bounce.kind)
        ).all()
    )
    window = dt.timedelta(days=window_days)
    responses = _responses(session, campaign, window)
    return IssueReport(
        month=month,
        subject=campaign.subject,
        status=campaign.status,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
        audience=sum(counts.values()),
        counts=counts,
        failed_reasons=_grouped_reasons(session, campaign.id, FAILED),
        skipped_reasons=_grouped_reasons(session, campaign.id, SKIPPED),
        bounced_hard=int(kinds.get("hard", 0)),
        bounced_soft=int(kinds.get("soft", 0)),
        unsubscribed=sum(n for (kind, _), n in responses.items() if kind == UNSUBSCRIBE),
        complained=_attributed_changes(session, campaign.id, COMPLAINED, window),
        topics_dropped=sorted(
            ((topic, n) for (kind, topic), n in responses.items() if kind == DROP_TOPIC),
            key=lambda item: (-item[1], item[0]),
        ),
        window_days=window_days,
    )


def _recipients_query(campaign_id: int, status: str | None, search: str) -> Select:
    reason = func.coalesce(func.nullif(Delivery.last_error, ""), Delivery.smtp_reply)
    query = (
        select(
            Delivery.email,
            Delivery.status,
            Delivery.attempts,
            Delivery.sent_at,
            reason,
            func.coalesce(Subscriber.status, literal("")),
        )
        .outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.campaign_id == campaign_id)
    )
    if status:
        query = query.where(Delivery.status == status)
    if search:
        # A substring of the address, matched literally (no LIKE wildcards from the input).
        needle = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(Delivery.email).like(f"%{needle}%", escape="\\"))
    return query


def recipients(
    session: Session,
    month: str,
    *,
    status: str | None = None,
    search: str = "",
    limit: int | None = 100,
    offset: int = 0,
) -> tuple[list[Recipient], int]:
    """(one page of the campaign's ledger rows, how many match); ValueError for an unknown
    status. `limit=None` returns every row (the CSV export)."""
    if status and status not in DELIVERY_STATUSES:
        raise ValueError(f"status: {status!r} is not one of {', '.join(DELIVERY_STATUSES)}")
    campaign_id = session.scalar(select(Campaign.id).where(Campaign.month == month))
    if campaign_id is None:
        return [], 0
    query = _recipients_query(campaign_id, status, search.strip()[:320])
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    query = query.order_by(Delivery.id).offset(max(offset, 0))
    if limit is not None:
        query = query.limit(min(max(limit, 1), MAX_PAGE))
    rows = [
        Recipient(str(e), str(s), int(a), at, str(r or ""), str(ss))
        for e, s, a, at, r, ss in session.execute(query)
    ]
    return rows, int(total)


# --- the dashboard ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MonthGrowth:
    """Subscribers who joined, confirmed, unsubscribed and were set aside as bounced in a month."""

    month: str
    new: int
    confirmed: int
    unsubscribed: int
    bounced: int


def _month_key(session: Session, column: Any) -> ColumnElement[str]:
    """'YYYY-MM' of a UTC datetime column, in this database's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def months_back(now: dt.datetime, count: int) -> list[str]:
    """The `count` months ending with `now`'s, oldest first ('2026-01', …)."""
    year, month = now.year, now.month
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def growth(session: Session, months: int = 12, now: dt.datetime | None = None) -> list[MonthGrowth]:
    """The last `months` months (oldest first, this month included), every month present."""
    keys = months_back(now or utcnow(), months)
    first = dt.datetime.strptime(keys[0], "%Y-%m").replace(tzinfo=dt.UTC)

    def per_month(column: Any, *where: ColumnElement[bool]) -> dict[str, int]:
        key = _month_key(session, column)
        query = select(key, func.count()).where(column >= first, *where).group_by(key)
        return {str(k): int(n) for k, n in session.execute(query)}

    new = per_month(Subscriber.created_at)
    confirmed = per_month(Subscriber.confirmed_at)
    unsubscribed = per_month(Subscriber.unsubscribed_at)
    # When the bounce policy set the subscriber aside (the bounce it counted last).
    bounced = per_month(Bounce.applied_at, Bounce.subscriber_id.is_not(None))
    return [
        MonthGrowth(
            k, new.get(k, 0), confirmed.get(k, 0), unsubscribed.get(k, 0), bounced.get(k, 0)
        )
        for k in keys
    ]


def readers_per_topic(session: Session, topics: Sequence[str]) -> dict[str, int]:
    """How many active subscribers receive each topic (slug), in the order given.

    An all-topics subscriber receives every topic but those they stopped; the others, those
    they chose. Paused subscribers count: they are still readers.
    """
    everything = (
        session.scalar(
            select(func.count()).where(Subscriber.status == ACTIVE, Subscriber.all_topics)
        )
        or 0
    )
    excluded = dict(
        session.execute(
            select(ExcludedTopic.topic, func.count())
            .join(Subscriber, Subscriber.id == ExcludedTopic.subscriber_id)
            .where(Subscriber.status == ACTIVE, Subscriber.all_topics)
            .group_by(ExcludedTopic.topic)
        ).all()
    )
    chosen = dict(
        session.execute(
            select(SubscriberTopic.topic, func.count())
            .join(Subscriber, Subscriber.id == SubscriberTopic.subscriber_id)
            .where(Subscriber.status == ACTIVE, Subscriber.all_topics.is_(False))
            .group_by(SubscriberTopic.topic)
        ).all()
    )
    return {slug: int(everything - excluded.get(slug, 0) + chosen.get(slug, 0)) for slug in topics}


def last_campaign(session: Session) -> Campaign | None:
    """The most recently finished campaign, else the most recently started one."""
    done = session.scalar(
        select(Campaign).where(Campaign.status == DONE).order_by(Campaign.finished_at.desc())
    )
    if done is not None:
        return done
    return session.scalar(
        select(Campaign)
        .where(Campaign.started_at.is_not(None))
        .order_by(Campaign.started_at.desc())
    )


def status_totals(session: Session) -> dict[str, int]:
    """Subscribers by status."""
    return {
        str(status): int(count)
        for status, count in session.execute(
            select(Subscriber.status, func.count()).group_by(Subscriber.status)
        )
    }


__all__ = [
    "BOUNCE_RATE_LIMIT",
    "COUNTED_SOURCES",
    "SPAM_RATE_ADVISED",
    "SPAM_RATE_LIMIT",
    "IssueReport",
    "MonthGrowth",
    "Recipient",
    "growth",
    "issue_report",
    "last_campaign",
    "months_back",
    "rate",
    "readers_per_topic",
    "recipients",
    "status_totals",
]
