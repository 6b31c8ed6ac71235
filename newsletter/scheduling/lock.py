"""One scheduler per database: a lock row with a heartbeat, in a plain table.

A table rather than a PostgreSQL advisory lock, so the same code works on SQLite. The row is
taken with an INSERT (first scheduler) or a conditional UPDATE that only succeeds when the
holder is ourselves or its heartbeat is older than `stale_after`; both statements are atomic
on SQLite and PostgreSQL, so two schedulers starting together cannot both win.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

from sqlalchemy import Engine
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from newsletter.errors import SchedulerLockedError
from newsletter.store.engine import rows_affected
from newsletter.store.engine import session_factory
from newsletter.store.models import SchedulerLock
from newsletter.store.models import utcnow

LOCK_ID = 1  # the table holds at most this one row
HEARTBEAT_SECONDS = 30.0
STALE_FACTOR = 3  # a lock whose heartbeat is older than 3 heartbeats is taken over


def default_owner() -> str:
    """host:pid:random, so a reused pid on the same host is still a different owner."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class DatabaseLock:
    """Acquire, keep alive and release the scheduler lock of one database."""

    def __init__(
        self,
        engine: Engine,
        owner: str | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        stale_after: float | None = None,
    ) -> None:
        self.engine = engine
        self.owner = owner or default_owner()
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after = dt.timedelta(
            seconds=stale_after if stale_after is not None else STALE_FACTOR * heartbeat_seconds
        )
        self.sessions = session_factory(engine)

    def acquire(self, now: dt.datetime | None = None) -> str:
        """Take the lock; returns what happened ('acquired' or 'took over …').

        Raises `SchedulerLockedError` naming the holder while its heartbeat is fresh.
        """
        now = now or utcnow()
        try:
            with self.sessions.begin() as session:
                session.execute(
                    insert(SchedulerLock).values(
                        id=LOCK_ID, owner=self.owner, heartbeat_at=now, acquired_at=now
                    )
                )
            return "acquired the scheduler lock"
        except IntegrityError:
            pass  # a row exists: ours from before, a stale one, or a live scheduler's
        previous = self.holder()
        with self.sessions.begin() as session:
            taken = rows_affected(
                session.execute(
                    update(SchedulerLock)
                    .where(
                        SchedulerLock.id == LOCK_ID,
                        or_(
                            SchedulerLock.owner == self.owner,
                            SchedulerLock.heartbeat_at < now - self.stale_after,
                        ),
                    )
                    .values(owner=self.owner, heartbeat_at=now, acquired_at=now)
                    .execution_options(synchronize_session=False)
                )
            )
        if taken:
            if previous is None or previous.owner == self.owner:
                return "acquired the scheduler lock"
            age = (now - previous.heartbeat_at).total_seconds()
            return (
                f"took over the scheduler lock from {previous.owner} "
                f"(no heartbeat for {age:.0f}s: it must have died)"
            )
        holder = self.holder()
        raise SchedulerLockedError(self._held_message(holder, now))

    def heartbeat(self, now: dt.datetime | None = None) -> None:
        """Refresh our heartbeat; `SchedulerLockedError` if another scheduler took the lock."""
        now = now or utcnow()
        with self.sessions.begin() as session:
            kept = rows_affected(
                session.execute(
                    update(SchedulerLock)
                    .where(SchedulerLock.id == LOCK_ID, SchedulerLock.owner == self.owner)
                    .values(heartbeat_at=now)
                    .execution_options(synchronize_session=False)
                )
            )
        if not kept:
            holder = self.holder()
            other = holder.owner if holder else "nobody"
            raise SchedulerLockedError(
                f"lost the scheduler lock (now held by {other}): stopping so that two "
                "schedulers never run at once"
            )

    def release(self) -> None:
        """Give the lock up (only if we still hold it)."""
        with self.sessions.begin() as session:
            session.execute(
                delete(SchedulerLock).where(
                    SchedulerLock.id == LOCK_ID, SchedulerLock.owner == self.owner
                )
            )

    def holder(self) -> SchedulerLock | None:
        """The current lock row, if any."""
        with self.sessions() as session:
            return session.scalar(select(SchedulerLock).where(SchedulerLock.id == LOCK_ID))

    def _held_message(self, holder: SchedulerLock | None, now: dt.datetime) -> str:
        if holder is None:  # released between our two statements: let the user retry
            return "the scheduler lock changed hands while starting: try again"
        age = (now - holder.heartbeat_at).total_seconds()
        url = self.engine.url.render_as_string(hide_password=True)
        return (
            f"another scheduler is already running against {url}: {holder.owner}, "
            f"running since {holder.acquired_at:%Y-%m-%d %H:%M:%S} UTC, last heartbeat "
            f"{age:.0f}s ago. Stop it first (only one scheduler may run per database); "
            f"if it died, its lock is taken over once it is {self.stale_after.seconds}s stale."
        )
