"""The outbox of transactional emails (migration 0012): the SQL, in one place.

A row is added in the request that asks for an email and committed with it, so the page is
answered only once nothing can be lost. Any process may handle rows (`serve` with several
workers, a CLI flush): a row is claimed with a conditional UPDATE that sets its lease, so two
processes never hold the same row, and a lease left by a crashed process expires.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any
from typing import cast

from sqlalchemy import Engine
from sqlalchemy import Table
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from newsletter.store.models import OUTBOX_FAILED
from newsletter.store.models import OUTBOX_QUEUED
from newsletter.store.models import NoticeOutboxRow
from newsletter.store.models import utcnow

MAIL = "mail"  # a composed email, ready to send
TABLE = cast(Table, NoticeOutboxRow.__table__)


def add(session: Session, kind: str, payload: Mapping[str, Any]) -> None:
    """Queue `kind` with its inputs, in the caller's transaction."""
    now = utcnow()
    session.execute(
        insert(TABLE).values(
            kind=kind,
            status=OUTBOX_QUEUED,
            payload=json.dumps(dict(payload)),
            recipient="",
            attempts=0,
            not_before=now,
            created_at=now,
            last_error="",
        )
    )


def due_ids(engine: Engine, now: dt.datetime, limit: int = 50) -> list[int]:
    """Rows ready to handle now: queued, due, and not leased (or their lease expired)."""
    query = (
        select(TABLE.c.id)
        .where(
            TABLE.c.status == OUTBOX_QUEUED,
            TABLE.c.not_before <= now,
            or_(TABLE.c.lease_until.is_(None), TABLE.c.lease_until < now),
        )
        .order_by(TABLE.c.id)
        .limit(limit)
    )
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


def claim(session: Session, row_id: int, now: dt.datetime, lease: dt.timedelta) -> bool:
    """Take the row for `lease`, in the caller's transaction; False when another process has
    it (or it is gone)."""
    claimed = session.execute(
        update(TABLE)
        .where(
            TABLE.c.id == row_id,
            TABLE.c.status == OUTBOX_QUEUED,
            or_(TABLE.c.lease_until.is_(None), TABLE.c.lease_until < now),
        )
        .values(lease_until=now + lease)
    )
    return claimed.rowcount == 1  # type: ignore[attr-defined]


def read(session: Session, row_id: int) -> tuple[str, dict[str, Any], str, bytes | None, int]:
    """(kind, payload, recipient, message, attempts) of a claimed row."""
    row = session.execute(
        select(
            TABLE.c.kind, TABLE.c.payload, TABLE.c.recipient, TABLE.c.message, TABLE.c.attempts
        ).where(TABLE.c.id == row_id)
    ).one()
    return row.kind, json.loads(row.payload), row.recipient, row.message, row.attempts


def attempts(session: Session, row_id: int) -> int:
    """How many times the row was tried (0 for a row that is gone)."""
    found = session.scalar(select(TABLE.c.attempts).where(TABLE.c.id == row_id))
    return int(found or 0)


def to_mail(session: Session, row_id: int, recipient: str, message: bytes) -> None:
    """The request handled: the row now holds the email to send."""
    session.execute(
        update(TABLE)
        .where(TABLE.c.id == row_id)
        .values(kind=MAIL, payload="{}", recipient=recipient, message=message)
    )


def remove(session: Session, row_id: int) -> None:
    """Sent, or nothing to send: the row goes (no copy of anyone's email is kept)."""
    session.execute(delete(TABLE).where(TABLE.c.id == row_id))


def retry_later(session: Session, row_id: int, when: dt.datetime, error: str) -> None:
    """A temporary failure: try again at `when`."""
    session.execute(
        update(TABLE)
        .where(TABLE.c.id == row_id)
        .values(
            attempts=TABLE.c.attempts + 1,
            not_before=when,
            lease_until=None,
            last_error=error[:2000],
        )
    )


def give_up(session: Session, row_id: int, error: str) -> None:
    """A permanent failure, or too many temporary ones: kept as `failed` for the operator."""
    session.execute(
        update(TABLE)
        .where(TABLE.c.id == row_id)
        .values(
            status=OUTBOX_FAILED,
            attempts=TABLE.c.attempts + 1,
            lease_until=None,
            last_error=error[:2000],
        )
    )


def requeue_failed(session: Session) -> None:
    """Give every failed row another round of tries, due now."""
    session.execute(
        update(TABLE)
        .where(TABLE.c.status == OUTBOX_FAILED)
        .values(status=OUTBOX_QUEUED, attempts=0, not_before=utcnow(), lease_until=None)
    )


def forget(session: Session, email: str, subscriber_id: int) -> None:
    """Delete every row for this address or subscriber (forget me): the outbox is small, and
    the address may be in a row's payload, its recipient or its composed message."""
    wanted = email.lower()
    rows = session.execute(select(TABLE.c.id, TABLE.c.payload, TABLE.c.recipient)).all()
    doomed = []
    for row in rows:
        payload = json.loads(row.payload)
        if (
            row.recipient.lower() == wanted
            or str(payload.get("email", "")).lower() == wanted
            or payload.get("subscriber_id") == subscriber_id
        ):
            doomed.append(row.id)
    if doomed:
        session.execute(delete(TABLE).where(TABLE.c.id.in_(doomed)))


def counts(engine: Engine) -> dict[str, int]:
    """How many rows are queued and failed."""
    query = select(TABLE.c.status, func.count()).group_by(TABLE.c.status)
    with engine.connect() as connection:
        found = {status: count for status, count in connection.execute(query).all()}
    return {OUTBOX_QUEUED: found.get(OUTBOX_QUEUED, 0), OUTBOX_FAILED: found.get(OUTBOX_FAILED, 0)}
