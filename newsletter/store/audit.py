"""The audit log: who sent, scheduled, imported, edited or forgot what, and when.

Every shell records through `record` inside the same transaction as the change it describes,
so the log never claims something that was rolled back. Actions are short verbs from
`ACTIONS`; `target` names the month, file or subscriber id acted on (never an address of a
forgotten subscriber: `forget` records the id only).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.store.models import AuditEvent

# The verbs the log knows; a new kind of admin action adds its verb here.
ACTIONS = (
    "send",
    "test-send",
    "schedule",
    "unschedule",
    "import",
    "edit-issue",
    "edit-summary",
    "delete-summary",
    "edit-subscriber",
    "bulk-edit",
    "forget",
    "admin-add",
    "admin-remove",
    "admin-password",
    "add-subscriber",
    "export",
    "resend-confirmation",
    "archive-rebuild",
    "unsubscribe",  # an admin's (CLI) unsubscribe: counted for no issue in its report
)

MAX_TARGET = 500


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One row of the log as the admin pages and the API show it."""

    at: dt.datetime
    actor: str
    action: str
    target: str
    detail: str


def record(session: Session, actor: str, action: str, target: str = "", detail: str = "") -> None:
    """Add one event to the log in `session`'s transaction (the caller commits)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; known: {', '.join(ACTIONS)}")
    session.add(
        AuditEvent(
            actor=actor[:200] or "unknown",
            action=action,
            target=target[:MAX_TARGET],
            detail=detail,
        )
    )


def recent(
    session: Session, *, limit: int = 100, offset: int = 0, action: str | None = None
) -> tuple[list[AuditEntry], int]:
    """The newest events first (optionally of one action), and how many there are in all."""
    query = select(AuditEvent)
    count = select(func.count()).select_from(AuditEvent)
    if action:
        query = query.where(AuditEvent.action == action)
        count = count.where(AuditEvent.action == action)
    rows = session.scalars(
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit).offset(offset)
    )
    entries = [AuditEntry(r.at, r.actor, r.action, r.target, r.detail) for r in rows]
    return entries, session.scalar(count) or 0
