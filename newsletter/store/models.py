"""SQLAlchemy 2 ORM models: subscribers, lists, topic preferences, campaigns, the delivery ledger.

The schema itself is owned by the Alembic migrations in `migrations/`; a test checks that the
models and the migrations agree.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Date
from sqlalchemy import DateTime
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import TypeDecorator
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from newsletter.content.choice import TopicChoice

# Subscriber status values.
PENDING = "pending"
ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
COMPLAINED = "complained"
SUBSCRIBER_STATUSES = (PENDING, ACTIVE, UNSUBSCRIBED, BOUNCED, COMPLAINED)

# Per-list subscription status.
SUBSCRIBED = "subscribed"
LIST_STATUSES = (SUBSCRIBED, UNSUBSCRIBED)

# Delivery (ledger row) status values.
QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
RETRY = "retry"
FAILED = "failed"
SKIPPED = "skipped"
DELIVERY_STATUSES = (QUEUED, SENDING, SENT, RETRY, FAILED, SKIPPED)

# Campaign status values. PLANNING (migration 0013): created, its ledger rows still being
# written (on PostgreSQL by several connections, each committing its part); workers and sends
# leave it alone, and the next plan of the month completes it and marks it PLANNED.
PLANNING = "planning"
PLANNED = "planned"
RUNNING = "sending"
PAUSED = "paused"
DONE = "done"
CAMPAIGN_STATUSES = (PLANNING, PLANNED, RUNNING, PAUSED, DONE)

# How often a subscriber is mailed (migration 0007): every month's digest, or one round-up in
# the first month of each quarter with the last three months' summaries in their topics.
MONTHLY = "monthly"
QUARTERLY = "quarterly"
FREQUENCIES = (MONTHLY, QUARTERLY)

# Why a reader unsubscribed (migration 0010: the optional one-question "why").
TOO_FREQUENT = "too_frequent"
NOT_RELEVANT = "not_relevant"
TOO_LONG = "too_long"
OTHER = "other"
UNSUBSCRIBE_REASONS = (TOO_FREQUENT, NOT_RELEVANT, TOO_LONG, OTHER)

# The admin whose password is `[web] admin_password_hash` (the single admin before 0009).
LEGACY_ADMIN = "admin"


def utcnow() -> dt.datetime:
    """Now, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC (SQLite has no time zones) and always returns aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Subscriber(Base):
    """A person on the mailing list. `email_key` is the lowercased address (unique)."""

    __tablename__ = "subscribers"
    __table_args__ = (
        CheckConstraint(_in("status", SUBSCRIBER_STATUSES), name="status"),
        CheckConstraint(_in("frequency", FREQUENCIES), name="frequency"),
        # Migration 0011: SQLite never hands out an id again (without AUTOINCREMENT it reuses
        # the highest after a delete), so a link made for a forgotten subscriber names nobody.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), default=PENDING, index=True)
    all_topics: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    consent_source: Mapped[str] = mapped_column(String(50), default="")
    consent_ip: Mapped[str] = mapped_column(String(64), default="")
    # Migration 0007. A paused subscriber stays active but is left out of planning until this
    # moment passes (no job needed to resume). `frequency` is MONTHLY or QUARTERLY.
    paused_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    frequency: Mapped[str] = mapped_column(String(12), default=MONTHLY, server_default=MONTHLY)
    # Migration 0011: when the optional "why" of their latest unsubscribe was answered (one
    # answer per unsubscribe; cleared when they subscribe again).
    unsubscribe_reason_given_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    topics: Mapped[list[SubscriberTopic]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", lazy="selectin"
    )
    excluded_topics: Mapped[list[ExcludedTopic]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", lazy="selectin"
    )
    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def topic_slugs(self) -> frozenset[str] | None:
        """The chosen topic slugs, or None for "all topics" (less `excluded_slugs`: what they
        receive is `topic_choice`)."""
        return None if self.all_topics else frozenset(t.topic for t in self.topics)

    @property
    def excluded_slugs(self) -> frozenset[str]:
        """The topics an all-topics subscriber stopped (empty for a subscriber of chosen ones)."""
        return frozenset(t.topic for t in self.excluded_topics) if self.all_topics else frozenset()

    @property
    def topic_choice(self) -> TopicChoice:
        """What they receive: every topic (now and later) but `excluded_slugs`, or the chosen."""
        if self.all_topics:
            return TopicChoice.every(self.excluded_slugs)
        return TopicChoice.only(t.topic for t in self.topics)

    def __repr__(self) -> str:
        return f"<Subscriber {self.id} {self.email} {self.status}>"


class SubscriberPause(Base):
    """One pause a reader took (migration 0011): from `started_at` to `ended_at`, the end it
    was set for or the moment they resumed early. Kept after it ends: a round-up does not fill
    in a month planned inside a pause (`store.pauses`)."""

    __tablename__ = "subscriber_pauses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SubscriberTopic(Base):
    """One topic a subscriber chose (ignored while `all_topics` is set)."""

    __tablename__ = "subscriber_topics"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(String(120), primary_key=True)

    subscriber: Mapped[Subscriber] = relationship(back_populates="topics")


class ExcludedTopic(Base):
    """A topic an all-topics subscriber stopped: they receive every topic but these, including
    topics added to the taxonomy later (migration 0005; ignored unless `all_topics` is set)."""

    __tablename__ = "subscriber_excluded_topics"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(String(120), primary_key=True)

    subscriber: Mapped[Subscriber] = relationship(back_populates="excluded_topics")


class MailingList(Base):
    """A list subscribers can be on; the default one comes from config."""

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Migration 0010: shown under the list in the preference center.
    description: Mapped[str] = mapped_column(Text, default="", server_default="")


class Subscription(Base):
    """A subscriber's membership of one list, with its own status."""

    __tablename__ = "subscriptions"
    __table_args__ = (CheckConstraint(_in("status", LIST_STATUSES), name="status"),)

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(20), default=SUBSCRIBED)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")
    mailing_list: Mapped[MailingList] = relationship(lazy="joined")


