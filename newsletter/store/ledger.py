"""The delivery ledger: every SQL statement about campaigns and deliveries lives here.

A row is planned once per (campaign, subscriber) — a unique constraint makes planning
idempotent — then claimed (status `sending`, lease, worker id) before its SMTP transaction and
marked with its result right after. Results are written in batches with one executemany.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import Dialect
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from newsletter.content.choice import TopicChoice
from newsletter.store.audience import choices_for
from newsletter.store.audience import on_lists
from newsletter.store.engine import rows_affected
from newsletter.store.models import DONE
from newsletter.store.models import FAILED
from newsletter.store.models import PLANNED
from newsletter.store.models import QUEUED
from newsletter.store.models import RETRY
from newsletter.store.models import SENDING
from newsletter.store.models import SENT
from newsletter.store.models import Campaign
from newsletter.store.models import Delivery
from newsletter.store.models import Subscriber
from newsletter.store.models import UTCDateTime
from newsletter.store.models import utcnow

OPEN_STATUSES = (QUEUED, SENDING, RETRY)


@dataclass(frozen=True)
class Claimed:
    """A claimed ledger row with the subscriber's current state."""

    delivery_id: int
    subscriber_id: int | None
    email: str
    variant: str
    attempts: int
    status: str | None  # the subscriber's status now (None if they were deleted)
    name: str
    topics: TopicChoice
    on_list: bool  # still subscribed to one of the campaign's lists


@dataclass(frozen=True)
class Bounce:
    """A hard bounce seen at send time (the server refused the address)."""

    subscriber_id: int
    email: str
    message_id: str
    reply: str


@dataclass(frozen=True)
class Result:
    """The outcome of one claimed row, to be written back."""

    delivery_id: int
    status: str
    reply: str = ""
    error: str = ""
    next_attempt_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    throttled: bool = False  # the provider asked us to slow down: the attempt is refunded
    bounce: Bounce | None = None


def get_or_create_campaign(
    session: Session, month: str, subject: str, lists: Sequence[str], status: str = PLANNED
) -> Campaign:
    """The campaign of a month, created on first use (with `status`)."""
    campaign = session.scalar(select(Campaign).where(Campaign.month == month))
    if campaign is None:
        campaign = Campaign(month=month, subject=subject, status=status, lists=",".join(lists))
        session.add(campaign)
        session.flush()
    return campaign


def find_campaign(session: Session, month: str) -> Campaign | None:
    """The campaign of a month, if one was planned."""
    return session.scalar(select(Campaign).where(Campaign.month == month))


def campaign_states(session: Session) -> dict[str, tuple[str, dict[str, int]]]:
    """Each planned month's campaign status and its rows per status, in one query (the
    same one `store.quick.campaign_states` sends through the stdlib for `issues list`)."""
    query = (
        select(Campaign.month, Campaign.status, Delivery.status, func.count(Delivery.id))
        .select_from(Campaign)
        .outerjoin(Delivery, Delivery.campaign_id == Campaign.id)
        .group_by(Campaign.month, Campaign.status, Delivery.status)
    )
    states: dict[str, tuple[str, dict[str, int]]] = {}
    for month, status, row_status, count in session.execute(query):
        _, counts = states.setdefault(month, (status, {}))
        if row_status is not None:
            counts[row_status] = int(count)
    return states


def _claimable(campaign_id: int, now: dt.datetime):
    return and_(
        Delivery.campaign_id == campaign_id,
        or_(
            Delivery.status == QUEUED,
            and_(Delivery.status == RETRY, Delivery.next_attempt_at <= now),
            and_(Delivery.status == SENDING, Delivery.lease_until < now),
        ),
    )


def claim_batch(
    session: Session,
    campaign_id: int,
    worker_id: str,
    limit: int,
    lease: dt.timedelta,
    lists: Sequence[str],
    now: dt.datetime | None = None,
) -> list[Claimed]:
    """Mark up to `limit` due rows as `sending` for this worker and return them.

    On PostgreSQL the candidate rows are locked with SKIP LOCKED, so several workers never
    claim the same row; SQLite serializes writers, which gives the same guarantee.
    """
    return claimed_rows(
        session, claim_ids(session, campaign_id, worker_id, limit, lease, now), lists
    )


