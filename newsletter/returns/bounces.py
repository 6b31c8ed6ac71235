"""The envelope sender (with optional VERP), and bounce processing with a policy.

Envelope sender: `[delivery] envelope_from`, else the From address. With `[bounces] verp`,
each message gets its own, `<verp_local>+<token>@<verp_domain>`, where the token is the
subscriber id and a short hash of their address, signed (itsdangerous, purpose "bounce"), so a
bounce names its subscriber even when the report itself does not (forwarding, odd formats).

Bounce processing (`scan`): read a Maildir or mbox of bounce reports, find the failed
recipients with flufl.bounce (RFC 3464 DSNs and many older formats) and our own reading of the
DSN fields (status code, diagnostic, delayed vs failed), identify the subscriber by VERP token
or by address, record one `Bounce` row per address and report, then apply the policy:

- `hard_threshold` hard bounces (Action: failed with a 5.x.x status, or a permanent failure in
  a non-DSN report) make the subscriber `bounced`;
- `soft_threshold` soft bounces (Action: delayed, or failed with a 4.x.x status) received
  within `soft_window_days` do too. Reports about the same original message (found by its
  Message-ID in the returned headers) count once, so "delayed" warnings followed by the final
  report for one message are one soft bounce.

Only active and pending subscribers change; the sender mails active subscribers only. A report
is recorded once, keyed on its own Message-ID, so scanning a mailbox again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.errors import LinkProblem
from newsletter.message.envelope import VERP_HASH_LENGTH
from newsletter.returns.dsn import Failure
from newsletter.returns.dsn import ParsedBounce
from newsletter.returns.dsn import parse_bounce
from newsletter.returns.mailbox import MailItem
from newsletter.returns.mailbox import finish_scan
from newsletter.returns.mailbox import read_mailbox
from newsletter.store.bounces import HARD
from newsletter.store.bounces import SOFT
from newsletter.store.bounces import apply_policy
from newsletter.store.bounces import record_bounce
from newsletter.store.engine import session_factory
from newsletter.store.models import Bounce
from newsletter.store.models import Subscriber
from newsletter.store.models import utcnow
from newsletter.store.registrar import subscriber_by_reference
from newsletter.store.subscribers import get_subscriber

# --- envelope sender and VERP ------------------------------------------------------------


# --- reading one bounce report (pure) ----------------------------------------------------


# --- recording and policy ----------------------------------------------------------------


# --- scanning a mailbox ------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One bounce recorded by a scan."""

    key: str  # the message in the mailbox
    email: str
    kind: str
    status: str
    subscriber_id: int | None
    by: str  # "verp" or "address"


@dataclass
class ScanReport:
    """What a scan did (or, with `dry_run`, would do)."""

    path: str
    dry_run: bool = False
    messages: int = 0
    recorded: list[Recorded] = field(default_factory=list)
    duplicates: int = 0  # reports recorded by an earlier scan
    unknown: list[tuple[str, str]] = field(default_factory=list)  # (key, address): no subscriber
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    bounced: list[str] = field(default_factory=list)  # subscribers now `bounced`

    @property
    def hard(self) -> int:
        """Hard bounces recorded."""
        return sum(1 for r in self.recorded if r.kind == HARD)

    @property
    def soft(self) -> int:
        """Soft bounces recorded."""
        return sum(1 for r in self.recorded if r.kind == SOFT)


def _verp_subscriber(session: Session, parsed: ParsedBounce) -> tuple[Subscriber | None, str]:
    if parsed.verp is None:
        return None, ""
    subscriber_id, digest = parsed.verp
    try:
        # The same check as a link's token: the id, and the hash of the current address.
        subscriber = subscriber_by_reference(
            session, subscriber_id, digest, hash_length=VERP_HASH_LENGTH
        )
    except LinkProblem:
        # Deleted, or the id now belongs to someone else: fall back to the addresses.
        return None, f"VERP token for subscriber {subscriber_id} no longer matches"
    return subscriber, ""


