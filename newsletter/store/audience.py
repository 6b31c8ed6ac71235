"""Who a campaign goes to: the audience filters that the set-based planner
(`store.planning`) builds its `INSERT … SELECT` from, and the row-by-row reading of the same
audience (`iter_audience`, `insert_deliveries`) that tests and `bench/planning.py` compare it
with."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.content.choice import TopicChoice
from newsletter.store.models import ACTIVE
from newsletter.store.models import SUBSCRIBED
from newsletter.store.models import Delivery
from newsletter.store.models import ExcludedTopic
from newsletter.store.models import MailingList
from newsletter.store.models import Subscriber
from newsletter.store.models import SubscriberTopic
from newsletter.store.models import Subscription
from newsletter.store.models import utcnow


@dataclass(frozen=True)
class AudienceMember:
    """A subscriber as the planner sees them."""

    id: int
    email: str
    topics: TopicChoice


def on_lists(lists: Sequence[str], *also):
    """The subscriber is subscribed to one of `lists` (a correlated EXISTS), with the
    subscriptions also meeting `also`, if given."""
    return (
        select(Subscription.subscriber_id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(
            Subscription.subscriber_id == Subscriber.id,
            Subscription.status == SUBSCRIBED,
            MailingList.slug.in_(list(lists)),
            *also,
        )
        .exists()
    )


def active_on_lists(lists: Sequence[str], *also):
    """Active subscribers on any of `lists` (with subscriptions also meeting `also`)."""
    return and_(Subscriber.status == ACTIVE, on_lists(lists, *also))


def joined_by_filter(lists: Sequence[str], cutoff: dt.datetime):
    """Subscribers who had joined by `cutoff`: created and confirmed by then, and on one of
    `lists` since then (a subscriber added to a list later joined that list later)."""
    return and_(
        Subscriber.created_at <= cutoff,
        or_(Subscriber.confirmed_at.is_(None), Subscriber.confirmed_at <= cutoff),
        on_lists(lists, Subscription.created_at <= cutoff),
    )


def not_planned(campaign_id: int):
    """Subscribers with no row yet in the campaign."""
    return ~exists().where(
        Delivery.campaign_id == campaign_id, Delivery.subscriber_id == Subscriber.id
    )


def iter_audience(
    session: Session,
    lists: Sequence[str],
    *,
    campaign_id: int | None = None,
    joined_by: dt.datetime | None = None,
    chunk: int = 1000,
) -> Iterator[AudienceMember]:
    """Active subscribers on any of `lists`, streamed in id order, chunk by chunk.

    With `campaign_id`, subscribers who already have a row in that campaign are left out;
    with `joined_by`, so are those who joined after it (see `joined_by_filter`). Memory stays flat:
    only one chunk of subscribers and their topics is held at a time.
    """
    last_id = 0
    while True:
        query = (
            select(Subscriber.id, Subscriber.email, Subscriber.all_topics)
            .where(active_on_lists(lists), Subscriber.id > last_id)
            .order_by(Subscriber.id)
            .limit(chunk)
        )
        if campaign_id is not None:
            query = query.where(not_planned(campaign_id))
        if joined_by is not None:
            query = query.where(joined_by_filter(lists, joined_by))
        rows = session.execute(query).all()
        if not rows:
            return
        choices = choices_for(session, [(r.id, r.all_topics) for r in rows])
        for row in rows:
            yield AudienceMember(row.id, row.email, choices[row.id])
        last_id = rows[-1].id


def choices_for(
    session: Session, rows: Sequence[tuple[int, bool | None]]
) -> dict[int, TopicChoice]:
    """What each (subscriber id, all_topics) receives: every topic but the ones they stopped,
    or their chosen topics. Two queries for a chunk, whatever its size."""
    chosen = _topics_for(session, SubscriberTopic, [i for i, every in rows if not every])
    stopped = _topics_for(session, ExcludedTopic, [i for i, every in rows if every])
    return {
        i: TopicChoice.every(stopped.get(i, ())) if every else TopicChoice.only(chosen.get(i, ()))
        for i, every in rows
    }


def _topics_for(
    session: Session, table: type[SubscriberTopic] | type[ExcludedTopic], ids: list[int]
) -> dict[int, frozenset[str]]:
    if not ids:
        return {}
    found: dict[int, set[str]] = {}
    query = select(table.subscriber_id, table.topic).where(table.subscriber_id.in_(ids))
    # On the Core connection: ORM-enabled execution of plain columns cost more than the rows.
    for subscriber_id, topic in session.connection().execute(query):
        found.setdefault(subscriber_id, set()).add(topic)
    return {key: frozenset(value) for key, value in found.items()}


def insert_deliveries(connection: Connection, rows: list[dict]) -> None:
    """Insert planned rows (campaign_id, subscriber_id, email, variant, status, last_error)."""
    if not rows:
        return
    now = utcnow()
    for row in rows:
        row.setdefault("attempts", 0)
        row.setdefault("worker_id", "")
        row.setdefault("smtp_reply", "")
        row.setdefault("updated_at", now)
        row.setdefault("next_attempt_at", None)
    connection.execute(insert(Delivery), rows)
