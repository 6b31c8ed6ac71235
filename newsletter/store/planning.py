"""Set-based planning: a campaign's ledger rows written by one INSERT … SELECT.

The database computes each subscriber's variant: for every summary of the issue, one SQL
expression says whether it reaches the subscriber (their chosen topics, or every topic but the
ones they stopped; see `content.choice`, computed from one GROUP BY over each topic table),
and the variant key is the concatenation of the keys of the summaries that do, exactly as
`personalize.choose_variant` spells it. No subscriber
passes through Python, so planning runs in flat memory and at the database's speed; what the
report needs (counts per variant) is one GROUP BY over the new rows.

The audience rules (active, on a list, not yet planned, the late-joiner cut-off) are those of
`store.audience`; to them planning adds pause and frequency (see `audience_filter`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import Executable
from sqlalchemy import String
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import cast
from sqlalchemy import exists
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal
from sqlalchemy import not_
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from newsletter.store.audience import active_on_lists
from newsletter.store.audience import joined_by_filter
from newsletter.store.audience import not_planned
from newsletter.store.ledger import OPEN_STATUSES
from newsletter.store.models import MONTHLY
from newsletter.store.models import PLANNED
from newsletter.store.models import PLANNING
from newsletter.store.models import QUARTERLY
from newsletter.store.models import QUEUED
from newsletter.store.models import SENT
from newsletter.store.models import SKIPPED
from newsletter.store.models import Campaign
from newsletter.store.models import Delivery
from newsletter.store.models import ExcludedTopic
from newsletter.store.models import Subscriber
from newsletter.store.models import SubscriberTopic
from newsletter.store.models import Subscription
from newsletter.store.models import UTCDateTime
from newsletter.store.models import utcnow
from newsletter.store.pauses import PAUSED
from newsletter.store.pauses import planned_during_pause

# A ledger row in one of these states means the reader got (or is getting) its summaries.
RECEIVED_STATUSES = (SENT, *OPEN_STATUSES)
_WORK_MEM = "64MB"  # PostgreSQL's per-node memory for planning's hash joins and aggregates
PERSONAL = ";topics"  # `VariantKey.encode`'s suffix for a variant with topic notes


@dataclass(frozen=True)
class Candidate:
    """A summary that may go into a subscriber's message.

    `key` is its name in the variant key (its slug in a month, 'YYYY-MM/slug' in a round-up);
    `month` and `slug`, for a round-up, name the month campaign whose rows tell whether the
    reader already received it.
    """

    key: str
    topics: frozenset[str]
    month: str = ""
    slug: str = ""


@dataclass(frozen=True)
class Rules:
    """What to plan: the candidates in issue order, and how to treat who matches nothing."""

    candidates: tuple[Candidate, ...]
    full_variant: str = ""  # the whole issue for readers with no match ('' = skip them)
    no_match_error: str = ""  # `last_error` of a skipped row
    round_up: bool = False
    # Round-ups: the month campaigns of the quarter, month -> (id, created_at).
    months: dict[str, tuple[int, dt.datetime]] | None = None


def _flags(candidates: Sequence[Candidate], ids: tuple[int, int] | None):
    """Two aggregates over the topic tables, one row per subscriber: `m<i>` is 1 when one of
    their chosen topics is candidate i's, `x<i>` how many of candidate i's topics they stopped.
    One pass over each table, joined once, instead of a correlated lookup per summary. With
    `ids`, only the subscribers of that id range (one part of a parallel plan)."""
    chosen = select(
        SubscriberTopic.subscriber_id.label("subscriber_id"),
        *[
            func.max(case((SubscriberTopic.topic.in_(sorted(c.topics)), 1), else_=0)).label(f"m{i}")
            for i, c in enumerate(candidates)
            if c.topics
        ],
    )
    stopped = select(
        ExcludedTopic.subscriber_id.label("subscriber_id"),
        *[
            func.sum(case((ExcludedTopic.topic.in_(sorted(c.topics)), 1), else_=0)).label(f"x{i}")
            for i, c in enumerate(candidates)
            if c.topics
        ],
    )
    # Only the rows of the topics count (a reader without one has no row here, which
    # reads as no match): a fraction of the table to aggregate and join.
    topics = sorted({t for c in candidates for t in c.topics})
    chosen = chosen.where(SubscriberTopic.topic.in_(topics))
    stopped = stopped.where(ExcludedTopic.topic.in_(topics))
    if ids is not None:
        chosen = chosen.where(SubscriberTopic.subscriber_id.between(*ids))
        stopped = stopped.where(ExcludedTopic.subscriber_id.between(*ids))
    chosen = chosen.group_by(SubscriberTopic.subscriber_id)
    stopped = stopped.group_by(ExcludedTopic.subscriber_id)
    return chosen.subquery("chosen"), stopped.subquery("stopped")


def _matches(i: int, candidate: Candidate, chosen, stopped) -> ColumnElement[bool]:
    """Whether candidate i's topics reach the subscriber (`TopicChoice.matching`): one of them
    is chosen, or (all topics) not every one of them is stopped."""
    if not candidate.topics:
        return false()
    return or_(
        and_(
            Subscriber.all_topics.is_(True),
            func.coalesce(stopped.c[f"x{i}"], 0) < len(candidate.topics),
        ),
        and_(Subscriber.all_topics.isnot(True), func.coalesce(chosen.c[f"m{i}"], 0) == 1),
    )


def _received(candidate: Candidate, campaign_id: int) -> ColumnElement[bool]:
    """Whether the month campaign's row for the subscriber holds this summary (sent or still
    open, or skipped because they paused: they chose not to get it): ',' + variant without
    its suffix + ',' contains ',slug,'."""
    slugs = literal(",") + func.replace(Delivery.variant, PERSONAL, "") + literal(",")
    return exists().where(
        Delivery.campaign_id == campaign_id,
        Delivery.subscriber_id == Subscriber.id,
        or_(
            Delivery.status.in_(RECEIVED_STATUSES),
            and_(Delivery.status == SKIPPED, Delivery.last_error == PAUSED),
        ),
        slugs.contains(f",{candidate.slug},", autoescape=True),
    )


def _missed(campaign_id: int, created_at: dt.datetime) -> ColumnElement[bool]:
    """For a reader monthly now: they had joined when the month was planned but have no row
    in it (they were quarterly then), and were not paused then. The pause windows decide,
    not `paused_until`: resuming early clears that, and a pause skips (`store.pauses`)."""
    return and_(
        ~exists().where(
            Delivery.campaign_id == campaign_id, Delivery.subscriber_id == Subscriber.id
        ),
        Subscriber.created_at <= created_at,
        or_(Subscriber.confirmed_at.is_(None), Subscriber.confirmed_at <= created_at),
        ~planned_during_pause(created_at),
    )


def _takes(i: int, candidate: Candidate, rules: Rules, chosen, stopped) -> ColumnElement[bool]:
    """Whether candidate i goes into the subscriber's message."""
    matches = _matches(i, candidate, chosen, stopped)
    if not rules.round_up:
        return matches
    month = (rules.months or {}).get(candidate.month)
    if month is None:
        # Never planned as a month: only quarterly readers can get it, here.
        return and_(matches, Subscriber.frequency == QUARTERLY)
    campaign_id, created_at = month
    return and_(
        matches,
        ~_received(candidate, campaign_id),
        or_(Subscriber.frequency == QUARTERLY, _missed(campaign_id, created_at)),
    )


