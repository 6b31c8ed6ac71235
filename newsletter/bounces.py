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

import contextlib
import datetime as dt
import email
import email.message
import email.utils
import functools
import hashlib
import os
from dataclasses import dataclass
from dataclasses import field
from email.message import Message

from itsdangerous import BadSignature
from itsdangerous import Signer as ItsSigner
from sqlalchemy import Engine
from sqlalchemy import distinct
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.db import session_factory
from newsletter.errors import ConfigError
from newsletter.inbound import MailItem
from newsletter.inbound import mark_seen
from newsletter.inbound import read_mailbox
from newsletter.models import ACTIVE
from newsletter.models import BOUNCED
from newsletter.models import PENDING
from newsletter.models import Bounce
from newsletter.models import Subscriber
from newsletter.models import utcnow
from newsletter.subscribers import get_subscriber
from newsletter.subscribers import set_status
from newsletter.tokens import BOUNCE
from newsletter.tokens import address_hash

HARD = "hard"
SOFT = "soft"
VERP_HASH_LENGTH = 6  # hex digits of the address hash in a VERP token
# Headers of a bounce that may hold the VERP address it was delivered to.
_VERP_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "X-Envelope-To", "To")


# --- envelope sender and VERP ------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _verp_signer(secret_key: str) -> ItsSigner:
    # Built once per key: the sender calls envelope_sender for every message.
    return ItsSigner(secret_key, salt=f"newsletter.{BOUNCE}")


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def verp_domain(settings: Settings) -> str:
    """The VERP domain: `[bounces] verp_domain`, else that of the envelope or From address."""
    return (
        settings.bounces.verp_domain.strip()
        or _domain_of(settings.delivery.envelope_from)
        or settings.sender_domain()
    )


def verp_token(settings: Settings, subscriber_id: int, email_address: str) -> str:
    """`<id>.<address hash>.<signature>`: short enough for a 64-character local part."""
    payload = f"{subscriber_id}.{address_hash(email_address, VERP_HASH_LENGTH)}"
    return _verp_signer(settings.secret_key()).sign(payload).decode("ascii")


def envelope_sender(settings: Settings, subscriber_id: int, email_address: str) -> str:
    """The envelope sender (Return-Path) for one message: where its bounces go.

    `[delivery] envelope_from`, else `[newsletter] from_email`; with `[bounces] verp = true`,
    `<verp_local>+<token>@<verp_domain>` naming this subscriber. Pure and fast (~10 µs).
    """
    if not settings.bounces.verp:
        return settings.delivery.envelope_from or settings.newsletter.from_email
    local = settings.bounces.verp_local.strip()
    if not local or any(c in local for c in '+@ \t"<>'):
        raise ConfigError(f"bounces.verp_local {local!r}: use a plain local part like 'bounces'")
    return f"{local}+{verp_token(settings, subscriber_id, email_address)}@{verp_domain(settings)}"


def read_verp(address: str, settings: Settings) -> tuple[int, str] | None:
    """(subscriber id, short address hash) from a VERP address, or None.

    Any domain is accepted (the report reached our mailbox, and the token is signed), so
    bounces of mail sent before `verp_domain` changed still count.
    """
    _, bare = email.utils.parseaddr(address)
    local, at, _ = bare.rpartition("@")
    prefix, plus, token = local.partition("+")
    if not at or not plus or prefix.lower() != settings.bounces.verp_local.strip().lower():
        return None
    try:
        payload = _verp_signer(settings.secret_key()).unsign(token).decode("ascii")
    except (BadSignature, UnicodeDecodeError):
        return None
    text_id, _, digest = payload.partition(".")
    if not text_id.isdigit() or len(digest) != VERP_HASH_LENGTH:
        return None
    return int(text_id), digest


def parse_verp(address: str, settings: Settings) -> int | None:
    """The subscriber id in a VERP address made by `envelope_sender`, or None."""
    found = read_verp(address, settings)
    return found[0] if found else None


# --- reading one bounce report (pure) ----------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One failed recipient in a report. `address` is "" when the report names none."""

    address: str
    kind: str  # HARD or SOFT
    status: str = ""  # the DSN status code, e.g. "5.1.1"
    diagnostic: str = ""


@dataclass(frozen=True)
class ParsedBounce:
    """What one message says: its failures, its VERP token, and when it was written."""

    message_id: str
    failures: tuple[Failure, ...]
    verp: tuple[int, str] | None = None
    received_at: dt.datetime | None = None
    original_message_id: str = ""  # Message-ID of the message that bounced, if returned


