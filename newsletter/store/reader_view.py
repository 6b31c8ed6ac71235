"""A reader's record as the preference page shows it, read in one Core statement.

The page behind the link in every digest runs hundreds of times a second during a send.
Loading the ORM `Subscriber` with its topics, stopped topics and lists was its largest cost
(~0.7 ms of CPU; this statement, built once, ~0.1 ms). `ReaderView` has `Subscriber`'s names
for what the page reads; the pages that change the record load the ORM object as before. Part
of the subscriber service: `reader_for_token` checks the link as
`registrar.subscriber_for_token` does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from newsletter.content.choice import TopicChoice
from newsletter.store.models import SUBSCRIBED
from newsletter.store.models import ExcludedTopic
from newsletter.store.models import MailingList
from newsletter.store.models import Subscriber
from newsletter.store.models import SubscriberTopic
from newsletter.store.models import Subscription
from newsletter.store.registrar import check_found
from newsletter.store.registrar import known_id
from newsletter.store.registrar import read_link
from newsletter.tokens import Signer

_SEPARATOR = "\x1f"  # between slugs in one aggregated column (no slug holds it)


@dataclasses.dataclass(frozen=True)
class ReaderView:
    """What the preference page shows of a subscriber (read-only, no session)."""

    id: int
    email: str
    name: str
    status: str
    all_topics: bool
    frequency: str
    paused_until: dt.datetime | None
    chosen: frozenset[str]  # their `subscriber_topics` rows
    stopped: frozenset[str]  # their `subscriber_excluded_topics` rows
    lists: tuple[str, ...]  # the lists they are subscribed to, sorted

    @property
    def topic_slugs(self) -> frozenset[str] | None:
        """As `Subscriber.topic_slugs`."""
        return None if self.all_topics else self.chosen

    @property
    def excluded_slugs(self) -> frozenset[str]:
        """As `Subscriber.excluded_slugs`."""
        return self.stopped if self.all_topics else frozenset()

    @property
    def topic_choice(self) -> TopicChoice:
        """As `Subscriber.topic_choice`."""
        if self.all_topics:
            return TopicChoice.every(self.excluded_slugs)
        return TopicChoice.only(self.chosen)


def _slugs(column: InstrumentedAttribute[str], where: ColumnElement[bool]):
    return select(func.aggregate_strings(column, _SEPARATOR)).where(where).scalar_subquery()


# Built once: building a statement costs more than running it.
_READ = select(
    Subscriber.id,
    Subscriber.email,
    Subscriber.name,
    Subscriber.status,
    Subscriber.all_topics,
    Subscriber.frequency,
    Subscriber.paused_until,
    _slugs(SubscriberTopic.topic, SubscriberTopic.subscriber_id == Subscriber.id).label("chosen"),
    _slugs(ExcludedTopic.topic, ExcludedTopic.subscriber_id == Subscriber.id).label("stopped"),
    select(func.aggregate_strings(MailingList.slug, _SEPARATOR))
    .select_from(Subscription)
    .join(MailingList, MailingList.id == Subscription.list_id)
    .where(Subscription.subscriber_id == Subscriber.id, Subscription.status == SUBSCRIBED)
    .scalar_subquery()
    .label("lists"),
).where(Subscriber.id == bindparam("subscriber_id"))


def _split(value: str | None) -> frozenset[str]:
    return frozenset(value.split(_SEPARATOR)) if value else frozenset()


def read_reader(connection: Connection, subscriber_id: int) -> ReaderView | None:
    """The subscriber `subscriber_id` with their topics and lists, or None."""
    row = connection.execute(_READ, {"subscriber_id": subscriber_id}).one_or_none()
    if row is None:
        return None
    return ReaderView(
        id=row.id,
        email=row.email,
        name=row.name,
        status=row.status,
        all_topics=row.all_topics,
        frequency=row.frequency,
        paused_until=row.paused_until,
        chosen=_split(row.chosen),
        stopped=_split(row.stopped),
        lists=tuple(sorted(_split(row.lists))),
    )


def reader_for_token(
    connection: Connection, signer: Signer, purpose: str, token: str
) -> ReaderView:
    """The reader a signed token for `purpose` names: `registrar.subscriber_for_token`'s
    checks and `LinkProblem`s, read with `read_reader`."""
    subscriber_id, digest = read_link(signer, purpose, token)
    reader = read_reader(connection, subscriber_id) if known_id(subscriber_id) else None
    check_found(None if reader is None else reader.email, subscriber_id, digest)
    assert reader is not None
    return reader
