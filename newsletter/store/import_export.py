"""Subscribers in and out: CSV and JSON import (validated row by row, applied in one
transaction), CSV and JSON export that read back losslessly, consent record included.

A blank cell (or a JSON null) means "not given": a new subscriber gets the default, an update
(`update_existing`) keeps the stored value. An import never clears a name (the API's PATCH
does); `*` in topics is every topic, `-` in lists is no list.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import IO
from typing import Any

from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.content.choice import TopicChoice
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import NewsletterError
from newsletter.errors import RowsRejected
from newsletter.store.import_formats import CSV_COLUMNS
from newsletter.store.import_formats import LEFT
from newsletter.store.import_formats import csv_records
from newsletter.store.import_formats import decode_csv as decode_csv
from newsletter.store.import_formats import detect_format
from newsletter.store.import_formats import json_records
from newsletter.store.models import ACTIVE
from newsletter.store.models import PENDING
from newsletter.store.models import SUBSCRIBED
from newsletter.store.models import SUBSCRIBER_STATUSES
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import ExcludedTopic
from newsletter.store.models import MailingList
from newsletter.store.models import Subscriber
from newsletter.store.models import SubscriberTopic
from newsletter.store.models import Subscription
from newsletter.store.models import utcnow
from newsletter.store.subscribers import FINAL_STATUSES
from newsletter.store.subscribers import IN_CHUNK
from newsletter.store.subscribers import _iso
from newsletter.store.subscribers import apply_lists
from newsletter.store.subscribers import apply_status
from newsletter.store.subscribers import clean_name
from newsletter.store.subscribers import ensure_lists
from newsletter.store.subscribers import hash_key
from newsletter.store.subscribers import known_lists_message
from newsletter.store.subscribers import normalize_email
from newsletter.store.subscribers import subscribed_lists
from newsletter.store.subscribers import suppressed_hashes
from newsletter.store.topics import ALL_TOPICS
from newsletter.store.topics import apply_topics
from newsletter.store.topics import parse_topic_choice
from newsletter.store.topics import split_list
from newsletter.store.topics import topics_cell

# The consent record: read for subscribers an import adds, never rewritten for existing ones.
CONSENT_COLUMNS = CSV_COLUMNS[5:]
_DATE_COLUMNS = ("created_at", "confirmed_at", "unsubscribed_at")
# Rows per bulk INSERT ... RETURNING statement.
_INSERT_CHUNK = 1000


def subscriber_to_dict(subscriber: Subscriber) -> dict[str, Any]:
    """A JSON-ready record: topics are "*" (all) or sorted slugs, `excluded_topics` the ones an
    all-topics subscriber stopped; lists are subscribed slugs."""
    topics = subscriber.topic_slugs
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "topics": ALL_TOPICS if topics is None else sorted(topics),
        "excluded_topics": sorted(subscriber.excluded_slugs),
        "lists": subscribed_lists(subscriber),
        "created_at": _iso(subscriber.created_at),
        "confirmed_at": _iso(subscriber.confirmed_at),
        "unsubscribed_at": _iso(subscriber.unsubscribed_at),
        "consent_source": subscriber.consent_source,
    }


def export_record(subscriber: Subscriber) -> dict[str, Any]:
    """`subscriber_to_dict` plus the rest of the consent record (`consent_ip`, the lists they
    left): what `export_json` writes and `import_subscribers` reads back."""
    return {
        **subscriber_to_dict(subscriber),
        "unsubscribed_lists": _left_lists(subscriber),
        "consent_ip": subscriber.consent_ip,
    }


def _left_lists(subscriber: Subscriber) -> list[str]:
    return sorted(s.mailing_list.slug for s in subscriber.subscriptions if s.status != SUBSCRIBED)


def lists_cell(subscriber: Subscriber) -> str:
    """The CSV lists cell: subscribed slugs, then "-slug" for lists they left ("digest;-events");
    "-" when they are on no list at all (an empty cell would mean the default list)."""
    if not subscriber.subscriptions:
        return LEFT
    left = [LEFT + slug for slug in _left_lists(subscriber)]
    return ";".join([*subscribed_lists(subscriber), *left])


def _all_subscribers(session: Session) -> Iterable[Subscriber]:
    query = select(Subscriber).order_by(Subscriber.id).execution_options(yield_per=1000)
    return session.scalars(query)


def write_csv(stream: IO[str], subscribers: Iterable[Subscriber]) -> int:
    """Write subscribers as import-compatible CSV (with the header); returns the row count.

    Every column `import_csv` reads, the consent record included, so an export imported into
    an empty database exports as the same file (a backup that keeps the proof of consent)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for subscriber in subscribers:
        writer.writerow(
            [
                subscriber.email,
                subscriber.name,
                topics_cell(subscriber.topic_choice),
                lists_cell(subscriber),
                subscriber.status,
                _iso(subscriber.created_at) or "",
                _iso(subscriber.confirmed_at) or "",
                _iso(subscriber.unsubscribed_at) or "",
                subscriber.consent_source,
                subscriber.consent_ip,
            ]
        )
        count += 1
    return count