@dataclass(frozen=True)
class _Block:
    address: str
    action: str
    status: str
    diagnostic: str


def _recipient(block: Message) -> str:
    # Original-Recipient is the address we sent to (when the MTA kept it); Final-Recipient
    # may be the address after forwarding. Both read "rfc822; address".
    for name in ("Original-Recipient", "Final-Recipient", "X-Actual-Recipient"):
        value = str(block.get(name, "")).strip()
        kind, semicolon, address = value.partition(";")
        if semicolon and kind.strip().lower() == "rfc822" and "@" in address:
            return address.strip().strip("<>")
        if not semicolon and value.startswith("<") and value.endswith(">"):
            return value[1:-1]
    return ""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:1000]


def _delivery_status(message: Message) -> tuple[list[_Block], str]:
    """The per-recipient blocks of every message/delivery-status part, and the Arrival-Date."""
    blocks: list[_Block] = []
    arrival = ""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        payload = part.get_payload()
        if not isinstance(payload, list):
            continue
        for index, block in enumerate(payload):
            if index == 0:
                arrival = arrival or str(block.get("Arrival-Date", ""))
            action = str(block.get("Action", "")).strip().lower()
            if not action:
                continue
            blocks.append(
                _Block(
                    _recipient(block),
                    action,
                    str(block.get("Status", "")).strip().split(" ")[0],
                    _one_line(block.get("Diagnostic-Code", "")),
                )
            )
    return blocks, arrival


def _kind(action: str, status: str) -> str | None:
    if action.startswith("delayed"):
        return SOFT
    if action.startswith(("fail", "error")):  # opensmtpd writes "error"
        # Failed after retrying a temporary condition (mailbox full, host down): soft.
        return SOFT if status.startswith("4") else HARD
    return None  # delivered, relayed, expanded: not a failure


def _original_message_id(message: Message) -> str:
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            value = inner.get("Message-ID", "") if isinstance(inner, Message) else ""
        elif kind == "text/rfc822-headers":
            text = part.get_payload(decode=True) or b""
            value = email.message_from_bytes(text).get("Message-ID", "")
        else:
            continue
        if value:
            return str(value).strip()[:500]
    return ""


def _when(message: Message, arrival: str) -> dt.datetime | None:
    for text in (message.get("Date", ""), arrival):
        try:
            when = email.utils.parsedate_to_datetime(str(text))
        except (TypeError, ValueError, IndexError):
            continue
        # "-0000" (time zone unknown) parses as naive: RFC 5322 says it is UTC.
        return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return None


def _verp_of(message: Message, settings: Settings) -> tuple[int, str] | None:
    for name in _VERP_HEADERS:
        for value in message.get_all(name, []):
            for _, address in email.utils.getaddresses([str(value)]):
                found = read_verp(address, settings)
                if found:
                    return found
    return None


def parse_bounce(data: bytes, settings: Settings) -> ParsedBounce:
    """The failures a message reports (none for a message that is not a bounce)."""
    # compat32 parsing: what flufl.bounce's detectors are written for.
    message = email.message_from_bytes(data)
    temporary: frozenset[bytes] = frozenset()
    permanent: frozenset[bytes] = frozenset()
    # A heuristic detector tripping on odd mail must not stop a scan. Every bounce has a
    # From, and flufl.bounce's Yale detector raises (and logs a traceback) on mail without.
    if message.get("From"):
        with contextlib.suppress(Exception):
            # Imported here: it is heavy, and the sending engine imports this module only
            # for the envelope sender and send-time bounces.
            from flufl.bounce import all_failures

            temporary, permanent = all_failures(message)
    blocks, arrival = _delivery_status(message)
    failures: dict[str, Failure] = {}
    for block in blocks:
        kind = _kind(block.action, block.status)
        key = block.address.lower()
        if kind and key not in failures:
            failures[key] = Failure(block.address, kind, block.status, block.diagnostic)
    # flufl.bounce also reads non-DSN formats (qmail, Exim, Exchange, ...).
    for found, kind in ((permanent, HARD), (temporary, SOFT)):
        for raw in found:
            address = raw.decode("ascii", "replace")
            failures.setdefault(address.lower(), Failure(address, kind))
    message_id = str(message.get("Message-ID", "")).strip()[:500]
    if not message_id:
        message_id = "sha256:" + hashlib.sha256(data).hexdigest()[:40]
    return ParsedBounce(
        message_id=message_id,
        failures=tuple(failures.values()),
        verp=_verp_of(message, settings),
        received_at=_when(message, arrival),
        original_message_id=_original_message_id(message),
    )