def not_paused(now: dt.datetime) -> ColumnElement[bool]:
    """Not paused at `now`: no pause, or one that has run out (it resumes by itself)."""
    return or_(Subscriber.paused_until.is_(None), Subscriber.paused_until <= now)


def audience_filter(
    lists: Sequence[str],
    rules: Rules,
    now: dt.datetime,
    campaign_id: int | None,
    joined_by: dt.datetime | None,
    ids: tuple[int, int] | None = None,
) -> ColumnElement[bool]:
    """The subscribers planning considers: active on `lists`, not paused, of the campaign's
    frequency (a month goes to monthly readers; a round-up is considered for everyone: it
    reaches quarterly readers and the summaries monthly readers missed while quarterly), not
    yet planned and (with `joined_by`) not late joiners; with `ids`, in that id range (said of
    the subscriptions too: the database reads only that range of them)."""
    if ids is None:
        parts = [active_on_lists(lists), not_paused(now)]
    else:
        within = Subscription.subscriber_id.between(*ids)
        parts = [Subscriber.id.between(*ids), active_on_lists(lists, within), not_paused(now)]
    if not rules.round_up:
        parts.append(Subscriber.frequency == MONTHLY)
    if campaign_id is not None:
        parts.append(not_planned(campaign_id))
    if joined_by is not None:
        parts.append(joined_by_filter(lists, joined_by))
    return and_(*parts)