def export_csv(session: Session, stream: IO[str]) -> int:
    """Write every subscriber as CSV (the columns `import_csv` reads); returns the row count."""
    return write_csv(stream, _all_subscribers(session))


def export_json(session: Session) -> list[dict[str, Any]]:
    """Every subscriber as `export_record` records, in id order (`import_subscribers` reads
    them back)."""
    return [export_record(s) for s in _all_subscribers(session)]


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
    """One validated row. None everywhere means "not given": the column is missing or the cell
    is blank. An update keeps the stored value; a new subscriber gets the default."""

    line: int
    email: str
    key: str
    name: str | None
    topics: TopicChoice | None
    lists: tuple[list[str], list[str]] | None  # (subscribed, left)
    status: str | None
    consent: dict[str, Any]  # the CONSENT_COLUMNS given


def _parse_time(column: str, text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{column} {text!r} is not an ISO 8601 date and time (e.g. 2026-01-31T09:00:00+00:00)"
        ) from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class _Parser:
    """Validates the rows of one import file against the taxonomy, lists and itself."""

    def __init__(self, settings: Settings, taxonomy: Taxonomy) -> None:
        self.settings = settings
        self.taxonomy = taxonomy
        self.list_slugs = {spec.slug for spec in settings.list_specs()}
        self.seen: dict[str, int] = {}

    def parse(self, line: int, values: dict[str, str]) -> _Row:
        """One validated row from its cells by column; a `NewsletterError` or `ValueError`
        saying why not. A blank cell is "not given" (see `_Row`)."""
        cells = {column: text.strip() for column, text in values.items()}
        address, key = normalize_email(values.get("email", ""))
        if key in self.seen:
            raise ValueError(f"{address} is a duplicate of line {self.seen[key]}")
        self.seen[key] = line
        name = clean_name(cells["name"]) if cells.get("name") else None
        topics = parse_topic_choice(cells["topics"], self.taxonomy) if cells.get("topics") else None
        lists = self._lists(cells["lists"]) if cells.get("lists") else None
        status = None
        if cells.get("status"):
            status = cells["status"].lower()
            if status not in SUBSCRIBER_STATUSES:
                raise ValueError(
                    f"unknown status {cells['status']!r}; "
                    f"expected one of {', '.join(SUBSCRIBER_STATUSES)}"
                )
        consent: dict[str, Any] = {}
        for column in CONSENT_COLUMNS:
            if cells.get(column):
                consent[column] = cells[column]
        for column in _DATE_COLUMNS:
            if column in consent:
                consent[column] = _parse_time(column, consent[column])
        for column, width in (("consent_source", 50), ("consent_ip", 64)):
            if len(consent.get(column, "")) > width:
                raise ValueError(f"{column} is longer than {width} characters")
        return _Row(line, address, key, name, topics, lists, status, consent)

    def _lists(self, cell: str) -> tuple[list[str], list[str]]:
        """(subscribed, left) from "digest;-events"; "-" alone is no list at all."""
        names = list(dict.fromkeys(split_list(cell)))
        if names == [LEFT]:
            return [], []
        left = [name[len(LEFT) :].strip() for name in names if name.startswith(LEFT)]
        subscribed = [name for name in names if not name.startswith(LEFT)]
        for slug in subscribed + left:
            if slug not in self.list_slugs:
                raise ValueError(known_lists_message(slug, self.list_slugs))
        both = sorted(set(subscribed) & set(left))
        if both:
            raise ValueError(f"lists {cell!r}: {both[0]!r} is both subscribed and left")
        return subscribed, left


def _existing(session: Session, keys: list[str], *, load: bool) -> dict[str, Subscriber | None]:
    """The subscribers among `keys`: whole objects when `load`, else only their keys."""
    found: dict[str, Subscriber | None] = {}
    for start in range(0, len(keys), IN_CHUNK):
        chunk = keys[start : start + IN_CHUNK]
        if load:
            subscribers = select(Subscriber).where(Subscriber.email_key.in_(chunk))
            found.update((s.email_key, s) for s in session.scalars(subscribers))
        else:
            keys_only = select(Subscriber.email_key).where(Subscriber.email_key.in_(chunk))
            found.update(dict.fromkeys(session.scalars(keys_only)))
    return found


