"""Subscribers, lists, topic preferences, suppression, CSV/JSON import and export.

This is the one subscriber API: the CLI, the web app and the sender all call it, and all the
subscriber SQL lives here. Functions take a `Session` and never commit: the caller owns the
transaction (`newsletter.db.transaction`). They flush where a caller needs ids or where a
constraint should fail early.

Addresses are validated and normalized with `email_validator`; uniqueness is on the lowercased
normalized address (`Subscriber.email_key`). Topics are stored as taxonomy slugs, and "all
topics" is a flag (`all_topics`), so subscribers who chose everything also get topics added to
the taxonomy later.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import IO
from typing import Any

from email_validator import EmailNotValidError
from email_validator import validate_email
from sqlalchemy import exists
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.errors import ImportFileError
from newsletter.errors import InvalidAddress
from newsletter.errors import NewsletterError
from newsletter.errors import SubscriberError
from newsletter.models import ACTIVE
from newsletter.models import BOUNCED
from newsletter.models import COMPLAINED
from newsletter.models import PENDING
from newsletter.models import SUBSCRIBED
from newsletter.models import SUBSCRIBER_STATUSES
from newsletter.models import UNSUBSCRIBED
from newsletter.models import MailingList
from newsletter.models import Subscriber
from newsletter.models import SubscriberTopic
from newsletter.models import Subscription
from newsletter.models import Suppression
from newsletter.models import utcnow
from newsletter.taxonomy import Taxonomy

CSV_COLUMNS = ("email", "name", "topics", "lists", "status")
ALL_TOPICS = "*"
# Words that mean "every topic" in a topics field (compared case-insensitively).
_ALL_WORDS = frozenset({"", "*", "all"})
# Statuses an import may not move an existing subscriber out of: only the person can re-subscribe.
_FINAL_STATUSES = frozenset({UNSUBSCRIBED, BOUNCED, COMPLAINED})
# Keys per IN (...) query: stays under SQLite's bound-parameter limit on old builds (999).
_IN_CHUNK = 500
_MAX_NAME = 200
# Rows per bulk INSERT ... RETURNING statement.
_INSERT_CHUNK = 1000


# --- addresses ---------------------------------------------------------------------------


def normalize_email(text: str) -> tuple[str, str]:
    """(normalized address, lowercase key) for `text`; `InvalidAddress` saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidAddress("the email address is empty")
    candidate = text.strip()
    try:
        valid = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidAddress(f"invalid email address {candidate!r}: {error}") from None
    return valid.normalized, valid.normalized.lower()


def _key(email: str) -> str:
    """The lookup key of an address; falls back to plain lowercasing for invalid input."""
    try:
        return normalize_email(email)[1]
    except InvalidAddress:
        return email.strip().lower()


def email_hash(email: str) -> str:
    """sha256 hex of the lowercased address: how the suppression list stores it."""
    return _hash_key(_key(email))


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


# --- lists and topics --------------------------------------------------------------------


def ensure_lists(session: Session, settings: Settings) -> dict[str, MailingList]:
    """Create or update the configured lists (the default list always exists); by slug."""
    specs = settings.list_specs()
    existing = {
        row.slug: row
        for row in session.scalars(
            select(MailingList).where(MailingList.slug.in_([s.slug for s in specs]))
        )
    }
    lists: dict[str, MailingList] = {}
    for spec in specs:
        row = existing.get(spec.slug)
        if row is None:
            row = MailingList(slug=spec.slug, name=spec.name, public=spec.public)
            session.add(row)
        else:
            if row.name != spec.name:
                row.name = spec.name
            if row.public != spec.public:
                row.public = spec.public
        lists[spec.slug] = row
    session.flush()
    return lists


def _known_lists_message(slug: str, known: Iterable[str]) -> str:
    return f"unknown list {slug!r} (known lists: {', '.join(sorted(known))})"


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


def parse_topics(value: str | Iterable[str] | None, taxonomy: Taxonomy) -> frozenset[str] | None:
    """Topic slugs from labels or slugs (any case, `;`-separated in a string).

    `*`, "all", an empty string or an empty iterable mean "all topics" and give None. An unknown
    topic raises `TaxonomyError` naming the closest labels.
    """
    if value is None:
        return None
    names = _split(value) if isinstance(value, str) else [str(v).strip() for v in value]
    names = [n for n in names if n]
    if not names or any(n.casefold() in _ALL_WORDS for n in names):
        return None
    return frozenset(taxonomy.topics.get(name).slug for name in names)