def _rows(
    lists: Sequence[str],
    rules: Rules,
    now: dt.datetime,
    campaign_id: int | None,
    joined_by: dt.datetime | None,
    ids: tuple[int, int] | None = None,
):
    """SELECT subscriber id, email, variant, status, last_error of every row to plan (with
    `ids`, of the subscribers whose id is in that closed range)."""
    chosen, stopped = _flags(rules.candidates, ids)
    parts = [
        case((_takes(i, c, rules, chosen, stopped), literal(c.key + ",")), else_=literal(""))
        for i, c in enumerate(rules.candidates)
    ]
    joined: ColumnElement[Any] = parts[0] if parts else literal("")
    for part in parts[1:]:
        joined = joined + part
    keys = func.rtrim(cast(joined, String), ",")
    inner = (
        select(
            Subscriber.id.label("subscriber_id"),
            Subscriber.email.label("email"),
            Subscriber.frequency.label("frequency"),
            keys.label("keys"),
        )
        .select_from(Subscriber)
        .outerjoin(chosen, chosen.c["subscriber_id"] == Subscriber.id)
        .outerjoin(stopped, stopped.c["subscriber_id"] == Subscriber.id)
        .where(audience_filter(lists, rules, now, campaign_id, joined_by, ids))
        .subquery()
    )
    nothing = inner.c["keys"] == ""
    variant = case((nothing, literal(rules.full_variant)), else_=inner.c["keys"] + PERSONAL)
    skip = not rules.full_variant
    status = case((nothing, literal(SKIPPED if skip else QUEUED)), else_=literal(QUEUED))
    error = case((nothing, literal(rules.no_match_error if skip else "")), else_=literal(""))
    query = select(
        inner.c["subscriber_id"],
        inner.c["email"],
        variant.label("variant"),
        status.label("status"),
        error.label("last_error"),
    )
    if rules.round_up:
        # A monthly reader with nothing missed gets no row at all (not a skipped one each).
        query = query.where(or_(not_(nothing), inner.c["frequency"] == QUARTERLY))
    return query