def import_subscribers(
    session: Session,
    settings: Settings,
    taxonomy: Taxonomy,
    text: str | bytes,
    *,
    fmt: str | None = None,
    filename: str | None = None,
    skip_invalid: bool = False,
    source: str = "import",
    update_existing: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    """Import a CSV file or a JSON export (`fmt` "csv" or "json"; None: `detect_format`).

    Every row is validated before anything is written. If any row is rejected and
    `skip_invalid` is false, `RowsRejected` ("N of M rows rejected", `.rejected`) is raised
    and nothing is written; with `skip_invalid` the valid rows are imported and the report
    lists the rest. Addresses already in the database are skipped, or updated with
    `update_existing`: only the cells given, as a blank cell keeps the stored value, and never
    the consent record. `dry_run` validates and counts only.
    """
    if isinstance(text, bytes):
        text = decode_csv(text)
    fmt = fmt or detect_format(text, filename)
    records = json_records(text) if fmt == "json" else csv_records(text)
    parser = _Parser(settings, taxonomy)
    report = ImportReport(dry_run=dry_run)
    rows: list[_Row] = []
    for line, values in records:
        report.rows += 1
        try:
            if isinstance(values, str):
                raise ValueError(values)
            rows.append(parser.parse(line, values))
        except (NewsletterError, ValueError) as error:
            report.rejected.append((line, str(error)))
    existing = _existing(session, [row.key for row in rows], load=update_existing)
    _check_against_database(session, rows, existing, report)
    if report.rejected and not skip_invalid:
        raise RowsRejected(
            f"{len(report.rejected)} of {report.rows} rows rejected", report.rejected
        )
    new_rows = [row for row in rows if row.key not in existing]
    old_rows = [row for row in rows if row.key in existing]
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
            _update_from_row(lists, subscriber, row)
        session.flush()
    return report


def import_csv(
    session: Session, settings: Settings, taxonomy: Taxonomy, text: str | bytes, **options: Any
) -> ImportReport:
    """`import_subscribers` of a CSV text with columns email[,name,topics,lists,status,…]."""
    return import_subscribers(session, settings, taxonomy, text, fmt="csv", **options)


def _check_against_database(
    session: Session,
    rows: list[_Row],
    existing: dict[str, Subscriber | None],
    report: ImportReport,
) -> None:
    """Reject (in `report`, dropping them from `rows`) suppressed addresses and rows that would
    subscribe an unsubscribed, bounced or complained address again."""
    suppressed = suppressed_hashes(session, [hash_key(row.key) for row in rows])
    accepted: list[_Row] = []
    for row in rows:
        current = existing.get(row.key)
        if hash_key(row.key) in suppressed:
            report.rejected.append((row.line, f"{row.email} is on the suppression list"))
        elif (
            current is not None
            and row.status is not None
            and current.status in FINAL_STATUSES
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
    rows[:] = accepted
    report.rejected.sort()


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
        consent = row.consent
        topics = row.topics or TopicChoice.every()
        records.append(
            {
                "email": row.email,
                "email_key": row.key,
                "name": row.name or "",
                "status": status,
                "all_topics": topics.all_topics,
                "created_at": consent.get("created_at", now),
                "updated_at": now,
                "confirmed_at": consent.get("confirmed_at", now if status == ACTIVE else None),
                "unsubscribed_at": consent.get(
                    "unsubscribed_at", now if status == UNSUBSCRIBED else None
                ),
                "consent_source": consent.get("consent_source", source[:50]),
                "consent_ip": consent.get("consent_ip", ""),
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
            "status": status,
            "created_at": now,
            "updated_at": now,
        }
        for row in rows
        for slugs, status in zip(
            row.lists or (default, []), (SUBSCRIBED, UNSUBSCRIBED), strict=True
        )
        for slug in slugs
    ]
    if subscriptions:
        session.execute(insert(Subscription), subscriptions)
    for table, column in ((SubscriberTopic, "chosen"), (ExcludedTopic, "excluded")):
        topic_rows = [
            {"subscriber_id": ids[row.key], "topic": slug}
            for row in rows
            if row.topics is not None
            for slug in sorted(getattr(row.topics, column) or ())
        ]
        if topic_rows:
            session.execute(insert(table), topic_rows)


def _update_from_row(lists: dict[str, MailingList], subscriber: Subscriber, row: _Row) -> None:
    # Only what the row gives: a missing column or a blank cell keeps the stored value, so a
    # file with some cells left empty never wipes names, topics, lists or statuses. The
    # consent record (row.consent) is the database's own and is never rewritten.
    if row.name is not None and row.name != subscriber.name:
        subscriber.name = row.name
    if row.topics is not None and row.topics != subscriber.topic_choice:
        apply_topics(subscriber, row.topics)
    if row.lists is not None:
        subscribed, left = row.lists
        apply_lists(lists, subscriber, subscribed)
        on = {s.mailing_list.slug for s in subscriber.subscriptions}
        for slug in left:
            if slug not in on:  # a record that they left it
                subscriber.subscriptions.append(
                    Subscription(mailing_list=lists[slug], status=UNSUBSCRIBED)
                )
    if row.status is not None:
        apply_status(subscriber, row.status)
