"""Selections of subscribers: the filters, sorting and counts behind `subscribers list`, the
admin's subscribers page, its CSV export and its bulk changes (re-exported by
`store.subscribers`, the subscriber service)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.errors import SubscriberError
from newsletter.store.models import SUBSCRIBED
from newsletter.store.models import SUBSCRIBER_STATUSES
from newsletter.store.models import ExcludedTopic
from newsletter.store.models import MailingList
from newsletter.store.models import Subscriber
from newsletter.store.models import SubscriberTopic
from newsletter.store.models import Subscription


def check_status(status: str) -> str:
    """`status` if it is a subscriber status, else `SubscriberError` naming the known ones."""
    if status not in SUBSCRIBER_STATUSES:
        raise SubscriberError(
            f"unknown status {status!r}; expected one of {', '.join(SUBSCRIBER_STATUSES)}"
        )
    return status


# How a selection may be sorted: a key of the admin's subscribers page -> its columns.
SORTS = {
    "id": (Subscriber.id,),
    "email": (Subscriber.email_key, Subscriber.id),
    "name": (Subscriber.name, Subscriber.id),
    "status": (Subscriber.status, Subscriber.id),
    "created": (Subscriber.created_at, Subscriber.id),
}


def subscriber_filter(
    *,
    status: str | None = None,
    list_slug: str | None = None,
    topic: str | None = None,
    search: str | None = None,
) -> list[Any]:
    """The WHERE conditions of a selection: status, list (subscribed only), topic slug
    (all-topics subscribers match every topic they did not stop) and a case-insensitive
    address/name search."""
    conditions: list[Any] = []
    if status is not None:
        conditions.append(Subscriber.status == check_status(status))
    if list_slug is not None:
        conditions.append(
            exists()
            .where(Subscription.subscriber_id == Subscriber.id)
            .where(Subscription.status == SUBSCRIBED)
            .where(Subscription.list_id == MailingList.id)
            .where(MailingList.slug == list_slug)
        )
    if topic is not None:
        stopped = exists().where(
            ExcludedTopic.subscriber_id == Subscriber.id, ExcludedTopic.topic == topic
        )
        conditions.append(
            or_(
                and_(Subscriber.all_topics.is_(True), ~stopped),
                exists()
                .where(SubscriberTopic.subscriber_id == Subscriber.id)
                .where(SubscriberTopic.topic == topic),
            )
        )
    if search:
        conditions.append(
            or_(
                Subscriber.email.icontains(search, autoescape=True),
                Subscriber.name.icontains(search, autoescape=True),
            )
        )
    return conditions


def query_subscribers(
    session: Session,
    *,
    status: str | None = None,
    list_slug: str | None = None,
    topic: str | None = None,
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    sort: str = "id",
    descending: bool = False,
) -> list[Subscriber]:
    """Subscribers filtered as `subscriber_filter` says, ordered by a key of `SORTS`
    (id order by default)."""
    columns = SORTS.get(sort)
    if columns is None:
        raise SubscriberError(f"unknown sort {sort[:40]!r}; known: {', '.join(SORTS)}")
    order = [c.desc() for c in columns] if descending else list(columns)
    query = select(Subscriber).order_by(*order)
    query = query.where(
        *subscriber_filter(status=status, list_slug=list_slug, topic=topic, search=search)
    )
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def count_matching(
    session: Session,
    *,
    status: str | None = None,
    list_slug: str | None = None,
    topic: str | None = None,
    search: str | None = None,
) -> int:
    """How many subscribers `query_subscribers` would return with these filters and no limit."""
    conditions = subscriber_filter(status=status, list_slug=list_slug, topic=topic, search=search)
    return session.scalar(select(func.count()).select_from(Subscriber).where(*conditions)) or 0
