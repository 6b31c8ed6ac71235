"""The suppression list: addresses never to be mailed again, kept only as hashes (after a
complaint, a hard bounce, or "forget me"). Part of the subscriber service
(`newsletter.store.subscribers` re-exports it); functions take a `Session` and never commit."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.store.addresses import email_hash
from newsletter.store.models import Suppression

# Keys per IN (...) query: stays under SQLite's bound-parameter limit on old builds (999).
IN_CHUNK = 500


def suppress(session: Session, email: str, reason: str) -> Suppression:
    """Never mail this address again (stored as a hash); suppressing twice keeps the first."""
    digest = email_hash(email)
    row = session.get(Suppression, digest)
    if row is None:
        row = Suppression(email_hash=digest, reason=reason[:50])
        session.add(row)
        session.flush()
    return row


def suppression_reason(session: Session, email: str) -> str | None:
    """Why the address is suppressed ("forgotten", "complaint", a bounce…), or None."""
    row = session.get(Suppression, email_hash(email))
    return None if row is None else row.reason


def lift_suppression(session: Session, email: str) -> None:
    """Remove the address from the suppression list (explicit new consent, confirmed)."""
    row = session.get(Suppression, email_hash(email))
    if row is not None:
        session.delete(row)
        session.flush()


def is_suppressed(session: Session, email: str) -> bool:
    """Whether the address is on the suppression list."""
    return session.get(Suppression, email_hash(email)) is not None


def suppressed_hashes(session: Session, hashes: list[str]) -> set[str]:
    """Which of these address hashes are suppressed (one query per `IN_CHUNK`)."""
    found: set[str] = set()
    for start in range(0, len(hashes), IN_CHUNK):
        chunk = hashes[start : start + IN_CHUNK]
        found.update(
            session.scalars(select(Suppression.email_hash).where(Suppression.email_hash.in_(chunk)))
        )
    return found