# --- recording and policy ----------------------------------------------------------------


def record_bounce(
    session: Session,
    *,
    email_address: str,
    kind: str,
    message_id: str,
    subscriber_id: int | None = None,
    status_code: str = "",
    diagnostic: str = "",
    received_at: dt.datetime | None = None,
    original_message_id: str = "",
    source: str = "smtp",
) -> Bounce | None:
    """Add one bounce and flush; None if (message_id, address) is already recorded.

    For a 5xx reply at send time, pass the outgoing Message-ID and `source="smtp"`, then call
    `apply_policy`.
    """
    if kind not in (HARD, SOFT):
        raise ValueError(f"bounce kind must be {HARD!r} or {SOFT!r}, not {kind!r}")
    exists = session.scalar(
        select(Bounce.id).where(Bounce.message_id == message_id, Bounce.email == email_address)
    )
    if exists is not None:
        return None
    row = Bounce(
        subscriber_id=subscriber_id,
        email=email_address[:320],
        kind=kind,
        status_code=status_code[:16],
        diagnostic=diagnostic,
        received_at=received_at or utcnow(),
        original_message_id=original_message_id[:500],
        message_id=message_id[:500],
        source=source[:50],
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class BounceCounts:
    """A subscriber's bounces as the policy counts them."""

    hard: int
    soft: int  # within the window, one per original message


def bounce_counts(
    session: Session, settings: Settings, subscriber_id: int, now: dt.datetime | None = None
) -> BounceCounts:
    """Hard bounces, and soft bounces within `soft_window_days` of `now`, leaving out those
    that already made the subscriber `bounced` once (so a re-activated address starts anew)."""
    since = (now or utcnow()) - dt.timedelta(days=settings.bounces.soft_window_days)
    hard = session.scalar(
        select(func.count(Bounce.id)).where(
            Bounce.subscriber_id == subscriber_id,
            Bounce.kind == HARD,
            Bounce.applied_at.is_(None),
        )
    )
    # Reports about the same original message count once; without one, each report counts.
    message = func.coalesce(func.nullif(Bounce.original_message_id, ""), Bounce.message_id)
    soft = session.scalar(
        select(func.count(distinct(message))).where(
            Bounce.subscriber_id == subscriber_id,
            Bounce.kind == SOFT,
            Bounce.received_at >= since,
            Bounce.applied_at.is_(None),
        )
    )
    return BounceCounts(hard or 0, soft or 0)


def apply_policy(
    session: Session, settings: Settings, subscriber: Subscriber, now: dt.datetime | None = None
) -> bool:
    """Mark an active or pending subscriber `bounced` when a threshold is reached; whether
    their status changed. The bounces counted are then set aside (`applied_at`), as are late
    reports for someone already bounced: if the address is made active again, it starts anew.
    """
    if subscriber.status == BOUNCED:
        _set_aside(session, subscriber.id, now)
        return False
    if subscriber.status not in (ACTIVE, PENDING):
        return False
    counts = bounce_counts(session, settings, subscriber.id, now)
    policy = settings.bounces
    if counts.hard >= policy.hard_threshold or counts.soft >= policy.soft_threshold:
        set_status(session, subscriber, BOUNCED)
        _set_aside(session, subscriber.id, now)
        return True
    return False


def _set_aside(session: Session, subscriber_id: int, now: dt.datetime | None) -> None:
    session.execute(
        update(Bounce)
        .where(Bounce.subscriber_id == subscriber_id, Bounce.applied_at.is_(None))
        .values(applied_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


def list_bounces(
    session: Session, email_address: str | None = None, limit: int = 50
) -> list[Bounce]:
    """Recorded bounces, newest first; with `email_address`, those of that address or of the
    subscriber who has it."""
    query = select(Bounce).order_by(Bounce.received_at.desc(), Bounce.id.desc()).limit(limit)
    if email_address:
        key = email_address.strip().lower()
        subscriber = get_subscriber(session, email_address)
        conditions = [func.lower(Bounce.email) == key]
        if subscriber is not None:
            conditions.append(Bounce.subscriber_id == subscriber.id)
        query = query.where(or_(*conditions))
    return list(session.scalars(query))


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
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or address_hash(subscriber.email, VERP_HASH_LENGTH) != digest:
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
    common = {
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
        if dry_run:
            session.rollback()
            return report
        session.commit()
    if mark_processed:
        for item in processed:
            mark_seen(item)
    return report