def _worst(failures: tuple[Failure, ...]) -> Failure:
    return next((f for f in failures if f.kind == HARD), failures[0])


def _record_message(
    session: Session, item: MailItem, parsed: ParsedBounce, report: ScanReport
) -> list[Subscriber]:
    """Record the bounces of one report; the subscribers they belong to."""
    received = parsed.received_at or utcnow()
    common: dict[str, Any] = {
        "message_id": parsed.message_id,
        "received_at": received,
        "original_message_id": parsed.original_message_id,
    }
    subscriber, note = _verp_subscriber(session, parsed)
    if subscriber is not None:
        # One bounce for the subscriber the VERP token names, whatever address is reported.
        failure = _worst(parsed.failures)
        others = sorted({f.address for f in parsed.failures if f.address} - {subscriber.email})
        diagnostic = failure.diagnostic
        if others and others != [subscriber.email_key]:
            diagnostic = f"{diagnostic} (reported for {', '.join(others)})".strip()
        record_bounce(
            session,
            email_address=subscriber.email,
            kind=failure.kind,
            subscriber_id=subscriber.id,
            status_code=failure.status,
            diagnostic=diagnostic,
            source="verp",
            **common,
        )
        report.recorded.append(
            Recorded(
                item.key, subscriber.email, failure.kind, failure.status, subscriber.id, "verp"
            )
        )
        return [subscriber]
    found: list[Subscriber] = []
    for failure in parsed.failures:
        if not failure.address:
            reason = note or "the report names no recipient and carries no VERP token"
            report.ignored.append((item.key, reason))
            continue
        owner = get_subscriber(session, failure.address)
        if owner is None:
            report.unknown.append((item.key, failure.address))
        record_bounce(
            session,
            email_address=owner.email if owner else failure.address,
            kind=failure.kind,
            subscriber_id=owner.id if owner else None,
            status_code=failure.status,
            diagnostic=failure.diagnostic,
            source="dsn",
            **common,
        )
        report.recorded.append(
            Recorded(
                item.key,
                owner.email if owner else failure.address,
                failure.kind,
                failure.status,
                owner.id if owner else None,
                "address",
            )
        )
        if owner is not None:
            found.append(owner)
    return found


def _already_recorded(session: Session, message_id: str) -> bool:
    return (
        session.scalar(select(Bounce.id).where(Bounce.message_id == message_id).limit(1))
        is not None
    )


def scan(
    path: str | os.PathLike,
    settings: Settings,
    engine: Engine,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    mark_processed: bool = True,
) -> ScanReport:
    """Record the bounces in a Maildir or mbox and apply the bounce policy (module docstring).

    Messages that are not bounce reports are counted and left alone. With `dry_run`, nothing
    is written. Otherwise Maildir messages whose bounces are recorded are marked seen (moved
    to cur/ with the S flag) when `mark_processed`; an mbox is never rewritten.
    """
    report = ScanReport(str(path), dry_run=dry_run)
    touched: dict[int, Subscriber] = {}
    processed: list[MailItem] = []
    with session_factory(engine)() as session:
        for item in read_mailbox(path):
            report.messages += 1
            try:
                parsed = parse_bounce(item.data, settings)
            except Exception as error:  # one mangled message must not stop the scan
                report.ignored.append((item.key, f"cannot read it ({error.__class__.__name__})"))
                continue
            if not parsed.failures:
                report.ignored.append((item.key, "not a bounce report (no failed recipient)"))
                continue
            processed.append(item)
            if _already_recorded(session, parsed.message_id):
                report.duplicates += 1
                continue
            for subscriber in _record_message(session, item, parsed, report):
                touched[subscriber.id] = subscriber
        for subscriber in touched.values():
            if apply_policy(session, settings, subscriber, now):
                report.bounced.append(subscriber.email)
        finish_scan(session, processed, dry_run=dry_run, mark=mark_processed)
    return report