def _topic_rows(topics: frozenset[str] | None) -> list[SubscriberTopic]:
    return [] if topics is None else [SubscriberTopic(topic=slug) for slug in sorted(topics)]


def _check_status(status: str) -> str:
    if status not in SUBSCRIBER_STATUSES:
        raise SubscriberError(
            f"unknown status {status!r}; expected one of {', '.join(SUBSCRIBER_STATUSES)}"
        )
    return status


# --- one subscriber ----------------------------------------------------------------------


def add_subscriber(
    session: Session,
    settings: Settings,
    taxonomy: Taxonomy,
    email: str,
    *,
    name: str = "",
    topics: str | Iterable[str] | None = None,
    lists: Iterable[str] | None = None,
    status: str = ACTIVE,
    source: str = "cli",
    ip: str = "",
) -> Subscriber:
    """Add one subscriber and flush (so `.id` is set).

    `topics` None means all topics; `lists` None means the default list. Active subscribers
    count as confirmed now; pending ones wait for `confirm`. Raises `InvalidAddress`,
    `TaxonomyError`, or `SubscriberError` for an unknown list or status, an address already
    subscribed, or a suppressed address.
    """
    address, key = normalize_email(email)
    _check_status(status)
    if is_suppressed(session, key):
        raise SubscriberError(f"{address} is on the suppression list and cannot be added")
    if session.scalar(select(Subscriber.id).where(Subscriber.email_key == key)) is not None:
        raise SubscriberError(f"{address} is already subscribed")
    if len(name.strip()) > _MAX_NAME:
        raise SubscriberError(f"name is longer than {_MAX_NAME} characters")
    chosen = parse_topics(topics, taxonomy)
    known = ensure_lists(session, settings)
    slugs = [settings.delivery.default_list] if lists is None else list(dict.fromkeys(lists))
    for slug in slugs:
        if slug not in known:
            raise SubscriberError(_known_lists_message(slug, known))
    now = utcnow()
    subscriber = Subscriber(
        email=address,
        email_key=key,
        name=name.strip(),
        status=status,
        all_topics=chosen is None,
        created_at=now,
        confirmed_at=now if status == ACTIVE else None,
        unsubscribed_at=now if status == UNSUBSCRIBED else None,
        consent_source=source[:50],
        consent_ip=ip[:64],
        topics=_topic_rows(chosen),
        subscriptions=[Subscription(mailing_list=known[slug]) for slug in slugs],
    )
    session.add(subscriber)
    try:
        session.flush()
    except IntegrityError:
        # Another process added the same address between our check and the insert.
        raise SubscriberError(f"{address} is already subscribed") from None
    return subscriber