class Campaign(Base):
    """The sending of one month's issue. One per month: a subscriber gets an issue once."""

    __tablename__ = "campaigns"
    __table_args__ = (CheckConstraint(_in("status", CAMPAIGN_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), unique=True)
    subject: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default=PLANNED)
    lists: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str] = mapped_column(Text, default="")


class Delivery(Base):
    """The ledger: one row per (campaign, subscriber), its variant fixed at plan time."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id", name="uq_deliveries_campaign_subscriber"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        Index("ix_deliveries_queue", "campaign_id", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL")
    )
    email: Mapped[str] = mapped_column(String(320))
    variant: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(12), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    worker_id: Mapped[str] = mapped_column(String(100), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
    smtp_reply: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Bounce(Base):
    """One bounce for one address: from a DSN in a mailbox (`message_id` is the DSN's own
    Message-ID, so a re-scan records nothing twice) or from a 5xx reply at send time."""

    __tablename__ = "bounces"
    __table_args__ = (
        UniqueConstraint("message_id", "email", name="uq_bounces_message_email"),
        CheckConstraint("kind IN ('hard', 'soft')", name="kind"),
        Index("ix_bounces_subscriber", "subscriber_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL")
    )
    email: Mapped[str] = mapped_column(String(320), index=True)
    kind: Mapped[str] = mapped_column(String(4))
    status_code: Mapped[str] = mapped_column(String(16), default="")
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the policy marked the subscriber bounced: such bounces are not counted again.
    applied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str] = mapped_column(String(500))
    original_message_id: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(50), default="")  # dsn, verp or smtp


class Suppression(Base):
    """An address that must never be mailed again, kept only as a hash (after "forget me")."""

    __tablename__ = "suppressions"

    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SchedulerLock(Base):
    """The row held by the running scheduler (migration 0002)."""

    __tablename__ = "scheduler_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    owner: Mapped[str] = mapped_column(String(200))
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AdminSession(Base):
    """A logged-in admin browser (migration 0006): the cookie holds a random id, this row its
    sha256. Deleting the rows ends the sessions, whatever copies of the cookie exist."""

    __tablename__ = "admin_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Which admin password the session was opened with: another password ends it.
    password_tag: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Whose session this is (migration 0009): removing that admin ends it.
    admin_name: Mapped[str] = mapped_column(
        String(64), default=LEGACY_ADMIN, server_default=LEGACY_ADMIN
    )


class Admin(Base):
    """One admin of the web app with their own password (migration 0009, `store.admins`)."""

    __tablename__ = "admins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """The login attempts of one client address (`ip:…`) or of the admin account (`account`),
    counted before each password check (migration 0006, `store.admin_auth`)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    next_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # no attempt before this
    # An address the right password came from: the account's wait does not hold it back.
    trusted_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """One thing an admin (or the scheduler) did: sent, scheduled, imported, edited, forgot
    (migration 0007, `store.audit`). `actor` is an admin name, "cli" or "scheduler"; `target`
    names what was acted on (a month, an address's subscriber id, a file) and never holds a
    forgotten address."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50), index=True)
    target: Mapped[str] = mapped_column(String(500), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class UnsubscribeReason(Base):
    """One answer to the optional "why" after unsubscribing (migration 0010): the reason, the
    month of the latest campaign and the date; deliberately no subscriber id or address."""

    __tablename__ = "unsubscribe_reasons"
    __table_args__ = (CheckConstraint(_in("reason", UNSUBSCRIBE_REASONS), name="reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(20))
    campaign_month: Mapped[str] = mapped_column(String(7), default="")
    on_date: Mapped[dt.date] = mapped_column(Date, index=True)


class LinkClick(Base):
    """Clicks on one link of one variant of one campaign, counted by the signed redirect
    (`/r/{token}`, `[tracking] clicks`; migration 0008). Never a reader, address, IP or user
    agent: the token names the issue, variant and link only. `link_key` is a sha256 of
    (variant, summary, url), which keeps the unique key short."""

    __tablename__ = "link_clicks"
    __table_args__ = (
        UniqueConstraint("campaign_id", "link_key", name="uq_link_clicks_campaign_link"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    link_key: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(1000))
    summary: Mapped[str] = mapped_column(String(200))  # "" for a link outside any summary
    url: Mapped[str] = mapped_column(Text)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# What a reader did with a digest's links (migration 0008), counted for that issue.
RESPONSE_KINDS = ("unsubscribe", "drop-topic")


class IssueResponse(Base):
    """One unsubscribe or dropped topic that came through the links of one campaign's digest
    (the month is in the link's token; migration 0008). Names no reader: only what and when."""

    __tablename__ = "issue_responses"
    __table_args__ = (CheckConstraint(_in("kind", RESPONSE_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(120), default="")  # for a dropped topic
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# Outbox row status values (migration 0012): waiting to be handled or sent, or given up on.
OUTBOX_QUEUED = "queued"
OUTBOX_FAILED = "failed"
OUTBOX_STATUSES = (OUTBOX_QUEUED, OUTBOX_FAILED)


class NoticeOutboxRow(Base):
    """One transactional email to handle or send (migration 0012, `store.outbox`).

    Written in the request that asks for it and committed before the page is answered, so a
    crash never loses a confirmation. `kind` is first the request (`subscribe`, `link_request`,
    …) with its inputs in `payload`; handling it applies the subscriber service's rule and
    turns the row into `mail` with the composed `message` for `recipient`, in one transaction.
    A sent row is deleted; a row given up on is `failed` with its `last_error`."""

    __tablename__ = "notice_outbox"
    __table_args__ = (CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(10), default=OUTBOX_QUEUED)
    payload: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    recipient: Mapped[str] = mapped_column(String(320), default="")
    message: Mapped[bytes | None] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