def _for_bulk(connection: Connection) -> None:
    """On PostgreSQL, hash joins for this transaction: right after a bulk import the tables
    have no statistics yet, and a nested loop over the topic aggregates would take minutes.
    And room for them in memory: with the default 4 MB, a million subscribers' topic
    aggregate and hash tables spill to disk in dozens of batches (work_mem is a per-node
    bound, taken only as needed, and only for this transaction). No JIT: its time goes into
    compiling expressions (55 ms a backend at a million rows, seconds once the cost passes
    `jit_optimize_above_cost`), while the statement's time is in inserts and trigger calls."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL enable_nestloop = off"))
        connection.execute(text(f"SET LOCAL work_mem = '{_WORK_MEM}'"))
        connection.execute(text("SET LOCAL jit = off"))


def count_variants(
    connection: Connection,
    lists: Sequence[str],
    rules: Rules,
    campaign_id: int | None,
    joined_by: dt.datetime | None,
    now: dt.datetime | None = None,
) -> dict[tuple[str, str], int]:
    """What planning would write, without writing: rows by (variant, status)."""
    _for_bulk(connection)
    rows = _rows(lists, rules, now or utcnow(), campaign_id, joined_by).subquery()
    query = select(rows.c["variant"], rows.c["status"], func.count()).group_by(
        rows.c["variant"], rows.c["status"]
    )
    return {(v, s): int(n) for v, s, n in connection.execute(query)}


_COLUMNS = [
    "campaign_id",
    "subscriber_id",
    "email",
    "variant",
    "status",
    "last_error",
    "attempts",
    "worker_id",
    "smtp_reply",
    "updated_at",
]


def insert_plan(
    connection: Connection,
    campaign_id: int,
    lists: Sequence[str],
    rules: Rules,
    joined_by: dt.datetime | None,
    now: dt.datetime | None = None,
    in_parts: bool = False,
) -> dict[tuple[str, str], int]:
    """Write the campaign's new rows with one INSERT … SELECT; their counts by (variant,
    status). Rows already planned are left alone (NOT EXISTS, and for a planner running at
    the same time ON CONFLICT DO NOTHING on SQLite, an advisory lock on PostgreSQL).

    With `in_parts` (for a campaign nobody sends yet: its rows then appear part by part), on
    PostgreSQL a large audience is split into up to `PARTS` ranges of subscriber ids, one per
    `MIN_PART` ids, each inserted by a connection of its own in parallel and committed on its
    own (see `_insert_parts`; the campaign row must be committed); the caller's transaction
    holds the lock."""
    now = now or utcnow()
    _for_bulk(connection)
    stamp = literal(now, UTCDateTime())

    def source(ids: tuple[int, int] | None):
        rows = _rows(lists, rules, now, campaign_id, joined_by, ids).subquery()
        return select(
            literal(campaign_id),
            rows.c["subscriber_id"],
            rows.c["email"],
            rows.c["variant"],
            rows.c["status"],
            rows.c["last_error"],
            literal(0),
            literal(""),
            literal(""),
            stamp,
        ).where(rows.c["subscriber_id"].isnot(None))  # SQLite's upsert needs a WHERE here

    dialect = connection.dialect.name
    statement: Executable
    if dialect == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(_PLAN_LOCK, campaign_id)))
        ranges = _id_ranges(connection) if in_parts else [None]
        if len(ranges) == 1:
            return _insert_postgresql(connection, source(None))
        return _insert_parts(connection, [source(ids) for ids in ranges])
    before = connection.scalar(select(func.coalesce(func.max(Delivery.id), 0))) or 0
    if dialect == "sqlite":
        statement = sqlite_insert(Delivery).from_select(_COLUMNS, source(None))
        statement = statement.on_conflict_do_nothing()
    else:  # pragma: no cover - the two supported databases are above
        statement = insert(Delivery).from_select(_COLUMNS, source(None))
    connection.execute(statement)
    query = (
        select(Delivery.variant, Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign_id, Delivery.id > before)
        .group_by(Delivery.variant, Delivery.status)
    )
    return {(v, s): int(n) for v, s, n in connection.execute(query)}


# The advisory lock's first key: "plan" in ASCII, so it meets no other use of advisory locks.
_PLAN_LOCK = 0x706C616E
# A PostgreSQL backend runs a statement on one core, and most of a large plan's time is spent
# per row (the two foreign keys' checks, three index inserts): so a large plan is written by
# this many connections at once, each on a range of at least MIN_PART subscriber ids.
PARTS = 2
MIN_PART = 100_000


def _id_ranges(connection: Connection) -> list[tuple[int, int] | None]:
    """The closed subscriber id ranges of the parts, of equal spans (ids are handed out in
    order, so about equal counts); [None] for one statement over all."""
    low, high = connection.execute(select(func.min(Subscriber.id), func.max(Subscriber.id))).one()
    if low is None:
        return [None]
    count = min(PARTS, (high - low + 1) // MIN_PART)
    if count <= 1:
        return [None]
    size = -(-(high - low + 1) // count)  # ceiling: the last range ends at `high`
    return [(start, min(high, start + size - 1)) for start in range(low, high + 1, size)]


def _insert_parts(connection: Connection, sources: list) -> dict[tuple[str, str], int]:
    """Run each part's INSERT in a connection (and transaction) of its own, in parallel; their
    counts added up. The caller's transaction holds the advisory lock until it commits, after
    every part has: a second planner of the campaign waits for all of them, then its NOT
    EXISTS sees their rows. A part that fails (or a crash) leaves the other parts' rows
    committed; the campaign is not yet PLANNED then (`sending.plan`), and planning it again
    writes the missing parts' rows only."""
    # Imported here, as the PostgreSQL dialect is: only a plan in parts uses it.
    from concurrent.futures import ThreadPoolExecutor

    engine = connection.engine

    def part(source) -> dict[tuple[str, str], int]:
        with engine.begin() as own:
            _for_bulk(own)
            return _insert_postgresql(own, source)

    total: Counter[tuple[str, str]] = Counter()
    with ThreadPoolExecutor(len(sources), thread_name_prefix="plan-part") as pool:
        for counts in pool.map(part, sources):
            total.update(counts)
    return dict(total)


