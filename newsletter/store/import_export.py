"""Subscribers in and out: CSV import (validated row by row, applied in one transaction), CSV and
JSON export.
"""

from __future__ import annotations

import csv
import io
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
from newsletter.errors import ImportFileError
from newsletter.errors import NewsletterError
from newsletter.errors import RowsRejected
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

CSV_COLUMNS = ("email", "name", "topics", "lists", "status")


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


def _all_subscribers(session: Session) -> Iterable[Subscriber]:
    query = select(Subscriber).order_by(Subscriber.id).execution_options(yield_per=1000)
    return session.scalars(query)


def write_csv(stream: IO[str], subscribers: Iterable[Subscriber]) -> int:
    """Write subscribers as import-compatible CSV (with the header); returns the row count."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for subscriber in subscribers:
        writer.writerow(
            [
                subscriber.email,
                subscriber.name,
                topics_cell(subscriber.topic_choice),
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
    topics: TopicChoice
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
        name = clean_name(values["name"]) if "name" in values else None
        topics = parse_topic_choice(values.get("topics", ""), self.taxonomy)
        lists = None
        if "lists" in values:
            lists = list(dict.fromkeys(split_list(values["lists"])))
            for slug in lists:
                if slug not in self.list_slugs:
                    raise ValueError(known_lists_message(slug, self.list_slugs))
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
    for start in range(0, len(keys), IN_CHUNK):
        chunk = keys[start : start + IN_CHUNK]
        if load:
            subscribers = select(Subscriber).where(Subscriber.email_key.in_(chunk))
            found.update((s.email_key, s) for s in session.scalars(subscribers))
        else:
            keys_only = select(Subscriber.email_key).where(Subscriber.email_key.in_(chunk))
            found.update(dict.fromkeys(session.scalars(keys_only)))
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
    suppressed = suppressed_hashes(session, [hash_key(row.key) for row in rows])
    existing = _existing(session, [row.key for row in rows], load=update_existing)
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
    report.rejected.sort()
    if report.rejected and not skip_invalid:
        raise RowsRejected(
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
                "all_topics": row.topics.all_topics,
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
    for table, column in ((SubscriberTopic, "chosen"), (ExcludedTopic, "excluded")):
        topics = [
            {"subscriber_id": ids[row.key], "topic": slug}
            for row in rows
            for slug in sorted(getattr(row.topics, column) or ())
        ]
        if topics:
            session.execute(insert(table), topics)


def _update_from_row(
    lists: dict[str, MailingList], subscriber: Subscriber, row: _Row, default: list[str]
) -> None:
    # Only the columns the file has: an import without a name column keeps the names.
    if row.name is not None and row.name != subscriber.name:
        subscriber.name = row.name
    if row.topics_given and row.topics != subscriber.topic_choice:
        apply_topics(subscriber, row.topics)
    if row.lists is not None:
        apply_lists(lists, subscriber, row.lists or default)
    if row.status is not None:
        apply_status(subscriber, row.status)