def get_subscriber(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address (any case), or None."""
    return session.scalar(select(Subscriber).where(Subscriber.email_key == _key(email)))


def require_subscriber(session: Session, email: str) -> Subscriber:
    """The subscriber with this address; `SubscriberError` if there is none."""
    subscriber = get_subscriber(session, email)
    if subscriber is None:
        raise SubscriberError(f"no subscriber {email.strip()}")
    return subscriber


def remove_subscriber(session: Session, email: str) -> None:
    """Delete a subscriber with their topics and subscriptions (ledger rows keep the address)."""
    session.delete(require_subscriber(session, email))
    session.flush()


def _apply_status(subscriber: Subscriber, status: str) -> None:
    _check_status(status)
    if status == subscriber.status:
        return
    now = utcnow()
    if status == UNSUBSCRIBED:
        subscriber.unsubscribed_at = now
    elif status in (ACTIVE, PENDING):
        subscriber.unsubscribed_at = None
    if status == ACTIVE and (subscriber.status == PENDING or subscriber.confirmed_at is None):
        subscriber.confirmed_at = now
    subscriber.status = status


def set_status(session: Session, subscriber: Subscriber, status: str) -> Subscriber:
    """Change the status, stamping `unsubscribed_at` or `confirmed_at` as it changes."""
    _apply_status(subscriber, status)
    session.flush()
    return subscriber


def confirm(session: Session, subscriber: Subscriber, ip: str = "") -> Subscriber:
    """Double opt-in: a pending subscriber becomes active. Confirming twice is harmless.

    An unsubscribed, bounced or complained address cannot be revived by an old link: it must
    subscribe again.
    """
    if subscriber.status == ACTIVE:
        return subscriber
    if subscriber.status != PENDING:
        raise SubscriberError(
            f"{subscriber.email} is {subscriber.status}; subscribe again to receive the digest"
        )
    if ip:
        subscriber.consent_ip = ip[:64]
    return set_status(session, subscriber, ACTIVE)


def unsubscribe(session: Session, subscriber: Subscriber, list_slug: str | None = None) -> None:
    """Unsubscribe from one list, or (no list) from everything: status `unsubscribed`."""
    if list_slug is not None:
        for subscription in subscriber.subscriptions:
            if subscription.mailing_list.slug == list_slug:
                subscription.status = UNSUBSCRIBED
                session.flush()
                return
        raise SubscriberError(f"{subscriber.email} is not on the list {list_slug!r}")
    for subscription in subscriber.subscriptions:
        subscription.status = UNSUBSCRIBED
    set_status(session, subscriber, UNSUBSCRIBED)
    session.flush()


def _apply_topics(subscriber: Subscriber, topics: frozenset[str] | None) -> None:
    subscriber.all_topics = topics is None
    wanted = frozenset() if topics is None else frozenset(topics)
    # Change rows in place: deleting and re-adding the same primary key in one flush fails.
    subscriber.topics = [row for row in subscriber.topics if row.topic in wanted]
    have = {row.topic for row in subscriber.topics}
    subscriber.topics.extend(SubscriberTopic(topic=slug) for slug in sorted(wanted - have))


def set_topics(session: Session, subscriber: Subscriber, topics: frozenset[str] | None) -> None:
    """Replace the chosen topic slugs; None means all topics (see `parse_topics`)."""
    _apply_topics(subscriber, topics)
    session.flush()


def _apply_lists(
    known: dict[str, MailingList], subscriber: Subscriber, slugs: Iterable[str]
) -> None:
    wanted = list(dict.fromkeys(slugs))
    for slug in wanted:
        if slug not in known:
            raise SubscriberError(_known_lists_message(slug, known))
    have = {s.mailing_list.slug: s for s in subscriber.subscriptions}
    for slug, subscription in have.items():
        status = SUBSCRIBED if slug in wanted else UNSUBSCRIBED
        if subscription.status != status:
            subscription.status = status
    for slug in wanted:
        if slug not in have:
            subscriber.subscriptions.append(Subscription(mailing_list=known[slug]))


def set_lists(
    session: Session, settings: Settings, subscriber: Subscriber, slugs: Iterable[str]
) -> None:
    """Subscribe to exactly these lists; others stay as `unsubscribed` rows (a consent record)."""
    _apply_lists(ensure_lists(session, settings), subscriber, slugs)
    session.flush()


def subscribed_lists(subscriber: Subscriber) -> list[str]:
    """Slugs of the lists the subscriber is currently subscribed to, sorted."""
    return sorted(s.mailing_list.slug for s in subscriber.subscriptions if s.status == SUBSCRIBED)


def query_subscribers(
    session: Session,
    *,
    status: str | None = None,
    list_slug: str | None = None,
    topic: str | None = None,
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Subscriber]:
    """Subscribers in id order, filtered by status, list (subscribed only), topic slug
    (all-topics subscribers match every topic) and a case-insensitive address/name search."""
    query = select(Subscriber).order_by(Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == _check_status(status))
    if list_slug is not None:
        query = query.where(
            exists()
            .where(Subscription.subscriber_id == Subscriber.id)
            .where(Subscription.status == SUBSCRIBED)
            .where(Subscription.list_id == MailingList.id)
            .where(MailingList.slug == list_slug)
        )
    if topic is not None:
        query = query.where(
            or_(
                Subscriber.all_topics.is_(True),
                exists()
                .where(SubscriberTopic.subscriber_id == Subscriber.id)
                .where(SubscriberTopic.topic == topic),
            )
        )
    if search:
        query = query.where(
            or_(
                Subscriber.email.icontains(search, autoescape=True),
                Subscriber.name.icontains(search, autoescape=True),
            )
        )
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


# --- suppression -------------------------------------------------------------------------


def suppress(session: Session, email: str, reason: str) -> Suppression:
    """Never mail this address again (stored as a hash); suppressing twice keeps the first."""
    digest = email_hash(email)
    row = session.get(Suppression, digest)
    if row is None:
        row = Suppression(email_hash=digest, reason=reason[:50])
        session.add(row)
        session.flush()
    return row


def is_suppressed(session: Session, email: str) -> bool:
    """Whether the address is on the suppression list."""
    return session.get(Suppression, email_hash(email)) is not None


def _suppressed_hashes(session: Session, hashes: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(hashes), _IN_CHUNK):
        chunk = hashes[start : start + _IN_CHUNK]
        found.update(
            session.scalars(select(Suppression.email_hash).where(Suppression.email_hash.in_(chunk)))
        )
    return found


# --- export ------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def subscriber_to_dict(subscriber: Subscriber) -> dict[str, Any]:
    """A JSON-ready record: topics are "*" (all) or sorted slugs; lists are subscribed slugs."""
    topics = subscriber.topic_slugs
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "topics": ALL_TOPICS if topics is None else sorted(topics),
        "lists": subscribed_lists(subscriber),
        "created_at": _iso(subscriber.created_at),
        "confirmed_at": _iso(subscriber.confirmed_at),
        "unsubscribed_at": _iso(subscriber.unsubscribed_at),
        "consent_source": subscriber.consent_source,
    }


def _all_subscribers(session: Session) -> Iterable[Subscriber]:
    query = select(Subscriber).order_by(Subscriber.id).execution_options(yield_per=1000)
    return session.scalars(query)


def write_csv(stream: IO[str], subscribers: Iterable[Subscriber]) -> int:
    """Write subscribers as import-compatible CSV (with the header); returns the row count."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for subscriber in subscribers:
        topics = subscriber.topic_slugs
        writer.writerow(
            [
                subscriber.email,
                subscriber.name,
                ALL_TOPICS if topics is None else ";".join(sorted(topics)),
                ";".join(subscribed_lists(subscriber)),
                subscriber.status,
            ]
        )
        count += 1
    return count


def export_csv(session: Session, stream: IO[str]) -> int:
    """Write every subscriber as CSV (the columns `import_csv` reads); returns the row count."""
    return write_csv(stream, _all_subscribers(session))


def export_json(session: Session) -> list[dict[str, Any]]:
    """Every subscriber as `subscriber_to_dict` records, in id order."""
    return [subscriber_to_dict(s) for s in _all_subscribers(session)]


# --- import ------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did (or, for a dry run, would do)."""

    added: int = 0
    updated: int = 0
    skipped_existing: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    rows: int = 0
    dry_run: bool = False


@dataclass
class _Row:
    line: int
    email: str
    key: str
    name: str | None
    topics: frozenset[str] | None
    topics_given: bool
    lists: list[str] | None  # None: no lists column; []: empty cell (the default list)
    status: str | None


def decode_csv(data: bytes) -> str:
    """UTF-8 text of an import file (a BOM is dropped); `ImportFileError` naming the bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ImportFileError(
            f"the file is not UTF-8: byte 0x{data[error.start]:02x} at position {error.start} "
            f"(line {line}) cannot be decoded; save it as UTF-8 CSV",
            [(line, f"byte 0x{data[error.start]:02x} at position {error.start} is not UTF-8")],
        ) from None


class _Parser:
    """Validates the rows of one import file against the taxonomy, lists and itself."""

    def __init__(self, settings: Settings, taxonomy: Taxonomy, columns: list[str]) -> None:
        self.settings = settings
        self.taxonomy = taxonomy
        self.columns = columns
        self.list_slugs = {spec.slug for spec in settings.list_specs()}
        self.seen: dict[str, int] = {}

    def parse(self, line: int, cells: list[str]) -> _Row:
        """One validated row; a `NewsletterError` or `ValueError` saying why not."""
        if len(cells) > len(self.columns) and any(c.strip() for c in cells[len(self.columns) :]):
            raise ValueError(f"{len(cells)} fields, but the header has {len(self.columns)}")
        if len(cells) < len(self.columns):
            raise ValueError(f"{len(cells)} fields, but the header has {len(self.columns)}")
        values = dict(zip(self.columns, cells, strict=False))
        address, key = normalize_email(values["email"])
        if key in self.seen:
            raise ValueError(f"{address} is a duplicate of line {self.seen[key]}")
        self.seen[key] = line
        name = values["name"].strip() if "name" in values else None
        if name is not None and len(name) > _MAX_NAME:
            raise ValueError(f"name is longer than {_MAX_NAME} characters")
        topics = parse_topics(values.get("topics", ""), self.taxonomy)
        lists = None
        if "lists" in values:
            lists = list(dict.fromkeys(_split(values["lists"])))
            for slug in lists:
                if slug not in self.list_slugs:
                    raise ValueError(_known_lists_message(slug, self.list_slugs))
        status = None
        if "status" in values:
            status = values["status"].strip().lower() or ACTIVE
            if status not in SUBSCRIBER_STATUSES:
                raise ValueError(
                    f"unknown status {values['status'].strip()!r}; "
                    f"expected one of {', '.join(SUBSCRIBER_STATUSES)}"
                )
        return _Row(line, address, key, name, topics, "topics" in values, lists, status)


def _read_header(reader: Any) -> list[str]:
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        raise ImportFileError(
            "the file has no header row: the first line must name the columns "
            f"({', '.join(CSV_COLUMNS)})",
            [(1, "missing header row")],
        )
    columns = [cell.strip().lower() for cell in header]
    while columns and not columns[-1]:
        columns.pop()  # trailing empty header cells from spreadsheet exports
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown:
        reason = (
            f"unknown column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(c) for c in unknown)}; expected {', '.join(CSV_COLUMNS)}"
        )
        raise ImportFileError(reason, [(1, reason)])
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        reason = f"column {twice[0]!r} appears more than once"
        raise ImportFileError(reason, [(1, reason)])
    if "email" not in columns:
        reason = f"the header has no 'email' column (found: {', '.join(columns)})"
        raise ImportFileError(reason, [(1, reason)])
    return columns


def _existing(session: Session, keys: list[str], *, load: bool) -> dict[str, Subscriber | None]:
    """The subscribers among `keys`: whole objects when `load`, else only their keys."""
    found: dict[str, Subscriber | None] = {}
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start : start + _IN_CHUNK]
        if load:
            query = select(Subscriber).where(Subscriber.email_key.in_(chunk))
            found.update((s.email_key, s) for s in session.scalars(query))
        else:
            query = select(Subscriber.email_key).where(Subscriber.email_key.in_(chunk))
            found.update(dict.fromkeys(session.scalars(query)))
    return found


def import_csv(
    session: Session,
    settings: Settings,
    taxonomy: Taxonomy,
    text: str | bytes,
    *,
    skip_invalid: bool = False,
    source: str = "import",
    update_existing: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    """Import subscribers from CSV text with columns email[,name,topics,lists,status].

    Every row is validated before anything is written. If any row is rejected and
    `skip_invalid` is false, `ImportFileError` ("N of M rows rejected", `.rejected`) is raised
    and nothing is written; with `skip_invalid` the valid rows are imported and the report
    lists the rest. Addresses already in the database are skipped, or updated with
    `update_existing` (only the columns the file has). `dry_run` validates and counts only.
    """
    if isinstance(text, bytes):
        text = decode_csv(text)
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        columns = _read_header(reader)
        parser = _Parser(settings, taxonomy, columns)
        report = ImportReport(dry_run=dry_run)
        rows: list[_Row] = []
        last_line = reader.line_num
        while True:
            # The record starts on the line after the previous one ended (quoted newlines span
            # several physical lines, so count with the reader, not by enumerating records).
            line = last_line + 1
            cells = next(reader, None)
            if cells is None:
                break
            last_line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            report.rows += 1
            try:
                rows.append(parser.parse(line, cells))
            except (NewsletterError, ValueError) as error:
                report.rejected.append((line, str(error)))
    except csv.Error as error:
        where = reader.line_num or 1
        raise ImportFileError(f"line {where}: {error}", [(where, str(error))]) from None

    # Checks against the database, still before writing anything.
    suppressed = _suppressed_hashes(session, [_hash_key(row.key) for row in rows])
    existing = _existing(session, [row.key for row in rows], load=update_existing)
    accepted: list[_Row] = []
    for row in rows:
        current = existing.get(row.key)
        if _hash_key(row.key) in suppressed:
            report.rejected.append((row.line, f"{row.email} is on the suppression list"))
        elif (
            current is not None
            and row.status is not None
            and current.status in _FINAL_STATUSES
            and row.status in (ACTIVE, PENDING)
        ):
            report.rejected.append(
                (
                    row.line,
                    f"{row.email} is {current.status}; an import cannot subscribe it again",
                )
            )
        else:
            accepted.append(row)
    report.rejected.sort()
    if report.rejected and not skip_invalid:
        raise ImportFileError(
            f"{len(report.rejected)} of {report.rows} rows rejected", report.rejected
        )

    new_rows = [row for row in accepted if row.key not in existing]
    old_rows = [row for row in accepted if row.key in existing]
    report.added = len(new_rows)
    if update_existing:
        report.updated = len(old_rows)
    else:
        report.skipped_existing = len(old_rows)
    if dry_run:
        return report

    lists = ensure_lists(session, settings)
    default = [settings.delivery.default_list]
    _insert_rows(session, lists, new_rows, default, source)
    if update_existing:
        for row in old_rows:
            subscriber = existing[row.key]
            assert subscriber is not None  # loaded because update_existing
            _update_from_row(lists, subscriber, row, default)
        session.flush()
    return report


def _insert_rows(
    session: Session,
    lists: dict[str, MailingList],
    rows: list[_Row],
    default: list[str],
    source: str,
) -> None:
    """Bulk INSERTs: building ORM objects costs ~0.5 ms a row, executemany a few µs."""
    if not rows:
        return
    now = utcnow()
    records = []
    for row in rows:
        status = row.status or ACTIVE
        records.append(
            {
                "email": row.email,
                "email_key": row.key,
                "name": row.name or "",
                "status": status,
                "all_topics": row.topics is None,
                "created_at": now,
                "updated_at": now,
                "confirmed_at": now if status == ACTIVE else None,
                "unsubscribed_at": now if status == UNSUBSCRIBED else None,
                "consent_source": source[:50],
                "consent_ip": "",
            }
        )
    ids: dict[str, int] = {}
    for start in range(0, len(records), _INSERT_CHUNK):
        result = session.execute(
            insert(Subscriber).returning(
                Subscriber.id, Subscriber.email_key, sort_by_parameter_order=True
            ),
            records[start : start + _INSERT_CHUNK],
        )
        ids.update((key, id_) for id_, key in result)
    subscriptions = [
        {
            "subscriber_id": ids[row.key],
            "list_id": lists[slug].id,
            "status": SUBSCRIBED,
            "created_at": now,
            "updated_at": now,
        }
        for row in rows
        for slug in row.lists or default
    ]
    session.execute(insert(Subscription), subscriptions)
    topics = [
        {"subscriber_id": ids[row.key], "topic": slug}
        for row in rows
        for slug in sorted(row.topics or ())
    ]
    if topics:
        session.execute(insert(SubscriberTopic), topics)


def _update_from_row(
    lists: dict[str, MailingList], subscriber: Subscriber, row: _Row, default: list[str]
) -> None:
    # Only the columns the file has: an import without a name column keeps the names.
    if row.name is not None and row.name != subscriber.name:
        subscriber.name = row.name
    if row.topics_given and row.topics != subscriber.topic_slugs:
        _apply_topics(subscriber, row.topics)
    if row.lists is not None:
        _apply_lists(lists, subscriber, row.lists or default)
    if row.status is not None:
        _apply_status(subscriber, row.status)


# --- the person's own data (web preference center, admin) ----------------------------------


def subscriber_deliveries(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    """The ledger rows of one subscriber, newest month first, as JSON-ready records."""
    from newsletter.models import Campaign
    from newsletter.models import Delivery

    query = (
        select(
            Campaign.month,
            Delivery.status,
            Delivery.attempts,
            Delivery.sent_at,
            Delivery.last_error,
        )
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Campaign.month.desc())
    )
    return [
        {
            "month": row.month,
            "status": row.status,
            "attempts": row.attempts,
            "sent_at": _iso(row.sent_at),
            "error": row.last_error,
        }
        for row in session.execute(query)
    ]


def forget_subscriber(session: Session, subscriber: Subscriber, reason: str = "forgotten") -> None:
    """Forget me: delete the subscriber and the address from their ledger rows and bounce
    records, keeping only a suppression hash so the address is never mailed again by accident."""
    from sqlalchemy import delete
    from sqlalchemy import or_
    from sqlalchemy import update

    from newsletter.models import Bounce
    from newsletter.models import Delivery

    suppress(session, subscriber.email, reason)
    session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber.id)
        .values(email="(forgotten)", last_error="", smtp_reply="")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Bounce)
        .where(or_(Bounce.subscriber_id == subscriber.id, Bounce.email == subscriber.email))
        .execution_options(synchronize_session=False)
    )
    session.delete(subscriber)
    session.flush()