def _insert_postgresql(connection: Connection, source) -> dict[tuple[str, str], int]:
    """PostgreSQL: a plain INSERT … SELECT whose RETURNING rows are counted in the same
    statement. Measured on 1,000,000 rows (bench/planning.py), ON CONFLICT DO NOTHING cost
    ~15 % more server CPU than the plain insert (a speculative insertion per row), and
    counting the new rows again afterwards another full pass; so planners of the same
    campaign take turns on a transaction-scoped advisory lock instead (the second one's
    NOT EXISTS then sees the first one's committed rows). Should a row of the campaign come in
    some other way meanwhile, the unique constraint refuses the batch and it is planned again,
    with ON CONFLICT, from a savepoint: never a duplicate, never a failed plan."""
    # Imported here: the PostgreSQL dialect is ~1.4 MB of a sending process on SQLite.
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    plain = pg_insert(Delivery).from_select(_COLUMNS, source)
    try:
        with connection.begin_nested():
            return _count_returned(connection, plain)
    except IntegrityError:
        return _count_returned(connection, plain.on_conflict_do_nothing())


def _count_returned(connection: Connection, statement) -> dict[tuple[str, str], int]:
    """Run the INSERT and count its new rows by (variant, status), in one statement."""
    new = statement.returning(Delivery.variant, Delivery.status).cte("new")
    query = select(new.c["variant"], new.c["status"], func.count()).group_by(
        new.c["variant"], new.c["status"]
    )
    return {(v, s): int(n) for v, s, n in connection.execute(query)}


def mark_planned(connection: Connection, campaign_id: int) -> None:
    """A campaign still PLANNING is PLANNED now (its rows are all written); any other status
    is left as it is (a send may already be running it)."""
    connection.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == PLANNING)
        .values(status=PLANNED)
    )


def month_campaigns(
    connection: Connection, months: Sequence[str]
) -> dict[str, tuple[int, dt.datetime]]:
    """The campaigns of `months` that exist: month -> (id, created_at)."""
    query = select(Campaign.month, Campaign.id, Campaign.created_at).where(
        Campaign.month.in_(list(months))
    )
    return {m: (i, c) for m, i, c in connection.execute(query)}


def count_late_joiners(
    connection: Connection,
    lists: Sequence[str],
    rules: Rules,
    campaign_id: int,
    cutoff: dt.datetime,
    now: dt.datetime | None = None,
) -> int:
    """Subscribers planning would consider but for the late-joiner cut-off (for a round-up,
    the quarterly readers among them: a monthly late joiner missed nothing)."""
    # Hash joins here too: right after a bulk import this count took longer (21 s for
    # 1,000,000 subscribers on PostgreSQL) than the planning INSERT itself.
    _for_bulk(connection)
    query = select(func.count()).where(
        audience_filter(lists, rules, now or utcnow(), campaign_id, None),
        ~joined_by_filter(lists, cutoff),
    )
    if rules.round_up:
        query = query.where(Subscriber.frequency == QUARTERLY)
    return int(connection.scalar(query) or 0)