def claim_ids(
    session: Session,
    campaign_id: int,
    worker_id: str,
    limit: int,
    lease: dt.timedelta,
    now: dt.datetime | None = None,
    exclude: Collection[int] = (),
) -> list[int]:
    """`claim_batch`'s write alone: the ids of the rows it marked `sending`. The runner commits
    it before reading the rows (`claimed_rows`), so SQLite's write lock is held for one UPDATE
    and not while 500 rows are read: the acceptances committed meanwhile need that lock.

    `exclude`: rows the caller holds and is still sending (it claims its next batch before
    the last is done), which must not come back to it if their lease ran out meanwhile."""
    now = now or utcnow()
    claimable = _claimable(campaign_id, now)
    if exclude:
        claimable = and_(claimable, Delivery.id.not_in(list(exclude)))
    candidates = (
        select(Delivery.id)
        .where(claimable)
        .order_by(Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    # On the Core connection: ORM-enabled DML cost more per claim than the UPDATE (no ORM
    # object is loaded here, so the session has nothing to synchronize).
    return list(
        session.connection()
        .execute(
            update(Delivery)
            .where(Delivery.id.in_(candidates.scalar_subquery()))
            .values(
                status=SENDING,
                lease_until=now + lease,
                worker_id=worker_id,
                attempts=Delivery.attempts + 1,
                updated_at=now,
            )
            .returning(Delivery.id)
        )
        .scalars()
        .all()
    )


def claimed_rows(
    session: Session, claimed_ids: Sequence[int], lists: Sequence[str]
) -> list[Claimed]:
    """What the sender needs of the claimed rows `claimed_ids`, in id order."""
    if not claimed_ids:
        return []
    query = (
        select(
            Delivery.id,
            Delivery.subscriber_id,
            Delivery.email,
            Delivery.variant,
            Delivery.attempts,
            Subscriber.status,
            Subscriber.name,
            Subscriber.all_topics,
            on_lists(lists).label("on_list"),
        )
        .outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id.in_(list(claimed_ids)))
        .order_by(Delivery.id)
    )
    rows = session.connection().execute(query).all()  # Core: see `audience._topics_for`
    choices = choices_for(
        session, [(r.subscriber_id, r.all_topics) for r in rows if r.subscriber_id]
    )
    return [
        Claimed(
            delivery_id=r.id,
            subscriber_id=r.subscriber_id,
            email=r.email,
            variant=r.variant,
            attempts=r.attempts,
            status=r.status,
            name=r.name or "",
            topics=choices.get(r.subscriber_id, TopicChoice.only(())),
            on_list=bool(r.on_list),
        )
        for r in rows
    ]


# Built once: the recorder runs it once per group of accepted messages (sending.durable),
# where building and caching a new statement each time cost more than the UPDATE itself.
_RECORD = (
    update(Delivery)
    .where(
        Delivery.id == bindparam("b_id"),
        Delivery.worker_id == bindparam("b_worker"),
        Delivery.status == SENDING,
    )
    .values(attempts=Delivery.attempts - bindparam("refund"))
    .execution_options(synchronize_session=False)
)


def record_results(session: Session, worker_id: str, results: Iterable[Result]) -> int:
    """Write results with one executemany; only rows this worker still holds are changed."""
    return record_results_on(session.connection(), worker_id, results)


def record_results_on(connection: Connection, worker_id: str, results: Iterable[Result]) -> int:
    """`record_results` on a Core connection (the caller commits)."""
    params = [
        {
            "b_id": r.delivery_id,
            "b_worker": worker_id,
            "status": r.status,
            "smtp_reply": r.reply[:2000],
            "last_error": r.error[:2000],
            "next_attempt_at": r.next_attempt_at,
            "sent_at": r.sent_at,
            "lease_until": None,
            "updated_at": utcnow(),
            "refund": 1 if r.throttled else 0,
        }
        for r in results
    ]
    if not params:
        return 0
    if len(params) == 1:
        connection.execute(_RECORD, params[0])  # executemany of one costs more in SQLAlchemy
    else:
        connection.execute(_RECORD, params)
    return len(params)


class AcceptanceWriter:
    """`record_results_on` for the hot path: one prepared UPDATE on the driver's own cursor.

    The recorder (`sending.durable`) commits every accepted message before its connection's
    next one, so this runs once per group of one to a few messages; SQLAlchemy's execute cost
    ~0.2 ms of Python each time, several times the UPDATE. The SQL is written once per dialect
    here, and datetimes go through the column type's own bind processor, so the stored values
    are exactly what the ORM writes.
    """

    def __init__(self, dialect: Dialect) -> None:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        table = Delivery.__tablename__
        self.sql = (
            f"UPDATE {table} SET status = {mark}, smtp_reply = {mark}, last_error = {mark}, "
            f"next_attempt_at = {mark}, sent_at = {mark}, lease_until = NULL, "
            f"updated_at = {mark}, attempts = attempts - {mark} "
            f"WHERE id = {mark} AND worker_id = {mark} AND status = '{SENDING}'"
        )
        processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        self._time: Callable[[dt.datetime | None], Any] = processor or (lambda value: value)

    def write(self, cursor: Any, worker_id: str, results: Sequence[Result]) -> None:
        """Run the UPDATE for `results` on a DBAPI cursor (the caller commits)."""
        time = self._time
        now = time(utcnow())
        cursor.executemany(
            self.sql,
            [
                (
                    r.status,
                    r.reply[:2000],
                    r.error[:2000],
                    time(r.next_attempt_at),
                    time(r.sent_at),
                    now,
                    1 if r.throttled else 0,
                    r.delivery_id,
                    worker_id,
                )
                for r in results
            ],
        )


def release(session: Session, worker_id: str, delivery_ids: Sequence[int]) -> int:
    """Give claimed rows that were not attempted back to the queue (a clean stop)."""
    if not delivery_ids:
        return 0
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.id.in_(list(delivery_ids)),
            Delivery.worker_id == worker_id,
            Delivery.status == SENDING,
        )
        .values(status=QUEUED, lease_until=None, attempts=Delivery.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    return rows_affected(result)


def status_counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Number of rows per status."""
    query = (
        select(Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.status)
    )
    return {status: count for status, count in session.execute(query)}


def next_due(session: Session, campaign_id: int) -> dt.datetime | None:
    """When the next open row (retry or leased) becomes claimable; None if nothing is open."""
    retry_at = session.scalar(
        select(func.min(Delivery.next_attempt_at)).where(
            Delivery.campaign_id == campaign_id, Delivery.status == RETRY
        )
    )
    lease_at = session.scalar(
        select(func.min(Delivery.lease_until)).where(
            Delivery.campaign_id == campaign_id, Delivery.status == SENDING
        )
    )
    if session.scalar(
        select(func.count()).where(Delivery.campaign_id == campaign_id, Delivery.status == QUEUED)
    ):
        return utcnow()
    candidates = [t for t in (retry_at, lease_at) if t is not None]
    return min(candidates) if candidates else None


@dataclass(frozen=True)
class Held:
    """Rows of a campaign claimed by one sender whose lease has not run out."""

    worker_id: str  # host:pid of the sender that claimed them
    rows: int
    claimed_at: dt.datetime  # the earliest claim
    lease_until: dt.datetime  # the latest lease end


@dataclass(frozen=True)
class OpenRows:
    """What a run that found nothing to claim is waiting for."""

    retries: int = 0  # rows waiting to be retried
    first_retry: dt.datetime | None = None
    last_retry: dt.datetime | None = None
    held: tuple[Held, ...] = ()  # rows claimed by other senders, by sender

    @property
    def held_rows(self) -> int:
        return sum(h.rows for h in self.held)


def open_rows(
    session: Session, campaign_id: int, worker_id: str, now: dt.datetime | None = None
) -> OpenRows:
    """Retries not yet due, and rows whose lease another sender still holds."""
    now = now or utcnow()
    retries, first, last = session.execute(
        select(
            func.count(), func.min(Delivery.next_attempt_at), func.max(Delivery.next_attempt_at)
        ).where(
            Delivery.campaign_id == campaign_id,
            Delivery.status == RETRY,
            Delivery.next_attempt_at > now,
        )
    ).one()
    held = session.execute(
        select(
            Delivery.worker_id,
            func.count(),
            func.min(Delivery.updated_at),
            func.max(Delivery.lease_until),
        )
        .where(
            Delivery.campaign_id == campaign_id,
            Delivery.status == SENDING,
            Delivery.lease_until >= now,
            Delivery.worker_id != worker_id,
        )
        .group_by(Delivery.worker_id)
        .order_by(Delivery.worker_id)
    ).all()
    # min() and max() keep their column's type: aware UTC datetimes (lease_until is set here).
    return OpenRows(
        retries=int(retries or 0),
        first_retry=first,
        last_retry=last,
        held=tuple(Held(w, int(n), c, u or now) for w, n, c, u in held),
    )


def take_over(
    session: Session, campaign_id: int, worker_ids: Sequence[str], now: dt.datetime | None = None
) -> int:
    """End the leases of rows claimed by `worker_ids` (senders known to be gone), so that the
    next claim takes them at once instead of after their lease."""
    if not worker_ids:
        return 0
    now = now or utcnow()
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.campaign_id == campaign_id,
            Delivery.status == SENDING,
            Delivery.worker_id.in_(list(worker_ids)),
        )
        .values(lease_until=now - dt.timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )
    return rows_affected(result)


def finish_if_complete(session: Session, campaign: Campaign) -> bool:
    """Mark the campaign done when no row is queued, sending or waiting to retry."""
    open_rows = session.scalar(
        select(func.count()).where(
            Delivery.campaign_id == campaign.id, Delivery.status.in_(OPEN_STATUSES)
        )
    )
    if open_rows:
        return False
    if campaign.status != DONE:
        campaign.status = DONE
        campaign.finished_at = utcnow()
    return True


def requeue_failed(session: Session, campaign_id: int) -> int:
    """Put failed rows back in the queue (after fixing the cause)."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.campaign_id == campaign_id, Delivery.status == FAILED)
        .values(status=QUEUED, attempts=0, next_attempt_at=None, last_error="", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rows_affected(result)


def not_delivered(
    session: Session, campaign_id: int, limit: int = 200, status: str | None = None
) -> list[Delivery]:
    """Rows that did not end as sent (skipped, failed, still open), for reports; with
    `status`, only the rows in that status (`sent` included)."""
    wanted = Delivery.status == status if status else Delivery.status != SENT
    return list(
        session.scalars(
            select(Delivery)
            .where(Delivery.campaign_id == campaign_id, wanted)
            .order_by(Delivery.status, Delivery.email)
            .limit(limit)
        )
    )


def sent_since(session: Session, since: dt.datetime) -> int:
    """Messages this installation sent since `since`, any campaign (for provider quotas)."""
    count = session.scalar(
        select(func.count()).where(Delivery.status == SENT, Delivery.sent_at >= since)
    )
    return int(count or 0)
