"""The subscriber service, pauses: pause and resume, and what a pause does to the ledger and to
later round-ups (`store.registrar` re-exports `pause`, `resume` and `paused_until`).

A pause is decided twice. At planning, a paused reader gets no row (`store.planning`). But a
month may have been planned before the reader paused: their rows still waiting in the queue
(`queued`, or `retry` between two tries) are skipped with the reason `PAUSED` when they pause,
so nothing goes out during the pause. A row being sent right now (`sending`, claimed by a
worker) is left alone: its SMTP transaction may already be under way.

Each pause is kept as a window (`SubscriberPause`: started, ended), its end moved to the
moment they resume early. `Subscriber.paused_until` only says whether they are paused now and
is cleared by `resume`; the windows stay, so a quarterly round-up does not fill in a month
planned inside one (`planned_during_pause`): a reader who paused chose not to get it.

Functions take a `Session` and never commit.
"""

from __future__ import annotations

import datetime as dt
from calendar import monthrange
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement
from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from newsletter.errors import InvalidPreference
from newsletter.errors import SubscriberError
from newsletter.store.engine import rows_affected
from newsletter.store.models import ACTIVE
from newsletter.store.models import QUEUED
from newsletter.store.models import RETRY
from newsletter.store.models import SKIPPED
from newsletter.store.models import Delivery
from newsletter.store.models import Subscriber
from newsletter.store.models import SubscriberPause
from newsletter.store.models import utcnow

if TYPE_CHECKING:
    from newsletter.store.reader_view import ReaderView

# `last_error` of a row skipped because its reader paused (counted as skipped in reports).
PAUSED = "paused"
# Rows not claimed by any sender: they can still be called off.
WAITING = (QUEUED, RETRY)
MAX_PAUSE_MONTHS = 6


def _add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """The same day `months` later (the month's last day when it is shorter)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


def pause(session: Session, subscriber: Subscriber, months: int, now: dt.datetime) -> dt.datetime:
    """Pause the digest for 1–6 months from `now`: they stay active and planning leaves them
    out until `paused_until` passes (it resumes by itself); their rows still waiting in the
    queue of a campaign planned before are skipped (`PAUSED`, `skip_waiting_rows`). The moment it
    resumes; `SubscriberError` for another number of months or someone not subscribed."""
    if isinstance(months, bool) or not isinstance(months, int):
        raise InvalidPreference("months", "the pause must be a whole number of months")
    if not 1 <= months <= MAX_PAUSE_MONTHS:
        raise InvalidPreference("months", f"a pause lasts 1 to {MAX_PAUSE_MONTHS} months")
    if subscriber.status != ACTIVE:
        raise SubscriberError(f"{subscriber.email} is {subscriber.status}: nothing to pause")
    until = _add_months(now, months)
    subscriber.paused_until = until
    session.flush()
    start_pause(session, subscriber, until, now)
    return until


def resume(session: Session, subscriber: Subscriber, now: dt.datetime | None = None) -> None:
    """End a pause now (harmless when not paused). The pause's window stays on record, ending
    now: a round-up does not fill in the months planned while they were paused."""
    subscriber.paused_until = None
    session.flush()
    end_pause(session, subscriber, now or utcnow())


def paused_until(subscriber: Subscriber | ReaderView, now: dt.datetime) -> dt.datetime | None:
    """When their pause ends, or None when they are not paused at `now`."""
    until = subscriber.paused_until
    return until if until is not None and until > now else None


def start_pause(
    session: Session, subscriber: Subscriber, until: dt.datetime, now: dt.datetime
) -> int:
    """Record a pause from `now` to `until` and skip their waiting rows; how many were skipped.

    A pause taken while paused replaces the running one: its window ends now, the new one
    starts now.
    """
    end_pause(session, subscriber, now)
    session.add(SubscriberPause(subscriber_id=subscriber.id, started_at=now, ended_at=until))
    session.flush()
    return skip_waiting_rows(session, subscriber.id)


def end_pause(session: Session, subscriber: Subscriber, now: dt.datetime | None = None) -> None:
    """A pause ended early (resume): its window ends `now` (harmless when not paused)."""
    now = now or utcnow()
    session.execute(
        update(SubscriberPause)
        .where(
            SubscriberPause.subscriber_id == subscriber.id,
            SubscriberPause.started_at <= now,
            SubscriberPause.ended_at > now,
        )
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()


def skip_waiting_rows(session: Session, subscriber_id: int) -> int:
    """Skip (reason `PAUSED`) the subscriber's rows that no sender holds, in every campaign;
    how many. One UPDATE that checks the status itself: a row a worker claims a moment before
    is `sending` by then and is not touched (on PostgreSQL the UPDATE waits for the claim's
    lock, then sees the new status)."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber_id, Delivery.status.in_(WAITING))
        .values(
            status=SKIPPED,
            last_error=PAUSED,
            next_attempt_at=None,
            lease_until=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return rows_affected(result)


def planned_during_pause(moment: dt.datetime) -> ColumnElement[bool]:
    """SQL: the subscriber (`Subscriber.id` of the enclosing query) was paused at `moment`
    (a month campaign's plan time)."""
    return exists().where(
        SubscriberPause.subscriber_id == Subscriber.id,
        SubscriberPause.started_at <= moment,
        SubscriberPause.ended_at > moment,
    )


def pause_windows(session: Session, subscriber_id: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """The subscriber's pauses, (started, ended), oldest first."""
    query = (
        select(SubscriberPause.started_at, SubscriberPause.ended_at)
        .where(SubscriberPause.subscriber_id == subscriber_id)
        .order_by(SubscriberPause.started_at, SubscriberPause.id)
    )
    return [(start, end) for start, end in session.execute(query)]
